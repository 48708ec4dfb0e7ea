"""Sitoo's reserved quantities kept current: re-read on order events and on a schedule.

The decisions run against a fake Sitoo (no broker, no HTTP); the last tests run them against
the Sitoo simulator over real HTTP with the real client, and check the worker's wiring.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from tillsync.connectors.retry import RetryPolicy
from tillsync.connectors.sitoo.client import SitooClient, SitooConfig, SitooError
from tillsync.schemas.events import SitooReserved
from tillsync.schemas.sitoo import Order, WarehouseItem
from tillsync.streams import metrics, topics
from tillsync.streams.stock.reservations import (
    CLOSED_DELAY,
    RefreshSchedule,
    ReservationRefresher,
    ReservedCache,
    order_to_read,
)
from tillsync_sim.sitoo import SeedSpec, SitooSimulator

WID = 101  # a mapped warehouse
OTHER_WID = 999  # a warehouse no store is mapped to


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def order_event(
    order_id: int,
    kind: str = "add",
    state: str | None = "open",
    *,
    event_id: str | None = None,
    event_type: str = "order",
    warehouse_id: int = WID,
) -> bytes:
    data: dict[str, Any] = {
        "order_id": order_id,
        "warehouse_id": warehouse_id,
        "order_event_type": kind,
    }
    if state is not None:
        data["order_state_changed"] = state
    return json.dumps(
        {
            "event_id": event_id or f"ev-{order_id}-{kind}-{state}",
            "event_type": event_type,
            "event_date": 1_700_000_000,
            "account_id": 1,
            "data": data,
        }
    ).encode()


def order(order_id: int, lines: dict[str, int], warehouse_id: int | None = WID) -> Order:
    return Order.model_validate(
        {
            "orderid": order_id,
            "warehouseid": warehouse_id,
            "orderitems": [
                {"productname": sku, "sku": sku, "quantity": qty, "orderitemid": n}
                for n, (sku, qty) in enumerate(lines.items())
            ],
        }
    )


@dataclass
class FakeSitoo:
    """Sitoo's orders and warehouse items; every call takes a second of the clock and
    notes the time it began."""

    clock: Clock
    orders: dict[int, Order] = field(default_factory=dict)
    # warehouse -> sku -> reserved (an absent SKU has no warehouse item: nothing reserved)
    reserved: dict[int, dict[str, int]] = field(default_factory=dict)
    fail: int = 0  # the next this many calls fail as a Sitoo outage would
    calls: list[tuple[str, Any, float]] = field(default_factory=list)
    page_size: int = 2

    def _call(self, name: str, arg: Any) -> None:
        self.calls.append((name, arg, self.clock.now))
        self.clock.now += 1
        if self.fail:
            self.fail -= 1
            raise SitooError(503, "Service Unavailable", method="GET", path=name)

    def _item(self, wid: int, sku: str, reserved: int) -> WarehouseItem:
        return WarehouseItem.model_validate(
            {"sku": sku, "warehouseid": wid, "decimaltotal": "50.000",
             "decimalreserved": f"{reserved}.000"}
        )  # fmt: skip

    async def get_order(self, orderid: int) -> Order:
        self._call("order", orderid)
        if orderid not in self.orders:
            raise SitooError(404, f"order {orderid} not found", method="GET", path="order")
        return self.orders[orderid]

    async def warehouse_items_by_sku(
        self, warehouseid: int, skus: Sequence[str]
    ) -> list[WarehouseItem]:
        self._call("items", (warehouseid, tuple(skus)))
        held = self.reserved.get(warehouseid, {})
        return [self._item(warehouseid, s, held[s]) for s in skus if s in held]

    async def iter_warehouse_items(
        self,
        warehouseid: int,
        *,
        modified_from: int | None = None,
        page_size: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> AsyncIterator[WarehouseItem]:
        rows = sorted(self.reserved.get(warehouseid, {}).items())
        for start in range(0, max(len(rows), 1), self.page_size):
            self._call("page", (warehouseid, start))
            page = rows[start : start + self.page_size]
            for sku, reserved in page:
                yield self._item(warehouseid, sku, reserved)
            if progress is not None:
                progress(start + len(page), len(rows))


@dataclass
class Sent:
    events: list[SitooReserved] = field(default_factory=list)
    fail: int = 0

    async def __call__(self, events: list[SitooReserved]) -> None:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("producer buffer full")
        self.events.extend(events)

    def take(self) -> list[tuple[str, int, int, float]]:
        out = [(e.sku, e.warehouse_id, e.reserved, e.observed_at) for e in self.events]
        self.events.clear()
        return out


def make(
    warehouses: Sequence[int] = (WID, 102), **kw: Any
) -> tuple[ReservationRefresher, FakeSitoo, Sent, Clock]:
    clock = Clock()
    sitoo = FakeSitoo(clock)
    sent = Sent()
    return ReservationRefresher(warehouses, sent, clock=clock, **kw), sitoo, sent, clock


def reads(kind: str, outcome: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "tillsync_sitoo_reserved_reads_total", {"trigger": kind, "outcome": outcome}
    )
    assert value is not None
    return value


# -- the defect: an order event changes what Sitoo reserves, and nothing told the positions ----


async def test_an_order_event_re_reads_the_orders_warehouse_items_and_sends_their_reserved() -> (
    None
):
    refresher, sitoo, sent, clock = make()
    sitoo.orders[7] = order(7, {"A": 2, "B": 1})
    sitoo.reserved[WID] = {"A": 2, "B": 1, "C": 4}
    assert refresher.hear(order_event(7, "add", "open")) == 7
    await refresher.read_pending(sitoo)
    # the order, then its lines' warehouse items at its warehouse, in one read
    assert [(name, arg) for name, arg, _ in sitoo.calls] == [
        ("order", 7),
        ("items", (WID, ("A", "B"))),
    ]
    items_read_at = sitoo.calls[1][2]
    # stamped with the time the warehouse items' read began: a reading that began earlier
    # and arrives later can never overwrite this one
    assert sent.take() == [("A", WID, 2, items_read_at), ("B", WID, 1, items_read_at)]
    assert refresher.pending == {}
    assert clock.now == items_read_at + 1


async def test_a_cancelled_order_releases_and_an_item_sitoo_does_not_list_holds_nothing() -> None:
    refresher, sitoo, sent, _ = make()
    sitoo.orders[7] = order(7, {"A": 2, "B": 1})
    sitoo.reserved[WID] = {"A": 0}  # A's row reads 0, B has no row at all
    refresher.hear(order_event(7, "update", "cancelled"))
    await refresher.read_pending(sitoo)
    assert [(sku, reserved) for sku, _, reserved, _ in sent.take()] == [("A", 0), ("B", 0)]


async def test_a_collected_orders_release_is_read_once_its_sale_had_time_to_come_first() -> None:
    refresher, sitoo, sent, clock = make()
    sitoo.orders[7] = order(7, {"A": 2})
    sitoo.reserved[WID] = {"A": 0}
    refresher.hear(order_event(7, "update", "closed"))
    assert refresher.next_read_at() == clock.now + CLOSED_DELAY
    await refresher.read_pending(sitoo)
    # read now, the release could reach the position before the sale's lower total does, and
    # the collected units would be offered again meanwhile
    assert sitoo.calls == [] and refresher.pending == {7: 0}
    clock.now += CLOSED_DELAY
    await refresher.read_pending(sitoo)
    assert [(sku, reserved) for sku, _, reserved, _ in sent.take()] == [("A", 0)]
    assert refresher.pending == {} and refresher.next_read_at() is None


@pytest.mark.parametrize(
    ("kind", "state"),
    [
        ("add", "open"),
        ("add", None),  # a payload without the state: it may be open
        ("update", None),  # lines or warehouse changed
        ("update", "cancelled"),
        ("update", "closed"),
        ("ready-for-pickup", None),
        ("pickup-rejected", None),
    ],
)
def test_order_events_that_may_change_a_reservation_are_read(kind: str, state: str | None) -> None:
    refresher, *_ = make()
    assert refresher.hear(order_event(5, kind, state)) == 5
    assert refresher.pending == {5: 0}


@pytest.mark.parametrize(
    "value",
    [
        order_event(5, "add", "closed"),  # a till sale is born closed: it never reserved
        order_event(5, "add", "cancelled"),
        order_event(5, "email-receipt", None),
        order_event(5, event_type="warehouse-transaction"),
        order_event(5, event_type="order-delivery"),
        b"not json",  # the ledger's events agent dead-letters it
    ],
)
def test_other_events_read_nothing(value: bytes) -> None:
    refresher, *_ = make()
    assert refresher.hear(value) is None
    assert refresher.pending == {}


def test_order_to_read_needs_an_order_id() -> None:
    from tillsync.schemas.sitoo import SitooEvent

    ev = SitooEvent.model_validate_json(order_event(5))
    assert order_to_read(ev) == 5
    no_id = ev.model_copy(update={"data": {"order_event_type": "add"}})
    assert order_to_read(no_id) is None


async def test_many_events_of_one_order_make_one_read_and_a_repeated_event_id_none() -> None:
    refresher, sitoo, sent, _ = make()
    sitoo.orders[7] = order(7, {"A": 1})
    sitoo.reserved[WID] = {"A": 1}
    refresher.hear(order_event(7, "add", "open"))
    refresher.hear(order_event(7, "ready-for-pickup", None))
    await refresher.read_pending(sitoo)
    assert [name for name, _, _ in sitoo.calls] == ["order", "items"]
    assert len(sent.take()) == 1
    assert refresher.hear(order_event(7, "add", "open")) is None  # Sitoo sent it again
    assert refresher.pending == {}


async def test_an_order_at_an_unmapped_warehouse_or_with_no_warehouse_reads_no_items() -> None:
    refresher, sitoo, sent, _ = make()
    sitoo.orders[7] = order(7, {"A": 1}, warehouse_id=OTHER_WID)
    sitoo.orders[8] = order(8, {"A": 1}, warehouse_id=None)
    refresher.hear(order_event(7))
    refresher.hear(order_event(8))
    await refresher.read_pending(sitoo)
    assert [name for name, _, _ in sitoo.calls] == ["order", "order"]
    assert sent.events == [] and refresher.pending == {}


async def test_lines_without_a_sku_are_left_out_and_many_skus_are_read_in_chunks() -> None:
    refresher, sitoo, sent, _ = make(skus_per_read=2)
    sitoo.orders[7] = order(7, {"A": 1, "B": 1, "C": 1})
    sitoo.orders[7].orderitems.append(
        sitoo.orders[7].orderitems[0].model_copy(update={"sku": None, "productname": "Fee"})
    )
    sitoo.reserved[WID] = {"A": 1, "B": 1, "C": 1}
    refresher.hear(order_event(7))
    await refresher.read_pending(sitoo)
    assert [arg for name, arg, _ in sitoo.calls if name == "items"] == [
        (WID, ("A", "B")),
        (WID, ("C",)),
    ]
    # each chunk is stamped with the start of its own read
    stamps = {sku: at for sku, _, _, at in sent.take()}
    assert stamps["A"] == stamps["B"] < stamps["C"]


async def test_a_failed_read_is_kept_counted_and_retried_on_the_next_event_or_tick() -> None:
    refresher, sitoo, sent, _ = make()
    sitoo.orders[7] = order(7, {"A": 2})
    sitoo.reserved[WID] = {"A": 2}
    failed = reads("event", "failed")
    sitoo.fail = 1
    refresher.hear(order_event(7))
    await refresher.read_pending(sitoo)
    assert sent.events == [] and refresher.pending == {7: 1}
    assert reads("event", "failed") == failed + 1
    await refresher.read_pending(sitoo)  # the next tick
    assert [(sku, r) for sku, _, r, _ in sent.take()] == [("A", 2)]
    assert refresher.pending == {}


async def test_a_send_that_fails_is_a_failed_read_too() -> None:
    refresher, sitoo, sent, _ = make()
    sitoo.orders[7] = order(7, {"A": 2})
    sitoo.reserved[WID] = {"A": 2}
    sent.fail = 1
    refresher.hear(order_event(7))
    await refresher.read_pending(sitoo)
    assert refresher.pending == {7: 1}
    await refresher.read_pending(sitoo)
    assert [(sku, r) for sku, _, r, _ in sent.take()] == [("A", 2)]


async def test_an_order_that_keeps_failing_is_given_up_loudly_after_max_attempts() -> None:
    refresher, sitoo, sent, _ = make(max_attempts=3)
    gave_up = reads("event", "gave_up")
    refresher.hear(order_event(404))  # Sitoo does not know the order
    for _ in range(3):
        await refresher.read_pending(sitoo)
    assert refresher.pending == {} and sent.events == []
    assert reads("event", "gave_up") == gave_up + 1
    assert [name for name, _, _ in sitoo.calls] == ["order"] * 3


# -- the schedule: every warehouse item, only changes sent ------------------------------------


def test_the_cache_sends_everything_read_the_first_time_then_only_changes() -> None:
    cache = ReservedCache()

    def reading(sku: str, reserved: int, at: float = 1.0) -> SitooReserved:
        return SitooReserved(sku=sku, warehouse_id=WID, reserved=reserved, observed_at=at)

    first = cache.changes(WID, [reading("A", 2), reading("B", 0)], read_at=1.0)
    assert [(e.sku, e.reserved) for e in first] == [("A", 2), ("B", 0)]
    second = cache.changes(WID, [reading("A", 2), reading("B", 3), reading("C", 0)], read_at=2.0)
    assert [(e.sku, e.reserved) for e in second] == [("B", 3)]
    # A's row is gone: it reserves nothing now, known from when this read began
    third = cache.changes(WID, [reading("B", 3, at=3.0)], read_at=3.0)
    assert [(e.sku, e.reserved, e.observed_at) for e in third] == [("A", 0, 3.0)]
    cache.forget()
    again = cache.changes(WID, [reading("B", 3)], read_at=4.0)
    assert [(e.sku, e.reserved) for e in again] == [("B", 3)]


async def test_a_refresh_reads_every_mapped_warehouse_paged_and_sends_only_what_changed() -> None:
    refresher, sitoo, sent, _ = make()
    sitoo.reserved[WID] = {"A": 2, "B": 0, "C": 1}
    sitoo.reserved[102] = {"A": 0}
    assert await refresher.refresh(sitoo)
    pages = [(arg, at) for name, arg, at in sitoo.calls if name == "page"]
    assert [arg for arg, _ in pages] == [(WID, 0), (WID, 2), (102, 0)]
    stamp = {arg: at for arg, at in pages}
    # the first refresh knows nothing yet: every item, each stamped when its page's read began
    assert sent.take() == [
        ("A", WID, 2, stamp[(WID, 0)]),
        ("B", WID, 0, stamp[(WID, 0)]),
        ("C", WID, 1, stamp[(WID, 2)]),
        ("A", 102, 0, stamp[(102, 0)]),
    ]
    sitoo.reserved[WID] = {"A": 0, "B": 0, "C": 1, "D": 5}
    sitoo.calls.clear()
    assert await refresher.refresh(sitoo)
    assert [(sku, wid, r) for sku, wid, r, _ in sent.take()] == [("A", WID, 0), ("D", WID, 5)]
    assert await refresher.refresh(sitoo)
    assert sent.take() == []


async def test_a_failed_refresh_of_one_warehouse_keeps_its_cache_and_is_counted() -> None:
    refresher, sitoo, sent, _ = make()
    sitoo.reserved[WID] = {"A": 2}
    sitoo.reserved[102] = {"A": 1}
    assert await refresher.refresh(sitoo)
    sent.take()
    sitoo.reserved[WID] = {"A": 3}
    sitoo.reserved[102] = {"A": 4}
    failed = reads("schedule", "failed")
    sitoo.fail = 1  # the first warehouse's read fails; the second is read all the same
    assert not await refresher.refresh(sitoo)
    assert reads("schedule", "failed") == failed + 1
    assert [(wid, r) for _, wid, r, _ in sent.take()] == [(102, 4)]
    assert await refresher.refresh(sitoo)
    assert [(wid, r) for _, wid, r, _ in sent.take()] == [(WID, 3)]


def test_the_schedule_runs_every_interval_and_soon_again_after_a_failure() -> None:
    schedule = RefreshSchedule(interval=300.0, retry=5.0, started=1_000.0)
    assert not schedule.due(1_299.0)
    assert schedule.due(1_300.0)
    schedule.ran(1_300.0, ok=False)
    assert not schedule.due(1_304.0) and schedule.due(1_305.0)
    schedule.ran(1_305.0, ok=True)
    assert not schedule.due(1_604.0) and schedule.due(1_605.0)


def test_the_refresh_interval_is_a_setting_of_five_minutes() -> None:
    from tillsync.schemas.settings import Settings

    assert Settings().sitoo_reserved_refresh_seconds == 300.0
    assert Settings(sitoo_reserved_refresh_seconds=30).sitoo_reserved_refresh_seconds == 30.0
    with pytest.raises(ValueError):
        Settings(sitoo_reserved_refresh_seconds=0)


# -- against the Sitoo simulator, over HTTP ---------------------------------------------------


@pytest.fixture
async def sim() -> AsyncIterator[SitooSimulator]:
    from tests.connectors.sitoo.conftest import make_settings

    simulator = SitooSimulator(make_settings(), seed=7, seed_spec=SeedSpec(stores=2, skus=5))
    await simulator.start("127.0.0.1", 0)
    yield simulator
    await simulator.stop()


@pytest.fixture
async def client(sim: SitooSimulator) -> AsyncIterator[SitooClient]:
    config = replace(
        SitooConfig.from_settings(sim.client_settings()),
        retry=RetryPolicy(attempts=2, base=0.01, cap=0.05),
        page_size=2,
    )
    async with SitooClient(config) as c:
        yield c


def sim_events(sim: SitooSimulator, since: int) -> list[bytes]:
    return [json.dumps(e).encode() for e in list(sim.events.history)[since:]]


async def test_a_pickup_order_reserves_and_its_collection_and_cancel_release_on_the_simulator(
    sim: SitooSimulator, client: SitooClient
) -> None:
    """The simulator's pickup order, its Events SPI events, the real client: the positions
    learn Sitoo's reservation at each step of the order's life."""
    wid = sim.state.store_warehouse(1)
    sent = Sent()
    clock = Clock()
    refresher = ReservationRefresher([wid], sent, clock=clock)

    async def hear_all(since: int) -> list[tuple[str, int]]:
        for value in sim_events(sim, since):
            refresher.hear(value)
        clock.now += CLOSED_DELAY  # a collected order's release waits this long
        await refresher.read_pending(client)
        assert refresher.pending == {}
        return [(sku, reserved) for sku, w, reserved, _ in sent.take() if w == wid]

    def order_body(ext: str, qty: int) -> dict[str, Any]:
        return {
            "ordertypeid": 10,
            "externalid": ext,
            "paymentstateid": 20,
            "warehouseid": wid,
            "orderitems": [{"productname": "P", "sku": "SKU-0002", "quantity": qty}],
        }

    seen = len(sim.events.history)
    first = sim.state.add_order(order_body("WEB-1", 2)).orderid
    assert await hear_all(seen) == [("SKU-0002", 2)]
    seen = len(sim.events.history)
    second = sim.state.add_order(order_body("WEB-2", 1)).orderid
    assert await hear_all(seen) == [("SKU-0002", 3)]
    seen = len(sim.events.history)
    sim.state.ready_for_pickup(first)
    assert await hear_all(seen) == [("SKU-0002", 3)]
    seen = len(sim.events.history)
    sim.state.collect(first)
    assert await hear_all(seen) == [("SKU-0002", 1)]
    seen = len(sim.events.history)
    sim.state.update_order(second, {"orderstateid": 20})
    assert await hear_all(seen) == [("SKU-0002", 0)]
    # a till sale's events read nothing
    seen = len(sim.events.history)
    sim.state.till_sale(1, [{"sku": "SKU-0003", "quantity": 1}])
    assert await hear_all(seen) == []


async def test_the_scheduled_refresh_finds_a_reservation_no_event_told_of_on_the_simulator(
    sim: SitooSimulator, client: SitooClient
) -> None:
    wid = sim.state.store_warehouse(1)
    sent = Sent()
    refresher = ReservationRefresher([wid], sent)
    assert await refresher.refresh(client)
    assert sorted(sku for sku, *_ in sent.take()) == [f"SKU-000{n}" for n in range(1, 6)]
    sim.state.add_order(
        {
            "ordertypeid": 10,
            "warehouseid": wid,
            "orderitems": [{"productname": "P", "sku": "SKU-0004", "quantity": 3}],
        },
        event=False,  # the event was lost
    )
    assert await refresher.refresh(client)
    assert [(sku, w, r) for sku, w, r, _ in sent.take()] == [("SKU-0004", wid, 3)]


# -- the worker's wiring ----------------------------------------------------------------------


def test_the_worker_hands_sitoo_events_to_the_reservations_agent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from tillsync.schemas.settings import load_settings
    from tillsync.streams.app import build_app

    for name in list(os.environ):
        if name.startswith("TILLSYNC_"):
            monkeypatch.delenv(name)
    locations = tmp_path / "locations.yaml"
    locations.write_text(
        "locations:\n"
        "  - {name: A, shopify_location_id: 1, sitoo_store_id: 1, sitoo_warehouse_id: 101}\n"
    )
    settings = load_settings(
        data_dir=tmp_path,
        app_id="t-reserved",
        locations_file=locations,
        shopify_access_token="t",
        shopify_app_secret="s",
        sitoo_account_id=1,
        sitoo_api_id="1-1",
        sitoo_api_password="p",
        sitoo_events_username="sitoo",
        sitoo_events_password="events",
    )
    ctx = build_app(settings)
    raw_events = topics.RAW_SITOO_EVENTS.name(settings.app_id)
    readers = {
        agent.name.rsplit(".", 1)[-1]
        for agent in ctx.app.agents.values()
        if raw_events in getattr(agent.channel, "topics", ())
    }
    # the ledger's agent wakes the poller; the reservations agent re-reads orders' items
    assert {"sitoo-events", "sitoo-reservations"} <= readers
