"""End to end: every exception of a store order raised once, with its owner, and cleared once
its condition clears.

Real broker, the worker as its own process, both simulators over HTTP, ship-from-store through
Sitoo on. Every store's deadlines are seconds rather than hours (``PickupDeadlines``), and the
worker sweeps its open orders every 10 s, so each late step is seen within a sweep or two.
Each store order is played into the state its exception is about, and then out of it:

* ``pickup_not_ready`` (store manager): in Sitoo, not marked ready; cleared when it is;
* ``pickup_uncollected`` (e-commerce): ready, not collected; cleared at the collect;
* ``pickup_authorisation_expiring`` (finance): a card only authorised at checkout, lapsing
  within the margin; cleared when the collect captures it;
* ``shipment_not_shipped`` (store manager): a ship-from-store order not shipped; cleared when
  the store ships it;
* ``pickup_location_unmapped`` (integration): routed to a location no store is; cleared when
  moved to a store;
* ``pickup_sku_unmapped`` (e-commerce): a line Sitoo has no SKU for; cleared when that line is
  refunded;
* ``pickup_open_in_shopify`` (integration): a partial pickup, collected in Sitoo and part of
  it still open in Shopify; cleared when the rest is refunded;
* ``pickup_not_in_store`` (integration): no Sitoo order in time (a Sitoo outage); cleared once
  Sitoo has it;
* ``pickup_rejected`` (e-commerce) and ``pickup_unpaid`` (finance), which tell of one event
  and have nothing to clear.

Stock is exact at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from tests.e2e.conftest import converged, started
from tests.e2e.test_ship_from_store import _sitoo_state
from tests.support.waiting import async_wait_until
from tillsync.schemas.events import ExceptionRecord, Owner
from tillsync.schemas.sitoo import ORDER_CLOSED, ORDER_OPEN
from tillsync.streams import topics
from tillsync_sim.scenario.harness import Harness
from tillsync_sim.scenario.network import NetworkSpec

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

LATE = 12.0  # seconds: every deadline of every store
DEADLINES = (
    ("reach_store_minutes", LATE / 60),
    ("ready_within_minutes", LATE / 60),
    ("collect_within_hours", LATE / 3600),
    ("close_in_shopify_minutes", LATE / 60),
    ("ship_within_hours", LATE / 3600),
    # a card authorisation lasts 7 days: every authorised pickup is within this margin
    ("authorisation_margin_hours", 8 * 24.0),
)
SEEN = 60.0  # a deadline, a sweep or two and a read


@dataclass
class Told:
    """The exceptions the worker sent, in the order it sent them."""

    records: list[ExceptionRecord] = field(default_factory=list)

    def of(self, kind: str, key: str) -> list[ExceptionRecord]:
        return [r for r in self.records if r.type == kind and r.key == key]

    async def raised(self, kind: str, key: str) -> ExceptionRecord:
        async def there() -> bool:
            return any(not r.cleared for r in self.of(kind, key))

        await async_wait_until(there, SEEN, interval=0.25, what=f"{kind} raised for {key}")
        return next(r for r in self.of(kind, key) if not r.cleared)

    async def cleared(self, kind: str, key: str) -> None:
        async def there() -> bool:
            return any(r.cleared for r in self.of(kind, key))

        await async_wait_until(there, SEEN, interval=0.25, what=f"{kind} cleared for {key}")


async def _listen(bootstrap: str, topic: str, told: Told) -> None:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        async for message in consumer:
            assert message.value is not None
            told.records.append(ExceptionRecord.model_validate_json(message.value))
    finally:
        await consumer.stop()


@pytest.fixture
async def harness(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Harness]:
    spec = NetworkSpec(
        stores=3, skus=12, buffer=1, min_stock=20, max_stock=30, pickup_deadlines=DEADLINES
    )
    env = {"TILLSYNC_SHIP_FROM_STORE_TO_SITOO": "true", "TILLSYNC_ORDER_SWEEP_SECONDS": "10"}
    async with started(kafka_bootstrap, spec, tmp_path, env=env) as h:
        yield h


@pytest.fixture
async def told(harness: Harness, kafka_bootstrap: str) -> AsyncIterator[Told]:
    out = Told()
    topic = topics.EXCEPTIONS.name(harness.app_id)
    listening = asyncio.create_task(_listen(kafka_bootstrap, topic, out))
    yield out
    listening.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await listening


async def test_each_store_order_exception_is_raised_once_and_cleared(
    harness: Harness, told: Told
) -> None:
    h = harness
    assert h.shopify is not None and h.sitoo is not None and h.network is not None
    shopify, sitoo = h.shopify.state, h.sitoo.state
    a, b, c = h.network.stores
    s = h.network.skus
    await converged(h, 60)

    def pickup(
        store_loc: int, lines: list[tuple[str, int]], financial_status: str = "paid"
    ) -> tuple[int, int]:
        order = shopify.place_order(
            lines, location_id=store_loc, delivery="PICK_UP", financial_status=financial_status
        )
        [fo] = order.fulfillment_order_ids
        return order.id, fo

    # -- in Sitoo, then late at each step of a pickup ------------------------------------------
    _, slow_fo = pickup(a.shopify_location_id, [(s[0], 1)])
    slow = f"fo-{slow_fo}-{a.shopify_location_id}"
    _, auth_fo = pickup(b.shopify_location_id, [(s[1], 1)], financial_status="authorized")
    auth = f"fo-{auth_fo}-{b.shopify_location_id}"
    shipped = shopify.place_order([(s[2], 1)], location_id=c.shopify_location_id)
    [ship_fo] = shipped.fulfillment_order_ids
    ship = f"fo-{ship_fo}-{c.shopify_location_id}"

    # a pickup routed to a location no store is
    popup = shopify.add_location("Pop-up (not mapped)").id
    item = shopify.variant_by_sku(s[3])
    assert item is not None
    shopify.activate(item.inventory_item_id, popup, available=5)
    _, stray_fo = pickup(popup, [(s[3], 1)])

    # a pickup with a line Sitoo has no SKU for (a gift box sold online only)
    shopify.add_product(
        "Gift box", [{"sku": "GIFT-BOX", "price": "10.00"}], inventory={a.shopify_location_id: 5}
    )
    gift_order, gift_fo = pickup(a.shopify_location_id, [(s[4], 1), ("GIFT-BOX", 1)])

    # a pickup the customer collects only part of
    part_order, part_fo = pickup(a.shopify_location_id, [(s[5], 2)])
    part = f"fo-{part_fo}-{a.shopify_location_id}"
    # a pickup the store rejects, and one paid in store but handed over unpaid
    _, rejected_fo = pickup(b.shopify_location_id, [(s[6], 1)])
    rejected = f"fo-{rejected_fo}-{b.shopify_location_id}"
    _, unpaid_fo = pickup(c.shopify_location_id, [(s[7], 1)], financial_status="pending")
    unpaid = f"fo-{unpaid_fo}-{c.shopify_location_id}"

    slow_id = await _sitoo_state(h, slow, ORDER_OPEN)
    auth_id = await _sitoo_state(h, auth, ORDER_OPEN)
    ship_id = await _sitoo_state(h, ship, ORDER_OPEN)
    part_id = await _sitoo_state(h, part, ORDER_OPEN)
    rejected_id = await _sitoo_state(h, rejected, ORDER_OPEN)
    unpaid_id = await _sitoo_state(h, unpaid, ORDER_OPEN)

    expiring = await told.raised("pickup_authorisation_expiring", auth)
    assert expiring.owner is Owner.FINANCE
    unmapped = await told.raised("pickup_location_unmapped", f"fo-{stray_fo}")
    assert unmapped.owner is Owner.ENGINEERING
    no_sku = await told.raised("pickup_sku_unmapped", f"fo-{gift_fo}")
    assert no_sku.owner is Owner.ECOMMERCE

    not_ready = await told.raised("pickup_not_ready", slow)
    assert not_ready.owner is Owner.STORE_OPS
    not_shipped = await told.raised("shipment_not_shipped", ship)
    assert not_shipped.owner is Owner.STORE_OPS

    # each condition ends
    sitoo.ready_for_pickup(slow_id)
    await told.cleared("pickup_not_ready", slow)
    uncollected = await told.raised("pickup_uncollected", slow)
    assert uncollected.owner is Owner.ECOMMERCE
    sitoo.collect(slow_id)
    await told.cleared("pickup_uncollected", slow)

    sitoo.collect(auth_id)
    await told.cleared("pickup_authorisation_expiring", auth)
    sitoo.ship(ship_id, "TRK-9", "PostNord")
    await told.cleared("shipment_not_shipped", ship)

    shopify.move_fulfillment_order(stray_fo, a.shopify_location_id)
    await told.cleared("pickup_location_unmapped", f"fo-{stray_fo}")

    gift_line = next(li for li in shopify.order(gift_order).line_items if li.sku == "GIFT-BOX")
    shopify.refund(gift_order, [(gift_line.id, 1, "CANCEL", a.shopify_location_id)])
    await told.cleared("pickup_sku_unmapped", f"fo-{gift_fo}")

    # a partial pickup: one of two units collected, the other still open in Shopify
    [row] = [int(i["orderitemid"]) for i in sitoo.orders[part_id].product_items()]
    sitoo.ready_for_pickup(part_id)
    sitoo.collect(part_id, lines={row: 1})
    await _sitoo_state(h, part, ORDER_CLOSED)
    still_open = await told.raised("pickup_open_in_shopify", part)
    assert still_open.owner is Owner.ENGINEERING
    assert "collected in part at the till (1 of 2 units)" in still_open.message
    [part_line] = shopify.order(part_order).line_items
    shopify.refund(part_order, [(part_line.id, 1, "CANCEL", a.shopify_location_id)])
    await told.cleared("pickup_open_in_shopify", part)

    # events with nothing to clear
    sitoo.reject_pickup(rejected_id, "damaged")
    rejection = await told.raised("pickup_rejected", rejected)
    assert rejection.owner is Owner.ECOMMERCE
    sitoo.collect(unpaid_id)  # the till took no payment
    unpaid_told = await told.raised("pickup_unpaid", unpaid)
    assert unpaid_told.owner is Owner.FINANCE

    # -- never reaching the store: Sitoo down past the deadline --------------------------------
    h.sitoo.set_faults(outage_for_s=LATE + 20)
    _, late_fo = pickup(b.shopify_location_id, [(s[8], 1)])
    late = f"fo-{late_fo}-{b.shopify_location_id}"
    never = await told.raised("pickup_not_in_store", late)
    assert never.owner is Owner.ENGINEERING
    await _sitoo_state(h, late, ORDER_OPEN)
    await told.cleared("pickup_not_in_store", late)

    # each raised once, and cleared at most once
    counts: dict[tuple[str, str, bool], int] = {}
    for r in told.records:
        counts[(r.type, r.key, r.cleared)] = counts.get((r.type, r.key, r.cleared), 0) + 1
    assert {k: n for k, n in counts.items() if n > 1} == {}
    await converged(h, 60)
