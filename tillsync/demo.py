"""`tillsync demo`: a worker on the local broker, fed events, with a live line of what it did."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import click
import httpx
from aiokafka import AIOKafkaProducer

from streams import topics
from streams.admin import ensure_topics
from tillsync.procs import Child
from tillsync.settings import Settings


async def _feed(settings: Settings, n: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=5)
    await producer.start()
    try:
        name = topics.RAW_SITOO_EVENTS.name(settings.app_id)
        for i in range(n):
            await producer.send(name, f'{{"demo": {i}}}'.encode())
        await producer.flush()
    finally:
        await producer.stop()


def run(settings: Settings, events: int, log_dir: Path) -> None:
    asyncio.run(ensure_topics(settings.kafka_bootstrap, settings.app_id, settings.topic_partitions))
    worker = Child("worker", ["worker"], log_dir, {})
    url = f"http://{settings.web_host}:{settings.web_port}"
    click.echo(f"starting a worker (log: {worker.log_path})")
    worker.start()
    try:
        worker.wait_http(f"{url}/health", timeout=90)
        before = httpx.get(f"{url}/state/raw-counts").json().get("sitoo.events", 0)
        click.echo(f"worker ready; sending {events} events")
        asyncio.run(_feed(settings, events))
        began = time.monotonic()
        while True:
            done = httpx.get(f"{url}/state/raw-counts").json().get("sitoo.events", 0) - before
            click.echo(f"\rprocessed {done}/{events}", nl=False)
            if done >= events:
                break
            if time.monotonic() - began > 60:
                raise click.ClickException("the worker did not process the events within 60s")
            time.sleep(0.2)
        click.echo(f"\nall {events} events processed in {time.monotonic() - began:.2f}s")
    finally:
        worker.stop()
