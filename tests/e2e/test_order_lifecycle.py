"""End to end: online orders through their whole life, beside the stores' trading, through a
Shopify outage that begins with a spell of 401s, a Sitoo outage and a SIGKILL of the worker.

Real broker, the worker as its own process, both simulators over HTTP, 5 stores x 1,000 SKUs.
One seeded ``Player`` plays the Driver's store mix (till sales, deliveries, returns, staff
edits in the Shopify admin), Sitoo till sales of two lines of one SKU (and returns of the
second line), and ``OrderLife``: online orders of several lines, of two lines of one SKU, of
quantities above one and of more than ten lines, partly fulfilled, cancelled before and after
a partial fulfilment, refunded before fulfilment with and without restock, moved to another
store or to a location no store is mapped to, picked up (handed over in Shopify, or ready and
collected at the till through the Sitoo order tillsync made of it, or rejected there and then
cancelled; every other one collected at the till only authorised at checkout, and captured at
its handover; paid at the till when collected, and marked paid; collected in part, the rest
refunded), mixed carts (picked up at one store, shipped from another), shipped from a store
through the Sitoo order tillsync made of it (whole, or in two parcels;
``ship_from_store_to_sitoo`` is on) or fulfilled in Shopify (its Sitoo order then cancelled),
and fulfilments cancelled after their Move Out. Shopify's order edits are not
simulated (``tillsync_sim.scenario.orders`` says so). Webhooks come twice and out of order,
Sitoo's events twice.

The faults, one after the other while the shops trade on:

* Sitoo answers 503 for three minutes;
* Shopify's Admin API answers 401 for 60 s then 503 for 120 s: longer than the Shopify
  client's retries, so its calls fail for good and the sink holds its writes. Before, during
  and after it the Move Outs in Sitoo, the records taken in and each agent's consumer lag (by
  the topic it reads) are printed: the Move Outs and ingestion go on during it;
* the worker's process group is SIGKILLed and the worker started again.

Oversells are counted as ``bench/oversell.py`` counts them (``OrderLife`` judges every order
as it is placed), each under the window the run was in. Some cannot be helped: while Shopify's
Admin API is down its storefront still sells what it shows, and tillsync cannot lower a level
after a till sale; while Sitoo is down tillsync cannot read its ledger; while the worker is
dead nothing is synced. A window lasts from the fault's start until tillsync has caught up
after it: every Move Out owed when the fault ended is in Sitoo, and no more positions show more
in Shopify than their target than did at any sample of the normal trading before the first
fault. The run waits a bounded time for that and goes on if it does not come (the window then
stays open until a later catch-up or the end of the trading: the next fault has to be survived
wherever it finds the worker). Outside every window the only oversell allowed is the race no
sync can win: an order placed within a few seconds of the till sale that took its unit (Sitoo
stamps each change of an item) or of a staff edit up in the Shopify admin; inside a window, the
count is printed.

At the end every position equals its target computed from the simulators' own state, within
a deadline; every Move Out (and reversal) owed is in Sitoo exactly once, and no other (none for
a pickup collected at the till or a parcel shipped in Sitoo: Sitoo's own sale took it); every
pickup still to collect and every shipment still to ship is one open Sitoo order at its store
and no other is open; each parcel shipped in Sitoo is one Shopify fulfilment with its
tracking; every order only authorised at checkout and handed over in full at the till is
captured once, for its total; every order paid at the till is marked paid once; nothing was
dead-lettered. About ten and a half minutes on a 2-core machine, at 50 actions a second:
faster, the worker on this machine does not drain the outage's backlog while the shops trade
on. The shop is on the Plus plan, as in the 50,000-event scenario: every step of an order's
life brings a read of the order's fulfilment state (some 15 a second here, and thousands at
once when Shopify answers again), beside the stock writes; Standard was not tried.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.e2e.conftest import started
from tests.e2e.test_held_units import _diagnosis
from tests.e2e.test_held_units import _sf_transactions as _move_outs
from tests.support.waiting import async_wait_until
from tillsync.schemas.settings import Settings
from tillsync.streams import topics
from tillsync.streams.stock.refs import fulfilment_of_external_id
from tillsync_sim.metrics_text import by_label, sample
from tillsync_sim.scenario.driver import (
    Driver,
    Mix,
    actual_available,
    expected_available,
    mismatches,
    pickup_mismatches,
    shipment_mismatches,
    sitoo_method,
)
from tillsync_sim.scenario.harness import Harness
from tillsync_sim.scenario.network import NetworkSpec
from tillsync_sim.scenario.orders import STOCK_NEUTRAL, OrderLife, Player

pytestmark = [pytest.mark.kafka, pytest.mark.e2e, pytest.mark.slow]

SPEC = NetworkSpec(stores=5, skus=1000, buffer=1)
RATE = 50.0  # actions a second
MIN_ACTIONS = 22_000
MIN_STOCK_EVENTS = 20_000
MIN_ORDERS = 2_000
UNAUTHORIZED = 60.0  # Shopify answers 401 this long ...
SHOPIFY_OUTAGE = 180.0  # ... and 503 until this long after the start
SITOO_OUTAGE = 180.0  # three minutes, as click & collect's must-show asks
WORKER_DOWN_ACTIONS = int(10 * RATE)  # the shops trade ~10 s with no worker
CONVERGE_WITHIN = 90.0
# an online order this soon after a till sale took the unit it buys, or after staff edited the
# level up in the Shopify admin, is the race no sync can win (the level in Shopify is right a
# moment later); the buffer of 1 hides most such races, a sale of two units or an edit of +3
# does not. Outside every fault window that is the only oversell allowed
RACE_SECONDS = 5.0
KNOWN_LATE_OVERSELLS = 1
# the store mix without the Driver's own online orders: OrderLife places every one
STORES_ONLY = Mix(online_order=0, fulfilment=0)
STORE_ORDERS = frozenset({"PICK_UP", "SHIPPING"})  # the delivery methods made Sitoo orders


@pytest.fixture
async def harness(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Harness]:
    async with started(
        kafka_bootstrap,
        SPEC,
        tmp_path,
        plan="plus",
        ready_timeout=180,
        env={"TILLSYNC_SHIP_FROM_STORE_TO_SITOO": "true"},
    ) as h:
        yield h


def _over_shown(h: Harness) -> int:
    """Positions at which Shopify shows more than their target: where an oversell can start."""
    assert h.network is not None and h.shopify is not None and h.sitoo is not None
    want = expected_available(h.network, h.shopify, h.sitoo)
    have = actual_available(h.network, h.shopify)
    return sum(1 for k, v in want.items() if have[k] > v)


@dataclass(frozen=True)
class Figures:
    move_outs: int
    records_in: float
    lag: dict[str, float]  # records behind, by the topic an agent reads
    backlog: float  # the Shopify sink's
    breaker_open_since: float  # Shopify's
    dead_letters: float
    cpu_seconds: float  # the worker process's

    def line(self, when: str) -> str:
        lag = ", ".join(f"{t} {n:.0f}" for t, n in sorted(self.lag.items()))
        return (
            f"{when}: Move Outs in Sitoo {self.move_outs}, records taken in "
            f"{self.records_in:.0f}, Shopify sink backlog {self.backlog:.0f}, Shopify breaker "
            f"open since {self.breaker_open_since:.0f}, dead letters {self.dead_letters:.0f}; "
            f"consumer lag by topic: {lag}"
        )


async def figures(h: Harness) -> Figures:
    async with httpx.AsyncClient(timeout=5) as http:
        text = (await http.get(f"{h.worker_url}/metrics")).text
    prefix = f"{h.app_id}."
    lag = {  # every topic an agent of this worker reads, by its name within the app
        topic.removeprefix(prefix): records
        for topic, records in by_label(text, "tillsync_consumer_lag_records", "topic").items()
    }
    return Figures(
        move_outs=sum(_move_outs(h).values()),
        records_in=sample(text, "tillsync_events_in_total"),
        lag=lag,
        backlog=sample(text, "tillsync_sink_backlog_writes", sink="shopify-inventory"),
        breaker_open_since=sample(
            text, "tillsync_breaker_open_since_timestamp_seconds", platform="shopify"
        ),
        dead_letters=sample(text, "tillsync_dead_letters_total"),
        cpu_seconds=sample(text, "process_cpu_seconds_total"),
    )


@dataclass
class Windows:
    """The faults the run is in, from their start until tillsync has caught up after them."""

    began: dict[str, float] = field(default_factory=dict)
    closed: dict[str, tuple[float, float]] = field(default_factory=dict)  # (began, ended)

    def begin(self, name: str) -> None:
        self.began[name] = time.monotonic()

    def end(self, name: str) -> None:
        self.closed[name] = (self.began.pop(name), time.monotonic())

    def current(self) -> str:
        return "+".join(sorted(self.began)) or "normal"


@dataclass
class Monitor:
    """Samples the worker's metrics and the positions Shopify over-shows once a second."""

    h: Harness
    player: Player
    windows: Windows
    over: list[tuple[float, int]] = field(default_factory=list)
    dead_letters_seen: float = 0.0
    scrapes_failed: int = 0
    every: float = 20.0  # seconds between progress lines

    async def run(self, stop: asyncio.Event) -> None:
        began = last = time.monotonic()
        cpu = 0.0
        while not stop.is_set():
            now = time.monotonic()
            self.over.append((now, _over_shown(self.h)))
            try:
                f = await figures(self.h)
                self.dead_letters_seen = max(self.dead_letters_seen, f.dead_letters)
                if now - last >= self.every:
                    busy = (f.cpu_seconds - cpu) / (now - last)  # < 0 after a restart
                    last, cpu = now, f.cpu_seconds
                    print(
                        f"[{now - began:4.0f}s] {self.windows.current()}: actions "
                        f"{self.player.actions}, orders {self.player.life.done['place']}, "
                        f"over-shown {self.over[-1][1]}, worker CPU {max(busy, 0):.0%}, "
                        f"{f.line('worker').removeprefix('worker: ')}",
                        flush=True,
                    )
            except httpx.HTTPError:
                self.scrapes_failed += 1  # the worker is dead or starting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)


async def _until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    async def check() -> bool:
        return condition()

    await async_wait_until(check, timeout, interval=0.2, what=what)


async def _story(h: Harness, life: OrderLife, sku: str, location_id: int) -> str:
    """Every online order that touched one position, as each side tells it: Shopify's
    fulfilment orders and fulfilments of the SKU there, the Move Outs Sitoo booked for it, what
    the worker's position holds for the order and what its order track says, and the steps the
    scenario took. What a held-unit defect needs to be found from one failed run. A story that
    cannot be told (the worker gone, say) says why instead of hiding the failure it explains."""
    try:
        return await _told(h, life, sku, location_id)
    except Exception as exc:
        return f"{sku}@{location_id}: no story ({type(exc).__name__}: {exc})"


async def _pickup_story(h: Harness, life: OrderLife, fo_id: int) -> str:
    """A pickup Sitoo and Shopify disagree on, as each side tells it: the fulfilment order,
    every Sitoo order made of it, the worker's track of its order and the scenario's steps."""
    try:
        assert h.shopify is not None and h.sitoo is not None
        fo = h.shopify.state.fulfillment_orders[fo_id]
        lines = [(ln.sku, ln.remaining, ln.total) for ln in fo.lines]
        made = [
            (o.orderid, o.data.get("externalid"), o.state, dict(o.delivered))
            for o in h.sitoo.state.orders.values()
            if (o.data.get("additionaldata") or {}).get("shopify-fo-id") == str(fo_id)
        ]
        track = await h.worker_json(f"/state/orders/{fo.order_id}")
        return (
            f"FO {fo_id} of order {fo.order_id}: {fo.status} at {fo.location_id} {lines}; "
            f"Sitoo orders {made}; track pickups {track.get('pickups')}, said {track}; "
            f"steps {life.history.get(fo.order_id)}"
        )
    except Exception as exc:
        return f"FO {fo_id}: no story ({type(exc).__name__}: {exc})"


async def _told(h: Harness, life: OrderLife, sku: str, location_id: int) -> str:
    assert h.shopify is not None and h.sitoo is not None and h.network is not None
    shop = h.shopify.state
    warehouse = next(
        s.sitoo_warehouse_id for s in h.network.stores if s.shopify_location_id == location_id
    )
    rows = (await h.worker_json(f"/state/stock/{sku}?holds=all"))["positions"]
    row = next((p for p in rows if p["shopify_location_id"] == location_id), {})
    held: dict[str, Any] = row.get("holds") or {}
    booked: dict[int, list[str]] = {}
    for t in h.sitoo.state.transactions_from(1):
        ref = fulfilment_of_external_id(t.externalid)
        if ref is None or t.warehouseid != warehouse:
            continue
        for item in t.items:
            if item.sku == sku:
                booked.setdefault(ref.order_id, []).append(f"{t.externalid} {item.quantity}")
    lines = [
        f"{sku}@{location_id}: worker pending {row.get('pending')}, target {row.get('target')}"
    ]
    for order in shop.orders.values():
        fos = [
            f"FO {fo.id} {fo.status}: {ln.remaining}/{ln.total}"
            for fo in (shop.fulfillment_orders[i] for i in order.fulfillment_order_ids)
            if fo.location_id == location_id
            for ln in fo.lines
            if ln.sku == sku
        ]
        skus = {li.id: li.sku for li in order.line_items}
        fs = [
            f"F {f.id} {f.status}: {qty}"
            for f in (shop.fulfillments[i] for i in order.fulfillment_ids)
            if f.location_id == location_id
            for li, qty in f.lines
            if skus.get(li) == sku
        ]
        key = str(order.id)
        if not (fos or fs or key in held or order.id in booked):
            continue
        track = await h.worker_json(f"/state/orders/{order.id}")
        lines.append(
            f"  order {order.id}: Shopify {fos + fs}; Sitoo {booked.get(order.id, [])}; "
            f"worker hold {held.get(key)}; track {track}; steps {life.history.get(order.id)}"
        )
    return "\n".join(lines)


async def _dead_letter_records(bootstrap: str, app_id: str) -> int:
    """Records in the dead-letter topic: the metric starts again at 0 after the kill."""
    name = topics.DEAD_LETTER.name(app_id)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        await consumer.topics()
        partitions = consumer.partitions_for_topic(name) or set()
        ends = await consumer.end_offsets([TopicPartition(name, p) for p in partitions])
        return sum(ends.values())
    finally:
        await consumer.stop()


# A known defect, found by this test and not found yet: in one fresh-clone CI run 2 of 5,000
# positions stayed one unit off 90 s after the end, one with held units of -1 and one whose
# order still held a unit Shopify commits that tillsync counted 0; the runs before and after
# it, and four more here, ended exact. Only that outcome is marked expected (XFAIL, with the
# story of every order at those positions as the reason, for the next run to show where it
# comes from); any other failure of this test fails it.
KNOWN_DEFECT_POSITIONS = 2


async def test_online_orders_through_their_whole_life_and_outages_end_exact(
    harness: Harness, kafka_bootstrap: str
) -> None:
    h = harness
    assert h.shopify is not None and h.sitoo is not None and h.network is not None
    assert h.worker is not None
    shopify, sitoo, network = h.shopify, h.sitoo, h.network
    began = time.monotonic()

    async def exact() -> bool:
        return not mismatches(network, shopify, sitoo)

    await async_wait_until(exact, 180, interval=1.0, what="the first sync")
    shopify.set_faults(webhook_duplicate_rate=0.05, webhook_reorder_rate=0.05)
    sitoo.set_faults(event_duplicate_rate=0.05)
    windows = Windows()
    life = OrderLife(
        network,
        shopify,
        sitoo,
        seed=2026,
        target_open=60,
        window=windows.current,
        ship_from_store=True,
    )
    player = Player(
        Driver(network, shopify, sitoo, mix=STORES_ONLY, seed=2027), life, online=0.3, seed=2028
    )
    monitor = Monitor(h, player, windows)
    stop = asyncio.Event()
    scenario_done = False
    watching = asyncio.create_task(monitor.run(stop))
    trading = asyncio.create_task(
        player.play(lambda: scenario_done and player.actions >= MIN_ACTIONS, rate=RATE)
    )

    async def after(actions: int, what: str) -> None:
        target = player.actions + actions
        await _until(lambda: player.actions >= target or trading.done(), 120, what)
        assert not trading.done(), trading

    settled: dict[str, str] = {}  # how each fault's window ended, for the summary

    async def settle(name: str, fault_over: Callable[[], bool], within: float) -> None:
        """Once the fault is over, wait up to ``within`` seconds for tillsync to catch up:
        every Move Out owed when the fault ended in Sitoo, and no more positions over-shown
        than at any sample of the normal trading before the first fault. Then close every
        open window; if it does not catch up in time they stay open (the run goes on: a
        worker must survive the next fault wherever it finds it)."""
        await _until(fault_over, SHOPIFY_OUTAGE, f"the end of {name}")
        ended = time.monotonic()
        owed = life.owed()

        def back() -> bool:
            at, over = monitor.over[-1] if monitor.over else (0.0, 0)
            return at > ended and over <= normal and not owed & life.owed()

        try:
            await _until(back, within, f"tillsync to catch up after {name}")
        except AssertionError:
            left = len(owed & life.owed())
            settled[name] = (
                f"not caught up {within:.0f}s after it ended ({left} of {len(owed)} Move Outs "
                f"then owed still not in Sitoo, {monitor.over[-1][1]} positions over-shown)"
            )
            return
        settled[name] = f"caught up {time.monotonic() - ended:.0f}s after it ended"
        for name_ in list(windows.began):
            windows.end(name_)

    try:
        # normal trading first: how many positions Shopify over-shows while all is well (the
        # first seconds left out: the worker is still busy with its first sync)
        await after(int(5 * RATE), "the first trading")
        first = len(monitor.over)
        await after(int(10 * RATE), "normal trading")
        normal_samples = sorted(n for _, n in monitor.over[first:])
        normal = normal_samples[-1]

        # Sitoo answers 503 for three minutes
        sitoo.set_faults(outage_for_s=SITOO_OUTAGE)
        windows.begin("sitoo_outage")
        await settle("sitoo_outage", lambda: not sitoo.faults.in_outage(time.monotonic()), 45)

        # Shopify answers 401, then 503, for three minutes
        before = await figures(h)
        shopify.set_faults(unauthorized_seconds=UNAUTHORIZED, outage_seconds=SHOPIFY_OUTAGE)
        windows.begin("shopify_outage")
        await _until(
            lambda: shopify.faults.unauthorized_remaining() < 3, UNAUTHORIZED, "the 401s' end"
        )
        during_401 = await figures(h)
        await _until(
            lambda: shopify.faults.outage_remaining() < 5, SHOPIFY_OUTAGE, "the outage's end"
        )
        during = await figures(h)
        await settle("shopify_outage", lambda: not shopify.faults.outage_remaining(), 75)
        after_outage = await figures(h)

        # SIGKILL: the worker's whole process group, without a word; the shops trade on
        assert h.worker.proc is not None
        os.killpg(h.worker.proc.pid, signal.SIGKILL)
        h.worker.proc.wait(10)
        windows.begin("worker_down")
        await after(WORKER_DOWN_ACTIONS, "trading with no worker")
        h.start_worker()
        await h.wait_ready(timeout=120)
        await settle("worker_down", lambda: True, 45)
        await after(int(5 * RATE), "the last trading")
        scenario_done = True
        await trading
    finally:
        scenario_done = True
        if not trading.done():
            trading.cancel()
        stop.set()
        await asyncio.gather(watching, trading, return_exceptions=True)
    for name_ in list(windows.began):  # not caught up by the end of the trading
        windows.end(name_)
    ended = time.monotonic()

    known_defect = ""  # the known defect's outcome: every other check still runs
    try:
        await async_wait_until(exact, CONVERGE_WITHIN, interval=0.25, what="every target")
    except AssertionError:
        off = mismatches(network, shopify, sitoo)
        detail = await _diagnosis(h, off)
        stories = [await _story(h, life, sku, loc) for sku, loc in list(off)[:4]]
        detail += "\n" + "\n".join(stories)
        if len(off) <= KNOWN_DEFECT_POSITIONS and all(abs(a - b) == 1 for a, b in off.values()):
            known_defect = f"{len(off)} positions one unit off:\n{detail}"
            print(f"\nKNOWN DEFECT (issue 11): {known_defect}")
        else:
            raise AssertionError(
                f"{len(off)} of {len(network.stores) * len(network.skus)} positions differ "
                f"{CONVERGE_WITHIN:.0f}s after the end; worker log {h.worker.log_path}:\n{detail}"
            ) from None
    took = time.monotonic() - ended

    async def booked() -> bool:
        return life.pending_move_outs == 0

    try:
        await async_wait_until(booked, 60, interval=0.5, what="every Move Out owed in Sitoo")
    except AssertionError:
        missing = sorted(life.expected_move_outs - set(_move_outs(h)))
        raise AssertionError(
            f"{len(missing)} Move Outs never booked, e.g. {missing[:5]}; see {h.worker.log_path}"
        ) from None

    # click & collect and ship-from-store: every pickup still to collect and every shipment
    # still to ship is one open Sitoo order at its store, and every other was cancelled there
    # (handed over in Shopify, cancelled, moved); each parcel shipped in Sitoo is one Shopify
    # fulfilment with its tracking
    async def pickups_agree() -> bool:
        return not pickup_mismatches(network, shopify, sitoo, STORE_ORDERS) and not (
            shipment_mismatches(shopify, sitoo)
        )

    # an export lost on its way (the worker killed while both platforms failed) is asked again
    # at the order's next read, the sweep's at the latest: up to a sweep interval from now
    heal_within = Settings.model_fields["order_sweep_seconds"].default + 30
    try:
        await async_wait_until(
            pickups_agree, heal_within, interval=0.5, what="the pickups in Sitoo"
        )
    except AssertionError:
        wrong = pickup_mismatches(network, shopify, sitoo, STORE_ORDERS)
        shipped = shipment_mismatches(shopify, sitoo)
        assert not shipped, f"{len(shipped)} parcels wrong in Shopify: {shipped[:5]}"
        stories = [
            await _pickup_story(h, life, int(line.split()[2].rstrip(":"))) for line in wrong[:3]
        ]
        raise AssertionError(
            f"{len(wrong)} pickups wrong in Sitoo: {wrong[:5]}\n" + "\n".join(stories)
        ) from None
    pickup_orders = [
        o
        for o in sitoo.state.orders.values()
        if (o.data.get("additionaldata") or {}).get("weborder-bopis") == "true"
    ]
    shipment_orders = [
        o
        for o in sitoo.state.orders.values()
        if sitoo_method(o.data.get("additionaldata") or {}) == "SHIPPING"
    ]

    # a checkout that only authorised the card is captured at the handover, once; an order
    # paid at the till when collected is marked paid in Shopify, once
    await _all_settled(
        life,
        life.uncaptured,
        "orders handed over at the till, only authorised at checkout, not captured",
    )
    captured = [
        o
        for o in (shopify.state.orders[i] for i in life.authorised)
        if any(t.kind == "CAPTURE" for t in o.transactions)
    ]
    await _all_settled(
        life, life.unpaid, "orders paid at the till and handed over still unpaid in Shopify"
    )
    marked = [
        o
        for o in (shopify.state.orders[i] for i in life.paid_in_store)
        if o.financial_status == "paid"
    ]
    final = await figures(h)
    dead = await _dead_letter_records(kafka_bootstrap, h.app_id)

    store_mix = {k: v for k, v in player.done.items() if k not in life.done}
    in_windows = {
        name: f"{ended_ - began_:.0f}s" for name, (began_, ended_) in windows.closed.items()
    }
    moves = _move_outs(h)
    print(
        f"\n{player.actions} actions at {RATE:.0f}/s, {player.stock_events} of them stock "
        f"events; store mix {dict(store_mix)}; online: {dict(life.done)}"
        f"\norders placed {sum(life.placed.values())} by plan {dict(life.placed)}; shapes "
        f"{dict(life.shapes)}; still open at the end {life.open_orders}"
        f"\noversold units by window: {dict(life.oversold) or 'none'} (normal trading "
        f"over-showed {normal_samples[len(normal_samples) // 2]} positions at the median, "
        f"{normal} at most; windows lasted {in_windows}; {settled})"
        f"\nShopify answered {shopify.stats['unauthorized_401']} calls 401 and "
        f"{shopify.stats['outage_503']} calls 503"
        f"\n{before.line('before the Shopify outage')}"
        f"\n{during_401.line('during its 401s')}"
        f"\n{during.line('during its 503s')}"
        f"\n{after_outage.line('after it (' + settled['shopify_outage'] + ')')}"
        f"\n{final.line('at the end')}"
        f"\n{'not every position exact' if known_defect else 'every position exact'}"
        f" {took:.1f}s after the end; Move Outs {len(moves)} "
        f"({sum(1 for e in moves if e.endswith('-r'))} reversals); dead letters in Kafka "
        f"{dead}; the whole test {time.monotonic() - began:.0f}s; worker log {h.worker.log_path}"
    )
    in_normal = [o for o in life.oversells if o.window == "normal"]
    pickups_placed = sum(n for plan, n in life.placed.items() if plan.startswith("pickup"))
    print(
        f"pickup orders made in Sitoo {len(pickup_orders)} for {pickups_placed} placed, "
        f"{sum(1 for o in pickup_orders if o.state == 0)} open at the end; "
        f"{len(captured)} of {len(life.authorised)} orders only authorised at checkout captured"
        f"; ship-from-store orders made in Sitoo {len(shipment_orders)}, "
        f"{sum(1 for o in shipment_orders if o.state == 10)} shipped there, "
        f"{sum(1 for o in shipment_orders if o.state == 0)} open at the end; "
        f"{len(marked)} of {len(life.paid_in_store)} orders paid in store marked paid; "
        f"mixed carts {life.placed['mixed_cart']}, partial pickups "
        f"{life.done['collect_part_in_sitoo']}"
    )
    for o in (in_normal + [o for o in life.oversells if o.window != "normal"])[:12]:
        print(f"  oversold: {o}")

    assert player.stock_events >= MIN_STOCK_EVENTS
    assert sum(life.placed.values()) >= MIN_ORDERS
    assert {"multi_line", "one_sku_on_two_lines", "quantity_above_one"} <= set(life.shapes)
    assert life.shapes["more_than_ten_lines"] > 0
    assert all(life.done[step] > 0 for step in ("cancel_fulfilment", *STOCK_NEUTRAL))
    assert player.done["till_sale_two_lines"] > 0
    # pickups reached the stores as Sitoo orders (one collected in Shopify before tillsync read
    # it, during an outage, never needs one); `pickups_agree` above checked each against Shopify
    assert pickups_placed > 0 and len(pickup_orders) > 0
    assert all(life.done[step] > 0 for step in ("ready_in_sitoo", "collect_in_sitoo"))
    assert all(life.done[step] > 0 for step in ("ship_in_sitoo", "ship_part_in_sitoo"))
    assert life.placed["mixed_cart"] > 0
    assert all(
        life.done[step] > 0
        for step in ("collect_paid_in_sitoo", "collect_part_in_sitoo", "refund_rest")
    )
    # each marked paid once: one manual SALE of what the order came to
    assert marked and all([t.kind for t in o.transactions] == ["SALE"] for o in marked)
    # the customer is told a pickup is ready at most once (Shopify emails at every call)
    emailed = Counter(fo.ready_emails for fo in shopify.state.fulfillment_orders.values())
    assert max(emailed) <= 1 and emailed[1] > 0, emailed
    # each captured once, for what its authorisation held
    assert captured and all(
        [t.amount for t in o.transactions if t.kind == "CAPTURE"] == [o.total] for o in captured
    )
    # every Move Out owed, and its reversal when the fulfilment was cancelled, exactly once
    assert all(n == 1 for n in moves.values()), [e for e, n in moves.items() if n > 1][:10]
    assert set(moves) == life.expected_move_outs
    # nothing dead-lettered: not in any scrape, not in Kafka
    assert monitor.dead_letters_seen == 0 and final.dead_letters == 0 and dead == 0
    # nothing oversold while tillsync was up to date, but for an order a moment after the till
    # sale that took its unit or the staff edit that showed it: a level left wrong any longer
    # would be tillsync's failure
    late = [
        o
        for o in in_normal
        if o.since_sitoo_change > RACE_SECONDS and o.since_staff_edit > RACE_SECONDS
    ]
    late_stories = [(o, await _story(h, life, o.sku, o.location_id)) for o in late[:3]]
    # KNOWN DEFECT (issue 11, open): in two fresh-clone CI runs one unit was oversold in normal
    # trading with Sitoo unchanged there for minutes (a held unit missing for a while, cause
    # not found); up to KNOWN_LATE_OVERSELLS is reported as that defect at the very end, after
    # every other check, more fails here
    assert len(late) <= KNOWN_LATE_OVERSELLS, late_stories
    if late:
        print(f"\nKNOWN DEFECT (issue 11): late oversell {late_stories}")
    # the faults happened: Shopify refused calls with 401 and then 503, long enough for the
    # sink to give calls up (its breaker open)
    assert shopify.stats["unauthorized_401"] > 0 and shopify.stats["outage_503"] > 0
    assert during.breaker_open_since > 0 and during.backlog > 0
    # ingestion and the Move Outs went on through the 401s and the 503s
    assert before.records_in < during_401.records_in < during.records_in
    assert before.move_outs < during_401.move_outs < during.move_outs, (
        "the Move Outs stopped while Shopify was down",
        before.line("before"),
        during_401.line("during the 401s"),
        during.line("during the 503s"),
    )
    if known_defect:
        pytest.xfail(f"known held-unit defect (issue 11): {known_defect}")
    if late:
        pytest.xfail(f"known late oversell (issue 11): {late_stories}")


async def _all_settled(life: OrderLife, left: Callable[[], list[int]], what: str) -> None:
    """Wait until ``left`` names no order; name a few with their histories if it still does."""

    async def none_left() -> bool:
        return not left()

    try:
        await async_wait_until(none_left, 30, interval=0.5, what=what)
    except AssertionError:
        still = left()
        raise AssertionError(
            f"{len(still)} {what}: {[(i, life.history.get(i)) for i in still[:5]]}"
        ) from None
