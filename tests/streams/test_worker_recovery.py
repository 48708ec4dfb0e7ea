"""A worker killed with SIGKILL comes back with its table state intact and counts nothing twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from tests.support.waiting import wait_until
from tests.support.worker import REPO, WorkerProcess
from tillsync.streams import topics
from tillsync.streams.admin import ensure_topics

pytestmark = pytest.mark.kafka


async def _produce(bootstrap: str, topic: str, n: int, tag: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for i in range(n):
            await producer.send(topic, f'{{"event":"{tag}-{i}"}}'.encode())
        await producer.flush()
    finally:
        await producer.stop()


def test_table_survives_sigkill(kafka_bootstrap: str, app_id: str, tmp_path: Path) -> None:
    partitions = 4
    asyncio.run(ensure_topics(kafka_bootstrap, app_id, partitions))
    env = {
        "TILLSYNC_CONFIG": str(REPO / "config" / "demo.toml"),
        "TILLSYNC_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "TILLSYNC_APP_ID": app_id,
        "TILLSYNC_TOPIC_PARTITIONS": str(partitions),
        "TILLSYNC_WORKER_ID": "worker-1",
    }
    worker = WorkerProcess(env, tmp_path / "data", tmp_path / "worker.log")
    worker.start()
    try:
        sitoo = topics.RAW_SITOO_EVENTS.name(app_id)
        shopify = topics.RAW_SHOPIFY_WEBHOOKS.name(app_id)
        asyncio.run(_produce(kafka_bootstrap, shopify, 300, "a"))
        asyncio.run(_produce(kafka_bootstrap, sitoo, 20_000, "b"))

        # kill it while it is still counting, with offsets and changelog writes in flight
        seen = wait_until(
            lambda: (c := worker.get("/state/raw-counts").get("sitoo.events", 0)) >= 2_000 and c,
            60,
            interval=0.02,
            what="the worker to count part of the stream",
        )
        worker.kill()
        assert seen < 20_000, "the worker finished before it could be killed mid-stream"

        worker.start()
        expected = {"shopify.webhooks": 300, "sitoo.events": 20_000}
        wait_until(
            lambda: worker.get("/state/raw-counts") == expected,
            90,
            what=f"counts to reach {expected} after the restart",
        )

        # the state is the same after a second kill at rest, and new records add to it
        worker.kill()
        worker.start()
        assert worker.get("/state/raw-counts") == expected
        asyncio.run(_produce(kafka_bootstrap, shopify, 50, "c"))
        expected["shopify.webhooks"] = 350
        wait_until(lambda: worker.get("/state/raw-counts") == expected, 60, what="new records")
        # metrics live in the process: this one has seen at least the 50 sent since it began
        metrics = httpx.get(f"{worker.url}/metrics", timeout=5).text
        line = f'tillsync_events_in_total{{topic="{shopify}"}} '
        counted = [float(x[len(line) :]) for x in metrics.splitlines() if x.startswith(line)]
        assert counted and counted[0] >= 50
    except BaseException:
        print(worker.tail())
        raise
    finally:
        worker.stop()
