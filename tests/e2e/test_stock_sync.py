"""End to end: real broker, the worker as its own process, both simulators over real HTTP.

Nothing here mocks Kafka or HTTP. The simulators run in the test's process; the worker reaches
them, and they reach the worker, only through HTTP.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from connectors.scenario.driver import Driver, mismatches
from connectors.scenario.harness import Harness
from connectors.scenario.network import NetworkSpec
from tests.support.waiting import async_wait_until
from tests.support.worker import REPO
from tillsync.settings import load_settings

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]


@pytest.fixture
async def harness(
    kafka_bootstrap: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Harness]:
    os.environ["TILLSYNC_CONFIG"] = str(REPO / "config" / "demo.toml")
    spec: NetworkSpec = getattr(request, "param", NetworkSpec(stores=3, skus=200, buffer=1))
    h = Harness(load_settings(kafka_bootstrap=kafka_bootstrap), spec, tmp_path)
    await h.start_simulators()
    h.start_worker()
    try:
        await h.wait_ready()
        yield h
    except BaseException:
        if h.worker is not None:
            print(h.worker.log_path.read_text(errors="replace")[-5000:])
        raise
    finally:
        await h.stop()


async def _converged(h: Harness, timeout: float) -> None:
    async def done() -> bool:
        return not mismatches(h.network, h.shopify, h.sitoo)  # type: ignore[arg-type]

    try:
        await async_wait_until(done, timeout, interval=0.25, what="Shopify to equal the targets")
    except AssertionError:
        off = mismatches(h.network, h.shopify, h.sitoo)  # type: ignore[arg-type]
        raise AssertionError(f"{len(off)} positions differ, e.g. {list(off.items())[:5]}") from None


async def test_scenario_with_faults_and_a_sigkill_ends_exact(harness: Harness) -> None:
    h = harness
    assert h.shopify is not None and h.sitoo is not None and h.network is not None
    h.shopify.set_faults(webhook_duplicate_rate=0.1, webhook_reorder_rate=0.1)
    h.sitoo.set_faults(event_duplicate_rate=0.1)
    driver = Driver(h.network, h.shopify, h.sitoo, seed=3)
    await driver.play(800, rate=200)
    # the worker dies with writes, offsets and changelog records in flight
    assert h.worker is not None and h.worker.proc is not None
    os.killpg(h.worker.proc.pid, signal.SIGKILL)
    h.worker.proc.wait(10)
    await driver.play(1_600, rate=200)  # the platforms go on while tillsync is down
    h.shopify.set_faults(storm_429_seconds=2.0)
    h.start_worker()
    await h.wait_ready()
    await driver.play(2_400, rate=200)
    await _converged(h, timeout=60)
    assert driver.run.done["online_order"] > 0 and driver.run.done["fulfilment"] > 0
    # every fulfilment from a store became exactly one Move Out in Sitoo
    moves = [
        t for t in h.sitoo.state.transactions_from(1) if (t.externalid or "").startswith("sf-")
    ]
    assert len(moves) == len({t.externalid for t in moves})


async def test_an_admin_edit_is_detected_classified_and_healed(harness: Harness) -> None:
    h = harness
    assert h.shopify is not None and h.network is not None
    await _converged(h, timeout=30)
    store = h.network.stores[0]
    sku = h.network.skus[0]
    h.shopify.state.edit_inventory(sku, store.shopify_location_id, delta=5)
    loop = asyncio.get_running_loop()
    edited_at = loop.time()

    async def healed() -> bool:
        return not mismatches(h.network, h.shopify, h.sitoo)  # type: ignore[arg-type]

    await async_wait_until(healed, h.network.spec.settle_seconds + 5, what="the edit to be healed")
    took = loop.time() - edited_at
    assert took >= h.network.spec.settle_seconds * 0.9, "healed before the settle window"
    text = await _metrics(h)
    assert 'tillsync_drift_detected_total{cause="shopify_edit"} 1.0' in text
    assert "tillsync_drift_healed_total 1.0" in text


async def _metrics(h: Harness) -> str:
    import httpx

    async with httpx.AsyncClient(timeout=5) as http:
        return (await http.get(f"{h.worker_url}/metrics")).text


@pytest.mark.parametrize(
    "harness", [NetworkSpec(stores=2, skus=50, drift_policy="alert")], indirect=True
)
async def test_alert_policy_reports_an_admin_edit_and_leaves_it(harness: Harness) -> None:
    h = harness
    assert h.shopify is not None and h.network is not None
    await _converged(h, timeout=30)
    store = h.network.stores[0]
    sku = h.network.skus[1]
    h.shopify.state.edit_inventory(sku, store.shopify_location_id, delta=4)

    async def reported() -> bool:
        return 'tillsync_drift_detected_total{cause="shopify_edit"} 1.0' in await _metrics(h)

    await async_wait_until(reported, h.network.spec.settle_seconds + 5, what="a drift report")
    off = mismatches(h.network, h.shopify, h.sitoo)
    assert list(off) == [(sku, store.shopify_location_id)]
    assert "tillsync_drift_healed_total 0.0" in await _metrics(h)
