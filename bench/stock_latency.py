"""Sync latency of the stock flow at a steady rate, with Shopify answering in ~50 ms.

A worker runs against both simulators (a store network of ``--stores`` x ``--skus``, Plus plan
so that the cost bucket is not what is measured, every API call delayed ``--shopify-ms``, and
Shopify's inventory webhooks on). Once its first sync is done, canonical Sitoo stock levels
are produced into ``<app_id>.stock.events`` at ``--rate`` per second for ``--seconds``, each a
new total for a random position, stamped with the time it was sent. Latency is read back from
Kafka afterwards, exactly: for every confirmed write (a ``WriteResult``), its confirmation time
less the send time of the newest level it carried (coalesced levels count once, as the write
that covered them).

Baselines from the same run: the floor, one Shopify call as the worker's client sees it at that
delay, and what a connector copying stock every 15 minutes gives on average (half its period).

    .venv/bin/python -m bench.stock_latency
    .venv/bin/python -m bench.stock_latency --rate 1000 --seconds 30 --shopify-ms 50
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench import (
    add_common_args,
    cpu_seconds,
    machine,
    machine_cpu_seconds,
    own_cpu_seconds,
    settings,
    work_dir,
)
from tillsync.connectors.shopify.client import ShopifyClient, ShopifyConfig
from tillsync.schemas.events import SitooLevel, WriteResult, stock_events
from tillsync.streams import topics
from tillsync.streams.admin import ensure_topics
from tillsync_sim.scenario.harness import Harness
from tillsync_sim.scenario.network import NetworkSpec

TARGET_P99 = 1.5
POLLING_PERIOD = 15 * 60.0
FIRST_VERSION = 10_000_000  # newer than any warehouse transaction of the simulator


def _q(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _first_sync(h: Harness, total: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = await h.stock_state()
        if state["positions"] >= total and state["in_flight"] == 0:
            return
        await asyncio.sleep(0.5)
    raise SystemExit(f"the first sync did not finish in {timeout:.0f}s")


async def _send_steadily(
    bootstrap: str, topic: str, skus: list[str], warehouses: list[int], rate: float, seconds: float
) -> int:
    rng = random.Random(7)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2)
    await producer.start()
    sent = 0
    began = time.monotonic()
    try:
        while (elapsed := time.monotonic() - began) < seconds:
            due = int(elapsed * rate)
            while sent < due:
                sent += 1
                sku, wid = rng.choice(skus), rng.choice(warehouses)
                level = SitooLevel(
                    sku=sku,
                    warehouse_id=wid,
                    total=rng.randint(3, 30),
                    version=FIRST_VERSION + sent,
                    event_time=time.time(),
                    delta=1,
                )
                await producer.send(topic, level.model_dump_json().encode(), key=sku.encode())
            await asyncio.sleep(0.005)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def _read_back(bootstrap: str, topic: str, partitions: int) -> list[float]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    sent_at: dict[tuple[str, int], float] = {}  # (sku, version) -> send time
    results: list[WriteResult] = []
    try:
        parts = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        for tp in parts:
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000, max_records=10_000)
                for record in batch.get(tp, []):
                    for ev in stock_events(record.value):
                        if isinstance(ev, SitooLevel) and ev.version > FIRST_VERSION:
                            sent_at[(ev.sku, ev.version)] = ev.event_time
                        elif isinstance(ev, WriteResult) and ev.ok:
                            results.append(ev)
    finally:
        await consumer.stop()
    return [
        r.at - sent_at[(r.sku, r.sitoo_version)]
        for r in results
        if (r.sku, r.sitoo_version) in sent_at
    ]


async def _call_floor(h: Harness) -> float:
    assert h.shopify is not None
    s = settings(h.settings.kafka_bootstrap).model_copy(
        update={"shopify_url": h.worker_env["TILLSYNC_SHOPIFY_URL"]}
    )
    times = []
    async with ShopifyClient(ShopifyConfig.from_settings(s)) as client:
        for _ in range(10):
            began = time.monotonic()
            await client.execute("{ shop { id } }")
            times.append(time.monotonic() - began)
    return _q(times, 0.5)


async def run(args: argparse.Namespace, work: Path) -> None:
    spec = NetworkSpec(stores=args.stores, skus=args.skus, buffer=1)
    h = Harness(settings(args.bootstrap), spec, work, partitions=args.partitions, plan="plus")
    await h.start_simulators()
    assert h.shopify is not None and h.network is not None
    try:
        await ensure_topics(args.bootstrap, h.app_id, args.partitions)
        h.start_worker()
        for _ in range(args.workers - 1):
            h.add_worker()
        await h.wait_ready(timeout=180)
        await _first_sync(h, args.stores * args.skus, timeout=300)
        h.shopify.set_faults(latency_ms=args.shopify_ms)
        floor = await _call_floor(h)
        pids = [w.proc.pid for w in h.workers if w.proc is not None]
        cpu0 = [cpu_seconds(pid) for pid in pids]
        own0, machine0 = own_cpu_seconds(), machine_cpu_seconds()
        topic = topics.STOCK_EVENTS.name(h.app_id)
        began = time.monotonic()
        sent = await _send_steadily(
            args.bootstrap,
            topic,
            h.network.skus,
            [s.sitoo_warehouse_id for s in h.network.stores],
            args.rate,
            args.seconds,
        )
        rate = sent / (time.monotonic() - began)
        # then let the last writes land
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (await h.stock_state())["in_flight"] == 0:
                break
            await asyncio.sleep(0.5)
        window = time.monotonic() - began
        cpu = [cpu_seconds(pid) - c0 for pid, c0 in zip(pids, cpu0, strict=True)]
        own, busy = own_cpu_seconds() - own0, machine_cpu_seconds() - machine0
        latencies = await _read_back(args.bootstrap, topic, args.partitions)
    finally:
        await h.stop()
    p50, p99 = _q(latencies, 0.5), _q(latencies, 0.99)
    print(
        f"sent {sent:,} Sitoo levels at {rate:,.0f}/s for {args.seconds:.0f}s over "
        f"{args.stores} x {args.skus} positions; Shopify answering in {args.shopify_ms:.0f} ms"
    )
    print(
        f"stock sync latency, send to confirmed Shopify write: p50 {p50:.3f}s, "
        f"p90 {_q(latencies, 0.9):.3f}s, p99 {p99:.3f}s, max {max(latencies):.3f}s "
        f"over {len(latencies):,} writes (target p99 <= {TARGET_P99}s) "
        f"{'MET' if p99 <= TARGET_P99 else 'NOT MET'}"
    )
    print(
        f"baselines: one Shopify call {floor:.3f}s (the floor); a 15-minute copy "
        f"{POLLING_PERIOD / 2:.0f}s on average, {POLLING_PERIOD:.0f}s at worst"
    )
    cores = os.cpu_count() or 1
    print(
        f"CPU over the {window:.0f}s of sending and draining: worker{'s' if len(cpu) > 1 else ''} "
        f"{' + '.join(f'{c:.1f}s' for c in cpu)}, bench process (simulators, sender) {own:.1f}s, "
        f"whole machine busy {busy:.1f}s of {cores * window:.0f}s ({busy / (cores * window):.0%} "
        f"of {cores} cores; the rest is mostly the broker)"
    )
    print(
        "reproduce: .venv/bin/python -m bench.stock_latency "
        f"--rate {args.rate:.0f} --seconds {args.seconds:.0f} --shopify-ms {args.shopify_ms:.0f} "
        f"--stores {args.stores} --skus {args.skus}"
        f"{f' --workers {args.workers}' if args.workers > 1 else ''}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1_000.0, help="Sitoo levels per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--shopify-ms", type=float, default=50.0, help="added to every call")
    parser.add_argument("--stores", type=int, default=5)
    parser.add_argument("--skus", type=int, default=1_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="workers of the deployment, sharing its partitions",
    )
    add_common_args(parser)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with work_dir("latency", args.keep) as work:
        asyncio.run(run(args, work))


if __name__ == "__main__":
    main()
