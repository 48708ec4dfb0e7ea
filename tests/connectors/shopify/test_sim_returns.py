"""The store-return chain on the simulator, through the documents tillsync sends: a return
of fulfilled units (returnCreate), what came back restocked at the store or not
(reverseFulfillmentOrderDispose), the lines refunded with or without money (returnRefund,
with ``Return.suggestedRefund`` to price them) and the return closed (returnClose). Every
refusal is a userError that changes nothing."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tillsync.connectors.shopify.documents import ORDER_PAYMENT
from tillsync.connectors.shopify.returns_documents import (
    ORDER_RETURNS,
    RETURN_CLOSE,
    RETURN_CREATE,
    RETURN_REFUND,
    RETURN_SUGGESTED_REFUND,
    REVERSE_FULFILLMENT_ORDER_DISPOSE,
)
from tillsync.schemas.shopify import Refund
from tillsync_sim.shopify import ShopifySimulator
from tillsync_sim.shopify.model import Order
from tillsync_sim.shopify.state import ReturnRequest, SimError

from .conftest import GQL, Receiver, wait_for

LEVEL = """
query Level($item: ID!, $location: ID!) {
  inventoryItem(id: $item) {
    inventoryLevel(locationId: $location) {
      quantities(names: ["available", "committed", "on_hand"]) { name quantity }
    }
  }
}
"""


def _location(sim: ShopifySimulator, name: str = "Store Stockholm") -> int:
    return next(loc.id for loc in sim.state.locations.values() if loc.name == name)


def _gid(kind: str, n: int) -> str:
    return f"gid://shopify/{kind}/{n}"


def _fulfilled(sim: ShopifySimulator, sku: str = "SHIRT-S", qty: int = 2, **kw: Any) -> Order:
    """A pickup at the store, collected: its units left on_hand with the customer."""
    order = sim.state.place_order(
        [(sku, qty)], location_id=_location(sim), delivery="PICK_UP", **kw
    )
    sim.state.fulfil(order.fulfillment_order_ids[0])
    return order


async def _ok(gql: GQL, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    answer = await gql(query, variables)
    assert "errors" not in answer, answer
    data: dict[str, Any] = answer["data"]
    return data


async def _read(gql: GQL, order_id: int) -> dict[str, Any]:
    """The order as the returns flow reads it, with its transactions (``ORDER_PAYMENT``'s)."""
    order: dict[str, Any] = (await _ok(gql, ORDER_RETURNS, {"id": _gid("Order", order_id)}))[
        "order"
    ]
    paid = (await _ok(gql, ORDER_PAYMENT, {"id": _gid("Order", order_id)}))["order"]
    return {**order, "transactions": paid["transactions"]}


async def _fulfilment_line(gql: GQL, order_id: int) -> str:
    """The FulfillmentLineItem id of the order's one fulfilled line, as tillsync reads it."""
    [f] = (await _read(gql, order_id))["fulfillments"]
    [line] = f["fulfillmentLineItems"]["nodes"]
    line_id: str = line["id"]
    return line_id


async def _create(
    gql: GQL, order_id: int, line: str, qty: int, reason: str = "UNWANTED"
) -> dict[str, Any]:
    data = await _ok(
        gql,
        RETURN_CREATE,
        {
            "returnInput": {
                "orderId": _gid("Order", order_id),
                "returnLineItems": [
                    {"fulfillmentLineItemId": line, "quantity": qty, "returnReason": reason}
                ],
            }
        },
    )
    payload: dict[str, Any] = data["returnCreate"]
    return payload


async def _return(gql: GQL, order: Order, qty: int) -> dict[str, Any]:
    """An OPEN return of ``qty`` units, read back: the return node of ORDER_RETURNS."""
    made = await _create(gql, order.id, await _fulfilment_line(gql, order.id), qty)
    assert made["userErrors"] == [] and made["return"]["status"] == "OPEN"
    nodes = (await _read(gql, order.id))["returns"]["nodes"]
    ret: dict[str, Any] = next(n for n in nodes if n["id"] == made["return"]["id"])
    return ret


def _rfo_line(ret: dict[str, Any]) -> str:
    [rfo] = ret["reverseFulfillmentOrders"]["nodes"]
    [line] = rfo["lineItems"]["nodes"]
    line_id: str = line["id"]
    return line_id


def _return_line(ret: dict[str, Any]) -> str:
    [line] = ret["returnLineItems"]["nodes"]
    line_id: str = line["id"]
    return line_id


async def _dispose(
    gql: GQL, line: str, qty: int, kind: str, location: int | None
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "reverseFulfillmentOrderLineItemId": line,
        "quantity": qty,
        "dispositionType": kind,
    }
    if location is not None:
        entry["locationId"] = _gid("Location", location)
    data = await _ok(gql, REVERSE_FULFILLMENT_ORDER_DISPOSE, {"dispositionInputs": [entry]})
    payload: dict[str, Any] = data["reverseFulfillmentOrderDispose"]
    return payload


async def _refund(
    gql: GQL, ret: dict[str, Any], qty: int, money: list[tuple[str, int]] | None = None
) -> dict[str, Any]:
    inp: dict[str, Any] = {
        "returnId": ret["id"],
        "returnRefundLineItems": [{"returnLineItemId": _return_line(ret), "quantity": qty}],
        "notifyCustomer": False,
    }
    if money is not None:
        inp["orderTransactions"] = [
            {
                "transactionAmount": {"amount": amount, "currencyCode": "SEK"},
                "parentId": _gid("OrderTransaction", parent),
            }
            for amount, parent in money
        ]
    data = await _ok(gql, RETURN_REFUND, {"returnRefundInput": inp})
    payload: dict[str, Any] = data["returnRefund"]
    return payload


async def _level(gql: GQL, sim: ShopifySimulator, sku: str, location: int) -> tuple[int, int]:
    """(available, on_hand) of a SKU at a location; (0, 0) where it is not stocked."""
    item = sim.state.item_for(sku).id
    data = await _ok(
        gql, LEVEL, {"item": _gid("InventoryItem", item), "location": _gid("Location", location)}
    )
    level = data["inventoryItem"]["inventoryLevel"]
    if level is None:
        return 0, 0
    q = {r["name"]: r["quantity"] for r in level["quantities"]}
    return q["available"], q["on_hand"]


def _money(bag: dict[str, Any]) -> str:
    amount: str = bag["shopMoney"]["amount"]
    return amount


# -- returnCreate ------------------------------------------------------------------------------


async def test_a_full_return_restocked_at_the_store(
    sim: ShopifySimulator, gql: GQL, receiver: Receiver
) -> None:
    store = _location(sim)
    order = _fulfilled(sim)
    assert await _level(gql, sim, "SHIRT-S", store) == (8, 8)
    sim.subscribe_all(receiver.url, ("inventory_levels/update",))

    ret = await _return(gql, order, 2)
    [line] = ret["returnLineItems"]["nodes"]
    assert (line["quantity"], line["returnReason"], line["returnReasonNote"]) == (2, "UNWANTED", "")
    assert (line["refundableQuantity"], line["refundedQuantity"]) == (2, 0)
    assert line["fulfillmentLineItem"]["lineItem"] == {
        "id": _gid("LineItem", order.line_items[0].id),
        "sku": "SHIRT-S",
    }
    [rfo] = ret["reverseFulfillmentOrders"]["nodes"]
    [rfo_line] = rfo["lineItems"]["nodes"]
    assert rfo_line["totalQuantity"] == 2 and rfo_line["dispositions"] == []
    assert rfo_line["fulfillmentLineItem"]["id"] == line["fulfillmentLineItem"]["id"]
    assert await _level(gql, sim, "SHIRT-S", store) == (8, 8)  # a return alone moves no stock

    done = await _dispose(gql, rfo_line["id"], 2, "RESTOCKED", store)
    assert done == {
        "reverseFulfillmentOrderLineItems": [
            {"id": rfo_line["id"], "dispositions": [{"type": "RESTOCKED", "quantity": 2}]}
        ],
        "userErrors": [],
    }
    assert await _level(gql, sim, "SHIRT-S", store) == (10, 10)
    [again] = (await _read(gql, order.id))["returns"]["nodes"]
    [rfo] = again["reverseFulfillmentOrders"]["nodes"]
    assert rfo["lineItems"]["nodes"][0]["dispositions"] == [
        {"type": "RESTOCKED", "quantity": 2, "location": {"id": _gid("Location", store)}}
    ]

    item = sim.state.item_for("SHIRT-S").id
    await wait_for(lambda: bool(receiver.of("inventory_levels/update")), what="level webhook")
    bodies = [json.loads(r.body) for r in receiver.of("inventory_levels/update")]
    assert (bodies[-1]["inventory_item_id"], bodies[-1]["location_id"]) == (item, store)
    assert bodies[-1]["available"] == 10


async def test_restocking_where_the_item_was_not_stocked_activates_it(
    sim: ShopifySimulator, gql: GQL
) -> None:
    warehouse = _location(sim, "Warehouse")
    order = _fulfilled(sim, "SHIRT-M", 1)  # SHIRT-M is stocked at the store only
    assert await _level(gql, sim, "SHIRT-M", warehouse) == (0, 0)
    ret = await _return(gql, order, 1)
    done = await _dispose(gql, _rfo_line(ret), 1, "RESTOCKED", warehouse)
    assert done["userErrors"] == []
    assert await _level(gql, sim, "SHIRT-M", warehouse) == (1, 1)


async def test_a_partial_return_then_a_second_return_of_the_rest(
    sim: ShopifySimulator, gql: GQL
) -> None:
    order = _fulfilled(sim, qty=3)
    line = await _fulfilment_line(gql, order.id)
    first = await _create(gql, order.id, line, 1)
    second = await _create(gql, order.id, line, 2)
    assert first["userErrors"] == [] and second["userErrors"] == []
    nodes = (await _read(gql, order.id))["returns"]["nodes"]
    assert [(n["id"], n["status"]) for n in nodes] == [
        (first["return"]["id"], "OPEN"),
        (second["return"]["id"], "OPEN"),
    ]
    assert [n["returnLineItems"]["nodes"][0]["quantity"] for n in nodes] == [1, 2]

    # all three are on returns now: not one more
    third = await _create(gql, order.id, line, 1)
    assert third["return"] is None
    assert third["userErrors"] == [
        {
            "code": "INVALID",
            "field": ["returnInput", "returnLineItems", "0", "quantity"],
            "message": "Quantity 1 is more than the 0 returnable.",
        }
    ]
    assert len(sim.state.returns_of(order.id)) == 2


async def test_an_over_return_is_refused_and_changes_nothing(
    sim: ShopifySimulator, gql: GQL
) -> None:
    order = _fulfilled(sim, qty=2)
    other = _fulfilled(sim, qty=1)
    line = await _fulfilment_line(gql, order.id)
    before = len(sim.state.returns)

    over = await _create(gql, order.id, line, 3)
    assert over["return"] is None
    assert [(e["code"], e["field"]) for e in over["userErrors"]] == [
        ("INVALID", ["returnInput", "returnLineItems", "0", "quantity"])
    ]
    # a fulfilment line of another order is not this order's to return
    foreign = await _create(gql, order.id, await _fulfilment_line(gql, other.id), 1)
    assert [(e["code"], e["field"]) for e in foreign["userErrors"]] == [
        ("NOT_FOUND", ["returnInput", "returnLineItems", "0", "fulfillmentLineItemId"])
    ]
    nothing = await _create(gql, order.id, line, 0)
    assert [e["code"] for e in nothing["userErrors"]] == ["INVALID"]
    assert len(sim.state.returns) == before
    assert (await _read(gql, order.id))["returns"]["nodes"] == []


async def test_a_fulfilment_with_a_return_cannot_be_cancelled(sim: ShopifySimulator) -> None:
    # the returned units come back through the return, not by undoing the fulfilment
    order = _fulfilled(sim, qty=1)
    f = sim.state.fulfillments[order.fulfillment_ids[0]]
    sim.state.create_return(order.id, [ReturnRequest(f.line_ids[0], 1)])
    with pytest.raises(SimError, match="has returns"):
        sim.state.cancel_fulfillment(f.id)
    assert f.status == "success"


# -- reverseFulfillmentOrderDispose ------------------------------------------------------------


async def test_disposing_more_than_is_undisposed_is_refused(
    sim: ShopifySimulator, gql: GQL
) -> None:
    store = _location(sim)
    order = _fulfilled(sim, qty=2)
    ret = await _return(gql, order, 2)
    line = _rfo_line(ret)
    assert (await _dispose(gql, line, 1, "RESTOCKED", store))["userErrors"] == []
    assert await _level(gql, sim, "SHIRT-S", store) == (9, 9)

    over = await _dispose(gql, line, 2, "RESTOCKED", store)
    assert over["reverseFulfillmentOrderLineItems"] is None
    assert over["userErrors"] == [
        {
            "code": "INVALID",
            "field": ["dispositionInputs", "0", "quantity"],
            "message": "Quantity 2 is more than the 1 units not disposed yet.",
        }
    ]
    no_location = await _dispose(gql, line, 1, "RESTOCKED", None)
    assert [(e["code"], e["field"]) for e in no_location["userErrors"]] == [
        ("INVALID", ["dispositionInputs", "0", "locationId"])
    ]
    unknown = await _dispose(gql, _gid("ReverseFulfillmentOrderLineItem", 1), 1, "MISSING", None)
    assert [e["code"] for e in unknown["userErrors"]] == ["NOT_FOUND"]
    assert await _level(gql, sim, "SHIRT-S", store) == (9, 9)
    [again] = (await _read(gql, order.id))["returns"]["nodes"]
    dispositions = again["reverseFulfillmentOrders"]["nodes"][0]["lineItems"]["nodes"][0]
    assert [d["quantity"] for d in dispositions["dispositions"]] == [1]


async def test_not_restocked_changes_no_inventory(
    sim: ShopifySimulator, gql: GQL, receiver: Receiver
) -> None:
    store = _location(sim)
    order = _fulfilled(sim, qty=2)
    sim.subscribe_all(receiver.url, ("inventory_levels/update",))
    ret = await _return(gql, order, 2)
    done = await _dispose(gql, _rfo_line(ret), 2, "NOT_RESTOCKED", None)
    assert done["userErrors"] == []
    assert done["reverseFulfillmentOrderLineItems"][0]["dispositions"] == [
        {"type": "NOT_RESTOCKED", "quantity": 2}
    ]
    assert await _level(gql, sim, "SHIRT-S", store) == (8, 8)
    [again] = (await _read(gql, order.id))["returns"]["nodes"]
    rfo_line = again["reverseFulfillmentOrders"]["nodes"][0]["lineItems"]["nodes"][0]
    assert rfo_line["dispositions"] == [{"type": "NOT_RESTOCKED", "quantity": 2, "location": None}]
    assert receiver.of("inventory_levels/update") == []


# -- suggestedRefund ---------------------------------------------------------------------------


async def test_the_suggested_refund_is_price_times_quantity_split_over_payments(
    sim: ShopifySimulator, gql: GQL
) -> None:
    st = sim.state
    order = _fulfilled(sim, qty=2, financial_status="authorized")  # 998.00 authorised
    [auth] = order.transactions
    first = st.capture(order.id, auth.id, Decimal("600.00"))
    second = st.capture(order.id, auth.id, Decimal("398.00"))
    ret = await _return(gql, order, 2)
    line = _return_line(ret)

    async def suggest(qty: int) -> dict[str, Any]:
        data = await _ok(
            gql,
            RETURN_SUGGESTED_REFUND,
            {"id": ret["id"], "lines": [{"returnLineItemId": line, "quantity": qty}]},
        )
        assert data["return"]["id"] == ret["id"]
        suggested: dict[str, Any] = data["return"]["suggestedRefund"]
        return suggested

    def split(s: dict[str, Any]) -> list[tuple[str, str, str, str | None]]:
        return [
            (t["kind"], t["gateway"], _money(t["amountSet"]), t["parentTransaction"]["id"])
            for t in s["suggestedTransactions"]
        ]

    both = await suggest(2)
    assert (_money(both["amount"]), _money(both["maximumRefundable"])) == ("998.00", "998.00")
    assert split(both) == [
        ("SUGGESTED_REFUND", "shopify_payments", "600.00", _gid("OrderTransaction", first.id)),
        ("SUGGESTED_REFUND", "shopify_payments", "398.00", _gid("OrderTransaction", second.id)),
    ]
    one = await suggest(1)
    assert _money(one["amount"]) == "499.00"
    assert split(one) == [
        ("SUGGESTED_REFUND", "shopify_payments", "499.00", _gid("OrderTransaction", first.id))
    ]

    # 200.00 back from the first capture: it has 400.00 left, so one shirt takes 99.00 of
    # the second; what is refundable falls by the same 200.00
    paid = await _refund(gql, ret, 1, [("200.00", first.id)])
    assert paid["userErrors"] == []
    rest = await suggest(1)
    assert (_money(rest["amount"]), _money(rest["maximumRefundable"])) == ("499.00", "798.00")
    assert [(a, p) for _k, _g, a, p in split(rest)] == [
        ("400.00", _gid("OrderTransaction", first.id)),
        ("99.00", _gid("OrderTransaction", second.id)),
    ]


async def test_the_suggested_refund_is_capped_at_what_is_refundable(
    sim: ShopifySimulator, gql: GQL
) -> None:
    order = _fulfilled(sim, qty=2)
    [sale] = order.transactions
    ret = await _return(gql, order, 2)
    assert (await _refund(gql, ret, 1, [("900.00", sale.id)]))["userErrors"] == []
    data = await _ok(
        gql,
        RETURN_SUGGESTED_REFUND,
        {"id": ret["id"], "lines": [{"returnLineItemId": _return_line(ret), "quantity": 1}]},
    )
    suggested = data["return"]["suggestedRefund"]
    assert _money(suggested["amount"]) == _money(suggested["maximumRefundable"]) == "98.00"
    assert [_money(t["amountSet"]) for t in suggested["suggestedTransactions"]] == ["98.00"]


# -- returnRefund ------------------------------------------------------------------------------


async def test_a_refund_without_transactions_refunds_the_lines_with_no_money(
    sim: ShopifySimulator, gql: GQL, receiver: Receiver
) -> None:
    order = _fulfilled(sim, qty=2)
    sim.subscribe_all(receiver.url, ("refunds/create",))
    ret = await _return(gql, order, 2)
    done = await _refund(gql, ret, 2)
    assert done["userErrors"] == []
    assert done["refund"]["note"] is None
    assert _money(done["refund"]["totalRefundedSet"]) == "0.00"

    read = await _read(gql, order.id)
    assert read["displayFinancialStatus"] == "PAID"  # the till paid the customer back
    assert _money(read["totalRefundedSet"]) == "0.00"
    assert [t["kind"] for t in read["transactions"]] == ["SALE"]
    [line] = read["returns"]["nodes"][0]["returnLineItems"]["nodes"]
    assert (line["refundableQuantity"], line["refundedQuantity"]) == (0, 2)
    assert order.line_items[0].refunded == 2

    await wait_for(lambda: bool(receiver.of("refunds/create")), what="refunds/create")
    [body] = [json.loads(r.body) for r in receiver.of("refunds/create")]
    made = Refund.model_validate(body)
    assert made.transactions == [] and body["return"]["id"] == sim.state.returns_of(order.id)[0].id
    [refund_line] = made.refund_line_items
    assert (refund_line.quantity, made.restock_type_of(refund_line)) == (2, "no_restock")

    again = await _refund(gql, ret, 1)  # nothing left to refund on the line
    assert [(e["code"], e["field"]) for e in again["userErrors"]] == [
        ("INVALID", ["returnRefundInput", "returnRefundLineItems", "0", "quantity"])
    ]


async def test_a_refund_with_a_transaction_refunds_money_against_its_parent(
    sim: ShopifySimulator, gql: GQL
) -> None:
    order = _fulfilled(sim, qty=2)
    [sale] = order.transactions
    ret = await _return(gql, order, 2)

    done = await _refund(gql, ret, 1, [("499.00", sale.id)])
    assert done["userErrors"] == []
    assert _money(done["refund"]["totalRefundedSet"]) == "499.00"
    read = await _read(gql, order.id)
    assert read["displayFinancialStatus"] == "PARTIALLY_REFUNDED"
    assert (_money(read["totalReceivedSet"]), _money(read["totalRefundedSet"])) == (
        "998.00",
        "499.00",
    )
    refund_tx = read["transactions"][-1]
    assert (refund_tx["kind"], refund_tx["status"]) == ("REFUND", "SUCCESS")
    assert sim.state.order(order.id).transactions[-1].gateway == "shopify_payments"
    assert _money(refund_tx["amountSet"]) == "499.00"
    assert refund_tx["parentTransaction"] == {"id": _gid("OrderTransaction", sale.id)}

    rest = await _refund(gql, ret, 1, [("499.00", sale.id)])
    assert rest["userErrors"] == []
    assert (await _read(gql, order.id))["displayFinancialStatus"] == "REFUNDED"


async def test_a_refund_above_what_is_left_is_refused(sim: ShopifySimulator, gql: GQL) -> None:
    order = _fulfilled(sim, qty=2)
    [sale] = order.transactions
    ret = await _return(gql, order, 2)
    assert (await _refund(gql, ret, 1, [("900.00", sale.id)]))["userErrors"] == []

    over = await _refund(gql, ret, 1, [("98.01", sale.id)])
    assert over["refund"] is None
    assert over["userErrors"] == [
        {
            "code": "INVALID",
            "field": ["returnRefundInput", "orderTransactions", "0", "transactionAmount", "amount"],
            "message": "Amount 98.01 is more than the 98.00 left of the parent transaction.",
        }
    ]
    not_a_payment = await _refund(gql, ret, 1, [("1.00", order.id)])
    assert [(e["code"], e["field"][-1]) for e in not_a_payment["userErrors"]] == [
        ("NOT_FOUND", "parentId")
    ]
    read = await _read(gql, order.id)
    assert _money(read["totalRefundedSet"]) == "900.00"
    assert [t["kind"] for t in read["transactions"]] == ["SALE", "REFUND"]
    [line] = read["returns"]["nodes"][0]["returnLineItems"]["nodes"]
    assert (line["refundableQuantity"], line["refundedQuantity"]) == (1, 1)


# -- returnClose -------------------------------------------------------------------------------


async def test_closing_twice_is_refused_the_second_time(sim: ShopifySimulator, gql: GQL) -> None:
    order = _fulfilled(sim, qty=1)
    ret = await _return(gql, order, 1)
    first = (await _ok(gql, RETURN_CLOSE, {"id": ret["id"]}))["returnClose"]
    assert first == {"return": {"id": ret["id"], "status": "CLOSED"}, "userErrors": []}
    second = (await _ok(gql, RETURN_CLOSE, {"id": ret["id"]}))["returnClose"]
    assert second["return"] is None
    assert [(e["code"], e["field"]) for e in second["userErrors"]] == [("INVALID_STATE", ["id"])]
    # a closed return is done with: nothing more is disposed or refunded on it
    late = await _refund(gql, ret, 1)
    assert [e["code"] for e in late["userErrors"]] == ["INVALID_STATE"]
    late_dispose = await _dispose(gql, _rfo_line(ret), 1, "NOT_RESTOCKED", None)
    assert [e["code"] for e in late_dispose["userErrors"]] == ["INVALID_STATE"]
    [node] = (await _read(gql, order.id))["returns"]["nodes"]
    assert node["status"] == "CLOSED"


# -- control route -----------------------------------------------------------------------------


async def test_the_control_route_tells_returns_dispositions_and_refunds(
    sim: ShopifySimulator, gql: GQL, http: httpx.AsyncClient
) -> None:
    store = _location(sim)
    order = _fulfilled(sim, qty=2)
    [sale] = order.transactions
    ret = await _return(gql, order, 2)
    line = ret["returnLineItems"]["nodes"][0]["id"]
    rfo_line = _rfo_line(ret)
    assert (await _dispose(gql, rfo_line, 1, "RESTOCKED", store))["userErrors"] == []
    assert (await _dispose(gql, rfo_line, 1, "NOT_RESTOCKED", None))["userErrors"] == []
    refund = (await _refund(gql, ret, 2, [("499.00", sale.id)]))["refund"]

    r = await http.get(f"{sim.base_url}/_sim/orders/{order.id}/returns")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "returns": [
            {
                "id": ret["id"],
                "status": "OPEN",
                "lines": [
                    {
                        "id": line,
                        "sku": "SHIRT-S",
                        "quantity": 2,
                        "reason": "UNWANTED",
                        "reason_note": "",
                        "refunded": 2,
                    }
                ],
                "dispositions": [
                    {
                        "sku": "SHIRT-S",
                        "type": "RESTOCKED",
                        "quantity": 1,
                        "location_id": _gid("Location", store),
                    },
                    {"sku": "SHIRT-S", "type": "NOT_RESTOCKED", "quantity": 1, "location_id": None},
                ],
            }
        ],
        "refunds": [{"id": refund["id"], "return_id": ret["id"], "amount": "499.00", "note": None}],
        "received": "998.00",
        "refunded": "499.00",
    }
    missing = await http.get(f"{sim.base_url}/_sim/orders/1/returns")
    assert missing.status_code == 422


async def test_a_suggested_refund_of_more_than_is_refundable_is_an_error(
    sim: ShopifySimulator, gql: GQL
) -> None:
    order = _fulfilled(sim, qty=1)
    ret = await _return(gql, order, 1)
    answer = await gql(
        RETURN_SUGGESTED_REFUND,
        {"id": ret["id"], "lines": [{"returnLineItemId": _return_line(ret), "quantity": 2}]},
    )
    assert answer["data"]["return"] == {"id": ret["id"], "suggestedRefund": None}
    [error] = answer["errors"]
    assert error["path"] == ["return", "suggestedRefund"]
    assert "more than the 1 refundable" in error["message"]
