"""The drift schedule: when a check is due, when a read-back is made, and what an outcome of
the position rules asks of it. No broker: real positions stepped by the real rules."""

from __future__ import annotations

from tillsync.schemas.events import (
    DriftCheck,
    DriftState,
    ObservedSource,
    ShopifyObserved,
    SitooLevel,
    WriteResult,
)
from tillsync.schemas.locations import Location
from tillsync.streams.stock.drift_schedule import (
    VERIFY_AFTER,
    DriftScheduler,
    DueCheck,
    ReadBack,
)
from tillsync.streams.stock.position import Outcome, Position, step

LOC = Location(
    name="Store 1",
    shopify_location_id=11,
    sitoo_store_id=1,
    sitoo_warehouse_id=101,
    buffer=2,
    settle_seconds=2.0,
)
KEY = "SKU@11"


def webhook(available: int, at: float) -> ShopifyObserved:
    return ShopifyObserved(
        sku="SKU",
        location_id=11,
        inventory_item_id=7,
        available=available,
        updated_at=at,
        source=ObservedSource.WEBHOOK,
    )


def written(pos: Position, value: int, at: float) -> WriteResult:
    assert pos.in_flight is not None
    return WriteResult(
        sku="SKU",
        location_id=11,
        inventory_item_id=7,
        ok=True,
        target=value,
        written=value,
        version=pos.in_flight.version,
        at=at,
    )


def synced() -> Position:
    """Sitoo has 10, Shopify shows the target 8, and no write is in flight."""
    pos = Position(sku="SKU", location_id=11)
    step(pos, webhook(10, 1.0), LOC, 1.0)
    step(pos, SitooLevel(sku="SKU", warehouse_id=101, total=10, version=1, event_time=2), LOC, 2)
    step(pos, written(pos, 8, 3.0), LOC, 3.0)
    assert pos.in_flight is None and pos.observed == 8
    return pos


def follow(schedule: DriftScheduler, pos: Position, out: Outcome, now: float) -> Outcome:
    schedule.follow(pos.key, pos, out, now)
    return out


def test_a_check_is_due_at_its_time_and_sent_once() -> None:
    schedule = DriftScheduler()
    schedule.schedule(KEY, "SKU", 11, at=12.0)
    assert schedule.due_now(11.9) == []
    assert schedule.due_now(12.0) == [DueCheck(key=KEY, sku="SKU", location_id=11, at=12.0)]
    assert schedule.due_now(20.0) == []
    assert not schedule.is_scheduled(KEY)


def test_a_later_schedule_replaces_the_earlier_one() -> None:
    schedule = DriftScheduler()
    schedule.schedule(KEY, "SKU", 11, at=12.0)
    schedule.schedule(KEY, "SKU", 11, at=15.0)
    assert schedule.due_now(14.0) == []
    assert [c.at for c in schedule.due_now(15.0)] == [15.0]


def test_a_due_check_becomes_the_drift_check_event_of_its_position() -> None:
    check = DueCheck(key=KEY, sku="SKU", location_id=11, at=12.0)
    assert check.drift_check(12.5) == DriftCheck(sku="SKU", location_id=11, at=12.5)


def test_an_edit_in_shopify_is_checked_when_its_settle_window_ends() -> None:
    schedule = DriftScheduler()
    pos = synced()
    follow(schedule, pos, step(pos, webhook(5, 10.0), LOC, 10.0), 10.0)
    assert schedule.due_now(11.99) == []
    assert schedule.due_now(12.0) == [DueCheck(key=KEY, sku="SKU", location_id=11, at=12.0)]


def test_a_check_is_cancelled_when_shopify_agrees_again_before_it_is_due() -> None:
    schedule = DriftScheduler()
    pos = synced()
    follow(schedule, pos, step(pos, webhook(5, 10.0), LOC, 10.0), 10.0)
    assert schedule.is_scheduled(KEY)
    follow(schedule, pos, step(pos, webhook(8, 11.0), LOC, 11.0), 11.0)
    assert schedule.due_now(100.0) == [] and not schedule.open_drift


def test_nothing_is_due_while_the_heal_write_is_in_flight() -> None:
    schedule = DriftScheduler()
    pos = synced()
    follow(schedule, pos, step(pos, webhook(5, 10.0), LOC, 10.0), 10.0)
    [due] = schedule.due_now(12.0)

    out = follow(schedule, pos, step(pos, due.drift_check(12.0), LOC, 12.0), 12.0)
    assert [d.state for d in out.drift] == [DriftState.DETECTED, DriftState.HEALING]
    assert pos.in_flight is not None and schedule.open_drift == {KEY}
    assert schedule.due_now(1e9) == []

    # Shopify moves again while the heal is on its way: the write's result decides, not a check
    follow(schedule, pos, step(pos, webhook(4, 13.0), LOC, 13.0), 13.0)
    assert schedule.due_now(1e9) == [] and schedule.read_backs_ready(1e9) == []

    out = follow(schedule, pos, step(pos, written(pos, 8, 14.0), LOC, 14.0), 14.0)
    assert [d.state for d in out.drift] == [DriftState.HEALED]
    assert not schedule.open_drift and schedule.due_now(1e9) == []


def test_two_webhooks_of_one_second_are_read_back_after_the_settle_window() -> None:
    schedule = DriftScheduler()
    pos = synced()
    out = follow(schedule, pos, step(pos, webhook(5, 10.2), LOC, 10.2), 10.2)
    assert not out.verify and schedule.read_backs_ready(1e9) == []

    out = follow(schedule, pos, step(pos, webhook(4, 10.7), LOC, 10.8), 10.8)
    assert out.verify
    assert schedule.read_backs_ready(10.8 + VERIFY_AFTER - 0.01) == []
    assert schedule.read_backs_ready(10.8 + VERIFY_AFTER) == [
        ReadBack(
            key=KEY,
            sku="SKU",
            location_id=11,
            inventory_item_id=7,
            at=10.8 + VERIFY_AFTER,
            known_at=10.7,
            asked_at=10.8,
        )
    ]


# -- a read-back's reading against Shopify's stamps, whatever our clock says ----------------------


def ambiguous(schedule: DriftScheduler, skew: float) -> tuple[Position, ReadBack]:
    """Two webhooks of Shopify's second 10 (4, then 5): the position asks which won. Our
    clock reads Shopify's time plus `skew` when they arrive."""
    pos = synced()
    follow(schedule, pos, step(pos, webhook(4, 10.2), LOC, 10.3 + skew), 10.3 + skew)
    out = step(pos, webhook(5, 10.7), LOC, 10.8 + skew)
    follow(schedule, pos, out, 10.8 + skew)
    assert out.verify
    [rb] = schedule.read_backs_ready(1e9)
    return pos, rb


def test_a_read_back_settles_its_second_when_our_clock_is_behind_shopifys() -> None:
    schedule = DriftScheduler()
    pos, rb = ambiguous(schedule, skew=-3.0)
    started = rb.at  # 9.3 by our clock, 12.3 by Shopify's
    reading = rb.observed(4, started)  # the change stamped 10.2 was the later one
    out = step(pos, reading, LOC, started + 0.1)
    assert not out.ignored and pos.observed == 4
    assert reading.source is ObservedSource.READ


def test_a_read_back_older_than_a_webhook_it_crossed_does_not_overwrite_it_when_our_clock_is_ahead() -> (  # noqa: E501
    None
):
    schedule = DriftScheduler()
    pos, rb = ambiguous(schedule, skew=+3.0)
    started = rb.at  # 15.3 by our clock, 12.3 by Shopify's: Shopify had 5 then
    # a sale at Shopify's 12.8, after the read began; its webhook is taken first
    step(pos, webhook(4, 12.8), LOC, started + 0.6)
    out = step(pos, rb.observed(5, started), LOC, started + 0.7)
    assert out.ignored and pos.observed == 4


def test_a_retried_read_back_keeps_what_the_position_knew_when_it_asked() -> None:
    schedule = DriftScheduler()
    _, rb = ambiguous(schedule, skew=0.0)
    schedule.start(rb)
    schedule.retry(rb, now=20.0)
    [again] = schedule.read_backs_ready(1e9)
    assert (again.known_at, again.asked_at) == (10.7, 10.8)
    assert again.stamp(25.0) == 10.7 + (25.0 - 10.8)


def test_with_no_shopify_stamp_known_a_reading_carries_the_time_it_began() -> None:
    rb = ReadBack(key=KEY, sku="SKU", location_id=11, inventory_item_id=7, at=5.0)
    assert rb.stamp(6.0) == 6.0


def test_a_read_back_stays_listed_until_it_is_started() -> None:
    schedule = DriftScheduler()
    schedule.read_back_later(KEY, "SKU", 11, 7, now=10.0)
    [rb] = schedule.read_backs_ready(20.0)
    assert schedule.read_backs_ready(20.0) == [rb]
    schedule.start(rb)
    assert schedule.read_backs_ready(20.0) == []


def test_a_failed_read_back_is_tried_again_later_unless_a_newer_one_is_waiting() -> None:
    schedule = DriftScheduler()
    schedule.read_back_later(KEY, "SKU", 11, 7, now=10.0)
    [rb] = schedule.read_backs_ready(20.0)
    schedule.start(rb)
    schedule.retry(rb, now=20.0)
    assert schedule.read_backs_ready(20.0) == []
    assert [r.at for r in schedule.read_backs_ready(20.0 + VERIFY_AFTER)] == [20.0 + VERIFY_AFTER]

    schedule.start(rb)
    schedule.read_back_later(KEY, "SKU", 11, 7, now=30.0)  # asked for while Shopify was read
    schedule.retry(rb, now=31.0)
    assert [r.at for r in schedule.read_backs_ready(1e9)] == [30.0 + VERIFY_AFTER]


def test_at_most_a_batch_of_read_backs_at_a_time() -> None:
    schedule = DriftScheduler()
    for n in range(5):
        schedule.read_back_later(f"SKU{n}@11", f"SKU{n}", 11, n, now=0.0)
    assert len(schedule.read_backs_ready(10.0, limit=3)) == 3
