"""Quantity updates per second the Shopify sink writes, beside a Standard plan's ceiling.

Shopify's Standard plan restores 100 cost points a second; an ``inventorySetQuantities`` call
costs 10 and carries at most 250 quantities, so no client writes more than 2,500 updates/s for
long. The 2,000-point bucket lets a burst run above that until it is empty.

A backlog of ``--rounds`` x (``--stores`` x ``--skus``) inventory commands (the sink's own input,
every round a newer version and a new target for every position) is produced into
``<app_id>.cmd.shopify.inventory`` before the worker starts, so the sink, not the position
agent upstream of it, is what is measured. The Shopify simulator counts every quantity it
applies; the rate is read there. Unless ``--burst``, its bucket is emptied the moment the worker
is ready, so the figure is the steady state; with ``--burst`` the bucket starts full and the
burst and steady phases are reported apart (the steady phase starts when the bucket first
runs dry). The write results and Shopify's inventory webhooks that the writes cause flow back
into the same worker, as in production.

    .venv/bin/python -m bench.shopify_ceiling
    .venv/bin/python -m bench.shopify_ceiling --rounds 8 --stores 5 --skus 2000 --burst
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import (
    add_common_args,
    cpu_seconds,
    harness,
    machine,
    metric,
    own_cpu_seconds,
    produce,
    work_dir,
    worker_metrics,
)
from tillsync.schemas.events import SetInventory
from tillsync.streams import topics
from tillsync.streams.admin import ensure_topics
from tillsync_sim.scenario.network import NetworkSpec
from tillsync_sim.shopify import ShopifySimulator

CEILING = 2_500.0  # 100 points/s / 10 points per call x 250 quantities per call
TARGET = 0.9


@dataclass
class Tally:
    """Every quantity the simulator applied to `available`, with when."""

    calls: list[tuple[float, int]] = field(default_factory=list)
    bucket_dry_at: float | None = None

    @property
    def total(self) -> int:
        return sum(n for _, n in self.calls)

    def between(self, start: float, end: float) -> int:
        return sum(n for t, n in self.calls if start <= t < end)


def instrument(sim: ShopifySimulator, tally: Tally) -> None:
    """Count quantities as the simulator applies them: what Shopify confirmed, not what the
    worker believes it sent."""
    apply_set = sim.state.apply_set

    def counted(name: str, entries: list[tuple[int, int, int]]) -> Any:
        out = apply_set(name, entries)
        if name == "available":
            now = time.monotonic()
            tally.calls.append((now, len(entries)))
            if tally.bucket_dry_at is None and sim.bucket.available < 10:
                tally.bucket_dry_at = now
        return out

    sim.state.apply_set = counted  # type: ignore[method-assign]


def commands(
    sim: ShopifySimulator, skus: list[str], locations: list[int], rounds: int
) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    now = time.time()
    items = {sku: sim.state.item_for(sku).id for sku in skus}
    for r in range(1, rounds + 1):
        for loc in locations:
            for n, sku in enumerate(skus):
                cmd = SetInventory(
                    sku=sku,
                    inventory_item_id=items[sku],
                    location_id=loc,
                    target=(n + r) % 17,
                    change_from=None,  # no compare-and-swap: stale re-reads would blur the rate
                    version=r,
                    sitoo_version=r,
                    event_time=now,
                )
                out.append((sku.encode(), cmd.model_dump_json().encode()))
    return out


async def run(args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    spec = NetworkSpec(stores=args.stores, skus=args.skus, buffer=0)
    h = harness(args.bootstrap, spec, work_dir, partitions=args.partitions)
    await h.start_simulators()
    assert h.network is not None and h.shopify is not None
    tally = Tally()
    try:
        if not args.webhooks:
            for sid, sub in list(h.shopify.state.subscriptions.items()):
                if sub.topic.startswith("inventory_levels"):
                    del h.shopify.state.subscriptions[sid]
        await ensure_topics(args.bootstrap, h.app_id, args.partitions)
        backlog = commands(
            h.shopify,
            h.network.skus,
            [s.shopify_location_id for s in h.network.stores],
            args.rounds,
        )
        await produce(args.bootstrap, topics.SHOPIFY_INVENTORY_COMMANDS.name(h.app_id), backlog)
        h.start_worker()
        for _ in range(args.workers - 1):
            h.add_worker()
        await h.wait_ready()
        if not args.burst:
            h.shopify.bucket.try_take(h.shopify.bucket.available)
        # only writes from here on count: the worker may have written before it was ready
        instrument(h.shopify, tally)
        started = time.monotonic()
        pids = [w.proc.pid for w in h.workers if w.proc is not None]
        cpu_w0, cpu_b0 = sum(cpu_seconds(p) for p in pids), own_cpu_seconds()
        # Every command is a new version, but the rounds of one position that meet in one
        # window coalesce to the newest, so fewer may be written (more with two workers, whose
        # windows are larger): the wait then runs to --seconds; the rate is read from the writes.
        wanted = len(backlog)
        deadline = started + args.seconds
        while time.monotonic() < deadline and tally.total < wanted:
            await asyncio.sleep(0.25)
        ended = time.monotonic()
        cpu_w, cpu_b = sum(cpu_seconds(p) for p in pids) - cpu_w0, own_cpu_seconds() - cpu_b0
        async with httpx.AsyncClient(timeout=10.0) as http:
            text = "\n".join([await worker_metrics(http, url) for url in h.worker_urls])
        return {
            "tally": tally,
            "started": started,
            "ended": ended,
            "wanted": wanted,
            "worker_cpu": cpu_w,
            "bench_cpu": cpu_b,
            "metrics": text,
            "sim_stats": dict(h.shopify.stats),
        }
    finally:
        await h.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=5)
    parser.add_argument("--skus", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=6, help="commands per position")
    parser.add_argument("--seconds", type=float, default=60.0, help="longest measuring window")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--burst", action="store_true", help="start with a full cost bucket")
    parser.add_argument("--workers", type=int, default=1, help="workers sharing the partitions")
    parser.add_argument(
        "--webhooks",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="let the simulator send inventory_levels/update for every write, as Shopify does",
    )
    add_common_args(parser)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with work_dir("ceiling", args.keep) as tmp:
        out = asyncio.run(run(args, tmp))
    started, ended = out["started"], out["ended"]
    tally = Tally([c for c in out["tally"].calls if c[0] <= ended], out["tally"].bucket_dry_at)
    elapsed = ended - started
    # the steady window: from the bucket's running dry (at once unless --burst) to the last write
    last = tally.calls[-1][0] if tally.calls else ended
    steady_from = tally.bucket_dry_at if tally.bucket_dry_at is not None else started
    steady_n = tally.between(steady_from, last + 1e-9)
    steady = steady_n / (last - steady_from) if last > steady_from else float("nan")
    overall = tally.total / (last - started) if last > started else float("nan")
    calls = len(tally.calls)
    print(
        f"backlog: {out['wanted']:,} commands ({args.rounds} rounds x {args.stores} stores x "
        f"{args.skus} SKUs); written {tally.total:,} in {elapsed:.1f}s, {calls} calls "
        f"({tally.total / max(calls, 1):.0f} quantities per call)"
    )
    if args.burst and tally.bucket_dry_at is not None:
        burst_n = tally.between(started, tally.bucket_dry_at)
        burst_s = tally.bucket_dry_at - started
        print(
            f"burst (full bucket): {burst_n / max(burst_s, 1e-9):,.0f} updates/s "
            f"({burst_n:,} in {burst_s:.1f}s)"
        )
    print(
        f"Shopify sink, steady: {steady:,.0f} updates/s ({steady_n:,} in "
        f"{last - steady_from:.1f}s); overall {overall:,.0f} updates/s"
    )
    print(
        f"ceiling (Standard plan): {CEILING:,.0f} updates/s; ratio {steady / CEILING:.3f} "
        f"(target >= {TARGET}) {'MET' if steady / CEILING >= TARGET else 'NOT MET'}"
    )
    text = out["metrics"]
    waited = metric(text, "tillsync_api_throttle_wait_seconds_total", platform="shopify")
    throttled = out["sim_stats"].get("throttled", 0)
    print(
        f"worker{'s' if args.workers > 1 else ''} CPU {out['worker_cpu']:.1f}s, "
        "bench process (simulators) CPU "
        f"{out['bench_cpu']:.1f}s over {elapsed:.1f}s; client throttle wait {waited:.1f}s, "
        f"THROTTLED answers {throttled}"
    )
    lag = metric(text, "tillsync_events_in_total")
    print(f"worker took in {lag:,.0f} records meanwhile (write results, webhooks)")
    print(
        "reproduce: .venv/bin/python -m bench.shopify_ceiling "
        f"--stores {args.stores} --skus {args.skus} --rounds {args.rounds} "
        f"--partitions {args.partitions}{' --burst' if args.burst else ''}"
        f"{'' if args.webhooks else ' --no-webhooks'}"
        f"{f' --workers {args.workers}' if args.workers > 1 else ''}"
    )


if __name__ == "__main__":
    main()
