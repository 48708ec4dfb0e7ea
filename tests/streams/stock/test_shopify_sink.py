"""The Shopify inventory sink's writes, against a fake Shopify: no HTTP, no Kafka."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from tillsync.connectors.shopify.client import (
    EntryResult,
    SetQuantitiesResult,
    SetQuantityEntry,
    ShopifyError,
    UserErrorInfo,
)
from tillsync.connectors.shopify.ids import gid_tail
from tillsync.schemas.events import ExceptionRecord, Owner, SetInventory, WriteResult, WriteResults
from tillsync.streams.echoes import Echoes
from tillsync.streams.stock.shopify_sink import (
    MAX_ENTRIES,
    STALE,
    STALE_ROUNDS,
    ShopifyInventorySink,
)
from tillsync.streams.stock.written import Level, Received, Written, WrittenVersions

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


@dataclass
class FakeShopify:
    """Shopify's `available` per level, with its compare-and-swap: a call whose compare value
    differs from a level's is refused whole, naming the stale entries."""

    levels: dict[tuple[int, int], int] = field(default_factory=dict)
    # answers (or errors) given before the simulated ones, in order
    scripted: list[SetQuantitiesResult | Exception] = field(default_factory=list)
    always_stale: bool = False
    unreadable: bool = False
    calls: list[Call] = field(default_factory=list)
    reads: list[tuple[int, int]] = field(default_factory=list)

    async def set_quantities(
        self,
        entries: Sequence[SetQuantityEntry],
        *,
        reason: str,
        reference_uri: str | None,
        idempotency_key: str,
    ) -> SetQuantitiesResult:
        self.calls.append(Call(list(entries), reason, reference_uri, idempotency_key))
        if self.scripted:
            answer = self.scripted.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        stale = [
            i
            for i, e in enumerate(entries)
            if self.always_stale
            or (e.change_from is not None and self.levels.get(_level(e)) != e.change_from)
        ]
        if stale:
            return refused(list(entries), {i: stale_error(i) for i in stale})
        for e in entries:
            self.levels[_level(e)] = e.quantity
        return SetQuantitiesResult(
            [EntryResult(e, True, quantity_after=e.quantity) for e in entries],
            [],
            "gid://shopify/InventoryAdjustmentGroup/1",
            APPLIED_AT,
        )

    async def read_available(self, item_id: int, location_id: int) -> int | None:
        self.reads.append((item_id, location_id))
        if self.unreadable:
            raise ShopifyError("THROTTLED", "no read", attempts=5)
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
    dead: list[tuple[bytes, str, bytes | None]] = field(default_factory=list)
    exceptions: list[ExceptionRecord] = field(default_factory=list)

    async def dead_letter(self, value: bytes, reason: str, key: bytes | None = None) -> None:
        self.dead.append((value, reason, key))

    async def exception(self, record: ExceptionRecord) -> None:
        self.exceptions.append(record)

    async def write_results(self, batches: Iterable[tuple[int, WriteResults]]) -> None:
        self.results.extend(batches)

    def flat(self) -> list[WriteResult]:
        return [r for _, batch in self.results for r in batch.results]


@dataclass
class Harness:
    shopify: FakeShopify
    table: MemoryTable
    output: RecordingOutput
    echoes: Echoes
    sink: ShopifyInventorySink


def harness(shopify: FakeShopify, table: MemoryTable | None = None) -> Harness:
    table = table if table is not None else MemoryTable()
    output = RecordingOutput()
    echoes = Echoes()
    sink = ShopifyInventorySink(shopify, WrittenVersions(table), output, echoes, clock=lambda: NOW)
    return Harness(shopify, table, output, echoes, sink)


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
    return [Received(c, partition) for c in cmds]


def expected_key(*entries: tuple[str, str, int, int | None]) -> str:
    digest = hashlib.sha256()
    for item, location, quantity, change_from in entries:
        digest.update(f"{item}|{location}|{quantity}|{change_from};".encode())
    return digest.hexdigest()[:32]


# -- the key path ------------------------------------------------------------------------------


async def test_a_command_is_written_with_its_compare_value_under_a_key_of_its_entries() -> None:
    h = harness(FakeShopify(levels={(ITEM, LOCATION): 5}))

    await h.sink.write(received(command(version=1, target=8, change_from=5)))

    [call] = h.shopify.calls
    assert call.entries == [SetQuantityEntry(ITEM_GID, LOCATION_GID, 8, 5)]
    key = expected_key((ITEM_GID, LOCATION_GID, 8, 5))
    assert call.idempotency_key == key
    assert call.reference_uri == f"gid://tillsync/StockSync/{key}"
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


def test_the_key_depends_on_every_entry_its_order_and_its_compare_value() -> None:
    a = SetQuantityEntry(ITEM_GID, LOCATION_GID, 8, 5)
    b = SetQuantityEntry("gid://shopify/InventoryItem/8", LOCATION_GID, 3, None)
    key = ShopifyInventorySink.idempotency_key
    assert (
        key([a, b])
        == key([a, b])
        == expected_key(
            (ITEM_GID, LOCATION_GID, 8, 5), ("gid://shopify/InventoryItem/8", LOCATION_GID, 3, None)
        )
    )
    assert key([a, b]) != key([b, a])
    assert key([a]) != key([SetQuantityEntry(ITEM_GID, LOCATION_GID, 8, 4)])
    assert len(key([a])) == 32


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

    await h.sink.write(received(cmd))

    assert len(h.shopify.calls) == 1
    first, again = h.output.flat()
    assert (first.ok, first.written) == (True, 8)
    # confirmed, without a value: the position keeps what Shopify last told it
    assert (again.ok, again.written, again.version, again.shopify_at) == (True, None, 1, None)
    assert h.sink.stats.confirmed == 1


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

    await h.sink.write(received(command(version=2, target=1, change_from=5)))

    assert len(h.shopify.calls) == 1
    assert [r.version for r in h.output.flat()] == [3]
    assert h.shopify.levels[(ITEM, LOCATION)] == 8


async def test_commands_for_one_level_coalesce_to_the_newest_version() -> None:
    other = 8
    h = harness(FakeShopify(levels={(ITEM, LOCATION): 5, (other, LOCATION): 0}))
    window = [
        command(version=1, target=6, change_from=5),
        command(version=1, target=2, change_from=0, item=other, sku="OTHER"),
        command(version=3, target=9, change_from=5),
        command(version=2, target=7, change_from=5),
    ]

    await h.sink.write(received(*window))

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
    assert h.sink.window.pending == {
        Level(ITEM, LOCATION): window[2],
        Level(other, LOCATION): window[1],
    }
    assert h.sink.stats.superseded == 2


async def test_a_window_is_written_in_calls_of_at_most_250_entries() -> None:
    h = harness(FakeShopify())
    cmds = [command(1, 1, None, item=i) for i in range(MAX_ENTRIES + 1)]

    await h.sink.write(received(*cmds))

    assert sorted(len(c.entries) for c in h.shopify.calls) == [1, MAX_ENTRIES]
    assert len(h.output.flat()) == MAX_ENTRIES + 1


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


async def test_a_stale_compare_is_re_read_and_written_again_on_top_of_what_moved() -> None:
    # an online sale took Shopify from 5 to 4 after the position last looked
    h = harness(FakeShopify(levels={(ITEM, LOCATION): 4}))

    await h.sink.write(received(command(version=1, target=8, change_from=5)))

    first, second = h.shopify.calls
    assert first.entries == [SetQuantityEntry(ITEM_GID, LOCATION_GID, 8, 5)]
    assert h.shopify.reads == [(ITEM, LOCATION)]
    # the sale is kept: 8 + (4 - 5), compared against the value read back, under a new key
    assert second.entries == [SetQuantityEntry(ITEM_GID, LOCATION_GID, 7, 4)]
    assert second.idempotency_key != first.idempotency_key
    [result] = h.output.flat()
    # the write result carries the rebased target
    assert (result.ok, result.target, result.written, result.version) == (True, 7, 7, 1)
    assert h.table.entries[(0, Level(ITEM, LOCATION))] == Written(version=1, value=7)
    assert not h.output.dead and not h.output.exceptions


async def test_a_compare_stale_every_round_fails_after_three_re_reads() -> None:
    h = harness(FakeShopify(levels={(ITEM, LOCATION): 4}, always_stale=True))

    await h.sink.write(received(command(version=1, target=8, change_from=5)))

    assert len(h.shopify.calls) == STALE_ROUNDS + 1 == 4
    assert len(h.shopify.reads) == STALE_ROUNDS
    # rebased once on the move from 5 to 4; later re-reads find nothing more moved
    assert [c.entries[0].quantity for c in h.shopify.calls] == [8, 7, 7, 7]
    assert [c.entries[0].change_from for c in h.shopify.calls] == [5, 4, 4, 4]
    reason = f"{STALE} after {STALE_ROUNDS} re-reads"
    [result] = h.output.flat()
    assert (result.ok, result.written, result.target, result.error) == (False, None, 7, reason)
    # the command dead-lettered is the rebased one, keyed by its SKU
    [(value, dead_reason, key)] = h.output.dead
    assert SetInventory.model_validate_json(value).target == 7
    assert (dead_reason, key) == (reason, b"SKU")
    [record] = h.output.exceptions
    assert (record.type, record.owner, record.key) == (
        "shopify_inventory_write_failed",
        Owner.ECOMMERCE,
        "SKU",
    )
    assert record.message == f"1 inventory writes to Shopify failed: {reason}"
    # nothing written: no table entry, so the same command is written again when it comes
    assert h.table.entries == {}


async def test_a_level_that_cannot_be_re_read_goes_again_unchanged_under_the_same_key() -> None:
    h = harness(FakeShopify(levels={(ITEM, LOCATION): 4}, always_stale=True, unreadable=True))

    await h.sink.write(received(command(version=1, target=8, change_from=5)))

    assert len({c.idempotency_key for c in h.shopify.calls}) == 1
    assert [c.entries for c in h.shopify.calls] == [
        [SetQuantityEntry(ITEM_GID, LOCATION_GID, 8, 5)]
    ] * (STALE_ROUNDS + 1)
    [result] = h.output.flat()
    assert (result.ok, result.target, result.error) == (False, 8, f"{STALE} after 3 re-reads")


async def test_entries_refused_only_for_a_neighbours_stale_compare_are_written_again_at_once() -> (
    None
):
    other = 8
    # the mutation is all or nothing: the other level was not applied either
    h = harness(FakeShopify(levels={(ITEM, LOCATION): 4, (other, LOCATION): 0}))

    await h.sink.write(
        received(
            command(version=1, target=8, change_from=5),
            command(version=1, target=2, change_from=0, item=other, sku="OTHER"),
        )
    )

    first, *rest = h.shopify.calls
    assert len(first.entries) == 2
    assert sorted(c.entries[0].inventory_item_id for c in rest) == [
        ITEM_GID,
        "gid://shopify/InventoryItem/8",
    ]
    assert all(len(c.entries) == 1 for c in rest)
    assert sorted((r.sku, r.ok, r.written) for r in h.output.flat()) == [
        ("OTHER", True, 2),
        ("SKU", True, 7),
    ]
    assert h.shopify.reads == [(ITEM, LOCATION)]


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

    await h.sink.write(
        received(
            command(version=1, target=8, change_from=5),
            command(version=1, target=2, change_from=0, item=8, sku="OTHER"),
        )
    )

    assert [len(c.entries) for c in h.shopify.calls] == [2, 1]
    assert h.shopify.calls[1].entries == [entries[1]]
    reason = "ITEM_NOT_STOCKED_AT_LOCATION: The item is not stocked at the location"
    assert [(r.sku, r.ok, r.error) for r in h.output.flat()] == [
        ("SKU", False, reason),
        ("OTHER", True, None),
    ]
    assert [d[1] for d in h.output.dead] == [reason]
    assert h.shopify.reads == []


async def test_an_error_naming_no_entry_fails_the_whole_call() -> None:
    entries = [SetQuantityEntry(ITEM_GID, LOCATION_GID, 8, 5)]
    general = UserErrorInfo("Reason is invalid", "INVALID_REASON", ("input", "reason"))
    h = harness(FakeShopify(scripted=[refused(entries, {}, [general])]))

    await h.sink.write(received(command(version=1, target=8, change_from=5)))

    assert len(h.shopify.calls) == 1
    [result] = h.output.flat()
    assert (result.ok, result.error) == (False, "Reason is invalid")
    assert len(h.output.dead) == len(h.output.exceptions) == 1


# -- errors reported as write results ----------------------------------------------------------


async def test_a_throttled_call_that_gives_up_is_reported_as_failed_write_results() -> None:
    h = harness(
        FakeShopify(
            levels={(ITEM, LOCATION): 5, (8, LOCATION): 0},
            scripted=[ShopifyError("THROTTLED", "bucket empty", attempts=5)],
        ),
    )
    cmds = [
        command(version=1, target=8, change_from=5),
        command(version=4, target=2, change_from=0, item=8, sku="OTHER"),
    ]

    await h.sink.write(received(*cmds))

    reason = "THROTTLED after 5 attempts"
    assert [(r.sku, r.ok, r.written, r.error, r.version) for r in h.output.flat()] == [
        ("SKU", False, None, reason, 1),
        ("OTHER", False, None, reason, 4),
    ]
    assert [(SetInventory.model_validate_json(v), r, k) for v, r, k in h.output.dead] == [
        (cmds[0], reason, b"SKU"),
        (cmds[1], reason, b"OTHER"),
    ]
    # one exception for the call, naming its SKUs
    [record] = h.output.exceptions
    assert (record.key, record.at) == ("OTHER,SKU", NOW)
    assert record.message == f"2 inventory writes to Shopify failed: {reason}"
    # nothing is remembered: the same command is written when it comes again
    assert h.table.entries == {}
    await h.sink.write(received(cmds[0]))
    assert len(h.shopify.calls) == 2
    assert h.output.flat()[-1].written == 8


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
