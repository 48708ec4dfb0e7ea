"""A refund staff make in Shopify of an order a Sitoo till handed over becomes one closed credit
order against that Sitoo order, once; the returns flow leaves it be. The writer on the Sitoo
simulator over real HTTP, the refund's body as the Shopify simulator's webhook sends it."""

from __future__ import annotations

from decimal import Decimal

from tests.streams.returns.test_store_returns import (
    Returns,
    Told,
    picked_up,
    read,
    returns,
    tell,
)
from tests.streams.stock.test_pickup_handover import shop
from tillsync.schemas.events import RefundCredit
from tillsync.schemas.money import money
from tillsync.schemas.sitoo import ORDER_CLOSED
from tillsync.streams.returns.refund_credits import RefundCredits
from tillsync.streams.returns.writer import DONE
from tillsync.streams.stock.pickups import PickupTrack
from tillsync.streams.stock.refund_restocks import refund_credits
from tillsync_sim.shopify import payloads

__all__ = ["returns", "shop"]  # the fixtures, used by name


def credits_of_refund(
    r: Returns, order_id: int, original: int, refund_id: int
) -> list[RefundCredit]:
    """What the order flow asks of Sitoo for this refund, from the simulator's own webhook."""
    st = r.shop.shopify.state
    body = payloads.refund(st.refunds[refund_id], st.order(order_id))
    store = r.shop.network.stores[0]
    took: dict[str, int] = {}
    for item in r.shop.sitoo.state.orders[original].product_items():
        took[item["sku"]] = took.get(item["sku"], 0) + int(item["quantity"])
    pickups = {
        "fo": PickupTrack(
            fulfilment_order_id=1,
            location_id=store.shopify_location_id,
            in_sitoo_at=1.0,
            sitoo_order_id=original,
            handed_over=True,
            took=took,
        )
    }
    return refund_credits(body, order_id, pickups, r.shop.handover.locations, (), 10.0)


async def test_a_staff_refund_of_a_picked_up_order_is_one_credit_order_in_sitoo(
    returns: Returns,
) -> None:
    r = returns
    order_id, original = await picked_up(r, (0, 2), (1, 1))
    st = r.shop.shopify.state
    line = st.order(order_id).line_items[0]
    refund = st.refund(order_id, [(line.id, 1, "NO_RESTOCK", None)])
    [credit] = credits_of_refund(r, order_id, original, refund.id)
    told = Told()
    writer = RefundCredits(r.shop.platforms.sitoo, told)
    for _ in range(2):  # told twice (a repeat, a replay): one credit order
        await writer.take(credit.model_dump_json().encode())
    sitoo = r.shop.sitoo.state
    [made] = sitoo.returns_of[original]
    order = sitoo.orders[made]
    assert order.data["externalid"] == f"rc-{refund.id}-{original}"
    assert order.data["creditorderid"] == original and order.state == ORDER_CLOSED
    assert order.data["warehouseid"] == r.shop.network.stores[0].sitoo_warehouse_id
    assert [(i["sku"], int(i["quantity"])) for i in order.product_items()] == [(line.sku, -1)]
    [payment] = order.data["payments"]
    assert payment["name"] == "Shopify"
    assert money(payment["moneyamount"]) == -refund.amount != Decimal("0.00")
    assert not order.deliveries  # no stock moved by it: a restock is the Move In's
    assert told.dead == [] and told.exceptions == []

    # the returns flow's poller finds it among Sitoo's credit orders: no return at a till
    await tell(r, made, original)
    assert r.table[f"c{made}"] == DONE
    assert not (await read(r, order_id)).returns
    assert r.told.marks == []


async def test_a_credit_order_sitoo_refuses_is_raised_for_finance(returns: Returns) -> None:
    r = returns
    order_id, original = await picked_up(r, (0, 1))
    st = r.shop.shopify.state
    line = st.order(order_id).line_items[0]
    refund = st.refund(order_id, [(line.id, 1, "NO_RESTOCK", None)])
    [credit] = credits_of_refund(r, order_id, original, refund.id)
    gone = credit.model_copy(update={"warehouse_id": 999_999})  # a warehouse Sitoo has not
    told = Told()
    await RefundCredits(r.shop.platforms.sitoo, told).take(gone.model_dump_json().encode())
    [raised] = told.exceptions
    assert (raised.type, raised.owner.value, raised.key) == (
        "refund_not_in_sitoo",
        "finance",
        credit.externalid,
    )
    assert len(told.dead) == 1 and not r.shop.sitoo.state.returns_of.get(original)
