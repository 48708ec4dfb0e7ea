"""The Shopify inventory sink: targets in, `inventorySetQuantities` calls out.

The agent only takes commands into a backlog coalesced per (inventory item, location): the
newest version of each level waits there, with the record that asked for it (see
``backlog.py``). A writer task writes the backlog in calls of up to 250 quantities, several in
flight, paced by the client from Shopify's cost bucket, and acknowledges a record once its
level's version (or a newer one) is written or has failed for good. A version at or below one
already written is dropped, so an older Sitoo state never overwrites a newer one, even when
commands are replayed after a crash.

A failure of Shopify itself (timeouts, 5xx, 429, THROTTLED, a 401 while the token is rotated),
after the client's own retries, is never a failed write: the work stays in the backlog, the
writer waits on the breaker and writes it again, coalesced, once Shopify answers. An outage
therefore stalls only this writer; the agent goes on taking commands, so Faust's conductor
never waits on it. Only a write Shopify refuses for itself (a userError about the entry, a
4xx) is reported failed, dead-lettered with its record's headers and raised as an exception.

A compare-and-set that fails is never rebased here: the level is read back. When the value
read is one the command already accounts for (what the position last saw, or what our own last
write left), the same target is written again against it; otherwise the write is reported
failed with the value read, and the position decides again.

Each call's ``@idempotent`` key names the commands it carries (item, location, version, and
the target and compare value that version sends), so a retry of that call is applied once and
a later command never meets an earlier one's cached answer.

`ShopifyInventorySink` holds the state and the decisions; its `accept`, `write_round` and
`write` need no Kafka: Shopify, the written table, what the sink sends, the breaker and the
acknowledgement are handed in, so a test passes fakes. `register` wires it to the worker.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import faust
from pydantic import ValidationError

from tillsync.connectors.breaker import CircuitBreaker, is_platform_failure
from tillsync.connectors.outcomes import Outcome as CallOutcome
from tillsync.connectors.shopify.client import SetQuantitiesResult, SetQuantityEntry, ShopifyError
from tillsync.connectors.shopify.ids import gid
from tillsync.schemas.events import (
    ExceptionRecord,
    ObservedSource,
    Owner,
    SetInventory,
    ShopifyObserved,
    WriteResult,
    WriteResults,
)
from tillsync.streams import metrics, topics
from tillsync.streams.context import Context
from tillsync.streams.deadletter import error_reason
from tillsync.streams.echoes import Echoes
from tillsync.streams.runtime import Runtime
from tillsync.streams.stock.backlog import Backlog, Taken
from tillsync.streams.stock.reads import read_available
from tillsync.streams.stock.sink_breaker import sink_breaker
from tillsync.streams.stock.sink_output import KafkaSinkOutput, ResultsOutput
from tillsync.streams.stock.sink_runner import GuardedWriter, SinkRunner, flow_of
from tillsync.streams.stock.written import Level, Received, WrittenTable, WrittenVersions

log = logging.getLogger("tillsync.shopify_sink")

MAX_ENTRIES = 250  # Shopify's limit on any input array
WINDOW = 2_000  # commands taken from the stream at once
WINDOW_SECONDS = 0.25  # at most ~4 calls a second per window: a cost bucket restores 100 points/s
CALLS_IN_FLIGHT = 4
# levels the backlog holds before the agent waits: far above any store network's levels
BACKLOG_CAPACITY = 1_000_000
STALE = "CHANGE_FROM_QUANTITY_STALE"
# Shopify is still answering an earlier call of this key: the same call, later
CONCURRENT = "IDEMPOTENCY_CONCURRENT_REQUEST"
REASON = "correction"
REFERENCE = "gid://tillsync/StockSync/{}"

Ack = Callable[[faust.EventT], Awaitable[Any]]  # Faust's `Stream.ack`


async def _no_ack(_: faust.EventT) -> None:
    return None


class InventoryClient(Protocol):
    """What the sink asks of Shopify: its turn at the cost budget, the write, and one level
    read back after a stale compare."""

    async def set_quantities_turn(self) -> None: ...

    async def set_quantities(
        self,
        entries: Sequence[SetQuantityEntry],
        *,
        reason: str,
        reference_uri: str | None,
        idempotency_key: str,
    ) -> SetQuantitiesResult: ...

    async def read_available(self, item_id: int, location_id: int) -> int | None: ...


class RuntimeShopify:
    """The worker's Shopify client as an `InventoryClient`, looked up at each call: the
    runtime builds its client on first use, not when the agents are registered."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    async def set_quantities_turn(self) -> None:
        await self._runtime.shopify.set_quantities_turn()

    async def set_quantities(
        self,
        entries: Sequence[SetQuantityEntry],
        *,
        reason: str,
        reference_uri: str | None,
        idempotency_key: str,
    ) -> SetQuantitiesResult:
        return await self._runtime.shopify.set_quantities(
            entries, reason=reason, reference_uri=reference_uri, idempotency_key=idempotency_key
        )

    async def read_available(self, item_id: int, location_id: int) -> int | None:
        return await read_available(self._runtime.shopify, item_id, location_id)


@dataclass
class Pending:
    """One level's newest command in the backlog, and the compare value its calls send."""

    origin: Received
    # chosen on the first call of this version and kept, so that a retried call is the same
    # call (same key, same variables); changed only to a value read back that the command
    # accounts for
    compare: int | None = None
    chosen: bool = False
    tried: set[int | None] = field(default_factory=set)

    @property
    def command(self) -> SetInventory:
        return self.origin.command

    @property
    def level(self) -> Level:
        return self.origin.level


@dataclass(frozen=True)
class Outcome:
    """What a write did for one command, as its write result tells the position."""

    origin: Received
    # the value Shopify has after our write; None when nothing was written now (a failure, or
    # a replay confirmed again: the position keeps what Shopify last told it)
    written: int | None
    error: str | None = None
    # after a stale compare: what Shopify has, read back, and when (our clock)
    read_back: int | None = None
    read_at: float | None = None

    @property
    def command(self) -> SetInventory:
        return self.origin.command


@dataclass(frozen=True)
class Rejected:
    """A call Shopify refused, sorted by why. The mutation is all or nothing: entries with no
    error of their own were not applied either."""

    stale: list[Pending]  # CHANGE_FROM_QUANTITY_STALE: read back
    broken: list[tuple[Pending, str]]  # an error of their own: failed for good, with its reason
    innocent: list[Pending]  # no error of their own: written again as they are

    @property
    def unexplained(self) -> bool:
        """No entry is named: the whole call failed for a reason of its own."""
        return not self.stale and not self.broken


@dataclass
class ShopifySinkStats:
    rounds: int = 0
    calls: int = 0
    written: int = 0  # commands whose write Shopify applied
    confirmed: int = 0  # replays of the version already written, confirmed without a write
    superseded: int = 0  # commands dropped for a newer (or written) version of their level
    stale: int = 0  # entries read back after a stale compare
    retried: int = 0  # entries put back after a failure of Shopify itself
    failed: int = 0  # commands failed for good (dead-lettered)


class ShopifyInventorySink(GuardedWriter[Received]):
    SINK = metrics.Sink.SHOPIFY_INVENTORY

    def __init__(
        self,
        client: InventoryClient,
        written: WrittenVersions,
        output: ResultsOutput,
        echoes: Echoes,
        *,
        breaker: CircuitBreaker | None = None,
        ack: Ack = _no_ack,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.written = written
        self.output = output
        self.echoes = echoes
        self.breaker = breaker or sink_breaker(metrics.Platform.SHOPIFY)
        self.ack = ack
        self.backlog: Backlog[Level, Pending, Received] = Backlog(BACKLOG_CAPACITY)
        self.stats = ShopifySinkStats()
        self._clock = clock

    # -- taking commands: never waits on Shopify -------------------------------------------------

    async def accept_events(self, events: Sequence[faust.EventT]) -> None:
        """The agent's part: decode a window of records and take them into the backlog."""
        batch: list[Received] = []
        for event in events:
            headers = dict(event.headers or {})
            try:
                cmd = SetInventory.model_validate_json(event.value)
            except ValidationError as exc:
                reason = f"invalid command: {error_reason(exc)}"
                await self.output.dead_letter(event.value, reason, headers=headers)
                await self.ack(event)
                continue
            batch.append(Received(cmd, event.message.partition, event, event.value, headers))
        await self.accept(batch)

    async def accept(self, batch: Sequence[Received]) -> None:
        """Take commands into the backlog; a replay of the written version is confirmed at
        once, an older one dropped. Returns without writing anything."""
        confirmed: dict[Level, Outcome] = {}
        done: list[Received] = []
        for received in batch:
            level = received.level
            self.written.recall(level, received)
            written = self.written.version(level) or 0
            version = received.command.version
            if version < written:
                self.stats.superseded += 1
                done.append(received)
                continue
            if version == written:
                # A replay (after a crash, or sent again by the positions) may have lost its
                # write result, so it is confirmed again, without a write.
                confirmed[level] = Outcome(received, None)
                done.append(received)
                continue
            await self.backlog.wait_for_room(level)
            superseded = self.backlog.add(level, version, Pending(received), received)
            self.stats.superseded += len(superseded)
            done.extend(superseded)
        if confirmed:
            self.stats.confirmed += len(confirmed)
            await self._report(list(confirmed.values()))
        await self._ack_all(done)
        self._gauge()

    # -- writing: the writer task ------------------------------------------------------------------

    async def write_round(self) -> None:
        """Wait for the breaker, then write what the backlog holds, a few calls at once; while
        the breaker is not closed, one call is the probe."""
        await self.breaker.ready()
        # the backlog is taken once the budget can pay for the call, not before: while the
        # bucket is short, every level that waited meanwhile goes into that one call (10
        # points whatever it carries) instead of a call each
        await self.client.set_quantities_turn()
        calls = 1 if self.breaker.is_open else CALLS_IN_FLIGHT
        taken = self.backlog.take(MAX_ENTRIES * calls)
        if not taken:
            # nothing to probe with (the backlog was released): let the next caller probe
            self.breaker.failed(CallOutcome.CLIENT_ERROR)
            return
        self.stats.rounds += 1
        pendings = [self._prepared(t) for t in taken]
        try:
            await asyncio.gather(*(self._guarded(chunk) for chunk in self.chunks(pendings)))
        except Exception:
            # what is still taken goes back, for the next round; the runner logs the surprise
            self._back(pendings)
            raise
        self._gauge()

    def _prepared(self, taken: Taken[Level, Pending]) -> Pending:
        pending = taken.work
        if not pending.chosen:
            pending.compare = self.first_compare(pending.command)
            pending.chosen = True
        return pending

    async def _guarded(self, chunk: list[Pending]) -> None:
        """A surprise in one chunk fails that chunk's writes, never the sink."""
        try:
            await self._write_chunk(chunk)
        except Exception as exc:
            log.exception("inventory write failed unexpectedly")
            await self._fail(chunk, f"unexpected error: {type(exc).__name__}: {exc}")

    async def _write_chunk(self, chunk: list[Pending]) -> None:
        try:
            result = await self._call(chunk)
        except ShopifyError as exc:
            if is_platform_failure(exc.reason):
                # Shopify is unwell: the work stays, the breaker decides when to try again
                self.breaker.failed(exc.reason)
                self.stats.retried += len(chunk)
                self._back(chunk)
                return
            self.breaker.failed(exc.reason)
            await self._fail(chunk, f"{exc.reason}: {exc}"[:500])
            return
        self.breaker.succeeded()
        if result.ok:
            await self._applied(chunk, result)
            return
        rejected = self.rejected(chunk, result)
        if rejected.unexplained:
            codes = {e.code for e in result.user_errors}
            if codes == {CONCURRENT}:
                self._back(chunk)
                return
            await self._fail(chunk, "; ".join(e.message for e in result.user_errors)[:500])
            return
        for pending, reason in rejected.broken:
            await self._fail([pending], reason)
        self._back(rejected.innocent)
        if rejected.stale:
            self.stats.stale += len(rejected.stale)
            await asyncio.gather(*(self._read_back(p) for p in rejected.stale))

    async def _call(self, chunk: list[Pending]) -> SetQuantitiesResult:
        key = self.idempotency_key(chunk)
        self.stats.calls += 1
        for pending in chunk:
            pending.tried.add(pending.compare)
        return await self.client.set_quantities(
            self.entries(chunk),
            reason=REASON,
            reference_uri=REFERENCE.format(key),
            idempotency_key=key,
        )

    async def _applied(self, chunk: list[Pending], result: SetQuantitiesResult) -> None:
        applied_at = result.created_at or self._clock()
        outcomes = self.accepted(chunk, result)
        for outcome in outcomes:
            level = Level.of(outcome.command)
            assert outcome.written is not None
            self.written.remember(level, outcome.origin, outcome.command.version, outcome.written)
            self.echoes.expect(level.item, level.location, outcome.written, applied_at)
        self.stats.written += len(outcomes)
        metrics.events_out.labels(topic="shopify.inventorySetQuantities").inc(len(outcomes))
        await self._report(outcomes, result.created_at)
        await self._done(chunk)

    async def _read_back(self, pending: Pending) -> None:
        cmd = pending.command
        try:
            available = await self.client.read_available(cmd.inventory_item_id, cmd.location_id)
        except ShopifyError as exc:
            if is_platform_failure(exc.reason):
                # the write goes again as it was once Shopify answers: stale again, read again
                self.breaker.failed(exc.reason)
                self._back([pending])
                return
            available = None
        read_at = self._clock()
        if available is not None:
            self.written.learn(pending.level, pending.origin, available)
            if self.explained(pending, available):
                # Shopify shows a value this command already accounts for: the same target,
                # against that value, in a call of its own key
                pending.compare = available
                self._back([pending])
                return
        # Shopify moved in a way the command does not know of (a sale the position has not
        # seen, an edit): not ours to guess; the position decides again from the value read
        outcome = Outcome(pending.origin, None, STALE, available, read_at)
        await self._report([outcome])
        await self._done([pending])

    async def _fail(self, chunk: list[Pending], reason: str) -> None:
        """Failed for good: reported, dead-lettered with the record's headers, raised."""
        self.stats.failed += len(chunk)
        await self._report([Outcome(p.origin, None, reason) for p in chunk])
        for pending in chunk:
            origin = pending.origin
            value = origin.raw or origin.command.model_dump_json().encode()
            await self.output.dead_letter(
                value,
                reason,
                key=origin.command.sku.encode(),
                headers=origin.headers,
            )
        await self.output.exception(self.failure([p.command for p in chunk], reason, self._clock()))
        await self._done(chunk)

    async def _done(self, chunk: list[Pending]) -> None:
        records: list[Received] = []
        for pending in chunk:
            records.extend(self.backlog.done(pending.level, pending.command.version))
        await self._ack_all(records)

    def _back(self, chunk: list[Pending]) -> None:
        for pending in chunk:
            self.backlog.back(pending.level)

    async def _ack_all(self, records: list[Received]) -> None:
        for record in records:
            if record.event is not None:
                await self.ack(record.event)

    async def _report(self, outcomes: list[Outcome], shopify_at: float | None = None) -> None:
        """Tell the positions what each write did: a value read back first, so that the
        position knows it when the failed write's result comes."""
        now = self._clock()
        for outcome in outcomes:
            if outcome.error is None and outcome.written is not None:
                latency = max(0.0, now - outcome.command.event_time)
                metrics.sync_latency.labels(flow="stock").observe(latency)
        readings = self.readings(outcomes)
        if readings:
            await self.output.readings(readings)
        await self.output.write_results(self.write_results(outcomes, now, shopify_at))

    # -- decisions: no I/O ----------------------------------------------------------------------

    @staticmethod
    def chunks(todo: list[Pending]) -> list[list[Pending]]:
        return [todo[i : i + MAX_ENTRIES] for i in range(0, len(todo), MAX_ENTRIES)]

    def first_compare(self, cmd: SetInventory) -> int | None:
        """``changeFromQuantity`` of a version's first call: what Shopify had after our last
        write or read-back of the level (the position may not have heard of it yet), else what
        the position last saw there."""
        return self.written.values.get(Level.of(cmd), cmd.change_from)

    @staticmethod
    def explained(pending: Pending, available: int) -> bool:
        """A value read back that the command accounts for, not yet tried: what the position
        saw when it made the command, or what our own last write or read-back left."""
        known = {pending.command.change_from, pending.compare}
        return available in known and available not in pending.tried

    @staticmethod
    def entries(chunk: list[Pending]) -> list[SetQuantityEntry]:
        return [
            SetQuantityEntry(
                gid("InventoryItem", p.command.inventory_item_id),
                gid("Location", p.command.location_id),
                p.command.target,
                p.compare,
            )
            for p in chunk
        ]

    @staticmethod
    def idempotency_key(chunk: Sequence[Pending]) -> str:
        """The call's @idempotent key (and reference document): it names the commands the call
        carries, each by its level and version (with the target and compare value that version
        sends, so that one key always means one set of variables). A retried call repeats it
        and Shopify applies it once; a later command, even of the same content, has its own."""
        digest = hashlib.sha256()
        for p in chunk:
            cmd = p.command
            digest.update(
                f"{cmd.inventory_item_id}@{cmd.location_id}#{cmd.version}"
                f"={cmd.target}<{p.compare};".encode()
            )
        return digest.hexdigest()[:32]

    @staticmethod
    def accepted(chunk: list[Pending], result: SetQuantitiesResult) -> list[Outcome]:
        """An applied call: what each level now has, Shopify's word if it gave one."""
        return [
            Outcome(
                p.origin, res.quantity_after if res.quantity_after is not None else p.command.target
            )
            for p, res in zip(chunk, result.entries, strict=True)
        ]

    @staticmethod
    def rejected(chunk: list[Pending], result: SetQuantitiesResult) -> Rejected:
        stale: list[Pending] = []
        broken: list[tuple[Pending, str]] = []
        for pending, res in zip(chunk, result.entries, strict=True):
            code = res.error.code if res.error else None
            if code == STALE:
                stale.append(pending)
            elif res.error is not None and res.error.entry_index is not None:
                broken.append((pending, f"{code}: {res.error.message}"))
        named = {id(p) for p in stale} | {id(p) for p, _ in broken}
        innocent = [p for p in chunk if id(p) not in named]
        return Rejected(stale, broken, innocent)

    @staticmethod
    def readings(outcomes: list[Outcome]) -> list[tuple[int, ShopifyObserved]]:
        """Each value read back, for its SKU's partition of ``stock.events``."""
        out: list[tuple[int, ShopifyObserved]] = []
        for outcome in outcomes:
            if outcome.read_back is None or outcome.read_at is None:
                continue
            cmd = outcome.command
            seen = ShopifyObserved(
                sku=cmd.sku,
                location_id=cmd.location_id,
                inventory_item_id=cmd.inventory_item_id,
                available=outcome.read_back,
                updated_at=outcome.read_at,
                source=ObservedSource.READ,
            )
            out.append((outcome.origin.partition, seen))
        return out

    @staticmethod
    def write_results(
        outcomes: list[Outcome], at: float, shopify_at: float | None
    ) -> list[tuple[int, WriteResults]]:
        """One record per partition: a command's partition of the commands topic is its SKU's
        partition of ``stock.events`` (both keyed by SKU, with as many partitions)."""
        by_partition: dict[int, list[WriteResult]] = {}
        for outcome in outcomes:
            cmd = outcome.command
            result = WriteResult(
                sku=cmd.sku,
                location_id=cmd.location_id,
                inventory_item_id=cmd.inventory_item_id,
                ok=outcome.error is None,
                target=cmd.target,
                written=outcome.written,
                version=cmd.version,
                sitoo_version=cmd.sitoo_version,
                error=outcome.error,
                at=at,
                shopify_at=shopify_at if outcome.written is not None else None,
            )
            by_partition.setdefault(outcome.origin.partition, []).append(result)
        return [
            (partition, WriteResults(results=batch)) for partition, batch in by_partition.items()
        ]

    @staticmethod
    def failure(cmds: list[SetInventory], reason: str, at: float) -> ExceptionRecord:
        return ExceptionRecord(
            type="shopify_inventory_write_failed",
            owner=Owner.ECOMMERCE,
            key=",".join(sorted({c.sku for c in cmds}))[:200],
            message=f"{len(cmds)} inventory writes to Shopify failed: {reason}",
            at=at,
        )


def register(ctx: Context) -> None:
    app = ctx.app
    rt = ctx.runtime
    assert rt is not None
    # write results go back to the partition their command came from (see `write_results`)
    assert topics.SHOPIFY_INVENTORY_COMMANDS.partitions == topics.STOCK_EVENTS.partitions
    table = app.Table(
        "shopify-written",
        default=None,
        schema=faust.Schema(key_type=str, key_serializer="json", value_serializer="raw"),
        value_type=bytes,
        help="per (inventory item, location): the newest command version written and its value",
    )
    shopify = ShopifyInventorySink(
        RuntimeShopify(rt),
        WrittenVersions(WrittenTable(table)),
        KafkaSinkOutput(ctx, topics.SHOPIFY_INVENTORY_COMMANDS),
        rt.echoes,
    )
    runner = SinkRunner(shopify, window=WINDOW, within=WINDOW_SECONDS, flowing=flow_of(app))

    @app.on_partitions_revoked.connect
    async def forget(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        shopify.written.forget()

    @app.agent(ctx.topic(topics.SHOPIFY_INVENTORY_COMMANDS), name="shopify-inventory-sink")
    async def sink(stream: faust.StreamT[bytes]) -> None:
        await runner.run(stream)
