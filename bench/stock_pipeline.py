"""Events per second the stock pipeline takes on one worker, beside raw aiokafka consumption.

A fresh app id gets its topics, then ``--events`` canonical Sitoo stock levels (the JSON the
ledger agent writes, keyed by SKU) are produced into ``<app_id>.stock.events`` before any worker
runs. The baseline is a plain ``AIOKafkaConsumer`` reading them all, with no group and no
decoding; a second one is a Faust agent that only counts them (``bench/faust_noop.py``), the
ceiling the framework itself sets. Then a worker starts against both simulators (a store
network of ``--stores`` x ``--skus``, so every level is a real position with a Shopify
inventory item) and the clock runs from its first stock event to its N-th, read from its
``tillsync_events_in_total`` counter.

Every event raises or lowers Sitoo's total, so every one moves a target and makes a command: the
figure is the position agent with the sink, Shopify's webhooks and the write results sharing
the worker, as in production.

    .venv/bin/python -m bench.stock_pipeline
    .venv/bin/python -m bench.stock_pipeline --events 60000 --stores 5 --skus 2000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench import (
    ROOT,
    add_common_args,
    cpu_seconds,
    end_offsets,
    harness,
    machine,
    metric,
    produce,
    work_dir,
    worker_metrics,
)
from tillsync.schemas.events import SitooLevel
from tillsync.streams import topics
from tillsync.streams.admin import ensure_topics
from tillsync_sim.scenario.network import NetworkSpec

TARGET_RATIO = 0.25
# newer than any warehouse transaction the simulator has, so that no level is taken as stale
FIRST_VERSION = 10_000_000


@dataclass
class Result:
    events: int
    seconds: float
    worker_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("nan")


def levels(skus: list[str], warehouses: list[int], n: int, seed: int) -> list[tuple[bytes, bytes]]:
    rng = random.Random(seed)
    now = time.time()
    out: list[tuple[bytes, bytes]] = []
    i = 0
    while len(out) < n:
        for wid in warehouses:
            for sku in skus:
                if len(out) >= n:
                    break
                i += 1
                delta = rng.choice([-2, -1, 1, 2, 3])
                ev = SitooLevel(
                    sku=sku,
                    warehouse_id=wid,
                    total=max(0, 10 + (i % 7) + delta),
                    version=FIRST_VERSION + i,
                    event_time=now,
                    delta=delta,
                )
                out.append((sku.encode(), ev.model_dump_json().encode()))
    return out


async def raw_consume(bootstrap: str, topic: str, ends: dict[int, int]) -> Result:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 << 20,
        fetch_max_bytes=16 << 20,
    )
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in ends]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        wanted = sum(ends.values())
        seen = 0
        began = time.monotonic()
        while seen < wanted:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in batch.values():
                seen += len(records)
        return Result(seen, time.monotonic() - began)
    finally:
        await consumer.stop()


def faust_noop(bootstrap: str, topic: str, events: int) -> Result:
    """A Faust agent that only counts the same records: what the framework itself allows."""
    env = {**os.environ, "TOPIC": topic, "N": str(events), "BOOTSTRAP": bootstrap}
    out = subprocess.run(
        [sys.executable, "-m", "bench.faust_noop", "worker", "-l", "warn", "--without-web"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # Faust's worker sends what is printed to its log, so the line may come on either stream
    found = re.search(r"NOOP (\d+) ([\d.]+) ([\d.]+)", out.stdout + out.stderr)
    if found is None:
        raise SystemExit(f"the no-op Faust agent did not finish:\n{out.stderr[-2000:]}")
    n, seconds, cpu = found.groups()
    return Result(int(n), float(seconds), float(cpu))


async def pipeline(args: argparse.Namespace, work_dir: Path) -> tuple[Result, Result, Result, str]:
    spec = NetworkSpec(stores=args.stores, skus=args.skus, buffer=1)
    h = harness(args.bootstrap, spec, work_dir, partitions=args.partitions)
    await h.start_simulators()
    assert h.network is not None
    try:
        await ensure_topics(args.bootstrap, h.app_id, args.partitions)
        topic = topics.STOCK_EVENTS.name(h.app_id)
        records = levels(
            h.network.skus,
            [s.sitoo_warehouse_id for s in h.network.stores],
            args.events,
            args.seed,
        )
        await produce(args.bootstrap, topic, records)
        ends = await end_offsets(args.bootstrap, topic, args.partitions)
        assert sum(ends.values()) == args.events, ends
        baseline = await raw_consume(args.bootstrap, topic, ends)
        noop = faust_noop(args.bootstrap, topic, args.events)

        h.start_worker()
        await h.wait_ready()
        assert h.worker is not None and h.worker.proc is not None
        pid = h.worker.proc.pid
        label = {"topic": topic}
        async with httpx.AsyncClient(timeout=10.0) as http:
            first: float | None = None
            cpu0 = 0.0
            deadline = time.monotonic() + args.timeout
            while True:
                text = await worker_metrics(http, h.worker_url)
                done = metric(text, "tillsync_events_in_total", **label)
                now = time.monotonic()
                if first is None and done > 0:
                    # the counter moved within the last poll: that poll's time is the start
                    first, cpu0 = now - args.poll / 2, cpu_seconds(pid)
                if done >= args.events:
                    assert first is not None
                    measured = Result(args.events, now - first, cpu_seconds(pid) - cpu0)
                    break
                if now > deadline:
                    raise SystemExit(
                        f"the worker took {int(done)} of {args.events} events in "
                        f"{args.timeout:.0f}s; see {h.worker.log_path}"
                    )
                await asyncio.sleep(args.poll)
            out_text = await worker_metrics(http, h.worker_url)
        return baseline, noop, measured, out_text
    finally:
        await h.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--stores", type=int, default=5)
    parser.add_argument("--skus", type=int, default=2_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--poll", type=float, default=0.25, help="seconds between /metrics reads")
    parser.add_argument("--timeout", type=float, default=150.0)
    add_common_args(parser)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with work_dir("pipeline", args.keep) as tmp:
        baseline, noop, measured, text = asyncio.run(pipeline(args, tmp))
    ratio = measured.rate / baseline.rate
    print(
        f"raw aiokafka consumer: {baseline.rate:,.0f} events/s "
        f"({baseline.events} in {baseline.seconds:.2f}s)"
    )
    print(
        f"no-op Faust agent (counts only): {noop.rate:,.0f} events/s ({noop.events} in "
        f"{noop.seconds:.2f}s, CPU {noop.worker_cpu:.1f}s): the framework's ceiling here"
    )
    print(
        f"stock pipeline, 1 worker: {measured.rate:,.0f} events/s "
        f"({measured.events} in {measured.seconds:.1f}s; worker CPU {measured.worker_cpu:.1f}s "
        f"=> {measured.events / max(measured.worker_cpu, 1e-9):,.0f} events per CPU-second)"
    )
    print(
        f"ratio to raw aiokafka: {ratio:.4f} (target >= {TARGET_RATIO}) "
        f"{'MET' if ratio >= TARGET_RATIO else 'NOT MET'}; to the no-op Faust agent: "
        f"{measured.rate / noop.rate:.2f}"
    )
    commands = metric(text, "tillsync_events_out_total", topic="shopify.inventorySetQuantities")
    print(f"meanwhile the sink wrote {commands:,.0f} quantities to Shopify")
    print(
        "reproduce: .venv/bin/python -m bench.stock_pipeline "
        f"--events {args.events} --stores {args.stores} --skus {args.skus} "
        f"--partitions {args.partitions}"
    )


if __name__ == "__main__":
    main()
