"""Ship-from-store in Sitoo: store staff ship an order with a delivery address; the delivery
carries the tracking number, the Sales transaction is written, and the order closes once
everything is delivered. A pickup (no address) is collected, never shipped."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tillsync.schemas.sitoo import (
    ORDER_CLOSED,
    ORDER_OPEN,
    TRANSACTION_SALES,
    Order,
    OrderDelivery,
)
from tillsync_sim.sitoo import SimError, SitooSimulator

from .conftest import Api

ITEMS = "/sites/1/warehouses/{wid}/warehouseitems.json"
ADDRESS = {
    "namefirst": "Test",
    "namelast": "Kund 1001",
    "phone": "+46701740606",
    "email": "ship@example.com",
    "delivery_address": "Testgatan 12",
    "delivery_address2": "lgh 1101",
    "delivery_zip": "11122",
    "delivery_city": "Stockholm",
    "delivery_state": "",
    "delivery_countryid": "SE",
}


async def _order(api: Api, ext: str, rows: list[tuple[str, int]], *, ship: bool = True) -> int:
    orderid: int = await api.post(
        "/sites/1/orders.json",
        {
            "ordertypeid": 10,
            "externalid": ext,
            "paymentstateid": 20,
            "warehouseid": 1,
            **(ADDRESS if ship else {"email": "pickup@example.com"}),
            "orderitems": [
                {"productname": sku, "sku": sku, "quantity": qty, "moneyrowprice": "100.00"}
                for sku, qty in rows
            ],
        },
    )
    return orderid


async def _stock(api: Api, sku: str) -> tuple[float, float]:
    body = await api.get(ITEMS.format(wid=1), params={"sku": sku})
    row = body["items"][0]
    return float(row["decimaltotal"]), float(row["decimalreserved"])


async def _deliveries(api: Api, orderid: int) -> list[dict[str, Any]]:
    body = await api.get(f"/sites/1/orders/{orderid}/orderdeliveries.json")
    items: list[dict[str, Any]] = body["items"]
    return items


def _order_events(sim: SitooSimulator, orderid: int) -> list[dict[str, Any]]:
    return [
        e["data"]
        for e in sim.events.history
        if e["event_type"] == "order" and e["data"]["order_id"] == orderid
    ]


async def test_an_order_keeps_its_delivery_address(api: Api) -> None:
    orderid = await _order(api, "SHIP-0", [("SKU-0001", 1)])
    order = await api.get(f"/sites/1/orders/{orderid}.json")
    assert {k: order[k] for k in ADDRESS} == ADDRESS
    assert Order.model_validate(order).namelast == "Kund 1001"


async def test_shipping_a_whole_order_closes_it_with_one_tracked_delivery(
    sim: SitooSimulator, api: Api, control: httpx.AsyncClient
) -> None:
    before = {sku: await _stock(api, sku) for sku in ("SKU-0001", "SKU-0002")}
    orderid = await _order(api, "SHIP-1", [("SKU-0001", 2), ("SKU-0002", 1)])
    assert (await _stock(api, "SKU-0001"))[1] == before["SKU-0001"][1] + 2

    r = await control.post(
        f"/orders/{orderid}/ship", json={"tracking": "PN123SE", "carrier": "PostNord"}
    )
    assert r.status_code == 200, r.text
    deliveryid = r.json()["orderdeliveryid"]

    order = await api.get(f"/sites/1/orders/{orderid}.json")
    assert order["orderstateid"] == ORDER_CLOSED
    [delivery] = await _deliveries(api, orderid)
    assert delivery["orderdeliveryid"] == deliveryid and delivery["warehouseid"] == 1
    assert (delivery["orderdeliveryref"], delivery["pluginname"]) == ("PN123SE", "PostNord")
    assert {(i["orderitemid"], i["quantity"]) for i in delivery["orderdeliveryitems"]} == {
        (0, 2),
        (1, 1),
    }
    assert OrderDelivery.model_validate(delivery).orderdeliveryref == "PN123SE"

    ledger = await api.get("/sites/1/warehousetransactions.json", params={"num": 10})
    [sale] = [t for t in ledger["items"] if t["orderdeliveryid"] == deliveryid]
    assert sale["transactiontype"] == TRANSACTION_SALES and sale["warehouseid"] == 1
    assert {(i["sku"], i["decimalquantity"]) for i in sale["items"]} == {
        ("SKU-0001", "-2.000"),
        ("SKU-0002", "-1.000"),
    }
    for sku, qty in (("SKU-0001", 2), ("SKU-0002", 1)):
        total, reserved = before[sku]
        assert await _stock(api, sku) == (total - qty, reserved)

    events = _order_events(sim, orderid)
    assert events[-1]["order_event_type"] == "update"
    assert events[-1]["order_state_changed"] == "closed"
    assert [
        e["data"]["order_delivery_id"]
        for e in sim.events.history
        if e["event_type"] == "order-delivery" and e["data"]["order_id"] == orderid
    ] == [deliveryid]


async def test_a_partial_shipment_leaves_the_order_open_and_the_rest_closes_it(
    sim: SitooSimulator, api: Api, control: httpx.AsyncClient
) -> None:
    total, reserved = await _stock(api, "SKU-0001")
    orderid = await _order(api, "SHIP-2", [("SKU-0001", 3)])
    first = await control.post(
        f"/orders/{orderid}/ship", json={"tracking": "T-1", "lines": {"0": 1}}
    )
    assert first.status_code == 200, first.text
    assert (await api.get(f"/sites/1/orders/{orderid}.json"))["orderstateid"] == ORDER_OPEN
    assert await _stock(api, "SKU-0001") == (total - 1, reserved + 2)
    changes = [e.get("order_state_changed") for e in _order_events(sim, orderid)]
    assert changes == ["open"]  # the add; the partial delivery changes no state

    second = sim.state.ship(orderid, "T-2", "DHL")  # the rest, in Python this time
    assert second != first.json()["orderdeliveryid"]
    assert (await api.get(f"/sites/1/orders/{orderid}.json"))["orderstateid"] == ORDER_CLOSED
    assert await _stock(api, "SKU-0001") == (total - 3, reserved)
    deliveries = await _deliveries(api, orderid)
    assert [
        (d["orderdeliveryref"], d["pluginname"], d["orderdeliveryitems"][0]["quantity"])
        for d in deliveries
    ] == [("T-1", "", 1), ("T-2", "DHL", 2)]
    changes = [e.get("order_state_changed") for e in _order_events(sim, orderid)]
    assert changes == ["open", "closed"]


async def test_ship_refuses_a_pickup_a_closed_order_and_bad_lines(
    sim: SitooSimulator, api: Api, control: httpx.AsyncClient
) -> None:
    pickup = await _order(api, "PICK-1", [("SKU-0001", 1)], ship=False)
    refused = await control.post(f"/orders/{pickup}/ship", json={"tracking": "T-9"})
    assert refused.status_code == 400 and "delivery address" in refused.json()["errortext"]
    assert await _deliveries(api, pickup) == []
    assert (await api.get(f"/sites/1/orders/{pickup}.json"))["orderstateid"] == ORDER_OPEN

    shipped = await _order(api, "SHIP-3", [("SKU-0001", 2)])
    too_many = await control.post(
        f"/orders/{shipped}/ship", json={"tracking": "T-3", "lines": {"0": 5}}
    )
    assert too_many.status_code == 400
    assert await _deliveries(api, shipped) == []
    for body in ({}, {"tracking": 7}, {"tracking": "T-3", "lines": [0]}):
        bad = await control.post(f"/orders/{shipped}/ship", json=body)
        assert bad.status_code == 400, body
    assert (await control.post(f"/orders/{shipped}/ship", json={"tracking": "T-3"})).is_success
    closed = await control.post(f"/orders/{shipped}/ship", json={"tracking": "T-4"})
    assert closed.status_code == 400 and "not open" in closed.json()["errortext"]
    assert len(await _deliveries(api, shipped)) == 1

    # delivered through the API but left open: nothing remains to ship
    open_ = await _order(api, "SHIP-5", [("SKU-0001", 1)])
    await api.post(
        f"/sites/1/orders/{open_}/orderdeliveries.json",
        {"warehouseid": 1, "orderdeliveryitems": [{"orderitemid": 0, "quantity": 1}]},
    )
    empty = await control.post(f"/orders/{open_}/ship", json={"tracking": "T-6"})
    assert empty.status_code == 400 and "nothing left" in empty.json()["errortext"]

    nowhere = sim.state.add_order({"ordertypeid": 10, **ADDRESS, "orderitems": []})
    with pytest.raises(SimError) as err:
        sim.state.ship(nowhere.orderid, "T-5")
    assert err.value.statuscode == 400 and "warehouse" in err.value.errortext


async def test_a_delivery_keeps_its_plugin_name(api: Api) -> None:
    orderid = await _order(api, "SHIP-4", [("SKU-0001", 1)])
    await api.post(
        f"/sites/1/orders/{orderid}/orderdeliveries.json",
        {
            "warehouseid": 1,
            "orderdeliveryref": "W-1",
            "pluginname": "Budbee",
            "orderdeliveryitems": [{"orderitemid": 0, "quantity": 1}],
        },
    )
    [delivery] = await _deliveries(api, orderid)
    assert (delivery["orderdeliveryref"], delivery["pluginname"]) == ("W-1", "Budbee")
