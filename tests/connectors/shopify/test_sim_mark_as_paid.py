"""Pay in store on the simulator: a click & collect order whose checkout took no money is
pending with no transaction; once staff take the payment at the till, orderMarkAsPaid records
what was owed as one manual sale and the order is paid. Only what is owed can be marked."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from tillsync.schemas.shopify import Order
from tillsync_sim.shopify import ShopifySimulator

from .conftest import GQL, Receiver, wait_for

MARK = """
mutation MarkAsPaid($input: OrderMarkAsPaidInput!) {
  orderMarkAsPaid(input: $input) {
    order { id displayFinancialStatus }
    userErrors { field message }
  }
}
"""

READ = """
query Payment($id: ID!) {
  order(id: $id) {
    displayFinancialStatus
    canMarkAsPaid
    totalOutstandingSet { shopMoney { amount currencyCode } }
    totalReceivedSet { shopMoney { amount } }
    transactions(first: 10) {
      kind status gateway manualPaymentGateway
      amountSet { shopMoney { amount currencyCode } }
    }
  }
}
"""

NOT_PAYABLE = [{"field": ["id"], "message": "Order cannot be marked as paid."}]


def _store(sim: ShopifySimulator) -> int:
    return next(loc.id for loc in sim.state.locations.values() if loc.name == "Store Stockholm")


def _gid(order_id: int) -> str:
    return f"gid://shopify/Order/{order_id}"


async def _mark(gql: GQL, order_id: int | str) -> dict[str, Any]:
    ref = order_id if isinstance(order_id, str) else _gid(order_id)
    answer = await gql(MARK, {"input": {"id": ref}})
    assert "errors" not in answer, answer
    payload: dict[str, Any] = answer["data"]["orderMarkAsPaid"]
    return payload


async def _read(gql: GQL, order_id: int) -> dict[str, Any]:
    answer = await gql(READ, {"id": _gid(order_id)})
    assert "errors" not in answer, answer
    order: dict[str, Any] = answer["data"]["order"]
    return order


async def test_a_pickup_paid_in_store_is_marked_as_paid_once(
    sim: ShopifySimulator, gql: GQL, receiver: Receiver
) -> None:
    sim.subscribe_all(receiver.url, ("orders/create", "orders/paid", "orders/updated"))
    order = sim.state.place_order(
        [("SHIRT-S", 2)], location_id=_store(sim), delivery="PICK_UP", financial_status="pending"
    )
    assert order.transactions == []  # the checkout took no money
    before = await _read(gql, order.id)
    assert before["displayFinancialStatus"] == "PENDING" and before["canMarkAsPaid"] is True
    assert before["transactions"] == []
    assert before["totalOutstandingSet"]["shopMoney"] == {"amount": "998.00", "currencyCode": "SEK"}
    assert before["totalReceivedSet"]["shopMoney"]["amount"] == "0.00"

    marked = await _mark(gql, order.id)
    assert marked["userErrors"] == []
    assert marked["order"] == {"id": _gid(order.id), "displayFinancialStatus": "PAID"}
    after = await _read(gql, order.id)
    assert after["transactions"] == [
        {
            "kind": "SALE",
            "status": "SUCCESS",
            "gateway": "manual",
            "manualPaymentGateway": True,
            "amountSet": {"shopMoney": {"amount": "998.00", "currencyCode": "SEK"}},
        }
    ]
    assert after["canMarkAsPaid"] is False
    assert after["totalOutstandingSet"]["shopMoney"]["amount"] == "0.00"
    assert after["totalReceivedSet"]["shopMoney"]["amount"] == "998.00"

    # the order webhooks tell of the payment, read the way tillsync reads them
    await wait_for(lambda: bool(receiver.of("orders/paid")), what="orders/paid")
    await wait_for(lambda: bool(receiver.of("orders/updated")), what="orders/updated")
    [paid] = [json.loads(r.body) for r in receiver.of("orders/paid")]
    assert Order.model_validate(paid).id == order.id and paid["financial_status"] == "paid"
    [updated] = [json.loads(r.body) for r in receiver.of("orders/updated")]
    assert updated["financial_status"] == "paid"
    [created] = [json.loads(r.body) for r in receiver.of("orders/create")]
    assert created["financial_status"] == "pending"

    # a second call finds nothing owed: refused, and no second sale
    again = await _mark(gql, order.id)
    assert again == {"order": None, "userErrors": NOT_PAYABLE}
    assert [t.kind for t in order.transactions] == ["SALE"]


async def test_what_is_left_of_a_partial_capture_is_marked_as_paid(
    sim: ShopifySimulator, gql: GQL
) -> None:
    order = sim.state.place_order(
        [("SHIRT-S", 2)], location_id=_store(sim), financial_status="authorized"
    )
    [authorisation] = order.transactions
    sim.state.capture(order.id, authorisation.id, Decimal("500.00"))
    assert order.financial_status == "partially_paid"

    marked = await _mark(gql, order.id)
    assert marked["userErrors"] == [] and marked["order"]["displayFinancialStatus"] == "PAID"
    sale = order.transactions[-1]
    assert (sale.kind, sale.amount, sale.gateway) == ("SALE", Decimal("498.00"), "manual")
    assert (await _read(gql, order.id))["totalReceivedSet"]["shopMoney"]["amount"] == "998.00"


async def test_only_an_order_that_owes_can_be_marked_as_paid(
    sim: ShopifySimulator, gql: GQL
) -> None:
    st, store = sim.state, _store(sim)
    paid = st.place_order([("SHIRT-S", 1)], location_id=store)
    authorised = st.place_order([("SHIRT-S", 1)], location_id=store, financial_status="authorized")
    cancelled = st.place_order([("SHIRT-S", 1)], location_id=store, financial_status="pending")
    st.cancel_order(cancelled.id)
    for refused in (paid, authorised, cancelled):
        before = list(refused.transactions)
        assert await _mark(gql, refused.id) == {"order": None, "userErrors": NOT_PAYABLE}
        assert refused.transactions == before
        assert (await _read(gql, refused.id))["canMarkAsPaid"] is False
    assert authorised.financial_status == "authorized"

    for unknown in (_gid(999), "gid://shopify/Product/1"):
        assert await _mark(gql, unknown) == {
            "order": None,
            "userErrors": [{"field": ["id"], "message": "Order does not exist."}],
        }
