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
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any, cast

import faust
from pydantic import BaseModel, ValidationError

from tillsync.connectors.shopify.client import SetQuantitiesResult, SetQuantityEntry, ShopifyError
from tillsync.connectors.shopify.ids import gid
from tillsync.schemas.events import ExceptionRecord, Owner, SetInventory, WriteResult, WriteResults
from tillsync.streams import metrics, topics
from tillsync.streams.context import Context
from tillsync.streams.deadletter import dead_letter
from tillsync.streams.partitioned import in_partition_of
from tillsync.streams.stock.reads import read_available

log = logging.getLogger("tillsync.shopify_sink")

MAX_ENTRIES = 250  # Shopify's limit on any input array
WINDOW = 2_000  # commands taken at once; coalescing shrinks them
WINDOW_SECONDS = 0.25  # at most ~4 calls a second per window: a cost bucket restores 100 points/s
CALLS_IN_FLIGHT = 4
STALE_ROUNDS = 3
STALE = "CHANGE_FROM_QUANTITY_STALE"
REASON = "correction"
REFERENCE = "gid://tillsync/StockSync/{}"


def coalesce(
    commands: list[SetInventory], written: dict[tuple[int, int], int]
) -> list[SetInventory]:
    """The newest command per (item, location), without those already superseded."""
    newest: dict[tuple[int, int], SetInventory] = {}
    for cmd in commands:
        k = (cmd.inventory_item_id, cmd.location_id)
        if cmd.version <= written.get(k, 0):
            continue
        if k not in newest or cmd.version > newest[k].version:
            newest[k] = cmd
    return list(newest.values())


def idempotency_key(entries: list[SetQuantityEntry]) -> str:
    digest = hashlib.sha256()
    for e in entries:
        digest.update(
            f"{e.inventory_item_id}|{e.location_id}|{e.quantity}|{e.change_from};".encode()
        )
    return digest.hexdigest()[:32]


def register(ctx: Context) -> None:
    app = ctx.app
    rt = ctx.runtime
    assert rt is not None
    exceptions = ctx.topic(topics.EXCEPTIONS)
    # write results go back to the partition their command came from (see `report`)
    assert topics.SHOPIFY_INVENTORY_COMMANDS.partitions == topics.STOCK_EVENTS.partitions
    commands_name = topics.SHOPIFY_INVENTORY_COMMANDS.name(ctx.settings.app_id)
    # The newest version written per (item, location) and the value Shopify then had, kept
    # in the sink's own changelogged table: after a crash it is restored before any command is
    # taken, so a replayed command cannot write an older state than one already written. The
    # dicts are this worker's cache of it, emptied when partitions move.
    done_table = app.Table(
        "shopify-written",
        default=None,
        schema=faust.Schema(key_type=str, key_serializer="json", value_serializer="raw"),
        value_type=bytes,
        help="per (inventory item, location): the newest command version written and its value",
    )
    written: dict[tuple[int, int], int] = {}
    known: dict[tuple[int, int], int] = {}
    # per (item, location) of the window being written: its command's event, whose partition
    # the table entry belongs to
    events_of: dict[tuple[int, int], faust.EventT] = {}

    @app.on_partitions_revoked.connect
    async def forget(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        written.clear()
        known.clear()

    def recall(k: tuple[int, int]) -> None:
        if k in written:
            return
        with in_partition_of(events_of[k]):
            stored = done_table.get(_table_key(k))
        if stored:
            entry = Written.model_validate_json(stored)
            written[k] = entry.version
            if entry.value is not None:
                known.setdefault(k, entry.value)

    def remember(k: tuple[int, int], version: int, value: int) -> None:
        written[k] = max(written.get(k, 0), version)
        known[k] = value
        with in_partition_of(events_of[k]):
            done_table[_table_key(k)] = (
                Written(version=written[k], value=value).model_dump_json().encode()
            )

    in_flight = asyncio.Semaphore(CALLS_IN_FLIGHT)
    rereading = asyncio.Semaphore(CALLS_IN_FLIGHT * 2)

    async def report(
        results: list[tuple[SetInventory, int | None, str | None]],
        shopify_at: float | None = None,
    ) -> None:
        """Tell the positions what each write did: (command, value written, error).

        One record per partition: a command's partition of the commands topic is its SKU's
        partition of ``stock.events`` (both keyed by SKU, with as many partitions)."""
        now = time.time()
        by_partition: dict[int, list[WriteResult]] = {}
        for cmd, value, error in results:
            result = WriteResult(
                sku=cmd.sku,
                location_id=cmd.location_id,
                inventory_item_id=cmd.inventory_item_id,
                ok=error is None,
                target=cmd.target,
                written=value,
                version=cmd.version,
                sitoo_version=cmd.sitoo_version,
                error=error,
                at=now,
                shopify_at=shopify_at if value is not None else None,
            )
            partition = events_of[(cmd.inventory_item_id, cmd.location_id)].message.partition
            by_partition.setdefault(partition, []).append(result)
            if error is None and value is not None:
                metrics.sync_latency.labels(flow="stock").observe(max(0.0, now - cmd.event_time))
        await ctx.send_to_partitions(
            topics.STOCK_EVENTS,
            (
                (partition, WriteResults(results=batch).model_dump_json().encode())
                for partition, batch in by_partition.items()
            ),
        )

    async def fail(cmds: list[SetInventory], reason: str) -> None:
        await report([(cmd, None, reason) for cmd in cmds])
        for cmd in cmds:
            await dead_letter(
                ctx,
                origin=commands_name,
                reason=reason,
                value=cmd.model_dump_json().encode(),
                key=cmd.sku.encode(),
            )
        record = ExceptionRecord(
            type="shopify_inventory_write_failed",
            owner=Owner.ECOMMERCE,
            key=",".join(sorted({c.sku for c in cmds}))[:200],
            message=f"{len(cmds)} inventory writes to Shopify failed: {reason}",
            at=time.time(),
        )
        metrics.exceptions_raised.labels(type=record.type, owner=record.owner.value).inc()
        await exceptions.send(value=record.model_dump_json().encode())

    async def reread_all(cmds: list[SetInventory]) -> list[int | None]:
        return list(await asyncio.gather(*(reread(c) for c in cmds)))

    async def reread(cmd: SetInventory) -> int | None:
        async with rereading:
            return await _reread(cmd)

    async def _reread(cmd: SetInventory) -> int | None:
        try:
            return await read_available(rt.shopify, cmd.inventory_item_id, cmd.location_id)
        except ShopifyError as exc:
            # unknown then: the write goes again on what we assumed, and a stale compare again
            # fails the write, which the position takes as drift to heal
            log.warning("could not re-read %s at %s: %s", cmd.sku, cmd.location_id, exc)
            return None

    async def call(todo: list[SetInventory]) -> SetQuantitiesResult | None:
        entries = [
            SetQuantityEntry(
                gid("InventoryItem", c.inventory_item_id),
                gid("Location", c.location_id),
                c.target,
                known.get((c.inventory_item_id, c.location_id), c.change_from),
            )
            for c in todo
        ]
        key = idempotency_key(entries)
        try:
            async with in_flight:
                return await rt.shopify.set_quantities(
                    entries,
                    reason=REASON,
                    reference_uri=REFERENCE.format(key),
                    idempotency_key=key,
                )
        except ShopifyError as exc:
            await fail(todo, f"{exc.reason} after {exc.attempts} attempts")
            return None

    async def write_chunk(chunk: list[SetInventory]) -> None:
        todo = chunk
        for round_ in range(STALE_ROUNDS + 1):
            result = await call(todo)
            if result is None:
                return
            if result.ok:
                done: list[tuple[SetInventory, int | None, str | None]] = []
                applied_at = result.created_at or time.time()
                for cmd, res in zip(todo, result.entries, strict=True):
                    k = (cmd.inventory_item_id, cmd.location_id)
                    value = res.quantity_after if res.quantity_after is not None else cmd.target
                    remember(k, cmd.version, value)
                    rt.echoes.expect(*k, value, applied_at)
                    done.append((cmd, value, None))
                await report(done, result.created_at)
                return
            stale: list[SetInventory] = []
            broken: list[tuple[SetInventory, str]] = []
            for cmd, res in zip(todo, result.entries, strict=True):
                code = res.error.code if res.error else None
                if code == STALE:
                    stale.append(cmd)
                elif res.error is not None and res.error.entry_index is not None:
                    broken.append((cmd, f"{code}: {res.error.message}"))
            if not stale and not broken:
                await fail(todo, "; ".join(e.message for e in result.user_errors)[:500])
                return
            for cmd, reason in broken:
                await fail([cmd], reason)
            named = {id(c) for c in stale} | {id(c) for c, _ in broken}
            # the mutation is all or nothing: entries with no error of their own were not
            # applied either, and go again at once while the stale ones are re-read
            innocent = [c for c in todo if id(c) not in named]
            if round_ == STALE_ROUNDS:
                break
            fresh: list[int | None]
            if innocent:
                fresh, _ = await asyncio.gather(reread_all(stale), write_chunk(innocent))
            else:
                fresh = await reread_all(stale)
            rebased: list[SetInventory] = []
            for cmd, now_available in zip(stale, fresh, strict=True):
                k = (cmd.inventory_item_id, cmd.location_id)
                assumed = known.get(k, cmd.change_from)
                if now_available is not None:
                    known[k] = now_available
                    if assumed is not None:
                        # Shopify moved under us (an online order, an edit): keep that move and
                        # apply ours on top, instead of overwriting a sale we have not seen yet.
                        # A move that was an edit stays visible and is healed as drift.
                        cmd = cmd.model_copy(
                            update={"target": cmd.target + now_available - assumed}
                        )
                rebased.append(cmd)
            todo = rebased
            if not todo:
                return
        await fail(todo, f"{STALE} after {STALE_ROUNDS} re-reads")

    async def guarded(chunk: list[SetInventory]) -> None:
        """A surprise in one chunk fails that chunk's writes, never the sink."""
        try:
            await write_chunk(chunk)
        except Exception as exc:
            log.exception("inventory write failed unexpectedly")
            await fail(chunk, f"unexpected error: {type(exc).__name__}: {exc}")

    @app.agent(ctx.topic(topics.SHOPIFY_INVENTORY_COMMANDS), name="shopify-inventory-sink")
    async def sink(stream: faust.StreamT[bytes]) -> None:
        batches = cast(faust.Stream, stream).take_events(WINDOW, within=WINDOW_SECONDS)
        async for events in batches:
            events_of.clear()
            cmds: list[SetInventory] = []
            for event in events:
                try:
                    cmd = SetInventory.model_validate_json(event.value)
                except ValidationError as exc:
                    await dead_letter(
                        ctx,
                        origin=commands_name,
                        reason=f"invalid command: {exc}",
                        value=event.value,
                    )
                    continue
                cmds.append(cmd)
                k = (cmd.inventory_item_id, cmd.location_id)
                events_of[k] = event
                recall(k)
            todo = coalesce(cmds, written)
            # a command of the very version already written is a replay (after a crash, or
            # sent again by the positions): its write result may have been lost, so confirm it
            # again, without a value (the position keeps what Shopify last told it)
            again = {
                (c.inventory_item_id, c.location_id): c
                for c in cmds
                if c.version == written.get((c.inventory_item_id, c.location_id))
            }
            if again:
                await report([(c, None, None) for c in again.values()])
            metrics.sink_backlog.labels(sink="shopify-inventory").set(len(todo))
            chunks = [todo[i : i + MAX_ENTRIES] for i in range(0, len(todo), MAX_ENTRIES)]
            await asyncio.gather(*(guarded(c) for c in chunks))
            metrics.sink_backlog.labels(sink="shopify-inventory").set(0)
            metrics.events_out.labels(topic="shopify.inventorySetQuantities").inc(len(todo))


class Written(BaseModel):
    version: int
    value: int | None = None


def _table_key(k: tuple[int, int]) -> str:
    return f"{k[0]}@{k[1]}"
