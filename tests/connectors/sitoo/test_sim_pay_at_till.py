"""Pay in store in Sitoo: a click & collect order nobody paid online is paid at the till as
the customer collects it. The collect then adds a Card payment of the order's total and sets
the payment state paid, in the change that closes the order; an order already paid is refused,
and a collect without a payment is as it always was."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tillsync.schemas.sitoo import (
    ORDER_CLOSED,
    ORDER_OPEN,
    PAYMENT_NONE,
    PAYMENT_SUCCESSFUL,
    TRANSACTION_SALES,
    Order,
)
from tillsync_sim.sitoo import SimError, SitooSimulator

from .conftest import Api


async def _pickup(api: Api, ext: str, *, paymentstateid: int = PAYMENT_NONE) -> int:
    orderid: int = await api.post(
        "/sites/1/orders.json",
        {
            "ordertypeid": 10,
            "externalid": ext,
            "paymentstateid": paymentstateid,
            "warehouseid": 1,
            "email": "pickup@example.com",
            "orderitems": [
                {"productname": "A", "sku": "SKU-0001", "quantity": 2, "moneyrowprice": "150.00"},
                {"productname": "B", "sku": "SKU-0002", "quantity": 1, "moneyrowprice": "49.50"},
            ],
        },
    )
    return orderid


async def _read(api: Api, orderid: int) -> dict[str, Any]:
    order: dict[str, Any] = await api.get(f"/sites/1/orders/{orderid}.json")
    return order


def _changes(sim: SitooSimulator, orderid: int) -> list[str | None]:
    return [
        e["data"].get("order_state_changed")
        for e in sim.events.history
        if e["event_type"] == "order" and e["data"]["order_id"] == orderid
    ]


async def test_the_payment_taken_at_the_till_is_on_the_collected_order(
    sim: SitooSimulator, api: Api, control: httpx.AsyncClient
) -> None:
    orderid = await _pickup(api, "PAY-1")
    before = await _read(api, orderid)
    assert (before["paymentstateid"], before["payments"]) == (PAYMENT_NONE, [])
    assert before["moneytotal_gross_all"] == "199.50"  # moneyrowprice is the row's total

    r = await control.post(f"/orders/{orderid}/collect", json={"take_payment": True})
    assert r.status_code == 200, r.text
    order = await _read(api, orderid)  # checked against the OpenAPI description
    assert (order["orderstateid"], order["paymentstateid"]) == (ORDER_CLOSED, PAYMENT_SUCCESSFUL)
    [payment] = order["payments"]
    assert (payment["name"], payment["moneyamount"]) == ("Card", "199.50")
    assert r.json()["payments"] == order["payments"]
    parsed = Order.model_validate(order)
    assert [(p.name, str(p.moneyamount)) for p in parsed.payments] == [("Card", "199.50")]

    # collected as before: delivered from the store (a Sales transaction), closed in one change
    ledger = await api.get("/sites/1/warehousetransactions.json", params={"num": 10})
    [sale] = [t for t in ledger["items"] if t["transactiontype"] == TRANSACTION_SALES]
    assert {(i["sku"], i["decimalquantity"]) for i in sale["items"]} == {
        ("SKU-0001", "-2.000"),
        ("SKU-0002", "-1.000"),
    }
    assert _changes(sim, orderid) == ["open", "closed"]


async def test_an_order_already_paid_is_not_paid_again(
    sim: SitooSimulator, api: Api, control: httpx.AsyncClient
) -> None:
    orderid = await _pickup(api, "PAY-2", paymentstateid=PAYMENT_SUCCESSFUL)
    refused = await control.post(f"/orders/{orderid}/collect", json={"take_payment": True})
    assert refused.status_code == 400 and "already paid" in refused.json()["errortext"]
    order = await _read(api, orderid)
    assert (order["orderstateid"], order["payments"]) == (ORDER_OPEN, [])
    with pytest.raises(SimError) as err:
        sim.state.collect(orderid, take_payment=True)
    assert err.value.statuscode == 400
    assert _changes(sim, orderid) == ["open"]  # nothing happened to it

    # it paid online: the customer just collects it
    assert (await control.post(f"/orders/{orderid}/collect")).status_code == 200
    order = await _read(api, orderid)
    assert (order["orderstateid"], order["paymentstateid"]) == (ORDER_CLOSED, PAYMENT_SUCCESSFUL)
    assert order["payments"] == []


async def test_a_collect_without_payment_is_unchanged(
    sim: SitooSimulator, api: Api, control: httpx.AsyncClient
) -> None:
    bare = await _pickup(api, "PAY-3")
    assert (await control.post(f"/orders/{bare}/collect")).status_code == 200
    said_no = await _pickup(api, "PAY-4")
    r = await control.post(f"/orders/{said_no}/collect", json={"take_payment": False})
    assert r.status_code == 200, r.text
    in_python = await _pickup(api, "PAY-5")
    sim.state.collect(in_python)
    for orderid in (bare, said_no, in_python):
        order = await _read(api, orderid)
        assert (order["orderstateid"], order["paymentstateid"], order["payments"]) == (
            ORDER_CLOSED,
            PAYMENT_NONE,
            [],
        )

    bad = await _pickup(api, "PAY-6")
    for body in ({"take_payment": "yes"}, {"take_payment": 1}):
        refused = await control.post(f"/orders/{bad}/collect", json=body)
        assert refused.status_code == 400, body
    assert (await _read(api, bad))["orderstateid"] == ORDER_OPEN
