"""End to end: ship-from-store through Sitoo (``ship_from_store_to_sitoo``).

Real broker, the worker as its own process, both simulators over HTTP, every Shopify webhook
and every Sitoo event delivered twice. An online order shipped from a store becomes exactly one
Sitoo order at that store's warehouse, with its delivery address; staff ship it in Sitoo in two
parcels, and Shopify gets one fulfilment per parcel with its tracking, the customer told, and no
Move Out (Sitoo's own sale took the units). A shipment Shopify fulfils itself has its Sitoo
order cancelled and leaves Sitoo through one Move Out; one cancelled in Shopify has its Sitoo
order cancelled and leaves nothing; one placed while Sitoo is down reaches it once Sitoo is
back. A pickup beside them goes its own way; one paid in store is marked paid in Shopify once
the till took the payment; one the store rejects is cancelled, refunded and restocked in
Shopify (every store's ``on_rejected: cancel``), and its Sitoo order let go. Stock is exact
after every step.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.conftest import converged, started
from tests.support.waiting import async_wait_until
from tillsync.schemas.sitoo import ORDER_CANCELLED, ORDER_CLOSED, ORDER_OPEN
from tillsync_sim.scenario.driver import pickup_mismatches
from tillsync_sim.scenario.harness import Harness
from tillsync_sim.scenario.network import NetworkSpec
from tillsync_sim.shopify.model import Fulfillment
from tillsync_sim.shopify.state import CartPart

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

BOTH = frozenset({"PICK_UP", "SHIPPING"})


@pytest.fixture
async def harness(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Harness]:
    async with started(
        kafka_bootstrap,
        NetworkSpec(
            stores=3, skus=8, buffer=1, min_stock=20, max_stock=30, rejected_pickups="cancel"
        ),
        tmp_path,
        env={"TILLSYNC_SHIP_FROM_STORE_TO_SITOO": "true"},
    ) as h:
        assert h.shopify is not None and h.sitoo is not None
        h.shopify.set_faults(webhook_duplicate_rate=1.0)
        h.sitoo.set_faults(event_duplicate_rate=1.0)
        yield h


def _sitoo_order(h: Harness, externalid: str) -> int | None:
    assert h.sitoo is not None
    return h.sitoo.state.orders_by_externalid.get(externalid)


async def _sitoo_state(h: Harness, externalid: str, state: int) -> int:
    """Wait until Sitoo has the order in ``state``; its id."""
    assert h.sitoo is not None
    sitoo = h.sitoo

    async def there() -> bool:
        found = _sitoo_order(h, externalid)
        return found is not None and sitoo.state.orders[found].state == state

    await async_wait_until(there, 60, interval=0.2, what=f"Sitoo order {externalid} in {state}")
    found = _sitoo_order(h, externalid)
    assert found is not None
    return found


def _fulfilments(h: Harness, order_id: int) -> list[Fulfillment]:
    assert h.shopify is not None
    state = h.shopify.state
    return [state.fulfillments[f] for f in state.order(order_id).fulfillment_ids]


def _move_outs(h: Harness, order_id: int) -> Counter[str]:
    assert h.sitoo is not None
    return Counter(
        t.externalid or ""
        for t in h.sitoo.state.transactions_from(1)
        if (t.externalid or "").startswith(f"sf-{order_id}-")
    )


async def test_a_shipment_from_a_store_goes_through_sitoo_once(harness: Harness) -> None:
    h = harness
    assert h.shopify is not None and h.sitoo is not None and h.network is not None
    shopify, sitoo, network = h.shopify, h.sitoo, h.network
    a, b, c = network.stores
    s = network.skus
    await converged(h, 60)

    # a shipment of three units of two SKUs at store a, and a pickup at store b
    shipped = shopify.state.place_order([(s[0], 2), (s[1], 1)], location_id=a.shopify_location_id)
    [fo] = shipped.fulfillment_order_ids
    ext = f"fo-{fo}-{a.shopify_location_id}"
    pickup = shopify.state.place_order(
        [(s[2], 1)], location_id=b.shopify_location_id, delivery="PICK_UP"
    )
    [pickup_fo] = pickup.fulfillment_order_ids
    made = await _sitoo_state(h, ext, ORDER_OPEN)
    await _sitoo_state(h, f"fo-{pickup_fo}-{b.shopify_location_id}", ORDER_OPEN)
    data = sitoo.state.orders[made].data
    assert data["warehouseid"] == a.sitoo_warehouse_id
    address = shopify.state.order(shipped.id).shipping_address
    assert address is not None
    assert (data["delivery_address"], data["delivery_city"], data["delivery_countryid"]) == (
        address.address1,
        address.city,
        address.country_code,
    )
    assert data["additionaldata"]["shopify-delivery-method"] == "SHIPPING"
    assert "weborder-bopis" not in data["additionaldata"]
    assert pickup_mismatches(network, shopify, sitoo, BOTH) == []
    await converged(h, 60)  # Sitoo's reservation and Shopify's committed counted once

    # staff ship it in two parcels; Shopify hears once the Sitoo order closes
    by_sku = {
        item["sku"]: int(item["orderitemid"]) for item in sitoo.state.orders[made].product_items()
    }
    sitoo.state.ship(made, "TRK-1", "PostNord", {by_sku[s[0]]: 1})
    sitoo.state.ship(made, "TRK-2", "PostNord")

    async def fulfilled() -> bool:
        return shopify.state.fulfillment_orders[fo].status == "CLOSED"

    await async_wait_until(fulfilled, 60, interval=0.2, what="the shipment fulfilled in Shopify")
    parcels = sorted(
        (f.tracking_numbers, f.tracking_company, f.notified, sum(q for _, q in f.lines))
        for f in _fulfilments(h, shipped.id)
    )
    assert parcels == [(["TRK-1"], "PostNord", True, 1), (["TRK-2"], "PostNord", True, 2)]

    # Shopify fulfils a second shipment itself: its Sitoo order is cancelled, one Move Out
    own = shopify.state.place_order([(s[3], 2)], location_id=c.shopify_location_id)
    [own_fo] = own.fulfillment_order_ids
    own_ext = f"fo-{own_fo}-{c.shopify_location_id}"
    await _sitoo_state(h, own_ext, ORDER_OPEN)
    shopify.state.fulfil(own_fo)
    await _sitoo_state(h, own_ext, ORDER_CANCELLED)

    async def moved_out() -> bool:
        return sum(_move_outs(h, own.id).values()) == 1

    await async_wait_until(moved_out, 60, interval=0.2, what="the Move Out of the shipment")

    # a third is cancelled in Shopify: its Sitoo order is cancelled, no Move Out
    gone = shopify.state.place_order([(s[4], 1)], location_id=a.shopify_location_id)
    [gone_fo] = gone.fulfillment_order_ids
    gone_ext = f"fo-{gone_fo}-{a.shopify_location_id}"
    await _sitoo_state(h, gone_ext, ORDER_OPEN)
    shopify.state.cancel_order(gone.id)
    await _sitoo_state(h, gone_ext, ORDER_CANCELLED)

    # a fourth is placed while Sitoo is down: made once it is back
    sitoo.set_faults(outage_for_s=8)
    late = shopify.state.place_order([(s[5], 1)], location_id=b.shopify_location_id)
    [late_fo] = late.fulfillment_order_ids
    await _sitoo_state(h, f"fo-{late_fo}-{b.shopify_location_id}", ORDER_OPEN)

    # a pickup paid in store: marked paid once the till took the payment at the handover
    unpaid = shopify.state.place_order(
        [(s[6], 1)],
        location_id=c.shopify_location_id,
        delivery="PICK_UP",
        financial_status="pending",
    )
    [unpaid_fo] = unpaid.fulfillment_order_ids
    at_till = await _sitoo_state(h, f"fo-{unpaid_fo}-{c.shopify_location_id}", ORDER_OPEN)
    assert sitoo.state.orders[at_till].data["paymentstateid"] == 0
    sitoo.state.collect(at_till, take_payment=True)

    async def paid() -> bool:
        return shopify.state.order(unpaid.id).financial_status == "paid"

    await async_wait_until(paid, 60, interval=0.2, what="the pickup paid in store marked paid")

    # a pickup the store rejects: cancelled, refunded and restocked by the store's policy
    rejected = shopify.state.place_order(
        [(s[7], 2)], location_id=a.shopify_location_id, delivery="PICK_UP"
    )
    [rejected_fo] = rejected.fulfillment_order_ids
    turned_down = await _sitoo_state(h, f"fo-{rejected_fo}-{a.shopify_location_id}", ORDER_OPEN)
    sitoo.state.reject_pickup(turned_down, "damaged in the store")

    async def cancelled() -> bool:
        return shopify.state.order(rejected.id).cancelled_at is not None

    await async_wait_until(cancelled, 60, interval=0.2, what="the rejected pickup cancelled")
    await _sitoo_state(h, f"fo-{rejected_fo}-{a.shopify_location_id}", ORDER_CANCELLED)

    await converged(h, 90)
    assert pickup_mismatches(network, shopify, sitoo, BOTH) == []
    assert shopify.state.order(rejected.id).financial_status == "refunded"
    assert [t.kind for t in shopify.state.order(unpaid.id).transactions] == ["SALE"]
    # exactly once, whatever was delivered twice
    assert len(_fulfilments(h, shipped.id)) == 2
    assert _move_outs(h, shipped.id) == Counter()  # Sitoo's sale took the units
    assert list(_move_outs(h, own.id).values()) == [1]
    assert _move_outs(h, gone.id) == Counter()
    for ext_ in (ext, own_ext, gone_ext):
        assert list(sitoo.state.orders_by_externalid).count(ext_) == 1
    assert sitoo.state.orders[made].state == ORDER_CLOSED


async def test_a_mixed_cart_is_one_sitoo_order_per_fulfilment_order(harness: Harness) -> None:
    """One order, split by Shopify: two lines picked up at store a, one shipped from store b
    and one more picked up at store c. Each fulfilment order becomes exactly one Sitoo order
    at its own store's warehouse, of its own lines only; each handover closes its own
    fulfilment order only, and a partial pickup fulfils only what the customer took. The unit
    the customer left at the counter takes the cancel path (the stores' policy): refunded and
    back on sale at that store, once."""
    h = harness
    assert h.shopify is not None and h.sitoo is not None and h.network is not None
    shopify, sitoo, network = h.shopify, h.sitoo, h.network
    a, b, c = network.stores
    s = network.skus
    await converged(h, 60)

    order = shopify.state.place_mixed_order(
        [
            CartPart(((s[0], 1), (s[1], 2)), a.shopify_location_id, "PICK_UP"),
            CartPart(((s[2], 1),), b.shopify_location_id, "SHIPPING"),
            CartPart(((s[3], 2),), c.shopify_location_id, "PICK_UP"),
        ]
    )
    at_a, at_b, at_c = order.fulfillment_order_ids
    ext_a = f"fo-{at_a}-{a.shopify_location_id}"
    ext_b = f"fo-{at_b}-{b.shopify_location_id}"
    ext_c = f"fo-{at_c}-{c.shopify_location_id}"
    made = {ext: await _sitoo_state(h, ext, ORDER_OPEN) for ext in (ext_a, ext_b, ext_c)}

    def rows(ext: str) -> dict[str, int]:
        items = sitoo.state.orders[made[ext]].product_items()
        return {str(i["sku"]): int(float(i["quantity"])) for i in items}

    assert sitoo.state.orders[made[ext_a]].data["warehouseid"] == a.sitoo_warehouse_id
    assert sitoo.state.orders[made[ext_b]].data["warehouseid"] == b.sitoo_warehouse_id
    assert sitoo.state.orders[made[ext_c]].data["warehouseid"] == c.sitoo_warehouse_id
    assert (rows(ext_a), rows(ext_b), rows(ext_c)) == ({s[0]: 1, s[1]: 2}, {s[2]: 1}, {s[3]: 2})
    assert (
        "delivery_address" not in sitoo.state.orders[made[ext_a]].data
        or not (sitoo.state.orders[made[ext_a]].data["delivery_address"])
    )
    assert sitoo.state.orders[made[ext_b]].data["delivery_address"]
    await converged(h, 60)

    # a collects all; b ships; c's customer takes one of the two units
    sitoo.state.collect(made[ext_a])
    sitoo.state.ship(made[ext_b], "TRK-MIX", "PostNord")
    [row_c] = [int(i["orderitemid"]) for i in sitoo.state.orders[made[ext_c]].product_items()]
    sitoo.state.collect(made[ext_c], lines={row_c: 1})

    def fulfilled_at(location_id: int) -> int:
        return sum(
            q
            for f in _fulfilments(h, order.id)
            if f.status == "success" and f.location_id == location_id
            for _, q in f.lines
        )

    async def handed_over() -> bool:
        return [fulfilled_at(st.shopify_location_id) for st in (a, b, c)] == [3, 1, 1]

    await async_wait_until(handed_over, 60, interval=0.2, what="each part fulfilled")
    fos = shopify.state.fulfillment_orders

    async def declined_cancelled() -> bool:
        return fos[at_c].status == "CLOSED"

    await async_wait_until(declined_cancelled, 60, interval=0.2, what="the declined unit cancelled")
    assert (fos[at_a].status, fos[at_b].status) == ("CLOSED", "CLOSED")
    refunds = [shopify.state.refunds[r] for r in shopify.state.orders[order.id].refund_ids]
    assert [(x.quantity, x.restock_type, x.location_id) for r in refunds for x in r.lines] == [
        (1, "cancel", c.shopify_location_id)
    ]
    [line_c] = [li for li in shopify.state.orders[order.id].line_items if li.sku == s[3]]
    assert sum(r.amount for r in refunds) == line_c.price  # paid online: its money back
    # exactly once, whatever was delivered twice
    assert len(_fulfilments(h, order.id)) == 3
    assert _move_outs(h, order.id) == Counter()
    for ext in (ext_a, ext_b, ext_c):
        assert list(sitoo.state.orders_by_externalid).count(ext) == 1
    assert pickup_mismatches(network, shopify, sitoo, BOTH) == []
    await converged(h, 90)
