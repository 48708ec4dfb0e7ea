"""The Shopify inventory sink's writes, against a fake Shopify: no HTTP, no Kafka."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from tillsync.connectors.outcomes import Outcome
from tillsync.connectors.shopify.client import (
    EntryResult,
    SetQuantitiesResult,
    SetQuantityEntry,
    ShopifyError,
    UserErrorInfo,
)
from tillsync.connectors.shopify.ids import gid_tail
from tillsync.schemas.events import (
    ExceptionRecord,
    ObservedSource,
    Owner,
    SetInventory,
    ShopifyObserved,
    WriteResult,
    WriteResults,
)
from tillsync.streams import metrics
from tillsync.streams.echoes import Echoes
from tillsync.streams.stock.shopify_sink import (
    MAX_ENTRIES,
    STALE,
    Pending,
    ShopifyInventorySink,
)
from tillsync.streams.stock.sink_breaker import BreakerReport
from tillsync.streams.stock.written import Level, Received, Written, WrittenVersions

from .sink_fakes import Acks, ManualClock, breaker, event, until

ITEM, LOCATION = 7, 11
ITEM_GID, LOCATION_GID = "gid://shopify/InventoryItem/7", "gid://shopify/Location/11"
NOW = 1_000.0
APPLIED_AT = 990.0


@dataclass
class Call:
    entries: list[SetQuantityEntry]
    reason: str
    reference_uri: str | None
    idempotency_key: str


def _open() -> asyncio.Event:
    event = asyncio.Event()
    event.set()
    return event


@dataclass
class FakeShopify:
    """Shopify's `available` per level, with its compare-and-swap (a call whose compare value
    differs from a level's is refused whole, naming the stale entries) and its `@idempotent`
    keys (a key seen before gets the first answer again and changes nothing)."""

    levels: dict[tuple[int, int], int] = field(default_factory=dict)
    # answers (or errors) given before the simulated ones, in order
    scripted: list[SetQuantitiesResult | Exception] = field(default_factory=list)
    down: bool = False  # every call fails as Shopify's own failure, after the client's retries
    unreadable: bool = False
    calls: list[Call] = field(default_factory=list)
    reads: list[tuple[int, int]] = field(default_factory=list)
    answered: dict[str, SetQuantitiesResult] = field(default_factory=dict)
    applied: list[Call] = field(default_factory=list)  # the calls that changed levels
    # the cost budget's turn for a write: open unless a test closes it
    turns: asyncio.Event = field(default_factory=_open)

    async def set_quantities_turn(self) -> None:
        await self.turns.wait()

    async def set_quantities(
        self,
        entries: Sequence[SetQuantityEntry],
        *,
        reason: str,
        reference_uri: str | None,
        idempotency_key: str,
    ) -> SetQuantitiesResult:
        self.calls.append(Call(list(entries), reason, reference_uri, idempotency_key))
        if self.down:
            raise ShopifyError(Outcome.SERVER_ERROR, "HTTP 503", attempts=5)
        if self.scripted:
            answer = self.scripted.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        if idempotency_key in self.answered:
            return self.answered[idempotency_key]
        stale = [
            i
            for i, e in enumerate(entries)
            if e.change_from is not None and self.levels.get(_level(e)) != e.change_from
        ]
        if stale:
            return refused(list(entries), {i: stale_error(i) for i in stale})
        for e in entries:
            self.levels[_level(e)] = e.quantity
        self.applied.append(self.calls[-1])
        result = SetQuantitiesResult(
            [EntryResult(e, True, quantity_after=e.quantity) for e in entries],
            [],
            "gid://shopify/InventoryAdjustmentGroup/1",
            APPLIED_AT,
        )
        self.answered[idempotency_key] = result
        return result

    async def read_available(self, item_id: int, location_id: int) -> int | None:
        self.reads.append((item_id, location_id))
        if self.unreadable:
            raise ShopifyError(Outcome.GRAPHQL_ERROR, "no read", attempts=1)
        return self.levels.get((item_id, location_id))


def _level(e: SetQuantityEntry) -> tuple[int, int]:
    return gid_tail(e.inventory_item_id), gid_tail(e.location_id)


def stale_error(i: int) -> UserErrorInfo:
    return UserErrorInfo(
        "The compare quantity is stale",
        STALE,
        ("input", "quantities", str(i), "changeFromQuantity"),
    )


def refused(
    entries: list[SetQuantityEntry],
    by_index: dict[int, UserErrorInfo],
    general: list[UserErrorInfo] | None = None,
) -> SetQuantitiesResult:
    """A refused call as the client builds it: an entry without an error of its own carries
    the call's first general error, if any."""
    general = general or []
    errors = list(by_index.values()) + general
    return SetQuantitiesResult(
        [
            EntryResult(e, False, error=by_index.get(i) or (general[0] if general else None))
            for i, e in enumerate(entries)
        ],
        errors,
        None,
    )


@dataclass
class MemoryTable:
    """The written table: one dict per partition."""

    entries: dict[tuple[int, Level], Written] = field(default_factory=dict)

    def load(self, level: Level, origin: Received) -> Written | None:
        return self.entries.get((origin.partition, level))

    def save(self, level: Level, origin: Received, entry: Written) -> None:
        self.entries[(origin.partition, level)] = entry


@dataclass
class RecordingOutput:
    results: list[tuple[int, WriteResults]] = field(default_factory=list)
    seen: list[tuple[int, ShopifyObserved]] = field(default_factory=list)
    dead: list[tuple[bytes, str, bytes | None, Mapping[str, bytes]]] = field(default_factory=list)
    exceptions: list[ExceptionRecord] = field(default_factory=list)

    async def dead_letter(
        self,
        value: bytes,
        reason: str,
        key: bytes | None = None,
        headers: Mapping[str, bytes] | None = None,
    ) -> None:
        self.dead.append((value, reason, key, dict(headers or {})))

    async def exception(self, record: ExceptionRecord) -> None:
        self.exceptions.append(record)

    async def write_results(self, batches: Iterable[tuple[int, WriteResults]]) -> None:
        self.results.extend(batches)

    async def readings(self, readings: Iterable[tuple[int, ShopifyObserved]]) -> None:
        self.seen.extend(readings)

    def flat(self) -> list[WriteResult]:
        return [r for _, batch in self.results for r in batch.results]


@dataclass
class Harness:
    shopify: FakeShopify
    table: MemoryTable
    output: RecordingOutput
    echoes: Echoes
    sink: ShopifyInventorySink
    acks: Acks
    clock: ManualClock
    report: BreakerReport


def harness(shopify: FakeShopify, table: MemoryTable | None = None) -> Harness:
    table = table if table is not None else MemoryTable()
    output = RecordingOutput()
    echoes = Echoes()
    acks = Acks()
    clock = ManualClock()
    report = BreakerReport(wall_clock=clock)
    sink = ShopifyInventorySink(
        shopify,
        WrittenVersions(table),
        output,
        echoes,
        breaker=breaker(metrics.Platform.SHOPIFY, clock, report),
        ack=acks,
        clock=lambda: NOW,
    )
    return Harness(shopify, table, output, echoes, sink, acks, clock, report)


def command(
    version: int,
    target: int,
    change_from: int | None,
    item: int = ITEM,
    location: int = LOCATION,
    sku: str = "SKU",
) -> SetInventory:
    return SetInventory(
        sku=sku,
        inventory_item_id=item,
        location_id=location,
        target=target,
        change_from=change_from,
        version=version,
        sitoo_version=100 + version,
        event_time=NOW - 1,
    )


def received(*cmds: SetInventory, partition: int = 0) -> list[Received]:
    """Commands as the agent takes them: each with its record, to acknowledge."""
    out = []
    for cmd in cmds:
        raw = cmd.model_dump_json().encode()
        headers = {"x-origin": f"v{cmd.version}".encode()}
        out.append(Received(cmd, partition, event(raw, partition, headers), raw, dict(headers)))
    return out


def key_of(*calls: tuple[SetInventory, int | None]) -> str:
    return ShopifyInventorySink.idempotency_key(
        [Pending(Received(cmd, 0), compare, chosen=True) for cmd, compare in calls]
    )


# -- the key path ------------------------------------------------------------------------------


async def test_a_command_is_written_with_its_compare_value_under_a_key_of_its_own() -> None:
    h = harness(FakeShopify(levels={(ITEM, LOCATION): 5}))
    [r] = received(command(version=1, target=8, change_from=5))

    await h.sink.write([r])

    [call] = h.shopify.calls
    assert call.entries == [SetQuantityEntry(ITEM_GID, LOCATION_GID, 8, 5)]
    assert call.idempotency_key == key_of((r.command, 5))
    assert call.reference_uri == f"gid://tillsync/StockSync/{call.idempotency_key}"
    assert call.reason == "correction"
    [(partition, batch)] = h.output.results
    assert partition == 0
    [result] = batch.results
    assert (result.ok, result.written, result.target, result.version) == (True, 8, 8, 1)
    assert (result.sitoo_version, result.error) == (101, None)
    assert (result.at, result.shopify_at) == (NOW, APPLIED_AT)
    # the table holds the version and the value, and the webhook of the write is expected
    assert h.table.entries == {(0, Level(ITEM, LOCATION)): Written(version=1, value=8)}
    assert h.echoes.absorb(ITEM, LOCATION, 8, APPLIED_AT)
    assert not h.output.dead and not h.output.exceptions
    # the record is acknowledged once written
    assert h.acks.events == [r.event]


async def test_a_later_write_of_the_same_content_is_applied_not_answered_from_a_cache() -> None:
    # review item 1: sale 8 -> 7, return 7 -> 8, sale 8 -> 7 again. Keyed by content, the third
    # call repeated the first one's key and Shopify answered it from its cache: level left at 8
    h = harness(FakeShopify(levels={(ITEM, LOCATION): 8}))

    await h.sink.write(received(command(version=1, target=7, change_from=8)))
    await h.sink.write(received(command(version=2, target=8, change_from=7)))
    await h.sink.write(received(command(version=3, target=7, change_from=8)))

    assert h.shopify.levels[(ITEM, LOCATION)] == 7
    first, _, third = h.shopify.calls
    assert first.entries == third.entries  # the same content...
    assert first.idempotency_key != third.idempotency_key  # ...is another command
    assert [(r.version, r.ok, r.written) for r in h.output.flat()] == [
        (1, True, 7),
        (2, True, 8),
        (3, True, 7),
    ]


def test_the_key_names_the_commands_of_the_call() -> None:
    a, b = command(1, 8, 5), command(1, 3, None, item=8)
    # same content, another version: another command, another key
    assert key_of((a, 5)) != key_of((command(2, 8, 5), 5))
    # the same command sent again in the same call: the same key
    assert key_of((a, 5), (b, None)) == key_of((a, 5), (b, None))
    assert key_of((a, 5), (b, None)) != key_of((b, None), (a, 5))
    # the same version against another compare value is another call (one key, one payload)
    assert key_of((a, 5)) != key_of((a, 4))
    assert len(key_of((a, 5))) == 32


async def test_a_call_shopify_failed_is_retried_under_the_same_key() -> None:
    h = harness(
        FakeShopify(
            levels={(ITEM, LOCATION): 5},
            scripted=[ShopifyError(Outcome.TRANSPORT_ERROR, "read timed out", attempts=5)],
        )
    )
    [r] = received(command(version=1, target=8, change_from=5))

    await h.sink.write([r])

    first, again = h.shopify.calls
    assert first == again
    assert h.shopify.levels[(ITEM, LOCATION)] == 8
    assert [(x.ok, x.written) for x in h.output.flat()] == [(True, 8)]
    assert not h.output.dead and not h.output.exceptions
    assert h.acks.events == [r.event]


async def test_the_compare_value_is_what_our_last_write_left_not_the_commands_change_from() -> None:
    h = harness(FakeShopify(levels={(ITEM, LOCATION): 5}))
    await h.sink.write(received(command(version=1, target=8, change_from=5)))

    # the position had not heard back yet and still says 5
    await h.sink.write(received(command(version=2, target=6, change_from=5)))

    assert h.shopify.calls[1].entries == [SetQuantityEntry(ITEM_GID, LOCATION_GID, 6, 8)]
    assert [r.written for r in h.output.flat()] == [8, 6]


async def test_a_command_without_a_compare_value_is_sent_without_one() -> None:
    h = harness(FakeShopify())

    await h.sink.write(received(command(version=1, target=3, change_from=None)))

    assert h.shopify.calls[0].entries == [SetQuantityEntry(ITEM_GID, LOCATION_GID, 3, None)]


async def test_a_repeated_command_of_the_written_version_is_confirmed_without_a_write() -> None:
    h = harness(FakeShopify(levels={(ITEM, LOCATION): 5}))
    cmd = command(version=1, target=8, change_from=5)
    await h.sink.write(received(cmd))

    [again_record] = received(cmd)
    await h.sink.write([again_record])

    assert len(h.shopify.calls) == 1
    first, again = h.output.flat()
    assert (first.ok, first.written) == (True, 8)
    # confirmed, without a value: the position keeps what Shopify last told it
    assert (again.ok, again.written, again.version, again.shopify_at) == (True, None, 1, None)
    assert h.sink.stats.confirmed == 1
    assert h.acks.events[-1] is again_record.event


async def test_a_replay_after_a_restart_is_confirmed_from_the_table() -> None:
    table = MemoryTable()
    first = harness(FakeShopify(levels={(ITEM, LOCATION): 5}), table)
    cmd = command(version=1, target=8, change_from=5)
    await first.sink.write(received(cmd))

    # a new worker: empty cache, the table restored from its changelog
    second = harness(FakeShopify(levels={(ITEM, LOCATION): 8}), table)
    await second.sink.write(received(cmd, command(version=2, target=9, change_from=5)))

    # the replay is confirmed; the next version compares against the value written, read back
    # from the table, not against the command's change_from
    [call] = second.shopify.calls
    assert call.entries == [SetQuantityEntry(ITEM_GID, LOCATION_GID, 9, 8)]
    assert [(r.version, r.written) for r in second.output.flat()] == [(1, None), (2, 9)]


async def test_a_version_older_than_the_written_one_is_dropped_without_a_result() -> None:
    h = harness(FakeShopify(levels={(ITEM, LOCATION): 5}))
    await h.sink.write(received(command(version=3, target=8, change_from=5)))

    [old] = received(command(version=2, target=1, change_from=5))
    await h.sink.write([old])

    assert len(h.shopify.calls) == 1
    assert [r.version for r in h.output.flat()] == [3]
    assert h.shopify.levels[(ITEM, LOCATION)] == 8
    assert old.event in h.acks.events


async def test_commands_for_one_level_coalesce_to_the_newest_version() -> None:
    other = 8
    h = harness(FakeShopify(levels={(ITEM, LOCATION): 5, (other, LOCATION): 0}))
    window = received(
        command(version=1, target=6, change_from=5),
        command(version=1, target=2, change_from=0, item=other, sku="OTHER"),
        command(version=3, target=9, change_from=5),
        command(version=2, target=7, change_from=5),
    )

    await h.sink.write(window)

    # one call; each level keeps the place of its first command, with its newest version
    [call] = h.shopify.calls
    assert call.entries == [
        SetQuantityEntry(ITEM_GID, LOCATION_GID, 9, 5),
        SetQuantityEntry("gid://shopify/InventoryItem/8", LOCATION_GID, 2, 0),
    ]
    assert [(r.sku, r.version, r.written) for r in h.output.flat()] == [
        ("SKU", 3, 9),
        ("OTHER", 1, 2),
    ]
    assert h.sink.stats.superseded == 2
    # the superseded records were acknowledged when the newer command came, the others once
    # written
    assert h.acks.events == [window[0].event, window[3].event, window[2].event, window[1].event]


async def test_levels_that_wait_for_the_budgets_turn_go_into_one_call() -> None:
    """A call costs Shopify's bucket 10 points whatever it carries: while the bucket is short,
    the levels that come meanwhile wait in the backlog and go together, not a call each."""
    shopify = FakeShopify(levels={(i, LOCATION): 0 for i in range(1, 21)})
    shopify.turns.clear()  # the budget cannot pay yet
    h = harness(shopify)
    writer = asyncio.create_task(h.sink.run_writer())
    try:
        await h.sink.accept(received(command(1, 5, 0, item=1, sku="S1")))
        await asyncio.sleep(0)  # the writer waits for its turn with one level in the backlog
        for i in range(2, 21):
            await h.sink.accept(received(command(1, 5, 0, item=i, sku=f"S{i}")))
        shopify.turns.set()
        await until(lambda: len(h.sink.backlog) == 0, "the backlog to be written")
    finally:
        writer.cancel()
    [call] = shopify.calls
    assert len(call.entries) == 20
    assert all(shopify.levels[(i, LOCATION)] == 5 for i in range(1, 21))


async def test_a_window_is_written_in_calls_of_at_most_250_entries() -> None:
    h = harness(FakeShopify())
    cmds = [command(1, 1, None, item=i) for i in range(MAX_ENTRIES + 1)]

    await h.sink.write(received(*cmds))

    assert sorted(len(c.entries) for c in h.shopify.calls) == [1, MAX_ENTRIES]
    assert len(h.output.flat()) == MAX_ENTRIES + 1
    assert len(h.acks.events) == MAX_ENTRIES + 1


async def test_results_go_to_the_partition_each_command_came_from() -> None:
    h = harness(FakeShopify())

    await h.sink.write(
        received(command(1, 1, None), partition=3)
        + received(command(1, 2, None, item=8, sku="OTHER"), partition=5)
    )

    assert sorted((p, [r.sku for r in b.results]) for p, b in h.output.results) == [
        (3, ["SKU"]),
        (5, ["OTHER"]),
    ]
    assert set(h.table.entries) == {(3, Level(ITEM, LOCATION)), (5, Level(8, LOCATION))}


# -- the failed compare ------------------------------------------------------------------------


async def test_a_failed_compare_never_counts_a_change_the_position_already_knows_twice() -> None:
    # review item 3: known 10; an online sale takes Shopify to 9 (1 held, no write needed); a
    # till sale makes the target 8. The sink compared against its own last write (10), the
    # compare failed, and it rebased to 8 + 9 - 10 = 7: the sale counted twice
    h = harness(FakeShopify(levels={(ITEM, LOCATION): 12}))
    await h.sink.write(received(command(version=1, target=10, change_from=12)))
    h.shopify.levels[(ITEM, LOCATION)] = 9  # the online sale

    [r] = received(command(version=2, target=8, change_from=9))
    await h.sink.write([r])

    assert h.shopify.levels[(ITEM, LOCATION)] == 8
    assert [c.entries[0].quantity for c in h.shopify.calls] == [10, 8, 8]
    # the value read back (9) is what the position saw: the same target, against it
    assert [c.entries[0].change_from for c in h.shopify.calls] == [12, 10, 9]
    assert h.shopify.reads == [(ITEM, LOCATION)]
    assert [(x.version, x.ok, x.target, x.written) for x in h.output.flat()] == [
        (1, True, 10, 10),
        (2, True, 8, 8),
    ]
    assert r.event in h.acks.events


async def test_a_change_the_command_does_not_know_of_goes_back_to_the_position() -> None:
    # an online sale the position has not seen yet took Shopify from 10 to 9
    h = harness(FakeShopify(levels={(ITEM, LOCATION): 12}))
    await h.sink.write(received(command(version=1, target=10, change_from=12)))
    h.shopify.levels[(ITEM, LOCATION)] = 9

    [r] = received(command(version=2, target=8, change_from=10))
    await h.sink.write([r])

    # nothing guessed, nothing rebased: the level read back and a failed result, for the
    # position to decide again
    assert h.shopify.levels[(ITEM, LOCATION)] == 9
    assert len(h.shopify.calls) == 2
    assert h.output.seen == [
        (
            0,
            ShopifyObserved(
                sku="SKU",
                location_id=LOCATION,
                inventory_item_id=ITEM,
                available=9,
                updated_at=NOW,
                source=ObservedSource.READ,
            ),
        )
    ]
    last = h.output.flat()[-1]
    assert (last.version, last.ok, last.target, last.written, last.error) == (
        2,
        False,
        8,
        None,
        STALE,
    )
    # not a dead letter: the position writes again with what it now knows
    assert not h.output.dead and not h.output.exceptions
    assert r.event in h.acks.events
    # the next command of the position compares against the value read back
    await h.sink.write(received(command(version=3, target=7, change_from=9)))
    assert h.shopify.calls[-1].entries == [SetQuantityEntry(ITEM_GID, LOCATION_GID, 7, 9)]
    assert h.shopify.levels[(ITEM, LOCATION)] == 7


async def test_entries_refused_only_for_a_neighbours_stale_compare_are_written_again() -> None:
    other = 8
    # the mutation is all or nothing: the other level was not applied either
    h = harness(FakeShopify(levels={(ITEM, LOCATION): 4, (other, LOCATION): 0}))

    await h.sink.write(
        received(
            command(version=1, target=8, change_from=5),
            command(version=1, target=2, change_from=0, item=other, sku="OTHER"),
        )
    )

    first, again = h.shopify.calls
    assert len(first.entries) == 2
    assert again.entries == [SetQuantityEntry("gid://shopify/InventoryItem/8", LOCATION_GID, 2, 0)]
    assert sorted((r.sku, r.ok, r.written) for r in h.output.flat()) == [
        ("OTHER", True, 2),
        ("SKU", False, None),
    ]
    assert h.shopify.reads == [(ITEM, LOCATION)]
    assert len(h.acks.events) == 2


async def test_an_entry_with_an_error_of_its_own_fails_and_its_neighbours_go_again() -> None:
    entries = [
        SetQuantityEntry(ITEM_GID, LOCATION_GID, 8, 5),
        SetQuantityEntry("gid://shopify/InventoryItem/8", LOCATION_GID, 2, 0),
    ]
    not_stocked = UserErrorInfo(
        "The item is not stocked at the location",
        "ITEM_NOT_STOCKED_AT_LOCATION",
        ("input", "quantities", "0", "locationId"),
    )
    h = harness(
        FakeShopify(
            levels={(ITEM, LOCATION): 5, (8, LOCATION): 0},
            scripted=[refused(entries, {0: not_stocked})],
        )
    )
    window = received(
        command(version=1, target=8, change_from=5),
        command(version=1, target=2, change_from=0, item=8, sku="OTHER"),
    )

    await h.sink.write(window)

    assert [len(c.entries) for c in h.shopify.calls] == [2, 1]
    assert h.shopify.calls[1].entries == [entries[1]]
    reason = "ITEM_NOT_STOCKED_AT_LOCATION: The item is not stocked at the location"
    assert [(r.sku, r.ok, r.error) for r in h.output.flat()] == [
        ("SKU", False, reason),
        ("OTHER", True, None),
    ]
    # a dead letter of the record as it came, with its headers
    assert h.output.dead == [(window[0].raw, reason, b"SKU", {"x-origin": b"v1"})]
    assert h.shopify.reads == []
    assert h.sink.breaker.failures == 0
    assert set(h.acks.events) == {window[0].event, window[1].event}


async def test_an_error_naming_no_entry_fails_the_whole_call() -> None:
    entries = [SetQuantityEntry(ITEM_GID, LOCATION_GID, 8, 5)]
    general = UserErrorInfo("Reason is invalid", "INVALID_REASON", ("input", "reason"))
    h = harness(FakeShopify(scripted=[refused(entries, {}, [general])]))

    await h.sink.write(received(command(version=1, target=8, change_from=5)))

    assert len(h.shopify.calls) == 1
    [result] = h.output.flat()
    assert (result.ok, result.error) == (False, "Reason is invalid")
    assert len(h.output.dead) == len(h.output.exceptions) == 1


async def test_a_request_shopify_refuses_for_good_is_dead_lettered_with_its_headers() -> None:
    h = harness(
        FakeShopify(scripted=[ShopifyError(Outcome.CLIENT_ERROR, "HTTP 400: bad", attempts=1)])
    )
    window = received(command(1, 8, 5), command(4, 2, 0, item=8, sku="OTHER"))

    await h.sink.write(window)

    reason = "client_error: client_error: HTTP 400: bad"
    assert [(r.sku, r.ok, r.error, r.version) for r in h.output.flat()] == [
        ("SKU", False, reason, 1),
        ("OTHER", False, reason, 4),
    ]
    assert h.output.dead == [
        (window[0].raw, reason, b"SKU", {"x-origin": b"v1"}),
        (window[1].raw, reason, b"OTHER", {"x-origin": b"v4"}),
    ]
    # one exception for the call, naming its SKUs
    [record] = h.output.exceptions
    assert (record.type, record.owner, record.key, record.at) == (
        "shopify_inventory_write_failed",
        Owner.ECOMMERCE,
        "OTHER,SKU",
        NOW,
    )
    assert h.table.entries == {}
    assert h.sink.breaker.failures == 0  # Shopify is well: it refused the input
    assert h.acks.events == [window[0].event, window[1].event]


async def test_a_surprise_fails_the_chunks_writes_and_not_the_sink() -> None:
    h = harness(FakeShopify(levels={(ITEM, LOCATION): 5}, scripted=[RuntimeError("boom")]))

    await h.sink.write(received(command(version=1, target=8, change_from=5)))

    [result] = h.output.flat()
    assert (result.ok, result.error) == (False, "unexpected error: RuntimeError: boom")
    await h.sink.write(received(command(version=2, target=8, change_from=5)))
    assert h.output.flat()[-1].ok


async def test_forgetting_the_cache_reads_the_table_again() -> None:
    h = harness(FakeShopify(levels={(ITEM, LOCATION): 5}))
    await h.sink.write(received(command(version=1, target=8, change_from=5)))

    h.sink.written.forget()
    await h.sink.write(received(command(version=1, target=8, change_from=5)))

    assert len(h.shopify.calls) == 1
    assert h.output.flat()[-1].written is None


# -- an outage ---------------------------------------------------------------------------------


async def test_an_outage_longer_than_the_retries_holds_the_work_and_drains_it_coalesced() -> None:
    h = harness(FakeShopify(levels={(ITEM, LOCATION): 5, (8, LOCATION): 0}, down=True))
    writer = asyncio.create_task(h.sink.run_writer())
    try:
        first = received(command(1, 8, 5), command(1, 1, 0, item=8, sku="OTHER"))
        await h.sink.accept(first)
        await until(lambda: h.sink.breaker.is_open, "the breaker to open")
        # the agent goes on taking commands while Shopify is down: one entry per level
        later = received(command(2, 7, 5), command(3, 6, 5))
        for r in later:
            await h.sink.accept([r])
        await until(lambda: len(h.shopify.calls) > 10, "probes while Shopify is down")
        # a probe carries the newest version, and fails like the others
        await until(lambda: any(c.entries[0].quantity == 6 for c in h.shopify.calls), "v3 probed")
        assert len(h.sink.backlog) == 2
        # superseded records are acknowledged; the newest of each level waits for its write
        assert h.acks.events == [first[0].event, later[0].event]
        assert not h.output.results and not h.output.dead and not h.output.exceptions

        h.shopify.down = False
        await until(lambda: len(h.sink.backlog) == 0, "the backlog to drain")
    finally:
        writer.cancel()

    assert h.shopify.levels == {(ITEM, LOCATION): 6, (8, LOCATION): 1}
    # one write per level once Shopify answers: the newest version (the failed probes with
    # the same key changed nothing)
    [written] = h.shopify.applied
    assert [(e.quantity, e.change_from) for e in written.entries] == [(6, 5), (1, 0)]
    assert [(r.sku, r.version, r.ok) for r in h.output.flat()] == [
        ("SKU", 3, True),
        ("OTHER", 1, True),
    ]
    assert not h.output.dead and not h.output.exceptions
    assert h.acks.events == [first[0].event, later[0].event, later[1].event, first[1].event]
    # a line when writes stopped and one when they went on, not one per failed call
    assert len(h.report.lines) == 2
    assert "held back" in h.report.lines[0] and "answers again" in h.report.lines[1]
    assert not h.sink.breaker.is_open


async def test_a_release_forgets_the_backlog_without_acknowledging_it() -> None:
    h = harness(FakeShopify(levels={(ITEM, LOCATION): 5}, down=True))
    window = received(command(1, 8, 5))
    await h.sink.accept(window)

    h.sink.release()

    assert h.sink.holding() == 0
    assert h.acks.events == []  # taken again from Kafka's committed offset


async def test_a_release_frees_the_probe_of_the_writer_it_stopped() -> None:
    h = harness(FakeShopify(down=True))
    for _ in range(3):
        h.sink.breaker.failed(Outcome.SERVER_ERROR)
    await h.sink.breaker.ready()  # the stopped writer's probe, never answered

    h.sink.release()

    await asyncio.wait_for(h.sink.breaker.ready(), 1.0)  # the next writer may probe
