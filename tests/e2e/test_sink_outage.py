"""End to end: a Shopify outage longer than the client's retries, on a real broker with the
worker as its own process and both simulators over HTTP.

During the outage the Shopify sink holds its writes (coalesced, one per level at most) and
nothing is dead-lettered; the Sitoo ledger goes on being read and the positions kept, and each
fulfilment made in the outage reaches Sitoo as a Move Out from its webhook. Once Shopify
answers the backlog drains, no Move Out is sent twice and every position equals its target.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import converged, started
from tests.support.waiting import async_wait_until
from tillsync_sim.metrics_text import sample
from tillsync_sim.scenario.driver import Driver, Mix
from tillsync_sim.scenario.harness import Harness
from tillsync_sim.scenario.network import NetworkSpec

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

# The Shopify client gives a call up after about 30-60 s of 503s (8 tries, backoff doubling
# to 30 s): the outage outlasts that, so the sink sees calls fail for good.
OUTAGE = 100.0
SPEC = NetworkSpec(stores=2, skus=40, buffer=1)


@pytest.fixture
async def harness(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Harness]:
    async with started(kafka_bootstrap, SPEC, tmp_path) as h:
        yield h


@dataclass(frozen=True)
class Figures:
    move_outs: int
    events_in: float
    backlog: float
    breaker_open_since: float
    dead_letters: float

    def line(self, when: str) -> str:
        return (
            f"{when}: Move Outs in Sitoo {self.move_outs}, records taken in "
            f"{self.events_in:.0f}, Shopify sink backlog {self.backlog:.0f}, breaker open "
            f"since {self.breaker_open_since:.0f}, dead letters {self.dead_letters:.0f}"
        )


async def figures(h: Harness) -> Figures:
    assert h.sitoo is not None
    async with httpx.AsyncClient(timeout=5) as http:
        text = (await http.get(f"{h.worker_url}/metrics")).text
    moves = [
        t for t in h.sitoo.state.transactions_from(1) if (t.externalid or "").startswith("sf-")
    ]
    return Figures(
        move_outs=len(moves),
        events_in=sample(text, "tillsync_events_in_total"),
        backlog=sample(text, "tillsync_sink_backlog_writes", sink="shopify-inventory"),
        breaker_open_since=sample(
            text, "tillsync_breaker_open_since_timestamp_seconds", platform="shopify"
        ),
        dead_letters=sample(text, "tillsync_dead_letters_total"),
    )


async def test_a_shopify_outage_stalls_only_the_shopify_writes(harness: Harness) -> None:
    h = harness
    assert h.shopify is not None and h.sitoo is not None and h.network is not None
    await converged(h, timeout=60)
    # online orders shipped from the stores, placed while Shopify is up: their fulfilments in
    # the outage become Move Outs in Sitoo at once, each exactly once
    orders: list[int] = []
    for i, sku in enumerate(h.network.skus[:10]):
        store = h.network.stores[i % len(h.network.stores)]
        order = h.shopify.state.place_order(
            [(sku, 1)], location_id=store.shopify_location_id, delivery="SHIPPING"
        )
        orders.extend(order.fulfillment_order_ids)
    await converged(h, timeout=60)
    before = await figures(h)
    print(before.line("before"))

    h.shopify.set_faults(outage_seconds=OUTAGE)
    outage_ends = time.monotonic() + OUTAGE
    sitoo_only = Mix(
        till_sale=60, delivery=30, till_return=10, online_order=0, fulfilment=0, admin_edit=0
    )
    driver = Driver(h.network, h.shopify, h.sitoo, mix=sitoo_only, seed=7)
    for fo in orders:
        h.shopify.state.fulfil(fo)
    await driver.play(300, rate=20)

    async def moved() -> bool:
        return (await figures(h)).move_outs >= before.move_outs + len(orders)

    left = outage_ends - time.monotonic() - 5
    assert left > 0, "the scenario outlasted the outage: nothing shown"
    await async_wait_until(moved, left, interval=0.5, what="the Move Outs while Shopify is down")

    async def nearly_over() -> bool:
        return time.monotonic() > outage_ends - 5

    # the Shopify sink has given calls up by now (the client's retries are spent)
    await async_wait_until(nearly_over, OUTAGE, interval=0.5, what="the end of the outage")
    during = await figures(h)
    print(during.line("during"))
    # each fulfilment's Move Out went from its webhook: Shopify's state was not needed
    assert during.move_outs == before.move_outs + len(orders)
    assert during.events_in > before.events_in  # Sitoo's changes are still taken in
    # held, coalesced: at most one write per level
    assert 0 < during.backlog <= len(h.network.stores) * len(h.network.skus)
    assert during.dead_letters == before.dead_letters

    await converged(h, timeout=120)
    after = await figures(h)
    print(after.line("after"))
    assert after.dead_letters == before.dead_letters  # a transient failure is never one
    assert after.backlog == 0 and after.breaker_open_since == 0
    moves = [
        t for t in h.sitoo.state.transactions_from(1) if (t.externalid or "").startswith("sf-")
    ]
    assert len(moves) == len({t.externalid for t in moves}) == before.move_outs + len(orders)
