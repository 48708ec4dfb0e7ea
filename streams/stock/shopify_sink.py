"""The Shopify inventory sink: targets in, `inventorySetQuantities` calls out.

Commands are taken in windows and coalesced per (inventory item, location) to the newest
version; a version at or below one already written is dropped, so an older Sitoo state never
overwrites a newer one, even when commands are replayed after a crash. Each window is written
in calls of up to 250 quantities, several in flight, paced by the client from Shopify's cost
bucket. A stale compare-and-swap is re-read and retried, rebased on what moved in Shopify
meanwhile (so a concurrent online sale is kept, not overwritten); what still fails is reported
back to the position (which treats it as drift), dead-lettered and raised as an exception.

Offsets advance only after a window is written: a Shopify outage stalls this agent and the
backlog waits in Kafka, to drain coalesced when Shopify is back. Ingestion goes on (the
receivers write the raw topics whatever the agents do), but once this agent's queue is full
Faust's conductor waits on it, so the worker's other agents wait too until Shopify answers.

`ShopifyInventorySink` holds the state and the decisions; its `write` takes one window of
decoded commands and needs no Kafka: Shopify, the written table and what the sink sends are
handed in, so a test passes fakes. `register` wires it to the worker's Faust app.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import faust
from pydantic import ValidationError

from tillsync.connectors.shopify.client import SetQuantitiesResult, SetQuantityEntry, ShopifyError
from tillsync.connectors.shopify.ids import gid
from tillsync.schemas.events import (
    ExceptionRecord,
    Owner,
    SetInventory,
    WriteResult,
    WriteResults,
)
from tillsync.streams import metrics, topics
from tillsync.streams.context import Context
from tillsync.streams.deadletter import error_reason
from tillsync.streams.echoes import Echoes
from tillsync.streams.runtime import Runtime
from tillsync.streams.stock.reads import read_available
from tillsync.streams.stock.sink_output import KafkaSinkOutput, ResultsOutput
from tillsync.streams.stock.written import Level, Received, WrittenTable, WrittenVersions

log = logging.getLogger("tillsync.shopify_sink")

MAX_ENTRIES = 250  # Shopify's limit on any input array
WINDOW = 2_000  # commands taken at once; coalescing shrinks them
WINDOW_SECONDS = 0.25  # at most ~4 calls a second per window: a cost bucket restores 100 points/s
CALLS_IN_FLIGHT = 4
STALE_ROUNDS = 3
STALE = "CHANGE_FROM_QUANTITY_STALE"
REASON = "correction"
REFERENCE = "gid://tillsync/StockSync/{}"


class InventoryClient(Protocol):
    """What the sink asks of Shopify: the write, and one level read back after a stale
    compare."""

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


@dataclass(frozen=True)
class Outcome:
    """What a write did for one command, as its write result tells the position."""

    command: SetInventory
    # the value Shopify has after our write; None when nothing was written now (a failure, or
    # a replay confirmed again: the position keeps what Shopify last told it)
    written: int | None
    error: str | None = None


@dataclass(frozen=True)
class Rejected:
    """A call Shopify refused, sorted by why. The mutation is all or nothing: entries with no
    error of their own were not applied either."""

    stale: list[SetInventory]  # CHANGE_FROM_QUANTITY_STALE: re-read, rebase, write again
    broken: list[tuple[SetInventory, str]]  # an error of their own: failed, with its reason
    innocent: list[SetInventory]  # no error of their own: written again as they are

    @property
    def unexplained(self) -> bool:
        """No entry is named: the whole call failed for a reason of its own."""
        return not self.stale and not self.broken


@dataclass
class Window:
    """The window being written."""

    # per level, a record of its commands: all of one level's share its SKU's partition,
    # where its table entry and write results belong
    origins: dict[Level, Received] = field(default_factory=dict)
    # per level, the newest command not yet superseded by one written: what this window writes
    pending: dict[Level, SetInventory] = field(default_factory=dict)


@dataclass
class ShopifySinkStats:
    windows: int = 0
    calls: int = 0
    written: int = 0  # commands whose write Shopify applied
    confirmed: int = 0  # replays of the version already written, confirmed without a write
    superseded: int = 0  # commands dropped for a newer (or written) version of their level
    stale: int = 0  # entries re-read after a stale compare
    failed: int = 0  # commands reported failed (one command may fail more than once)


class ShopifyInventorySink:
    def __init__(
        self,
        client: InventoryClient,
        written: WrittenVersions,
        output: ResultsOutput,
        echoes: Echoes,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.written = written
        self.output = output
        self.echoes = echoes
        self.window = Window()
        self.stats = ShopifySinkStats()
        self._clock = clock
        self._in_flight = asyncio.Semaphore(CALLS_IN_FLIGHT)
        self._rereading = asyncio.Semaphore(CALLS_IN_FLIGHT * 2)

    # -- the agent ------------------------------------------------------------------------------

    async def consume(self, stream: faust.StreamT[bytes]) -> None:
        """The Faust agent's body: windows of records, decoded, written."""
        batches = cast(faust.Stream, stream).take_events(WINDOW, within=WINDOW_SECONDS)
        async for events in batches:
            batch: list[Received] = []
            for event in events:
                try:
                    cmd = SetInventory.model_validate_json(event.value)
                except ValidationError as exc:
                    await self.output.dead_letter(
                        event.value, f"invalid command: {error_reason(exc)}"
                    )
                    continue
                batch.append(Received(cmd, event.message.partition, event))
            await self.write(batch)

    # -- writing --------------------------------------------------------------------------------

    async def write(self, batch: Sequence[Received]) -> None:
        """Write one window of commands; returns when each has a write result sent."""
        self.window = Window()
        self.stats.windows += 1
        for received in batch:
            self.window.origins[received.level] = received
            self.written.recall(received.level, received)
        commands = [r.command for r in batch]
        self.window.pending = self.coalesce(commands)
        todo = list(self.window.pending.values())
        self.stats.superseded += len(commands) - len(todo)
        again = self.replays(commands)
        if again:
            self.stats.confirmed += len(again)
            await self._report([Outcome(c, None) for c in again])
        metrics.sink_backlog.labels(sink="shopify-inventory").set(len(todo))
        await asyncio.gather(*(self._guarded(c) for c in self.chunks(todo)))
        metrics.sink_backlog.labels(sink="shopify-inventory").set(0)
        metrics.events_out.labels(topic="shopify.inventorySetQuantities").inc(len(todo))

    async def _guarded(self, chunk: list[SetInventory]) -> None:
        """A surprise in one chunk fails that chunk's writes, never the sink."""
        try:
            await self._write_chunk(chunk)
        except Exception as exc:
            log.exception("inventory write failed unexpectedly")
            await self._fail(chunk, f"unexpected error: {type(exc).__name__}: {exc}")

    async def _write_chunk(self, chunk: list[SetInventory]) -> None:
        todo = chunk
        for round_ in range(STALE_ROUNDS + 1):
            result = await self._call(todo)
            if result is None:
                return
            if result.ok:
                await self._applied(todo, result)
                return
            rejected = self.rejected(todo, result)
            if rejected.unexplained:
                await self._fail(todo, "; ".join(e.message for e in result.user_errors)[:500])
                return
            for cmd, reason in rejected.broken:
                await self._fail([cmd], reason)
            if round_ == STALE_ROUNDS:
                break
            self.stats.stale += len(rejected.stale)
            fresh: list[int | None]
            if rejected.innocent:
                fresh, _ = await asyncio.gather(
                    self._reread_all(rejected.stale), self._write_chunk(rejected.innocent)
                )
            else:
                fresh = await self._reread_all(rejected.stale)
            rebased: list[SetInventory] = []
            for cmd, now_available in zip(rejected.stale, fresh, strict=True):
                assumed = self.compare_value(cmd)
                if now_available is not None:
                    self.written.learn(Level.of(cmd), now_available)
                rebased.append(self.rebase(cmd, assumed, now_available))
            todo = rebased
            if not todo:
                return
        # what the last round sent fails whole: its stale entries, those that were innocent in
        # it, and (again) those with an error of their own
        await self._fail(todo, f"{STALE} after {STALE_ROUNDS} re-reads")

    async def _call(self, todo: list[SetInventory]) -> SetQuantitiesResult | None:
        entries = self.entries(todo)
        key = self.idempotency_key(entries)
        try:
            async with self._in_flight:
                self.stats.calls += 1
                return await self.client.set_quantities(
                    entries,
                    reason=REASON,
                    reference_uri=REFERENCE.format(key),
                    idempotency_key=key,
                )
        except ShopifyError as exc:
            await self._fail(todo, f"{exc.reason} after {exc.attempts} attempts")
            return None

    async def _applied(self, todo: list[SetInventory], result: SetQuantitiesResult) -> None:
        applied_at = result.created_at or self._clock()
        outcomes = self.accepted(todo, result)
        for outcome in outcomes:
            level = Level.of(outcome.command)
            assert outcome.written is not None
            self.written.remember(
                level, self.window.origins[level], outcome.command.version, outcome.written
            )
            self.echoes.expect(level.item, level.location, outcome.written, applied_at)
        self.stats.written += len(outcomes)
        await self._report(outcomes, result.created_at)

    async def _reread_all(self, cmds: list[SetInventory]) -> list[int | None]:
        return list(await asyncio.gather(*(self._reread(c) for c in cmds)))

    async def _reread(self, cmd: SetInventory) -> int | None:
        async with self._rereading:
            try:
                return await self.client.read_available(cmd.inventory_item_id, cmd.location_id)
            except ShopifyError as exc:
                # unknown then: the write goes again on what we assumed, and a stale compare
                # again fails the write, which the position takes as drift to heal
                log.warning("could not re-read %s at %s: %s", cmd.sku, cmd.location_id, exc)
                return None

    async def _report(self, outcomes: list[Outcome], shopify_at: float | None = None) -> None:
        """Tell the positions what each write did."""
        now = self._clock()
        for outcome in outcomes:
            if outcome.error is None and outcome.written is not None:
                latency = max(0.0, now - outcome.command.event_time)
                metrics.sync_latency.labels(flow="stock").observe(latency)
        await self.output.write_results(self.write_results(outcomes, now, shopify_at))

    async def _fail(self, cmds: list[SetInventory], reason: str) -> None:
        self.stats.failed += len(cmds)
        await self._report([Outcome(cmd, None, reason) for cmd in cmds])
        for cmd in cmds:
            await self.output.dead_letter(
                cmd.model_dump_json().encode(), reason, key=cmd.sku.encode()
            )
        await self.output.exception(self.failure(cmds, reason, self._clock()))

    # -- decisions: no I/O ----------------------------------------------------------------------

    def coalesce(self, commands: Sequence[SetInventory]) -> dict[Level, SetInventory]:
        """The newest command per level, without those a written version supersedes."""
        newest: dict[Level, SetInventory] = {}
        for cmd in commands:
            level = Level.of(cmd)
            if cmd.version <= self.written.versions.get(level, 0):
                continue
            if level not in newest or cmd.version > newest[level].version:
                newest[level] = cmd
        return newest

    def replays(self, commands: Sequence[SetInventory]) -> list[SetInventory]:
        """Commands of the very version already written, one per level.

        A replay (after a crash, or sent again by the positions) may have lost its write
        result, so it is confirmed again, without a write."""
        again = {Level.of(c): c for c in commands if c.version == self.written.version(Level.of(c))}
        return list(again.values())

    @staticmethod
    def chunks(todo: list[SetInventory]) -> list[list[SetInventory]]:
        return [todo[i : i + MAX_ENTRIES] for i in range(0, len(todo), MAX_ENTRIES)]

    def compare_value(self, cmd: SetInventory) -> int | None:
        """``changeFromQuantity``: what Shopify had after our last write or re-read of the
        level, else what the position last saw there."""
        return self.written.values.get(Level.of(cmd), cmd.change_from)

    def entries(self, todo: list[SetInventory]) -> list[SetQuantityEntry]:
        return [
            SetQuantityEntry(
                gid("InventoryItem", c.inventory_item_id),
                gid("Location", c.location_id),
                c.target,
                self.compare_value(c),
            )
            for c in todo
        ]

    @staticmethod
    def idempotency_key(entries: list[SetQuantityEntry]) -> str:
        """The call's @idempotent key (and reference document): the same entries, in the same
        order and with the same compare values, make the same key, so Shopify applies a retried
        call once."""
        digest = hashlib.sha256()
        for e in entries:
            digest.update(
                f"{e.inventory_item_id}|{e.location_id}|{e.quantity}|{e.change_from};".encode()
            )
        return digest.hexdigest()[:32]

    @staticmethod
    def accepted(todo: list[SetInventory], result: SetQuantitiesResult) -> list[Outcome]:
        """An applied call: what each level now has, Shopify's word if it gave one."""
        return [
            Outcome(cmd, res.quantity_after if res.quantity_after is not None else cmd.target)
            for cmd, res in zip(todo, result.entries, strict=True)
        ]

    @staticmethod
    def rejected(todo: list[SetInventory], result: SetQuantitiesResult) -> Rejected:
        stale: list[SetInventory] = []
        broken: list[tuple[SetInventory, str]] = []
        for cmd, res in zip(todo, result.entries, strict=True):
            code = res.error.code if res.error else None
            if code == STALE:
                stale.append(cmd)
            elif res.error is not None and res.error.entry_index is not None:
                broken.append((cmd, f"{code}: {res.error.message}"))
        named = {id(c) for c in stale} | {id(c) for c, _ in broken}
        innocent = [c for c in todo if id(c) not in named]
        return Rejected(stale, broken, innocent)

    @staticmethod
    def rebase(cmd: SetInventory, assumed: int | None, available: int | None) -> SetInventory:
        """A stale command to write again.

        Shopify moved under us (an online order, an edit): keep that move and apply ours on
        top, instead of overwriting a sale we have not seen yet. A move that was an edit stays
        visible and is healed as drift. Unchanged when either side is unknown."""
        if available is None or assumed is None:
            return cmd
        return cmd.model_copy(update={"target": cmd.target + available - assumed})

    def write_results(
        self, outcomes: list[Outcome], at: float, shopify_at: float | None
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
            partition = self.window.origins[Level.of(cmd)].partition
            by_partition.setdefault(partition, []).append(result)
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

    @app.on_partitions_revoked.connect
    async def forget(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        shopify.written.forget()

    @app.agent(ctx.topic(topics.SHOPIFY_INVENTORY_COMMANDS), name="shopify-inventory-sink")
    async def sink(stream: faust.StreamT[bytes]) -> None:
        await shopify.consume(stream)
