"""orderCancel on the simulator, as tillsync cancels an order whose pickup the store
rejected: the units not fulfilled are restocked (or, without restock, gone from on_hand),
what the customer paid is refunded, the reason and staff note are kept and orders/cancelled
goes out. An order already cancelled, or with a fulfilment, is refused."""

from __future__ import annotations

import json
import re
from typing import Any

from tillsync.schemas.shopify import Order, Refund
from tillsync_sim.shopify import ShopifySimulator

from .conftest import GQL, Receiver, wait_for

CANCEL = """
mutation Cancel(
  $orderId: ID!
  $refund: Boolean!
  $restock: Boolean!
  $reason: OrderCancelReason!
  $notifyCustomer: Boolean
  $staffNote: String
) {
  orderCancel(
    orderId: $orderId
    refund: $refund
    restock: $restock
    reason: $reason
    notifyCustomer: $notifyCustomer
    staffNote: $staffNote
  ) {
    job { id done }
    orderCancelUserErrors { code field message }
    userErrors { field message }
  }
}
"""

READ = """
query Cancelled($id: ID!) {
  order(id: $id) {
    cancelledAt
    cancelReason
    cancellation { staffNote }
    displayFinancialStatus
    capturable
    transactions(first: 10) {
      kind status amountSet { shopMoney { amount } } parentTransaction { kind }
    }
    refunds(first: 5) {
      totalRefundedSet { shopMoney { amount } }
      transactions(first: 5) { nodes { kind amountSet { shopMoney { amount } } } }
    }
    fulfillmentOrders(first: 5) { nodes { status } }
  }
}
"""

LEVEL = """
query Level($item: ID!, $location: ID!) {
  inventoryItem(id: $item) {
    inventoryLevel(locationId: $location) {
      quantities(names: ["available", "committed", "on_hand"]) { name quantity }
    }
  }
}
"""


def _store(sim: ShopifySimulator) -> int:
    return next(loc.id for loc in sim.state.locations.values() if loc.name == "Store Stockholm")


def _gid(order_id: int) -> str:
    return f"gid://shopify/Order/{order_id}"


async def _cancel(
    gql: GQL,
    order_id: int,
    *,
    refund: bool = True,
    restock: bool = True,
    reason: str = "INVENTORY",
    **extra: Any,
) -> dict[str, Any]:
    variables = {
        "orderId": _gid(order_id),
        "refund": refund,
        "restock": restock,
        "reason": reason,
        **extra,
    }
    answer = await gql(CANCEL, variables)
    assert "errors" not in answer, answer
    payload: dict[str, Any] = answer["data"]["orderCancel"]
    return payload


async def _read(gql: GQL, order_id: int) -> dict[str, Any]:
    answer = await gql(READ, {"id": _gid(order_id)})
    assert "errors" not in answer, answer
    order: dict[str, Any] = answer["data"]["order"]
    return order


async def _level(gql: GQL, sim: ShopifySimulator, sku: str) -> tuple[int, int, int]:
    item = sim.state.item_for(sku).id
    answer = await gql(
        LEVEL,
        {
            "item": f"gid://shopify/InventoryItem/{item}",
            "location": f"gid://shopify/Location/{_store(sim)}",
        },
    )
    assert "errors" not in answer, answer
    rows = answer["data"]["inventoryItem"]["inventoryLevel"]["quantities"]
    q = {r["name"]: r["quantity"] for r in rows}
    return q["available"], q["committed"], q["on_hand"]


def _invalid(message: str) -> dict[str, Any]:
    return {
        "job": None,
        "orderCancelUserErrors": [{"code": "INVALID", "field": ["orderId"], "message": message}],
        "userErrors": [{"field": ["orderId"], "message": message}],
    }


async def test_a_rejected_pickup_is_cancelled_restocked_and_refunded(
    sim: ShopifySimulator, gql: GQL, receiver: Receiver
) -> None:
    sim.subscribe_all(receiver.url, ("orders/cancelled", "refunds/create"))
    order = sim.state.place_order([("SHIRT-S", 2)], location_id=_store(sim), delivery="PICK_UP")
    assert await _level(gql, sim, "SHIRT-S") == (8, 2, 10)

    done = await _cancel(
        gql, order.id, notifyCustomer=True, staffNote="Pickup rejected: none left in store"
    )
    assert done["orderCancelUserErrors"] == [] and done["userErrors"] == []
    assert done["job"]["done"] is True
    assert re.fullmatch(r"gid://shopify/Job/\d+", done["job"]["id"])

    assert await _level(gql, sim, "SHIRT-S") == (10, 0, 10)  # both units back to available
    read = await _read(gql, order.id)
    assert read["cancelledAt"] is not None and read["cancelReason"] == "INVENTORY"
    assert read["cancellation"] == {"staffNote": "Pickup rejected: none left in store"}
    assert read["displayFinancialStatus"] == "REFUNDED"
    assert read["fulfillmentOrders"]["nodes"] == [{"status": "CANCELLED"}]
    assert [
        (
            t["kind"],
            t["amountSet"]["shopMoney"]["amount"],
            (t["parentTransaction"] or {}).get("kind"),
        )
        for t in read["transactions"]
    ] == [("SALE", "998.00", None), ("REFUND", "998.00", "SALE")]
    [refund] = read["refunds"]
    assert refund["totalRefundedSet"]["shopMoney"]["amount"] == "998.00"
    assert refund["transactions"]["nodes"] == [
        {"kind": "REFUND", "amountSet": {"shopMoney": {"amount": "998.00"}}}
    ]
    assert order.cancel_notified is True

    await wait_for(lambda: bool(receiver.of("orders/cancelled")), what="orders/cancelled")
    await wait_for(lambda: bool(receiver.of("refunds/create")), what="refunds/create")
    [cancelled] = [json.loads(r.body) for r in receiver.of("orders/cancelled")]
    parsed = Order.model_validate(cancelled)
    assert parsed.id == order.id and parsed.cancelled_at is not None
    assert (cancelled["cancel_reason"], cancelled["financial_status"]) == ("inventory", "refunded")
    [body] = [json.loads(r.body) for r in receiver.of("refunds/create")]
    made = Refund.model_validate(body)
    assert made.order_id == order.id and [r["id"] for r in cancelled["refunds"]] == [made.id]
    [line] = made.refund_line_items
    assert (line.quantity, made.restock_type_of(line), line.location_id) == (
        2,
        "cancel",
        _store(sim),
    )
    assert [(t.kind, str(t.amount)) for t in made.transactions] == [("refund", "998.00")]


async def test_without_restock_the_units_leave_on_hand(sim: ShopifySimulator, gql: GQL) -> None:
    order = sim.state.place_order([("SHIRT-M", 3)], location_id=_store(sim), delivery="PICK_UP")
    assert await _level(gql, sim, "SHIRT-M") == (1, 3, 4)

    done = await _cancel(gql, order.id, refund=False, restock=False, reason="CUSTOMER")
    assert done["orderCancelUserErrors"] == [] and done["job"]["done"] is True
    assert await _level(gql, sim, "SHIRT-M") == (1, 0, 1)  # the three units are gone
    read = await _read(gql, order.id)
    assert (read["cancelReason"], read["displayFinancialStatus"]) == ("CUSTOMER", "PAID")
    assert read["refunds"] == [] and [t["kind"] for t in read["transactions"]] == ["SALE"]
    assert read["cancellation"] == {"staffNote": None} and order.cancel_notified is False


async def test_an_unpaid_order_has_nothing_to_refund(sim: ShopifySimulator, gql: GQL) -> None:
    st, store = sim.state, _store(sim)
    pending = st.place_order([("SHIRT-S", 1)], location_id=store, financial_status="pending")
    authorised = st.place_order([("SHIRT-S", 1)], location_id=store, financial_status="authorized")
    for order in (pending, authorised):
        assert (await _cancel(gql, order.id))["orderCancelUserErrors"] == []

    read = await _read(gql, pending.id)
    assert (read["displayFinancialStatus"], read["transactions"], read["refunds"]) == (
        "PENDING",
        [],
        [],
    )
    # the authorisation is voided, so nothing is left to capture
    read = await _read(gql, authorised.id)
    assert read["displayFinancialStatus"] == "VOIDED" and read["capturable"] is False
    assert [(t["kind"], t["amountSet"]["shopMoney"]["amount"]) for t in read["transactions"]] == [
        ("AUTHORIZATION", "499.00"),
        ("VOID", "499.00"),
    ]
    assert read["refunds"] == []


async def test_a_cancelled_or_fulfilled_order_is_refused(sim: ShopifySimulator, gql: GQL) -> None:
    st, store = sim.state, _store(sim)
    order = st.place_order([("SHIRT-S", 1)], location_id=store)
    assert (await _cancel(gql, order.id))["orderCancelUserErrors"] == []
    twice = await _cancel(gql, order.id)
    assert twice == _invalid("Order has already been cancelled")
    assert len(order.refund_ids) == 1 and [t.kind for t in order.transactions] == [
        "SALE",
        "REFUND",
    ]

    fulfilled = st.place_order([("SHIRT-S", 2)], location_id=store)
    [fo] = fulfilled.fulfillment_order_ids
    f = st.fulfil(fo, [(st.fulfillment_orders[fo].lines[0].id, 1)])  # one of the two
    level = await _level(gql, sim, "SHIRT-S")
    refused = await _cancel(gql, fulfilled.id)
    assert refused == _invalid("Cannot cancel an order that has fulfillments")
    assert fulfilled.cancelled_at is None and fulfilled.refund_ids == []
    assert await _level(gql, sim, "SHIRT-S") == level

    # once its fulfilment is cancelled, nothing is with the customer: it can be cancelled
    st.cancel_fulfillment(f.id)
    assert (await _cancel(gql, fulfilled.id))["orderCancelUserErrors"] == []
    assert fulfilled.cancelled_at is not None

    unknown = await _cancel(gql, 999)
    assert unknown["job"] is None
    assert unknown["orderCancelUserErrors"] == [
        {"code": "NOT_FOUND", "field": ["orderId"], "message": "Order does not exist"}
    ]
