"""Benchmarks of tillsync and its simulators; ``python -m bench`` runs them all (BENCHMARKS.md).

What the stock benches share lives here: the demo settings, their common options and work dir,
a harness started the way the end-to-end tests start it, Kafka produce and offset helpers, and
reading the worker's /metrics.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from tillsync.schemas.settings import Settings, load_settings
from tillsync_sim.metrics_text import buckets, sample
from tillsync_sim.scenario.harness import Harness
from tillsync_sim.scenario.network import NetworkSpec

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"


def settings(bootstrap: str) -> Settings:
    # the simulators' own credentials: the same file the demo and the e2e tests use
    os.environ.setdefault("TILLSYNC_CONFIG", str(ROOT / "config" / "demo.toml"))
    return load_settings(kafka_bootstrap=bootstrap)


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{os.cpu_count()} cores ({platform.machine()}, Python {platform.python_version()}), "
        f"load average {load:.2f} at start"
    )


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """--bootstrap and --keep, which every stock bench takes."""
    parser.add_argument("--bootstrap", default=DEFAULT_BOOTSTRAP)
    parser.add_argument("--keep", action="store_true", help="keep the work dir (worker log)")


@contextmanager
def work_dir(name: str, keep: bool) -> Iterator[Path]:
    """A fresh directory for one run (worker data and log), removed afterwards unless kept."""
    path = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    try:
        yield path
    finally:
        if keep:
            print(f"work dir kept: {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def harness(
    bootstrap: str,
    spec: NetworkSpec,
    work_dir: Path,
    *,
    partitions: int = 4,
    worker_env: dict[str, str] | None = None,
    plan: str = "standard",
) -> Harness:
    return Harness(
        settings(bootstrap),
        spec,
        work_dir,
        partitions=partitions,
        worker_env=dict(worker_env or {}),
        plan=plan,
    )


async def produce(
    bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes]], linger_ms: int = 20
) -> int:
    """Send (key, value) records without awaiting each one: the producer batches them."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=linger_ms, max_batch_size=1 << 20
    )
    await producer.start()
    sent = 0
    try:
        pending: list[asyncio.Future[object]] = []
        for key, value in records:
            pending.append(await producer.send(topic, value=value, key=key))
            sent += 1
            if len(pending) >= 5_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent


async def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
        return {tp.partition: off for tp, off in ends.items()}
    finally:
        await consumer.stop()


# the bench scripts' names for the shared /metrics reader (tillsync_sim.metrics_text)
metric = sample
histogram = buckets


def quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """Prometheus-style histogram_quantile: linear inside the bucket that holds the rank.

    Not ``tillsync_sim.metrics_text.quantile`` (a bucket's upper bound, as the demo shows it): the
    sync latencies bench/oversell.py reports (BENCHMARKS.md) are read with this interpolation."""
    if not buckets or buckets[-1][1] == 0:
        return float("nan")
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return lower


async def worker_metrics(http: httpx.AsyncClient, worker_url: str) -> str:
    return (await http.get(f"{worker_url}/metrics")).text


def cpu_seconds(pid: int | None) -> float:
    """utime + stime of a process and its waited-for children, from /proc (0 if unknown)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def machine_cpu_seconds() -> float:
    """CPU time the whole machine spent busy (every core, every process), from /proc/stat."""
    try:
        fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self.started
