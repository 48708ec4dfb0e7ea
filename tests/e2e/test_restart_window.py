"""End to end: online orders placed while the worker comes back from a SIGKILL all reach it.

Real broker, the worker as its own process, both simulators over HTTP. The worker is SIGKILLed
and started again at once; orders are placed all through its start, their webhooks answered by
the new process's receiver as soon as it listens (Shopify retries the ones refused before).
Each must end with a track in the order flow, holding its units.

Two causes of lost orders were found with it. A fresh-clone CI run of the lifecycle e2e lost
the order webhooks of the first second after a restart: Faust skips, and acknowledges, a record
a stream takes while the flow is stopped, and that agent waited for the stock flow's start
before it read its stream (agents now read first and wait with the records in hand). Two
fresh-clone runs of this test then lost 60 and 4 orders placed in the first worker's first
seconds. In the second run's Kafka data each ``orders/create`` sat below a committed offset
while its order had no track. The ``orders/paid`` after it had been acknowledged at once, and
Faust committed past the create still waiting for its read, on a partition with no commit yet or one
record behind its commit (``tillsync.streams.commit_floor``, and its unit test
``tests/streams/test_commit_floor.py``, which fails without it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from tests.e2e.conftest import started
from tests.support.waiting import async_wait_until
from tillsync_sim.scenario.harness import Harness
from tillsync_sim.scenario.network import NetworkSpec

pytestmark = pytest.mark.kafka

ORDERS_PER_SECOND = 10
PLACING_SECONDS = 20.0


async def test_orders_placed_while_the_worker_restarts_all_reach_its_order_flow(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # as many positions as the lifecycle e2e: the restart recovers their table for seconds
    spec = NetworkSpec(stores=5, skus=1000, min_stock=200, max_stock=300)
    async with started(kafka_bootstrap, spec, tmp_path) as h:
        assert h.shopify is not None and h.network is not None and h.worker is not None
        shopify, network = h.shopify, h.network
        store = network.stores[0]
        placed: list[int] = []

        async def place(seconds: float) -> None:
            began = time.monotonic()
            while time.monotonic() - began < seconds:
                sku = network.skus[len(placed) % len(network.skus)]
                order = shopify.state.place_order([(sku, 1)], location_id=store.shopify_location_id)
                placed.append(order.id)
                await asyncio.sleep(1 / ORDERS_PER_SECOND)

        await place(10.0)  # a running worker first
        assert h.worker.proc is not None
        os.killpg(h.worker.proc.pid, signal.SIGKILL)
        h.worker.proc.wait(10)
        h.start_worker()
        placing = asyncio.create_task(place(PLACING_SECONDS))
        await h.wait_ready(timeout=120)
        await placing

        async def missing() -> list[int]:
            out = []
            for order_id in placed:
                try:
                    track = await h.worker_json(f"/state/orders/{order_id}")
                except Exception:
                    out.append(order_id)
                    continue
                if not track.get("held_at"):
                    out.append(order_id)
            return out

        async def all_there() -> bool:
            return not await missing()

        try:
            await async_wait_until(all_there, 90, interval=1.0, what="every order's track")
        except AssertionError:
            left = await missing()
            raise AssertionError(
                f"{len(left)} of {len(placed)} orders placed around the restart never reached "
                f"the order flow, e.g. {left[:10]}; worker log {h.worker.log_path}"
            ) from None


# under the worker's order read timeout (10 s): a read that times out is left to the sweep
SLOW_READ_MS = 8000


async def test_orders_still_being_read_at_a_sigkill_are_read_after_it(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Each order's ``orders/paid`` is acknowledged at once and its ``orders/create`` only once
    the order is read. With Shopify answering in 8 s every read is still in flight when the
    worker first commits the order webhooks, and it is killed then. Without ``commit_floor``
    that commit passed the creates at the head of each partition (no commit there yet), and
    their orders were never read (3 of 40 in two runs that confirmed it)."""
    spec = NetworkSpec(stores=2, skus=50, min_stock=200, max_stock=300)
    async with started(kafka_bootstrap, spec, tmp_path) as h:
        assert h.shopify is not None and h.network is not None and h.worker is not None
        shopify, network = h.shopify, h.network
        store = network.stores[0]
        shopify.set_faults(latency_ms=SLOW_READ_MS)
        placed = [
            shopify.state.place_order([(sku, 1)], location_id=store.shopify_location_id).id
            for sku in network.skus[:40]
        ]
        group = h.app_id
        topic = f"{h.app_id}.shopify.order-webhooks"
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:

            async def committed() -> bool:
                offsets = await admin.list_consumer_group_offsets(group)
                return any(tp.topic == topic and meta.offset > 0 for tp, meta in offsets.items())

            # With the floor, a partition whose first record is a create commits nothing
            # until its read: should every partition start with one, no commit comes, and the
            # kill at the deadline shows the same.
            with contextlib.suppress(AssertionError):
                await async_wait_until(committed, 7, interval=0.2, what="a commit")
        finally:
            await admin.close()
        assert not [o for o in placed if await _held(h, o)], "a read ended before the kill"
        assert h.worker.proc is not None
        os.killpg(h.worker.proc.pid, signal.SIGKILL)
        h.worker.proc.wait(10)
        shopify.set_faults(latency_ms=0.0)
        h.start_worker()
        await h.wait_ready(timeout=120)

        async def all_held() -> bool:
            return all([await _held(h, o) for o in placed])

        try:
            await async_wait_until(all_held, 90, interval=1.0, what="every order's track")
        except AssertionError:
            left = [o for o in placed if not await _held(h, o)]
            raise AssertionError(
                f"{len(left)} of {len(placed)} orders read slowly at the SIGKILL were never read "
                f"after it, e.g. {left[:10]}; worker log {h.worker.log_path}"
            ) from None


async def _held(h: Harness, order_id: int) -> bool:
    try:
        track = await h.worker_json(f"/state/orders/{order_id}")
    except Exception:
        return False
    return bool(track.get("held_at"))
