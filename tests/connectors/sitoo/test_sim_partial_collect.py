"""A partial pickup in Sitoo: the customer collects only part of a click & collect order at
the till. Staff hand over those units as one delivery and close the order; the rest is never
delivered, so it stays in stock and its reservation goes with the close."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tillsync.schemas.sitoo import (
    ORDER_CLOSED,
    ORDER_OPEN,
    PAYMENT_SUCCESSFUL,
    TRANSACTION_SALES,
    OrderDelivery,
)
from tillsync_sim.sitoo import SimError, SitooSimulator

from .conftest import Api
from .test_sim_pay_at_till import _changes, _pickup, _read
from .test_sim_ship import _deliveries, _order, _stock

SKUS = ("SKU-0001", "SKU-0002")
ROW_A, ROW_B = 0, 1  # orderitemids are the rows' positions


async def _two_rows(api: Api, ext: str) -> int:
    """3 units of A and 1 of B, to be picked up (paid online)."""
    return await _order(api, ext, [("SKU-0001", 3), ("SKU-0002", 1)], ship=False)


async def _stocks(api: Api) -> dict[str, tuple[float, float]]:
    return {sku: await _stock(api, sku) for sku in SKUS}


def _since(sim: SitooSimulator, mark: int) -> list[tuple[str, Any]]:
    """The events after ``mark``, each with what tells it apart."""
    out: list[tuple[str, Any]] = []
    for e in list(sim.events.history)[mark:]:
        kind, data = e["event_type"], e["data"]
        if kind == "order":
            out.append((kind, (data["order_id"], data.get("order_state_changed"))))
        elif kind == "order-delivery":
            state = data["order_delivery_state_changed"]
            out.append((kind, (data["order_id"], data["order_delivery_id"], state)))
        else:
            out.append((kind, data.get("transaction_type")))
    return out


async def test_a_partial_collect_delivers_the_units_taken_and_closes_the_order(
    sim: SitooSimulator, api: Api, control: httpx.AsyncClient
) -> None:
    before = await _stocks(api)
    orderid = await _two_rows(api, "PART-1")
    assert await _stocks(api) == {
        "SKU-0001": (before["SKU-0001"][0], before["SKU-0001"][1] + 3),
        "SKU-0002": (before["SKU-0002"][0], before["SKU-0002"][1] + 1),
    }
    mark = len(sim.events.history)

    r = await control.post(f"/orders/{orderid}/collect", json={"lines": {str(ROW_A): 2}})
    assert r.status_code == 200, r.text
    assert r.json()["orderstateid"] == ORDER_CLOSED
    assert (await _read(api, orderid))["orderstateid"] == ORDER_CLOSED

    # getOrderDeliveries: one delivery, of the 2 units of A and nothing of B
    [delivery] = await _deliveries(api, orderid)
    assert delivery["warehouseid"] == 1
    assert [(i["orderitemid"], i["quantity"]) for i in delivery["orderdeliveryitems"]] == [
        (ROW_A, 2)
    ]
    assert OrderDelivery.model_validate(delivery).orderid == orderid

    # A's stock went out with the delivery; the unclaimed rest stays and is no longer held
    assert await _stocks(api) == {
        "SKU-0001": (before["SKU-0001"][0] - 2, before["SKU-0001"][1]),
        "SKU-0002": before["SKU-0002"],
    }
    ledger = await api.get("/sites/1/warehousetransactions.json", params={"num": 10})
    [sale] = [t for t in ledger["items"] if t["orderdeliveryid"] == delivery["orderdeliveryid"]]
    assert sale["transactiontype"] == TRANSACTION_SALES
    assert [(i["sku"], i["decimalquantity"]) for i in sale["items"]] == [("SKU-0001", "-2.000")]

    # the delivery, its Sales transaction, then the close
    assert _since(sim, mark) == [
        ("order-delivery", (orderid, delivery["orderdeliveryid"], "delivered")),
        ("warehouse-transaction", TRANSACTION_SALES),
        ("order", (orderid, "closed")),
    ]
    assert _changes(sim, orderid) == ["open", "closed"]


async def test_a_collect_without_lines_is_unchanged(
    sim: SitooSimulator, api: Api, control: httpx.AsyncClient
) -> None:
    before = await _stocks(api)
    whole = await _two_rows(api, "PART-2")
    mark = len(sim.events.history)
    assert (await control.post(f"/orders/{whole}/collect", json={})).status_code == 200
    [delivery] = await _deliveries(api, whole)
    assert {(i["orderitemid"], i["quantity"]) for i in delivery["orderdeliveryitems"]} == {
        (ROW_A, 3),
        (ROW_B, 1),
    }
    assert (await _read(api, whole))["orderstateid"] == ORDER_CLOSED
    assert await _stocks(api) == {
        "SKU-0001": (before["SKU-0001"][0] - 3, before["SKU-0001"][1]),
        "SKU-0002": (before["SKU-0002"][0] - 1, before["SKU-0002"][1]),
    }
    whole_events = [kind for kind, _ in _since(sim, mark)]
    assert whole_events == ["order-delivery", "warehouse-transaction", "order"]

    # a partial collect tells of itself with the same kinds of event, in the same order
    part = await _two_rows(api, "PART-3")
    mark = len(sim.events.history)
    sim.state.collect(part, lines={ROW_B: 1})
    assert [kind for kind, _ in _since(sim, mark)] == whole_events
    [delivery] = await _deliveries(api, part)
    assert [(i["orderitemid"], i["quantity"]) for i in delivery["orderdeliveryitems"]] == [
        (ROW_B, 1)
    ]


async def test_bad_lines_are_refused_and_change_nothing(
    sim: SitooSimulator, api: Api, control: httpx.AsyncClient
) -> None:
    orderid = await _two_rows(api, "PART-4")
    order, stock, mark = await _read(api, orderid), await _stocks(api), len(sim.events.history)

    async def unchanged() -> None:
        assert await _read(api, orderid) == order
        assert await _deliveries(api, orderid) == []
        assert await _stocks(api) == stock
        assert len(sim.events.history) == mark

    refused_in_state: list[dict[int, int]] = [
        {7: 1},  # no such row
        {ROW_A: 0},
        {ROW_A: -1},
        {ROW_A: 4},  # more than the row
        {ROW_A: 1, ROW_B: 2},  # one good row does not carry a bad one
        {},
    ]
    for lines in refused_in_state:
        with pytest.raises(SimError) as err:
            sim.state.collect(orderid, lines=lines)
        assert err.value.statuscode == 400, lines
        r = await control.post(
            f"/orders/{orderid}/collect", json={"lines": {str(k): v for k, v in lines.items()}}
        )
        assert r.status_code == 400, lines
        assert r.json()["errortext"] == err.value.errortext
    await unchanged()

    malformed: list[Any] = [[0], "0:2", {"A": 1}, {"0": "2"}, {"0": True}, {"0": 1.5}]
    for lines in malformed:
        r = await control.post(f"/orders/{orderid}/collect", json={"lines": lines})
        assert r.status_code == 400, lines
        assert "lines" in r.json()["errortext"], r.text
    await unchanged()

    # a partial collect cannot take back what is already delivered
    await api.post(
        f"/sites/1/orders/{orderid}/orderdeliveries.json",
        {"warehouseid": 1, "orderdeliveryitems": [{"orderitemid": ROW_A, "quantity": 2}]},
    )
    r = await control.post(f"/orders/{orderid}/collect", json={"lines": {str(ROW_A): 2}})
    assert r.status_code == 400 and "1 left" in r.json()["errortext"], r.text
    assert (await _read(api, orderid))["orderstateid"] == ORDER_OPEN

    # a closed order is not collected again
    sim.state.collect(orderid, lines={ROW_A: 1})
    r = await control.post(f"/orders/{orderid}/collect", json={"lines": {str(ROW_B): 1}})
    assert r.status_code == 400 and "not open" in r.json()["errortext"]
    assert len(await _deliveries(api, orderid)) == 2


async def test_a_partial_collect_paid_at_the_till(
    sim: SitooSimulator, api: Api, control: httpx.AsyncClient
) -> None:
    orderid = await _pickup(api, "PART-5")  # 2 of A, 1 of B, not paid
    r = await control.post(
        f"/orders/{orderid}/collect", json={"take_payment": True, "lines": {str(ROW_A): 1}}
    )
    assert r.status_code == 200, r.text
    order = await _read(api, orderid)
    assert (order["orderstateid"], order["paymentstateid"]) == (ORDER_CLOSED, PAYMENT_SUCCESSFUL)
    # the order's total, as a whole collect pays it
    assert [(p["name"], p["moneyamount"]) for p in order["payments"]] == [("Card", "199.50")]
    [delivery] = await _deliveries(api, orderid)
    assert [(i["orderitemid"], i["quantity"]) for i in delivery["orderdeliveryitems"]] == [
        (ROW_A, 1)
    ]
    assert _changes(sim, orderid) == ["open", "closed"]

    # an order already paid is refused before anything is handed over
    paid = await _two_rows(api, "PART-6")
    mark = len(sim.events.history)
    with pytest.raises(SimError) as err:
        sim.state.collect(paid, take_payment=True, lines={ROW_A: 1})
    assert "already paid" in err.value.errortext
    assert await _deliveries(api, paid) == []
    assert (await _read(api, paid))["orderstateid"] == ORDER_OPEN
    assert len(sim.events.history) == mark
