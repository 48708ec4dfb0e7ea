"""Stock semantics: reservations, closing, cancelling, returns, deliveries, stocktaking."""

from __future__ import annotations

from typing import Any

import httpx

from tillsync_sim.sitoo import SitooSimulator

from .conftest import Api

ITEMS = "/sites/1/warehouses/{wid}/warehouseitems.json"


async def _row(api: Api, wid: int, sku: str) -> dict[str, Any]:
    body = await api.get(ITEMS.format(wid=wid), params={"sku": sku})
    assert body["totalcount"] == 1
    row: dict[str, Any] = body["items"][0]
    return row


def _q(row: dict[str, Any]) -> tuple[float, float, float]:
    return (
        float(row["decimaltotal"]),
        float(row["decimalreserved"]),
        float(row["decimalavailable"]),
    )


async def _open_order(api: Api, wid: int, qty: int, ext: str) -> int:
    orderid: int = await api.post(
        "/sites/1/orders.json",
        {
            "ordertypeid": 10,
            "externalid": ext,
            "paymentstateid": 20,
            "warehouseid": wid,
            "orderitems": [
                {"productname": "P", "sku": "SKU-0001", "quantity": qty, "moneyrowprice": "100.00"}
            ],
        },
    )
    return orderid


async def _last_tx_id(api: Api) -> int:
    body = await api.get("/sites/1/warehousetransactions.json", params={"num": 1})
    return int(body["items"][0]["warehousetransactionid"])


async def test_open_order_reserves_until_closed(api: Api) -> None:
    total, reserved, available = _q(await _row(api, 1, "SKU-0001"))
    assert reserved == 0 and available == total
    before_tx = await _last_tx_id(api)
    orderid = await _open_order(api, 1, 2, "WEB-1")
    assert _q(await _row(api, 1, "SKU-0001")) == (total, 2, total - 2)
    assert await _last_tx_id(api) == before_tx  # reserving is not a stock movement

    await api.put(f"/sites/1/orders/{orderid}.json", {"orderstateid": 10})
    assert _q(await _row(api, 1, "SKU-0001")) == (total - 2, 0, total - 2)
    sale = await api.get("/sites/1/warehousetransactions.json", params={"num": 1})
    tx = sale["items"][0]
    assert tx["warehousetransactionid"] == before_tx + 1
    assert tx["transactiontype"] == 30 and tx["orderdeliveryid"] is not None
    assert tx["items"][0]["decimalquantity"] == "-2.000"
    assert float(tx["items"][0]["decimaltotal"]) == total - 2
    deliveries = await api.get(f"/sites/1/orders/{orderid}/orderdeliveries.json")
    assert deliveries["items"][0]["orderdeliveryid"] == tx["orderdeliveryid"]
    closed = await api.call("PUT", f"/sites/1/orders/{orderid}.json", json={"orderstateid": 20})
    assert closed.status_code == 400


async def test_cancel_releases_reservation(api: Api) -> None:
    total, _, _ = _q(await _row(api, 1, "SKU-0001"))
    orderid = await _open_order(api, 1, 3, "WEB-2")
    assert _q(await _row(api, 1, "SKU-0001"))[1] == 3
    before_tx = await _last_tx_id(api)
    await api.put(f"/sites/1/orders/{orderid}.json", {"orderstateid": 20})
    assert _q(await _row(api, 1, "SKU-0001")) == (total, 0, total)
    assert await _last_tx_id(api) == before_tx


async def test_partial_delivery_reduces_reservation(api: Api) -> None:
    total, _, _ = _q(await _row(api, 1, "SKU-0001"))
    orderid = await _open_order(api, 1, 3, "WEB-3")
    await api.post(
        f"/sites/1/orders/{orderid}/orderdeliveries.json",
        {"warehouseid": 1, "orderdeliveryitems": [{"orderitemid": 0, "quantity": 1}]},
    )
    assert _q(await _row(api, 1, "SKU-0001")) == (total - 1, 2, total - 3)
    too_many = await api.call(
        "POST",
        f"/sites/1/orders/{orderid}/orderdeliveries.json",
        json={"warehouseid": 1, "orderdeliveryitems": [{"orderitemid": 0, "quantity": 5}]},
    )
    assert too_many.status_code == 400


async def test_return_at_till_credits_original_and_restocks(
    sim: SitooSimulator, api: Api, control: httpx.AsyncClient
) -> None:
    store2 = sim.state.stores[2]
    wid2 = store2.warehouseid
    assert wid2 is not None
    orderid = await _open_order(api, 1, 2, "WEB-4")
    await control.post(f"/orders/{orderid}/ready-for-pickup")
    await control.post(f"/orders/{orderid}/collect")
    assert (await api.get(f"/sites/1/orders/{orderid}.json"))["orderstateid"] == 10

    before = _q(await _row(api, wid2, "SKU-0001"))
    resp = await control.post(
        f"/stores/{store2.storeid}/return",
        json={
            "orderid": orderid,
            "lines": [{"sku": "SKU-0001", "quantity": 1}],
            "reasoncode": "DAMAGED",
        },
    )
    assert resp.status_code == 200, resp.text
    credit = resp.json()
    assert credit["creditorderid"] == orderid
    assert credit["orderitems"][0]["quantity"] == -1
    assert credit["moneytotal_gross_all"] == "-50.00"
    assert credit["additionaldata"]["pos-originalsales-orderid"] == str(orderid)
    assert credit["additionaldata"]["refundreasoncode-reasoncode"] == "DAMAGED"
    after = _q(await _row(api, wid2, "SKU-0001"))
    assert after[0] == before[0] + 1 and after[2] == before[2] + 1
    refund = (await api.get("/sites/1/warehousetransactions.json", params={"num": 1}))["items"][0]
    assert refund["transactiontype"] == 40 and refund["warehouseid"] == wid2
    assert refund["items"][0]["decimalquantity"] == "1.000"

    found = await api.get("/orders.json", params={"creditorderid": orderid})
    assert [o["orderid"] for o in found["items"]] == [credit["orderid"]]
    # one unit left to return; two more is refused
    again = await control.post(
        f"/stores/{store2.storeid}/return",
        json={"orderid": orderid, "lines": [{"sku": "SKU-0001", "quantity": 2}]},
    )
    assert again.status_code == 400


async def test_a_blind_return_is_a_credit_order_linked_to_nothing_that_restocks(
    sim: SitooSimulator, api: Api, control: httpx.AsyncClient
) -> None:
    store2 = sim.state.stores[2]
    wid2 = store2.warehouseid
    assert wid2 is not None
    before = _q(await _row(api, wid2, "SKU-0001"))
    resp = await control.post(
        f"/stores/{store2.storeid}/blind-return",
        json={
            "lines": [{"sku": "SKU-0001", "quantity": 2, "price": "40.00"}],
            "email": "ann@example.com",
            "reasoncode": "UNWANTED",
            "payment": "none",
        },
    )
    assert resp.status_code == 200, resp.text
    credit = await api.get(f"/sites/1/orders/{resp.json()['orderid']}.json")  # as the API has it
    assert credit["creditorderid"] is None and credit["orderstateid"] == 10  # closed
    assert credit["email"] == "ann@example.com" and credit["payments"] == []
    [row] = credit["orderitems"]
    assert (row["sku"], row["quantity"]) == ("SKU-0001", -2)
    assert credit["moneytotal_gross_all"] == "-80.00"
    assert row["additionaldata"]["return-warehouseid"] == str(wid2)
    assert "pos-originalsales-orderid" not in credit["additionaldata"]
    after = _q(await _row(api, wid2, "SKU-0001"))
    assert after[0] == before[0] + 2
    refused = await control.post(
        f"/stores/{store2.storeid}/blind-return", json={"lines": [{"sku": "NOPE"}]}
    )
    assert refused.status_code == 400


async def test_an_exchange_by_virtual_payment_is_a_credit_order_and_a_new_sale(
    sim: SitooSimulator, api: Api, control: httpx.AsyncClient
) -> None:
    orderid = await _open_order(api, 1, 1, "WEB-5")
    await control.post(f"/orders/{orderid}/collect")
    before = _q(await _row(api, 1, "SKU-0002"))[0]
    resp = await control.post(
        "/stores/1/return",
        json={
            "orderid": orderid,
            "payment": "virtual",
            "exchange": [{"sku": "SKU-0002", "quantity": 1}],
        },
    )
    assert resp.status_code == 200, resp.text
    credit = await api.get(f"/sites/1/orders/{resp.json()['orderid']}.json")
    virtual = [p for p in credit["payments"] if p["additionaldata"].get("virtual-payment")]
    assert virtual and all(float(p["moneyamount"]) < 0 for p in virtual)
    assert [i["quantity"] for i in credit["orderitems"]] == [-1]
    sale = await api.get(f"/sites/1/orders/{credit['orderid'] + 1}.json")
    assert [(i["sku"], i["quantity"]) for i in sale["orderitems"]] == [("SKU-0002", 1)]
    assert sale["creditorderid"] is None and sale["orderstateid"] == 10
    taken = sum(float(p["moneyamount"]) for p in sale["payments"])
    assert taken == float(sale["moneytotal_gross_all"])
    assert _q(await _row(api, 1, "SKU-0002"))[0] == before - 1


async def test_delivery_stocktaking_and_ledger(api: Api, control: httpx.AsyncClient) -> None:
    total, _, _ = _q(await _row(api, 1, "SKU-0002"))
    first = await _last_tx_id(api) + 1
    await control.post(
        "/warehouses/1/delivery", json={"lines": [{"sku": "SKU-0002", "quantity": 10}]}
    )
    assert _q(await _row(api, 1, "SKU-0002"))[0] == total + 10
    await control.post("/warehouses/1/stocktaking", json={"counts": {"SKU-0002": 4}})
    row = await _row(api, 1, "SKU-0002")
    assert _q(row)[0] == 4 and row["datelaststocktaking"] is not None
    ledger = await api.get(
        "/sites/1/warehousetransactions.json",
        params={"warehousetransactionidfrom": first, "sort": "warehousetransactionid"},
    )
    types = [(t["warehousetransactionid"], t["transactiontype"]) for t in ledger["items"]]
    assert types == [(first, 10), (first + 1, 50)]
    assert ledger["items"][1]["items"][0]["decimalquantity"] == f"{4 - total - 10:.3f}"
    stock = (await control.get("/state/stock", params={"warehouseid": 1})).json()
    assert stock["1"]["SKU-0002"]["total"] == "4.000"


async def test_transaction_writes_are_checked(sim: SitooSimulator, api: Api) -> None:
    path = "/sites/1/warehousetransactions.json"
    line = {"sku": "SKU-0001", "decimalquantity": "-1.000"}
    results = await api.post(
        path,
        [
            {"warehouseid": 1, "transactiontype": 20, "items": [line]},
            {"warehouseid": 1, "transactiontype": 30, "items": [line]},  # Sales: read only
            {"warehouseid": 1, "transactiontype": 50, "items": [line]},  # Stocktaking: read only
        ],
    )
    assert [r["statuscode"] for r in results] == [200, 400, 400]
    virtual = sim.state.add_warehouse("Online", warehousetype=20)
    refused = await api.post(
        path, [{"warehouseid": virtual.warehouseid, "transactiontype": 10, "items": [line]}]
    )
    assert refused[0]["statuscode"] == 400
    too_many = await api.call(
        "POST", path, json=[{"warehouseid": 1, "transactiontype": 10, "items": [line]}] * 1001
    )
    assert too_many.status_code == 400
    ids = [
        r["return"]
        for r in await api.post(
            path, [{"warehouseid": 1, "transactiontype": 10, "items": [line]}] * 3
        )
    ]
    assert ids == sorted(ids) and len(set(ids)) == 3


async def test_fields_select_what_comes_back(api: Api) -> None:
    body = await api.get(ITEMS.format(wid=1), params={"fields": "sku,decimalavailable", "num": 2})
    assert [set(row) for row in body["items"]] == [{"sku", "decimalavailable"}] * 2


async def test_a_pickup_order_holds_its_units_until_collected_or_cancelled(
    sim: SitooSimulator, api: Api, control: httpx.AsyncClient
) -> None:
    """What the reservations refresher relies on: an open order's units are reserved at its
    warehouse from `add` through `ready-for-pickup`, released on collection (as a sale) or on
    cancel, moved with the order; and every step's `order` event names the order."""
    total, _, _ = _q(await _row(api, 1, "SKU-0001"))
    seen = len(sim.events.history)
    collected = await _open_order(api, 1, 2, "PICKUP-1")
    cancelled = await _open_order(api, 1, 1, "PICKUP-2")
    assert _q(await _row(api, 1, "SKU-0001")) == (total, 3, total - 3)
    assert (await control.post(f"/orders/{collected}/ready-for-pickup")).status_code == 200
    assert _q(await _row(api, 1, "SKU-0001")) == (total, 3, total - 3)
    assert (await control.post(f"/orders/{collected}/collect")).status_code == 200
    assert _q(await _row(api, 1, "SKU-0001")) == (total - 2, 1, total - 3)
    await api.put(f"/sites/1/orders/{cancelled}.json", {"warehouseid": 2})  # moved store
    assert _q(await _row(api, 1, "SKU-0001")) == (total - 2, 0, total - 2)
    assert _q(await _row(api, 2, "SKU-0001"))[1] == 1
    rejected = await control.post(
        f"/orders/{cancelled}/reject-pickup", json={"reason": "damaged", "cancel": True}
    )
    assert rejected.status_code == 200
    assert _q(await _row(api, 2, "SKU-0001"))[1] == 0
    orders = [
        (e["data"]["order_id"], e["data"]["order_event_type"], e["data"].get("order_state_changed"))
        for e in list(sim.events.history)[seen:]
        if e["event_type"] == "order"
    ]
    assert orders == [
        (collected, "add", "open"),
        (cancelled, "add", "open"),
        (collected, "ready-for-pickup", None),
        (collected, "update", "closed"),
        (cancelled, "update", None),
        (cancelled, "pickup-rejected", None),
        (cancelled, "update", "cancelled"),
    ]
