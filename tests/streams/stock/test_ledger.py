"""The ledger poller's and agents' decisions, without a broker or Sitoo."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, cast

from tillsync.schemas.events import ObservedSource, ShopifyObserved, SitooLevel, SitooReserved
from tillsync.schemas.locations import Location
from tillsync.streams import topics
from tillsync.streams.context import Context
from tillsync.streams.stock.ledger import (
    PAGE,
    REREAD_EVERY,
    TRAILING_IDS,
    Heard,
    Invalid,
    LedgerPage,
    LedgerWindow,
    SitooEventGate,
    SitooLedger,
    read_transactions,
    take_over,
)
from tillsync.streams.stock.position import Position, step

LOC = Location(
    name="Store 1",
    shopify_location_id=11,
    sitoo_store_id=1,
    sitoo_warehouse_id=101,
    buffer=2,
    settle_seconds=2.0,
)


def tx(tx_id: int, total: str = "5.000", sku: str = "SKU-1") -> dict[str, Any]:
    return {
        "warehousetransactionid": tx_id,
        "warehouseid": 101,
        "transactiontype": 10,
        "datecreated": 1_700_000_000 + tx_id,
        "items": [{"sku": sku, "decimalquantity": "-1.000", "decimaltotal": total}],
    }


def raw(*ids: int) -> list[bytes]:
    return [json.dumps(tx(i)).encode() for i in ids]


def event(event_id: str, event_type: str = "warehouse-transaction") -> bytes:
    return json.dumps(
        {
            "event_id": event_id,
            "event_type": event_type,
            "event_date": 1_700_000_000,
            "account_id": 1,
            "data": {},
        }
    ).encode()


# -- the poller's cursor -----------------------------------------------------------------------


def test_the_cursor_moves_to_the_newest_id_of_the_page() -> None:
    page = LedgerPage.of({"items": [tx(11), tx(13), tx(12)]})
    assert page.cursor_after(10) == 13
    assert page.last  # fewer than a page: read to the end


def test_an_empty_page_keeps_the_cursor_and_ends_the_read() -> None:
    for body in ({"items": []}, {"items": None}, {}):
        page = LedgerPage.of(body)
        assert page.cursor_after(42) == 42
        assert page.records() == []
        assert page.last


def test_a_full_page_is_not_the_last() -> None:
    page = LedgerPage.of({"items": [tx(i) for i in range(1, PAGE + 1)]})
    assert not page.last
    assert page.cursor_after(0) == PAGE


def test_duplicate_and_already_read_ids_never_move_the_cursor_back() -> None:
    page = LedgerPage.of({"items": [tx(7), tx(9), tx(9), tx(3)]})
    assert page.cursor_after(8) == 9
    assert page.cursor_after(20) == 20  # a page of old ids leaves a newer cursor alone


def test_every_transaction_of_a_page_goes_on_as_sitoo_sent_it_repeats_included() -> None:
    # the position drops a Sitoo version it has seen: passing a repeat on is harmless
    items = [tx(7), tx(7), tx(8)]
    records = LedgerPage.of({"items": items}).records()
    assert [json.loads(r) for r in records] == items
    assert all(b" " not in r for r in records)  # compact JSON


# -- the ledger agent ----------------------------------------------------------------------------


def test_transactions_become_sitoo_levels_versioned_by_transaction_id() -> None:
    batch = read_transactions(raw(5, 6), now=0.0)
    assert [(lv.sku, lv.total, lv.delta, lv.version) for lv in batch.levels] == [
        ("SKU-1", 5, -1, 5),
        ("SKU-1", 5, -1, 6),
    ]
    assert batch.newest == 6
    assert batch.invalid == []


def test_a_duplicate_transaction_id_makes_the_same_level_twice_and_the_cursor_once() -> None:
    batch = read_transactions(raw(9, 9), now=0.0)
    first, second = batch.levels
    assert first == second and first.version == 9
    assert batch.newest == 9


def test_the_cursor_table_gets_the_newest_id_whatever_the_order_in_the_batch() -> None:
    assert read_transactions(raw(30, 10, 20), now=0.0).newest == 30


def test_an_item_without_a_total_makes_no_level_and_the_time_falls_back_to_now() -> None:
    body = tx(4)
    body["datecreated"] = None
    body["items"].append({"sku": "SKU-2", "decimalquantity": "1.000"})
    [level] = read_transactions([json.dumps(body).encode()], now=123.0).levels
    assert level.sku == "SKU-1" and level.event_time == 123.0


def test_an_invalid_transaction_is_set_aside_for_the_dead_letters() -> None:
    bad = b'{"warehousetransactionid": "x"}'
    batch = read_transactions([bad, *raw(3)], now=0.0)
    assert [lv.version for lv in batch.levels] == [3]
    [invalid] = batch.invalid
    assert invalid.value == bad
    assert invalid.reason.startswith("invalid warehouse transaction: ")
    assert read_transactions([bad], now=0.0).newest == 0


def test_items_of_one_sku_in_one_transaction_make_one_level_after_the_last_of_them() -> None:
    # a till sale of two lines of one SKU: Sitoo's ledger gives each item the total after it
    body = tx(40, total="8.000")
    body["items"][0]["decimalquantity"] = "-2.000"
    body["items"] += [
        {"sku": "SKU-2", "decimalquantity": "-1.000", "decimaltotal": "4.000"},
        {"sku": "SKU-1", "decimalquantity": "-3.000", "decimaltotal": "5.000"},
    ]
    levels = read_transactions([json.dumps(body).encode()], now=0.0).levels
    assert sorted((lv.sku, lv.total, lv.delta, lv.version) for lv in levels) == [
        ("SKU-1", 5, -5, 40),
        ("SKU-2", 4, -1, 40),
    ]
    # the position takes one level per transaction: the second of one id would be stale
    pos = Position(sku="SKU-1", location_id=11)
    for lv in levels:
        if lv.sku == "SKU-1":
            assert not step(pos, lv, LOC, 1.0).ignored
    assert pos.sitoo_total == 5


def test_an_item_that_is_no_stock_event_is_set_aside_and_the_rest_is_taken() -> None:
    body = tx(41)
    body["items"].insert(0, {"sku": "", "decimalquantity": "-1.000", "decimaltotal": "2.000"})
    value = json.dumps(body).encode()
    batch = read_transactions([value, *raw(42)], now=0.0)
    assert [(lv.sku, lv.version) for lv in batch.levels] == [("SKU-1", 41), ("SKU-1", 42)]
    [invalid] = batch.invalid
    assert invalid.value == value
    assert invalid.reason.startswith("invalid item of warehouse transaction 41: ")
    assert "sku: String should have at least 1 character" in invalid.reason
    assert "2.000" not in invalid.reason and "input" not in invalid.reason
    assert batch.newest == 42


# -- the events agent ----------------------------------------------------------------------------


def test_stock_moving_events_wake_the_poller_once_per_event_id() -> None:
    gate = SitooEventGate()
    assert gate.hear(event("e-1")) is Heard.WAKE
    assert gate.hear(event("e-1")) is Heard.DUPLICATE
    assert gate.hear(event("e-2", "order")) is Heard.WAKE
    assert gate.hear(event("e-3", "order-delivery")) is Heard.WAKE
    assert gate.hear(event("e-4", "customer")) is Heard.QUIET
    heard = gate.hear(b"[]")
    assert isinstance(heard, Invalid) and heard.reason.startswith("invalid Sitoo event: ")


# -- taking over the poller ----------------------------------------------------------------------


def snapshot_events() -> list[SitooLevel | SitooReserved | ShopifyObserved]:
    return [
        SitooLevel(sku="A", warehouse_id=101, total=3, version=50, event_time=1.0),
        SitooReserved(sku="A", warehouse_id=101, reserved=1, observed_at=1.0),
        ShopifyObserved(
            sku="A",
            location_id=11,
            inventory_item_id=7,
            available=2,
            updated_at=1.0,
            source=ObservedSource.SNAPSHOT,
        ),
    ]


def test_first_start_backfills_the_whole_snapshot_from_its_ledger_id() -> None:
    events = snapshot_events()
    start = take_over(0, (50, events))
    assert start.first_start and start.cursor == 50 and start.events == events


def test_a_later_take_over_resumes_at_the_stored_cursor_with_shopifys_levels_only() -> None:
    events = snapshot_events()
    start = take_over(70, (50, events))
    assert not start.first_start and start.cursor == 70
    assert start.events == [events[2]]


def test_without_a_snapshot_a_first_start_begins_at_zero() -> None:
    start = take_over(0, None)
    assert start.cursor == 0 and start.events == []


# -- the poller's read loop, with Sitoo and the producer faked -----------------------------------


@dataclass
class FakeSitoo:
    pages: list[list[dict[str, Any]]]
    site_id: int = 1
    asked: list[dict[str, Any]] = field(default_factory=list)

    async def request(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        self.asked.append(params)
        return {"items": self.pages.pop(0)}


@dataclass
class FakeRuntime:
    sitoo: FakeSitoo
    snapshot: tuple[int, list[Any]] | None = None


@dataclass
class FakeSettings:
    app_id: str = "t"
    returns_to_shopify: bool = False


@dataclass
class FakeContext:
    runtime: FakeRuntime
    settings: FakeSettings = field(default_factory=FakeSettings)
    sent: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)

    async def send_all(self, spec: topics.TopicSpec, records: Any) -> None:
        self.sent.extend((spec.suffix, key, value) for key, value in records)


class FakeTable(dict[str, int]):
    pass


async def test_the_poller_reads_page_after_page_from_just_after_its_cursor() -> None:
    full = [tx(i) for i in range(101, 101 + PAGE)]
    sitoo = FakeSitoo(pages=[full, [tx(101 + PAGE), tx(101 + PAGE)]])
    ctx = FakeContext(runtime=FakeRuntime(sitoo=sitoo))
    ledger = SitooLedger(cast(Context, ctx), cast(Any, FakeTable()))
    window = LedgerWindow(cursor=100, reread_at=0.0)
    ledger.clock = lambda: 1.0  # the trailing window is not due
    await ledger._read(window)
    assert window.cursor == 100 + PAGE + 1
    assert [p["warehousetransactionidfrom"] for p in sitoo.asked] == [101, 101 + PAGE]
    assert all(p["num"] == PAGE and p["start"] == 0 for p in sitoo.asked)
    sent = [json.loads(value)["warehousetransactionid"] for _, _, value in ctx.sent]
    assert sent == [*range(101, 101 + PAGE), 101 + PAGE]  # a repeat within the window once
    assert {(suffix, key) for suffix, key, _ in ctx.sent} == {
        (topics.RAW_SITOO_LEDGER.suffix, None)
    }


# -- the trailing window: ids that become visible late ------------------------------------------


@dataclass
class FakeLedger:
    """Sitoo's ledger as the poller sees it: the transactions visible now, asked for by id."""

    visible: list[dict[str, Any]] = field(default_factory=list)
    site_id: int = 1
    asked: list[int] = field(default_factory=list)

    async def request(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        first = int(params["warehousetransactionidfrom"])
        self.asked.append(first)
        rows = sorted(
            (t for t in self.visible if t["warehousetransactionid"] >= first),
            key=lambda t: int(t["warehousetransactionid"]),
        )
        return {"items": rows[: int(params["num"])]}


@dataclass
class Clock:
    now: float = 1_000.0

    def __call__(self) -> float:
        return self.now


def ledger_on(sitoo: FakeLedger, clock: Clock) -> tuple[SitooLedger, FakeContext]:
    ctx = FakeContext(runtime=FakeRuntime(sitoo=cast(Any, sitoo)))
    ledger = SitooLedger(cast(Context, ctx), cast(Any, FakeTable()))
    ledger.clock = clock
    return ledger, ctx


def sent_ids(ctx: FakeContext) -> list[int]:
    ids = [json.loads(value)["warehousetransactionid"] for _, _, value in ctx.sent]
    ctx.sent.clear()
    return ids


async def test_a_transaction_committed_after_a_higher_id_was_read_is_taken_by_a_later_read() -> (
    None
):
    sitoo, clock = FakeLedger(visible=[tx(101), tx(103, sku="SKU-2")]), Clock()
    ledger, ctx = ledger_on(sitoo, clock)
    window = LedgerWindow(cursor=100)
    await ledger._read(window)
    assert sent_ids(ctx) == [101, 103] and window.cursor == 103
    # 102 began before 103 and commits after it was read
    sitoo.visible.append(tx(102, sku="SKU-3"))
    clock.now += 0.5
    await ledger._read(window)  # a read from the cursor only, between two window reads
    assert sent_ids(ctx) == []
    clock.now += REREAD_EVERY
    await ledger._read(window)
    assert sent_ids(ctx) == [102]  # found, and the ids read before are not sent again
    assert window.cursor == 103


async def test_the_window_is_read_again_at_once_after_a_start_and_then_every_few_seconds() -> None:
    sitoo, clock = FakeLedger(visible=[tx(i) for i in (5, 1_500, 1_990, 2_000)]), Clock()
    ledger, ctx = ledger_on(sitoo, clock)
    window = LedgerWindow(cursor=2_000)
    await ledger._read(window)
    # after a (re)start nothing of the window is known: it is sent again, and dropped by the
    # positions as versions they have seen
    assert sitoo.asked == [2_000 - TRAILING_IDS + 1]
    assert sent_ids(ctx) == [1_500, 1_990, 2_000]
    clock.now += REREAD_EVERY - 0.1
    await ledger._read(window)
    assert sitoo.asked[-1] == 2_001
    clock.now += 0.1
    await ledger._read(window)
    assert sitoo.asked[-1] == 2_000 - TRAILING_IDS + 1
    assert sent_ids(ctx) == []


def test_the_window_forgets_ids_that_fall_below_it() -> None:
    window = LedgerWindow(cursor=0, trailing_ids=10)
    window.take(LedgerPage.of({"items": [tx(i) for i in range(1, 31)]}))
    assert window.cursor == 30 and window.seen == set(range(21, 31))


def test_a_level_the_re_read_sends_again_changes_no_position() -> None:
    newer = read_transactions(raw(102), now=0.0).levels
    older = read_transactions(raw(101), now=0.0).levels
    pos = Position(sku="SKU-1", location_id=11)
    assert not step(pos, newer[0], LOC, 1.0).ignored
    taken = pos.model_copy(deep=True)
    assert step(pos, newer[0], LOC, 2.0).ignored  # the same transaction again
    assert step(pos, older[0], LOC, 3.0).ignored  # an older one of this SKU
    assert pos == taken


async def test_taking_over_sends_the_snapshot_keyed_by_sku_and_starts_at_its_id() -> None:
    events = snapshot_events()
    ctx = FakeContext(runtime=FakeRuntime(sitoo=FakeSitoo(pages=[]), snapshot=(50, events)))
    ledger = SitooLedger(cast(Context, ctx), cast(Any, FakeTable()))
    assert await ledger._take_over() == 50
    assert [(s, k) for s, k, _ in ctx.sent] == [(topics.STOCK_EVENTS.suffix, b"A")] * 3


# -- SKUs the ledger names -----------------------------------------------------------------------


def test_a_ledger_sku_shopify_does_not_know_is_counted_and_learnt_as_sitoos() -> None:
    from tillsync.streams import metrics
    from tillsync.streams.skus import SkuIndex

    skus = SkuIndex()
    skus.add_shopify("SKU-1", 7)
    runtime = FakeRuntime(sitoo=FakeSitoo(pages=[]))
    runtime.skus = skus  # type: ignore[attr-defined]
    ledger = SitooLedger(cast(Context, FakeContext(runtime=runtime)), cast(Any, FakeTable()))
    series = metrics.unknown_skus.labels(platform="sitoo")
    before = series._value.get()  # type: ignore[attr-defined]
    body = tx(50)
    body["items"].append({"sku": "ONLY-SITOO", "decimalquantity": "1.000", "decimaltotal": "1"})
    levels = read_transactions([json.dumps(body).encode()], now=0.0).levels
    ledger.watch_skus(levels, index_built=False)  # before the start built the index
    assert series._value.get() == before  # type: ignore[attr-defined]
    ledger.watch_skus(levels, index_built=True)
    assert series._value.get() == before + 1  # type: ignore[attr-defined]
    assert skus.sitoo_skus == {"SKU-1", "ONLY-SITOO"}
