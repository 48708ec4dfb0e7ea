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

import httpx
import pytest
from click.testing import CliRunner

from tests.e2e.conftest import converged, started
from tests.support.waiting import async_wait_until
from tillsync.cli import main as cli
from tillsync.schemas.settings import load_settings
from tillsync_sim.metrics_text import sample
from tillsync_sim.scenario.driver import Driver, mismatches
from tillsync_sim.scenario.harness import Harness
from tillsync_sim.scenario.network import NetworkSpec, Store

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]


@pytest.fixture
async def harness(
    kafka_bootstrap: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Harness]:
    spec: NetworkSpec = getattr(request, "param", NetworkSpec(stores=3, skus=200, buffer=1))
    async with started(kafka_bootstrap, spec, tmp_path) as h:
        yield h


async def _quiet(h: Harness) -> None:
    """Converged, every webhook delivered, and the worker has nothing in flight: a clean
    starting point for timing one change."""
    assert h.shopify is not None
    await converged(h, timeout=30)
    await h.shopify.webhooks.drain(30)

    async def idle() -> bool:
        state = await h.worker_json("/state/stock")
        return bool(state["in_flight"] == 0 and state["drifting"] == 0)

    await async_wait_until(idle, 30, what="the worker to be idle")


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
    await converged(h, timeout=60)
    assert driver.run.done["online_order"] > 0 and driver.run.done["fulfilment"] > 0
    await _assert_writes_never_go_back(h)
    # every fulfilment from a store became exactly one Move Out in Sitoo
    moves = [
        t for t in h.sitoo.state.transactions_from(1) if (t.externalid or "").startswith("sf-")
    ]
    assert len(moves) == len({t.externalid for t in moves})


async def test_admin_edits_up_and_down_are_detected_classified_and_healed(
    harness: Harness,
) -> None:
    h = harness
    assert h.shopify is not None and h.network is not None
    await _quiet(h)
    store = h.network.stores[0]
    await _edit_is_healed(h, store, h.network.skus[0], +5)
    # down: no online order is on its way, so it is drift after the usual settle window
    stocked = next(
        sku
        for sku in h.network.skus
        if h.shopify.state.levels[
            (h.shopify.state.item_for(sku).id, store.shopify_location_id)
        ].get("available")
        >= 2
    )
    await _edit_is_healed(h, store, stocked, -2)


async def _edit_is_healed(h: Harness, store: Store, sku: str, delta: int) -> None:
    assert h.shopify is not None and h.network is not None
    before = await _metrics(h)
    h.shopify.state.edit_inventory(sku, store.shopify_location_id, delta=delta)
    loop = asyncio.get_running_loop()
    edited_at = loop.time()
    settle = h.network.spec.settle_seconds

    async def detected() -> bool:
        return _edited(await _metrics(h)) == _edited(before) + 1

    await async_wait_until(detected, settle + 2, interval=0.05, what="the edit to be detected")
    took = loop.time() - edited_at
    assert took >= settle * 0.9, f"called drift after {took:.2f}s, inside the settle window"

    async def healed() -> bool:
        off = mismatches(h.network, h.shopify, h.sitoo)  # type: ignore[arg-type]
        return (sku, store.shopify_location_id) not in off

    try:
        await async_wait_until(healed, 10, what="the edit to be healed")
    except AssertionError:
        print(await h.worker_json(f"/state/stock/{sku}"))
        raise

    # the worker counts the heal when it takes the write's result, which can come a moment
    # after Shopify shows the level: waited for, then exactly one
    async def counted() -> bool:
        return _healed(await _metrics(h)) >= _healed(before) + 1

    await async_wait_until(counted, 5, interval=0.05, what="the heal to be counted")
    assert _healed(await _metrics(h)) == _healed(before) + 1

    # the heal's own write comes back as a webhook, known for its echo (no position update),
    # and is not taken for a second edit
    async def echoed() -> bool:
        return _echoes(await _metrics(h)) > _echoes(before)

    await async_wait_until(echoed, 5, interval=0.05, what="the heal's webhook to be its echo")
    assert _edited(await _metrics(h)) == _edited(before) + 1


def _echoes(text: str) -> float:
    return sample(text, "tillsync_events_ignored_total", reason="echo")


def _edited(text: str) -> float:
    return sample(text, "tillsync_drift_detected_total", cause="shopify_edit")


def _missed(text: str) -> float:
    return sample(text, "tillsync_drift_detected_total", cause="missed_event")


def _healed(text: str) -> float:
    return sample(text, "tillsync_drift_healed_total")


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
    await _quiet(h)
    store = h.network.stores[0]
    sku = h.network.skus[1]
    before = await _metrics(h)
    h.shopify.state.edit_inventory(sku, store.shopify_location_id, delta=4)

    async def reported() -> bool:
        return _edited(await _metrics(h)) == _edited(before) + 1

    await async_wait_until(reported, h.network.spec.settle_seconds + 5, what="a drift report")
    off = mismatches(h.network, h.shopify, h.sitoo)
    assert list(off) == [(sku, store.shopify_location_id)]
    assert _healed(await _metrics(h)) == _healed(before)


async def test_reconcile_finds_a_change_no_event_told_of_and_heals_it(harness: Harness) -> None:
    from tillsync.schemas.locations import load_location_map
    from tillsync.streams.stock.reconcile import reconcile_stock

    h = harness
    assert h.shopify is not None and h.network is not None
    await _quiet(h)
    store = h.network.stores[1]
    sku = h.network.skus[2]
    before = await _metrics(h)
    item = h.shopify.state.item_for(sku)
    level = h.shopify.state.levels[(item.id, store.shopify_location_id)]
    level.set("available", level.get("available") + 7)  # no webhook: an event that was lost
    settings = load_settings(
        kafka_bootstrap=h.settings.kafka_bootstrap,
        app_id=h.app_id,
        shopify_url=h.worker_env["TILLSYNC_SHOPIFY_URL"],
        sitoo_base_url=h.worker_env["TILLSYNC_SITOO_BASE_URL"],
    )
    locations = load_location_map(Path(h.worker_env["TILLSYNC_LOCATIONS_FILE"]))
    said: list[str] = []
    found = await reconcile_stock(
        settings, locations, heal=True, echo=said.append, worker_url=h.worker_url
    )
    assert [(v.sku, v.location_id, v.note) for v in found] == [
        (sku, store.shopify_location_id, "unexplained")
    ]
    assert any("reading Sitoo stock" in line for line in said)  # progress on screen
    await converged(h, timeout=h.network.spec.settle_seconds + 10)
    assert _missed(await _metrics(h)) == _missed(before) + 1


async def _assert_writes_never_go_back(h: Harness) -> None:
    """Read every confirmed write from the stock topic on the broker: per position, the Sitoo
    state each write came from never goes back, and command versions only grow."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from tillsync.schemas.events import WriteResult, stock_events
    from tillsync.streams import topics

    name = topics.STOCK_EVENTS.name(h.app_id)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=h.settings.kafka_bootstrap, enable_auto_commit=False
    )
    await consumer.start()
    try:
        parts = [TopicPartition(name, p) for p in range(h.partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        last: dict[tuple[str, int], tuple[int, int]] = {}
        writes = 0
        for tp in parts:
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                for record in batch.get(tp, []):
                    for ev in stock_events(record.value):
                        if not isinstance(ev, WriteResult) or not ev.ok:
                            continue
                        writes += 1
                        key = (ev.sku, ev.location_id)
                        if key in last:
                            version, sitoo = last[key]
                            assert ev.sitoo_version >= sitoo, f"{key} wrote older Sitoo state"
                            # equal only when a command in flight at the SIGKILL is written again
                            assert ev.version >= version, f"{key} wrote an older command"
                        last[key] = (ev.version, ev.sitoo_version)
        assert writes > 100
    finally:
        await consumer.stop()


async def test_two_workers_share_the_stock_and_learn_new_products_from_either(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Two workers of one deployment split the partitions. A product created in Shopify after
    they started is announced by one webhook, which reaches one worker's agent only, while the
    positions of the twelve new products are spread over both workers. Both must learn every
    one, and every position must end exact."""
    spec = NetworkSpec(stores=3, skus=200, buffer=1)
    async with started(kafka_bootstrap, spec, tmp_path, workers=2) as h:
        assert h.shopify is not None and h.sitoo is not None and h.network is not None
        stores = h.network.stores
        await converged(h, timeout=30)
        per_worker = []
        for url in h.worker_urls:
            async with httpx.AsyncClient(timeout=10.0) as http:
                per_worker.append((await http.get(f"{url}/state/stock")).json()["positions"])
        assert sum(per_worker) == 3 * 200 and all(n > 0 for n in per_worker), per_worker

        new = [f"NEW-{n:02d}" for n in range(12)]
        for sku in new:
            h.shopify.state.add_product(
                f"New {sku}",
                [{"sku": sku, "price": "10.00"}],
                inventory={s.shopify_location_id: 0 for s in stores},
                notify=True,
            )
            h.sitoo.state.add_product(
                {"sku": sku, "title": f"New {sku}", "moneyprice": "10.00", "vatvalue": 25}
            )

        async def every_worker_knows_them() -> bool:
            async with httpx.AsyncClient(timeout=10.0) as http:
                for url in h.worker_urls:
                    state = (await http.get(f"{url}/state/stock")).json()
                    if state["skus_in_shopify"] != 200 + len(new):
                        return False
            return True

        await async_wait_until(every_worker_knows_them, 20, what="both workers to know them")
        for n, sku in enumerate(new):
            for s in stores:
                h.sitoo.state.move_in(s.sitoo_warehouse_id, sku, 3 + (n + s.sitoo_warehouse_id) % 5)
        h.network.skus.extend(new)
        await converged(h, timeout=30)
        written = {
            (sku, s.shopify_location_id): h.shopify.state.levels[
                (h.shopify.state.item_for(sku).id, s.shopify_location_id)
            ].get("available")
            for sku in new
            for s in stores
        }
        # 3-7 units each, less the buffer of 1: every one was written, none left at 0
        assert all(2 <= v <= 6 for v in written.values()), written

        # an operator asks both workers for one SKU: its positions all live on one of them
        def show(*urls: str) -> list[str]:
            args = ["stock", "show", new[0], *(a for u in urls for a in ("--worker", u))]
            result = CliRunner().invoke(cli, args)
            assert result.exit_code == 0, result.output
            return [line for line in result.output.splitlines()[1:] if "Store" in line]

        assert len(await asyncio.to_thread(show, *h.worker_urls)) == len(stores)
        alone = [len(await asyncio.to_thread(show, url)) for url in h.worker_urls]
        assert sorted(alone) == [0, len(stores)], alone
        # and the stock of every product goes on flowing through both workers
        await Driver(h.network, h.shopify, h.sitoo, seed=5).play(600, rate=150)
        await converged(h, timeout=30)
        state = await h.stock_state()
        assert state["positions"] == 3 * (200 + len(new))
