"""`tillsync demo`: a store network on the built-in simulators, synced by a real worker.

Both simulators run in this process and serve real HTTP; the worker is a process of its own on
the local Kafka broker. A live line shows what tillsync does while the scenario plays.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import click
import httpx

from connectors.scenario.driver import Driver, Mix, Run, mismatches
from connectors.scenario.harness import Harness
from connectors.scenario.network import NetworkSpec
from tillsync.settings import Settings


def _quantile(text: str, q: float) -> float | None:
    """A quantile of tillsync_sync_latency_seconds{flow="stock"} from /metrics text."""
    buckets: list[tuple[float, float]] = []
    for m in re.finditer(
        r'^tillsync_sync_latency_seconds_bucket\{flow="stock",le="([^"]+)"\} (\S+)$', text, re.M
    ):
        buckets.append(
            (float("inf") if m.group(1) == "+Inf" else float(m.group(1)), float(m.group(2)))
        )
    if not buckets or buckets[-1][1] == 0:
        return None
    total = buckets[-1][1]
    for le, count in buckets:
        if count >= q * total:
            return le
    return None


def _metric(text: str, name: str) -> float:
    return sum(
        float(m.group(1)) for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)
    )


async def _live(h: Harness, run: Run) -> str:
    async with httpx.AsyncClient(timeout=2.0) as http:
        text = (await http.get(f"{h.worker_url}/metrics")).text
    elapsed = max(1e-6, time.monotonic() - run.started)
    p50, p99 = _quantile(text, 0.5), _quantile(text, 0.99)
    events = _metric(text, "tillsync_events_in_total")
    return (
        f"actions {run.actions:>6}  events/s {events / elapsed:>7.0f}  "
        f"sync p50 <= {p50 or 0:.2f}s p99 <= {p99 or 0:.2f}s  "
        f"drift open {int(_metric(text, 'tillsync_drift_open'))} "
        f"detected {int(_metric(text, 'tillsync_drift_detected_total'))} "
        f"healed {int(_metric(text, 'tillsync_drift_healed_total'))}"
    )


async def _run(
    settings: Settings, spec: NetworkSpec, actions: int, rate: float, work: Path
) -> None:
    h = Harness(settings, spec, work)
    click.echo(f"seeding {spec.stores} stores x {spec.skus} SKUs on both simulators...")
    await h.start_simulators()
    worker = h.start_worker()
    click.echo(f"worker starting (log: {worker.log_path})")
    try:
        await h.wait_ready()
        click.echo("worker ready: snapshot taken, stock flow running")
        assert h.network is not None and h.shopify is not None and h.sitoo is not None
        driver = Driver(h.network, h.shopify, h.sitoo, mix=Mix())
        task = asyncio.create_task(driver.play(actions, rate))
        while not task.done():
            await asyncio.sleep(1.0)
            click.echo("\r" + await _live(h, driver.run), nl=False)
        await task
        click.echo("\nscenario done: " + ", ".join(f"{k} {v}" for k, v in driver.run.done.items()))
        ended = time.monotonic()
        off = mismatches(h.network, h.shopify, h.sitoo)
        while off and time.monotonic() - ended < 60:
            await asyncio.sleep(0.5)
            off = mismatches(h.network, h.shopify, h.sitoo)
        total = spec.stores * spec.skus
        click.echo(await _live(h, driver.run))
        if off:
            click.echo(f"{len(off)} of {total} positions still differ from their target")
        else:
            click.echo(
                f"all {total} positions in Shopify equal their target, "
                f"{time.monotonic() - ended:.1f}s after the last action"
            )
    finally:
        await h.stop()


def run(
    settings: Settings, *, stores: int, skus: int, actions: int, rate: float, work: Path
) -> None:
    spec = NetworkSpec(stores=stores, skus=skus)
    asyncio.run(_run(settings, spec, actions, rate, work))
