"""`tillsync demo`: a store network on the built-in simulators, synced by a real worker.

Both simulators run in this process and serve real HTTP; the worker is a process of its own on
the local Kafka broker. A live line shows what tillsync does while the scenario plays.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from pathlib import Path

import click
import httpx

from tillsync.schemas.events import DriftCause
from tillsync.schemas.settings import Settings
from tillsync_sim.metrics_text import buckets, by_label, quantile, sample
from tillsync_sim.scenario.driver import Driver, Mix, Run, mismatches
from tillsync_sim.scenario.harness import Harness
from tillsync_sim.scenario.move_out_latency import MoveOutClock
from tillsync_sim.scenario.network import NetworkSpec

# the driver's mix with click & collect: pickups placed online, readied and collected at the till
DEMO_MIX = Mix(pickup_order=1, pickup_at_till=2)


def _buckets(text: str) -> dict[float, float]:
    """Cumulative counts of tillsync_sync_latency_seconds{flow="stock"} by upper bound."""
    return dict(buckets(text, "tillsync_sync_latency_seconds", flow="stock"))


def _quantile(now: dict[float, float], base: dict[float, float], q: float) -> float | None:
    """A quantile over the writes since `base` was read: the live line is about the
    scenario, not the first sync of every position at start."""
    value = quantile([(le, c - base.get(le, 0.0)) for le, c in now.items()], q)
    return None if math.isnan(value) else value


@dataclass
class _Baseline:
    """Counters as they stood when the scenario began."""

    buckets: dict[float, float]
    events: float
    detected: float
    healed: float
    by_cause: dict[DriftCause, float]
    points: dict[str, float]
    cpu: float


def _by_cause(text: str) -> dict[DriftCause, float]:
    return {
        cause: sample(text, "tillsync_drift_detected_total", cause=cause) for cause in DriftCause
    }


def drift_breakdown(text: str, base: _Baseline, staff_edits: int) -> str:
    """Drift detected during the scenario, by cause, beside the staff edits it made: every
    edit should be one `shopify_edit`, and `missed_event` should stay 0 when no event was lost."""
    now = _by_cause(text)
    parts = [f"{cause} {int(now[cause] - base.by_cause[cause])}" for cause in DriftCause]
    return f"drift detected by cause: {', '.join(parts)} (staff edits made: {staff_edits})"


def _points(text: str) -> dict[str, float]:
    return by_label(text, "tillsync_shopify_query_points_total", "document", kind="actual")


def budget_breakdown(text: str, base: _Baseline, seconds: float) -> str:
    """Where Shopify's cost budget and the worker's CPU went during the scenario: which of
    the two holds the writes up when the live line's lag rises."""
    now = _points(text)
    spent = {doc: now[doc] - base.points.get(doc, 0.0) for doc in now}
    top = sorted(((v, doc) for doc, v in spent.items() if v > 0), reverse=True)[:5]
    cpu = sample(text, "process_cpu_seconds_total") - base.cpu
    seconds = max(seconds, 1e-6)
    parts = ", ".join(f"{doc} {v / seconds:.0f}" for v, doc in top)
    return (
        f"Shopify points/s spent: {sum(spent.values()) / seconds:.0f} ({parts}); "
        f"worker CPU {cpu / seconds:.0%} of a core"
    )


async def _scrape(h: Harness) -> str:
    async with httpx.AsyncClient(timeout=5.0) as http:
        return (await http.get(f"{h.worker_url}/metrics")).text


async def _baseline(h: Harness) -> _Baseline:
    text = await _scrape(h)
    return _Baseline(
        _buckets(text),
        sample(text, "tillsync_events_in_total"),
        sample(text, "tillsync_drift_detected_total"),
        sample(text, "tillsync_drift_healed_total"),
        _by_cause(text),
        _points(text),
        sample(text, "process_cpu_seconds_total"),
    )


async def _live(h: Harness, run: Run, base: _Baseline) -> str:
    text = await _scrape(h)
    elapsed = max(1e-6, time.monotonic() - run.started)
    now = _buckets(text)
    p50, p99 = _quantile(now, base.buckets, 0.5), _quantile(now, base.buckets, 0.99)
    events = sample(text, "tillsync_events_in_total") - base.events
    pickups = quantile(buckets(text, "tillsync_pickup_to_sitoo_seconds"), 0.5)
    return (
        f"actions {run.actions:>6}  events/s {events / elapsed:>6.0f}  "
        f"lag {int(sample(text, 'tillsync_consumer_lag_records')):>5}  "
        f"sync p50 <= {p50 or 0:.2f}s p99 <= {p99 or 0:.2f}s  "
        f"pickup to store p50 <= {0 if math.isnan(pickups) else pickups:.2f}s  "
        f"drift open {int(sample(text, 'tillsync_drift_open_positions'))} "
        f"detected {int(sample(text, 'tillsync_drift_detected_total') - base.detected)} "
        f"healed {int(sample(text, 'tillsync_drift_healed_total') - base.healed)}"
    )


async def _initial_sync(h: Harness, total: int, timeout: float = 300.0) -> None:
    """Wait until every position has a value and no write is in flight: the first sync (every
    target written once, each write echoed by a webhook) is the heaviest minute of a run."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        state = await h.worker_json("/state/stock")
        click.echo(
            f"\rfirst sync: {state['positions']}/{total} positions, "
            f"{state['in_flight']} writes in flight",
            nl=False,
        )
        if state["positions"] >= total and state["in_flight"] == 0:
            click.echo("")
            return
        await asyncio.sleep(1.0)
    click.echo("\nfirst sync still running; starting the scenario anyway")


async def _run(
    settings: Settings, spec: NetworkSpec, actions: int, rate: float, work: Path, plan: str
) -> None:
    h = Harness(settings, spec, work, plan=plan)
    click.echo(
        f"seeding {spec.stores} stores x {spec.skus} SKUs on both simulators "
        f"(Shopify {plan} plan)..."
    )
    await h.start_simulators()
    worker = h.start_worker()
    click.echo(f"worker starting (log: {worker.log_path})")
    try:
        await h.wait_ready()
        click.echo("worker ready: snapshot taken, stock flow running")
        await _initial_sync(h, spec.stores * spec.skus)
        assert h.network is not None and h.shopify is not None and h.sitoo is not None
        driver = Driver(h.network, h.shopify, h.sitoo, mix=DEMO_MIX)
        base = await _baseline(h)
        moves = MoveOutClock(h.network, h.shopify, h.sitoo)
        stop_clock = asyncio.Event()
        clock_task = asyncio.create_task(moves.run(stop_clock))
        task = asyncio.create_task(driver.play(actions, rate))
        while not task.done():
            await asyncio.sleep(1.0)
            click.echo("\r" + await _live(h, driver.run, base), nl=False)
        await task
        click.echo("\nscenario done: " + ", ".join(f"{k} {v}" for k, v in driver.run.done.items()))
        ended = time.monotonic()
        off = mismatches(h.network, h.shopify, h.sitoo)
        while off and time.monotonic() - ended < 60:
            await asyncio.sleep(0.5)
            off = mismatches(h.network, h.shopify, h.sitoo)
        total = spec.stores * spec.skus
        moved = time.monotonic()
        while moves.waiting() and time.monotonic() - moved < 30:
            await asyncio.sleep(0.5)
        stop_clock.set()
        await clock_task
        click.echo(await _live(h, driver.run, base))
        click.echo(moves.line())
        text = await _scrape(h)
        click.echo(drift_breakdown(text, base, driver.run.done["admin_edit"]))
        click.echo(budget_breakdown(text, base, time.monotonic() - driver.run.started))
        if off:
            click.echo(f"{len(off)} of {total} positions still differ from their target:")
            for (sku, location), (have, want) in list(off.items())[:5]:
                seen = await h.worker_json(f"/state/stock/{sku}")
                mine = [p for p in seen["positions"] if p["shopify_location_id"] == location]
                click.echo(f"  {sku} at {location}: Shopify {have}, target {want}; worker: {mine}")
        else:
            click.echo(
                f"all {total} positions in Shopify equal their target, "
                f"{time.monotonic() - ended:.1f}s after the last action"
            )
    finally:
        await h.stop()


def run(
    settings: Settings,
    *,
    stores: int,
    skus: int,
    actions: int,
    rate: float,
    work: Path,
    plan: str = "standard",
) -> None:
    spec = NetworkSpec(stores=stores, skus=skus)
    asyncio.run(_run(settings, spec, actions, rate, work, plan))
