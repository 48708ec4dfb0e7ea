"""ShopifyClient against the simulator over real HTTP: helpers, pacing and retries."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tillsync.connectors.shopify.client import (
    AdjustChange,
    SetQuantityEntry,
    ShopifyClient,
    ShopifyError,
)
from tillsync.schemas.settings import Settings
from tillsync_sim.shopify import ManualClock, ShopifySimulator

from .conftest import ids


def _client(sim: ShopifySimulator, settings: Settings, **kw: Any) -> ShopifyClient:
    s = settings.model_copy(update={"shopify_url": sim.base_url})
    kw.setdefault("backoff_base", 0.02)
    kw.setdefault("backoff_cap", 0.2)
    kw.setdefault("max_retry_after", 0.2)
    return ShopifyClient(s, **kw)


async def test_locations_and_variants(sim: ShopifySimulator, client: ShopifyClient) -> None:
    locations = await client.locations()
    assert [loc.name for loc in locations] == ["Store Stockholm", "Warehouse"]
    refs = await client.variants_by_skus(["SHIRT-S", "SOCKS-1", "UNKNOWN"])
    known = ids(sim)["variants"]
    assert set(refs) == {"SHIRT-S", "SOCKS-1"}
    assert refs["SHIRT-S"].inventory_item_id == known["SHIRT-S"]["inventory_item_id"]
    assert refs["SHIRT-S"].variant_id == known["SHIRT-S"]["variant_id"]
    assert client.stats.calls == 2 and client.stats.errors == 0


async def test_inventory_levels(sim: ShopifySimulator, client: ShopifyClient) -> None:
    item = ids(sim)["variants"]["SHIRT-S"]["inventory_item_id"]
    levels = {lv.location_id: lv.quantities for lv in await client.inventory_levels(item)}
    store = ids(sim)["locations"]["Store Stockholm"]
    assert levels[store]["available"] == 10
    assert levels[store]["on_hand"] == 10
    assert set(levels[store]) == {
        "available",
        "on_hand",
        "committed",
        "reserved",
        "damaged",
        "safety_stock",
        "quality_control",
        "incoming",
    }


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


async def test_adjust_and_activate(sim: ShopifySimulator, client: ShopifyClient) -> None:
    known = ids(sim)
    wh = known["locations"]["Warehouse"]
    item = known["variants"]["SHIRT-M"]["inventory_item_id"]
    activated = await client.activate(item, wh, available=2)
    assert activated.ok
    adjusted = await client.adjust_quantities(
        [AdjustChange(item, wh, 3)],
        reason="received",
        reference_uri=None,
        idempotency_key="adj-1",
    )
    assert adjusted.ok
    [level] = [lv for lv in await client.inventory_levels(item) if lv.location_id == wh]
    assert level.quantities["available"] == 5


async def test_bulk_inventory_export(sim: ShopifySimulator, client: ShopifyClient) -> None:
    sim.resolvers.bulk_delay_seconds = 0.05  # RUNNING first, then COMPLETED
    lines = await client.bulk_inventory_export(poll_interval=0.02, timeout=5)
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
    assert first == second and len(first) == 3 + 4
    assert len(sim.resolvers.bulk_operations) == 2


async def test_orders_refunds_customers(sim: ShopifySimulator, client: ShopifyClient) -> None:
    store = ids(sim)["locations"]["Store Stockholm"]
    order = sim.state.place_order(
        [("SHIRT-S", 1)],
        location_id=int(store.rsplit("/", 1)[1]),
        delivery="PICK_UP",
        email="Loyal@Example.com",
    )
    gid = f"gid://shopify/Order/{order.id}"
    data = await client.order(gid)
    assert data is not None
    fo = data["fulfillmentOrders"]["nodes"][0]
    assert (await client.prepared_for_pickup([fo["id"]])).ok
    assert (await client.create_fulfillment(fo["id"])).ok
    li = fo["lineItems"]["nodes"][0]["lineItem"]["id"]
    refund = await client.create_refund(gid, [(li, 1, "RETURN", store)], idempotency_key="r-1")
    assert refund.ok
    [customer] = await client.customers_by_email("loyal@example.com")
    tagged = await client.add_tags(customer["id"], ["loyalty-gold"])
    assert tagged.ok
    mf = await client.set_metafields(
        [
            {
                "ownerId": customer["id"],
                "namespace": "loyalty",
                "key": "points",
                "value": "120",
                "type": "number_integer",
            }
        ]
    )
    assert mf.ok
    [again] = await client.customers_by_email("loyal@example.com")
    assert again["tags"] == ["loyalty-gold"]
    assert again["metafields"]["nodes"][0]["value"] == "120"
    created = await client.create_customer({"email": "new@example.com", "firstName": "Ny"})
    assert created.ok
    dup = await client.create_customer({"email": "new@example.com"})
    assert not dup.ok and "taken" in dup.user_errors[0].message


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
        on_call=lambda p, o, s: calls.append((p, o)),
    ) as c:
        manual_sim.bucket.drain()
        await c.execute("{ shop { id } }")
    assert c.stats.throttled_retries == 1
    assert calls == [("shopify", "throttled"), ("shopify", "ok")]
    # the wait is the deficit over the restore rate (1 point at 100/s) plus a small margin,
    # not a blind backoff
    assert waits == [pytest.approx(0.01 + 0.05)]
    assert c.stats.throttle_wait_seconds == pytest.approx(0.06)


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
    assert c.stats.throttled_retries == 0
    assert c.stats.throttle_wait_seconds == pytest.approx(0.93)


async def test_retries_429_storm(sim: ShopifySimulator, settings: Settings) -> None:
    async with _client(sim, settings) as c:
        sim.set_faults(storm_429_seconds=0.3)
        data = await c.execute("{ shop { id } }")
    assert data["shop"]["id"]
    assert c.stats.rate_limited_retries >= 1


async def test_retries_5xx_and_outage(sim: ShopifySimulator, settings: Settings) -> None:
    async with _client(sim, settings) as c:
        sim.set_faults(outage_seconds=0.15)
        assert (await c.execute("{ shop { id } }"))["shop"]
        assert c.stats.server_error_retries >= 1


async def test_gives_up_with_reason(sim: ShopifySimulator, settings: Settings) -> None:
    async with _client(sim, settings, max_attempts=3) as c:
        sim.set_faults(error_rate=1.0)
        with pytest.raises(ShopifyError) as info:
            await c.execute("{ shop { id } }")
    assert info.value.reason == "server_error"
    assert info.value.attempts == 3
    assert c.stats.calls == 3 and c.stats.errors == 3


async def test_transport_errors_retry_then_fail(settings: Settings) -> None:
    s = settings.model_copy(update={"shopify_url": "http://127.0.0.1:9"})
    async with ShopifyClient(s, max_attempts=2, backoff_base=0.01) as c:
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
    assert c.stats.throttled_retries == 0
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
        manual_sim, settings, max_attempts=2, sleep=sleep, monotonic=clock.monotonic
    ) as c:
        manual_sim.bucket.drain()
        assert (await c.execute("{ shop { id } }"))["shop"]["id"]
    assert c.stats.throttled_retries == 5


async def test_throttled_gives_up_after_its_deadline(
    manual_sim: ShopifySimulator, settings: Settings, clock: ManualClock
) -> None:
    async def sleep(seconds: float) -> None:
        clock.advance(seconds + 10.0)  # nothing ever refills in time
        manual_sim.bucket.drain()

    async with _client(
        manual_sim,
        settings,
        max_attempts=2,
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
    assert c.stats.throttled_retries == 4
    assert info.value.attempts == 2
