"""ShopifyClient against the simulator over real HTTP: helpers, pacing and retries."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

import pytest

from tillsync.connectors.outcomes import Outcome, WaitReason
from tillsync.connectors.retry import RetryPolicy
from tillsync.connectors.shopify.budget import Priority
from tillsync.connectors.shopify.client import (
    SetQuantityEntry,
    ShopifyClient,
    ShopifyConfig,
    ShopifyError,
)
from tillsync.schemas.settings import Settings
from tillsync.streams.stock.reads import read_available
from tillsync_sim.shopify import ManualClock, ShopifySimulator

from .conftest import ids


def _config(settings: Settings, url: str, *, attempts: int = 8, **kw: Any) -> ShopifyConfig:
    s = settings.model_copy(update={"shopify_url": url})
    fast = RetryPolicy(attempts=attempts, base=0.02, cap=0.2, max_server_wait=0.2)
    return replace(ShopifyConfig.from_settings(s), retry=fast, **kw)


def _client(
    sim: ShopifySimulator,
    settings: Settings,
    *,
    attempts: int = 8,
    max_throttled_seconds: float = 300.0,
    **kw: Any,
) -> ShopifyClient:
    assert sim.base_url is not None
    config = _config(
        settings, sim.base_url, attempts=attempts, max_throttled_seconds=max_throttled_seconds
    )
    return ShopifyClient(config, **kw)


async def test_set_quantities_reports_stale_entries(
    sim: ShopifySimulator, client: ShopifyClient
) -> None:
    known = ids(sim)
    store = known["locations"]["Store Stockholm"]
    shirt_s = known["variants"]["SHIRT-S"]["inventory_item_id"]
    shirt_m = known["variants"]["SHIRT-M"]["inventory_item_id"]
    result = await client.set_quantities(
        [SetQuantityEntry(shirt_s, store, 6, 10), (shirt_m, store, 1, 99)],
        reason="correction",
        reference_uri="gid://tillsync/Sync/1",
        idempotency_key="c-1",
    )
    assert not result.ok
    assert [e.entry.inventory_item_id for e in result.stale] == [shirt_m]
    assert result.entries[1].error is not None
    assert result.entries[1].error.code == "CHANGE_FROM_QUANTITY_STALE"
    before = time.time()
    ok = await client.set_quantities(
        [SetQuantityEntry(shirt_s, store, 6, 10), (shirt_m, store, 1, 4)],
        reason="correction",
        reference_uri="gid://tillsync/Sync/1",
        idempotency_key="c-2",
    )
    assert ok.ok and ok.group_id
    assert [e.quantity_after for e in ok.entries] == [6, 1]
    # Shopify's stamp of the write (to the second) is what its webhooks are compared with
    assert ok.created_at is not None and int(before) <= ok.created_at <= time.time()


async def test_bulk_inventory_export(sim: ShopifySimulator, client: ShopifyClient) -> None:
    sim.resolvers.bulk_delay_seconds = 0.05  # RUNNING first, then COMPLETED
    before = time.time()
    export = await client.bulk_inventory_export(poll_interval=0.02, timeout=5)
    # Shopify's createdAt: every level was read at or after it (to the second)
    assert export.started_at is not None and int(before) <= export.started_at <= time.time()
    lines = export.lines
    items = {ln["id"]: ln for ln in lines if "__parentId" not in ln}
    levels = [ln for ln in lines if "__parentId" in ln]
    assert {i["sku"] for i in items.values()} == {"SHIRT-S", "SHIRT-M", "SOCKS-1"}
    assert len(levels) == 4
    assert all(lv["__parentId"] in items for lv in levels)
    quantities = {q["name"]: q["quantity"] for q in levels[0]["quantities"]}
    assert set(quantities) == {"available", "on_hand", "committed"}


async def test_two_bulk_exports_at_once_both_complete(
    sim: ShopifySimulator, client: ShopifyClient
) -> None:
    """Shopify runs one bulk query per app at a time, and `currentBulkOperation` names only the
    newest: two workers starting together must each wait their turn and read their own."""
    sim.resolvers.bulk_delay_seconds = 0.05
    first, second = await asyncio.gather(
        client.bulk_inventory_export(poll_interval=0.02, timeout=5),
        client.bulk_inventory_export(poll_interval=0.02, timeout=5),
    )
    assert first.lines == second.lines and len(first.lines) == 3 + 4
    assert len(sim.resolvers.bulk_operations) == 2


async def test_retries_throttled(
    manual_sim: ShopifySimulator, settings: Settings, clock: ManualClock
) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)

    calls: list[tuple[str, str]] = []
    async with _client(
        manual_sim,
        settings,
        sleep=sleep,
        monotonic=clock.monotonic,
        on_call=lambda platform, outcome, _: calls.append((platform, outcome)),
    ) as c:
        manual_sim.bucket.drain()
        await c.execute("{ shop { id } }")
    assert c.stats.calls == {Outcome.THROTTLED: 1, Outcome.OK: 1}
    assert calls == [("shopify", "throttled"), ("shopify", "ok")]
    # the wait is the deficit over the restore rate (1 point at 100/s) plus a small margin,
    # not a blind backoff
    assert waits == [pytest.approx(0.01 + 0.05)]
    assert c.stats.throttle_wait_seconds == pytest.approx(0.06)


async def test_each_answer_reports_its_documents_points(
    manual_sim: ShopifySimulator, settings: Settings, clock: ManualClock
) -> None:
    """Which document spends the shop's bucket: requested before, actual after; a THROTTLED
    answer requested points and spent none."""

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    costs: list[tuple[str, float, float]] = []
    async with _client(
        manual_sim,
        settings,
        sleep=sleep,
        monotonic=clock.monotonic,
        on_cost=lambda name, requested, actual: costs.append((name, requested, actual)),
    ) as c:
        manual_sim.bucket.drain()
        await c.execute("query ShopName { shop { id } }")
        await c.execute("{ shop { id } }")
    assert [name for name, _, _ in costs] == ["ShopName", "ShopName", "anonymous"]
    throttled, answered, _ = costs
    assert throttled[1] > 0 and throttled[2] == 0
    assert answered[1] == throttled[1] and answered[2] > 0


async def test_a_prepaid_write_waits_for_the_bucket_once(
    manual_sim: ShopifySimulator, settings: Settings, clock: ManualClock
) -> None:
    """The sink waits for its turn, then decides what the call carries: the call itself must
    not wait for the bucket a second time."""
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)

    known = ids(manual_sim)
    store = known["locations"]["Store Stockholm"]
    item = known["variants"]["SHIRT-S"]["inventory_item_id"]
    async with _client(manual_sim, settings, sleep=sleep, monotonic=clock.monotonic) as c:
        entry = SetQuantityEntry(item, store, 6, 10)
        await c.set_quantities(
            [entry], reason="correction", reference_uri=None, idempotency_key="a"
        )
        manual_sim.bucket.drain()
        await c.execute("{ shop { id } }")  # the client learns the bucket is empty
        waits.clear()

        await c.set_quantities_turn()
        paced = list(waits)
        await c.set_quantities(
            [SetQuantityEntry(item, store, 7, 6)],
            reason="correction",
            reference_uri=None,
            idempotency_key="b",
        )
    assert paced and paced[0] > 0  # the turn waited for the points of one write
    assert waits == paced  # the write went at once, and was applied
    assert c.stats.calls.get(Outcome.THROTTLED, 0) == 1  # only the read that found it empty


async def test_paces_before_an_expensive_call(
    manual_sim: ShopifySimulator, settings: Settings, clock: ManualClock
) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)

    expensive = "{ locations(first: 100) { nodes { id } } }"  # requests 2 + 100 = 102
    async with _client(manual_sim, settings, sleep=sleep, monotonic=clock.monotonic) as c:
        await c.execute(expensive)  # learns what the document asks for
        manual_sim.bucket.drain()
        clock.advance(0.1)  # 10 points back
        await c.execute("{ shop { id } }")  # costs 1; the answer says 9 are left
        await c.execute(expensive)
    # waited for exactly the deficit instead of being throttled
    assert waits == [pytest.approx((102 - 9) / 100)]
    assert c.stats.calls[Outcome.THROTTLED] == 0
    assert c.stats.throttle_wait_seconds == pytest.approx(0.93)


async def test_each_call_waits_for_the_bucket_at_its_own_priority(
    sim: ShopifySimulator, client: ShopifyClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # who waits when the bucket is short is the budget's to decide (test_budget.py); what
    # this client must do is tell it, per call, whose call it is
    asked: list[Priority] = []
    acquire = client.budget.acquire

    async def recording(cost: float | None, priority: Priority) -> float:
        asked.append(priority)
        return await acquire(cost, priority)

    monkeypatch.setattr(client.budget, "acquire", recording)
    known = ids(sim)
    store = known["locations"]["Store Stockholm"]
    item = known["variants"]["SHIRT-S"]["inventory_item_id"]
    order = sim.state.place_order([("SHIRT-S", 1)], location_id=int(store.rsplit("/", 1)[-1]))

    await client.order_fulfilment_state(order.id)
    assert set(asked) == {Priority.ORDER_STATE}
    asked.clear()
    await client.set_quantities(
        [SetQuantityEntry(item, store, 3, None)],
        reason="correction",
        reference_uri="gid://tillsync/Sync/1",
        idempotency_key="p-1",
    )
    assert asked == [Priority.STOCK_WRITE]
    asked.clear()
    await read_available(client, int(item.rsplit("/", 1)[-1]), int(store.rsplit("/", 1)[-1]))
    assert asked == [Priority.READ_BACK]
    asked.clear()
    await client.execute("{ shop { id } }")
    assert asked == [Priority.BACKGROUND]


async def test_retries_429_storm(sim: ShopifySimulator, settings: Settings) -> None:
    async with _client(sim, settings) as c:
        sim.set_faults(storm_429_seconds=0.3)
        data = await c.execute("{ shop { id } }")
    assert data["shop"]["id"]
    assert c.stats.calls[Outcome.RATE_LIMITED] >= 1
    # each 429 waits its Retry-After (1 s), cut to the policy's longest server wait
    waited = c.stats.waited[WaitReason.RETRY_AFTER]
    assert waited == pytest.approx(0.2 * c.stats.calls[Outcome.RATE_LIMITED])


async def test_retries_5xx_and_outage(sim: ShopifySimulator, settings: Settings) -> None:
    async with _client(sim, settings) as c:
        sim.set_faults(outage_seconds=0.15)
        assert (await c.execute("{ shop { id } }"))["shop"]
        assert c.stats.calls[Outcome.SERVER_ERROR] >= 1
    assert c.stats.retries == c.stats.calls[Outcome.SERVER_ERROR]


async def test_gives_up_with_reason(sim: ShopifySimulator, settings: Settings) -> None:
    async with _client(sim, settings, attempts=3) as c:
        sim.set_faults(error_rate=1.0)
        with pytest.raises(ShopifyError) as info:
            await c.execute("{ shop { id } }")
    assert info.value.reason == "server_error"
    assert info.value.attempts == 3
    # three answers, two waits: none after the last try
    assert c.stats.calls == {Outcome.SERVER_ERROR: 3}
    assert c.stats.retries == 2


async def test_transport_errors_retry_then_fail(settings: Settings) -> None:
    async with ShopifyClient(_config(settings, "http://127.0.0.1:9", attempts=2)) as c:
        with pytest.raises(ShopifyError) as info:
            await c.execute("{ shop { id } }")
    assert info.value.reason == "transport_error"


async def test_bad_token_is_not_retried(sim: ShopifySimulator, settings: Settings) -> None:
    bad = settings.model_copy(update={"shopify_access_token": None})
    with pytest.raises(Exception, match="shopify_access_token"):
        _client(sim, bad)
    from pydantic import SecretStr

    wrong = settings.model_copy(update={"shopify_access_token": SecretStr("nope")})
    async with _client(sim, wrong) as c:
        with pytest.raises(ShopifyError) as info:
            await c.execute("{ shop { id } }")
    assert info.value.reason == "unauthorized" and info.value.attempts == 1


async def test_graphql_errors_raise(client: ShopifyClient) -> None:
    with pytest.raises(ShopifyError) as info:
        await client.execute("{ shop { nope } }")
    assert info.value.reason == "graphql_error"
    assert info.value.errors[0]["extensions"]["code"] == "undefinedField"


async def test_concurrent_callers_share_the_budget(
    manual_sim: ShopifySimulator, settings: Settings, clock: ManualClock
) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)

    doc = "{ shop { id } }"
    async with _client(manual_sim, settings, sleep=sleep, monotonic=clock.monotonic) as c:
        await c.execute(doc)
        manual_sim.bucket.drain()
        clock.advance(0.03)  # 3 points back
        await c.execute(doc)  # the answer says 2 are left
        await asyncio.gather(*(c.execute(doc) for _ in range(4)))
    # two calls fit in what is left; the next two wait a point's worth (10 ms) each instead of
    # hitting THROTTLED
    assert c.stats.calls[Outcome.THROTTLED] == 0
    assert waits == [pytest.approx(0.01), pytest.approx(0.01)]


async def test_throttled_does_not_use_up_attempts(
    manual_sim: ShopifySimulator, settings: Settings, clock: ManualClock
) -> None:
    # other callers of the same shop take the points back each time this one waits
    turned_away = 5

    async def sleep(seconds: float) -> None:
        nonlocal turned_away
        clock.advance(seconds)
        if turned_away > 1:
            manual_sim.bucket.drain()
        turned_away -= 1

    async with _client(
        manual_sim, settings, attempts=2, sleep=sleep, monotonic=clock.monotonic
    ) as c:
        manual_sim.bucket.drain()
        assert (await c.execute("{ shop { id } }"))["shop"]["id"]
    assert c.stats.calls[Outcome.THROTTLED] == 5
    assert c.stats.retries == 0


async def test_throttled_gives_up_after_its_deadline(
    manual_sim: ShopifySimulator, settings: Settings, clock: ManualClock
) -> None:
    async def sleep(seconds: float) -> None:
        clock.advance(seconds + 10.0)  # nothing ever refills in time
        manual_sim.bucket.drain()

    async with _client(
        manual_sim,
        settings,
        attempts=2,
        max_throttled_seconds=30.0,
        sleep=sleep,
        monotonic=clock.monotonic,
    ) as c:
        manual_sim.bucket.drain()
        with pytest.raises(ShopifyError) as info:
            await c.execute("{ shop { id } }")
    assert info.value.reason == "throttled"
    # the first two waits (~10 s each) end inside the 30 s deadline and cost no attempt; the
    # third ends past it, so it and the next use up the two attempts
    assert c.stats.calls[Outcome.THROTTLED] == 4
    assert info.value.attempts == 2


async def test_the_budgets_wait_limit_is_a_setting(settings: Settings) -> None:
    s = settings.model_copy(update={"shopify_budget_max_wait": 5.0})
    async with ShopifyClient(ShopifyConfig.from_settings(s)) as c:
        assert c.budget.max_wait == 5.0
