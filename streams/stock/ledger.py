"""Sitoo's side of the stock flow: the ledger poller, the ledger and Events SPI agents.

Sitoo's Events SPI says *that* something happened (ids only); the warehouse-transaction
ledger says *what*: each item's quantity after the transaction, under an increasing id. So an
event only wakes the poller, which reads the ledger from its cursor in pages; the same poller
runs on a timer to catch anything events missed, and backfills on first start.

The decisions are plain functions and classes (``read_transactions``, ``SitooEventGate``,
``take_over``, ``LedgerPage``); ``SitooLedger`` holds the worker's state and its agent and task
bodies only carry those decisions to Kafka and Sitoo.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any, cast

import faust
from faust.types import TableT
from pydantic import ValidationError

from tillsync.schemas.events import ShopifyObserved, SitooLevel, SitooReserved
from tillsync.schemas.money import whole_units
from tillsync.schemas.sitoo import TRANSACTION_REFUND, SitooEvent, WarehouseTransaction
from tillsync.streams import metrics, topics
from tillsync.streams.context import Context
from tillsync.streams.deadletter import dead_letter, error_reason
from tillsync.streams.lru import RecentIds
from tillsync.streams.ownership import owns, tables_recovered
from tillsync.streams.partitioned import in_partition_of
from tillsync.streams.runtime import Runtime
from tillsync.streams.stock.unknown_skus import UnknownSkus

log = logging.getLogger("tillsync.ledger")

POLL_INTERVAL = 2.0  # the safety net when no event wakes the poller
# Sitoo gives a transaction its id when it begins: one that commits slowly becomes visible
# after higher ids were read. So now and then a read starts this many ids below the cursor
# (an assumption sized to seconds of a busy account's ledger, not a Sitoo fact).
TRAILING_IDS = 1_000
REREAD_EVERY = 5.0  # seconds between two reads of the trailing window
POLL_AT_MOST_EVERY = 0.1  # seconds between polls however often events wake the poller
PAGE = 500
CURSOR_KEY = "sitoo.warehousetransactions"
BATCH_MAX = 1_000
BATCH_SECONDS = 0.02

# the Events SPI event types after which the ledger may hold something new
WAKING_EVENTS = frozenset({"warehouse-transaction", "order", "order-delivery"})

SnapshotEvent = SitooLevel | SitooReserved | ShopifyObserved


def levels_of(
    tx: WarehouseTransaction, now: float, *, returns: bool = False
) -> tuple[list[SitooLevel], list[str]]:
    """One level per SKU of a transaction, and why each item that makes no level is set aside.

    A level's version is the transaction id, and a position takes one version once: two items
    of one SKU (two lines of a till sale, of a Move Out) make one level, with the total after
    the last of them and the sum of their quantities (what settles an order's pending units).
    ``returns``: the returns flow pairs a till return with Shopify's restock, so the units a
    return transaction brings back name its delivery."""
    returned = (
        tx.orderdeliveryid
        if returns and tx.transactiontype == TRANSACTION_REFUND and tx.orderdeliveryid
        else None
    )
    totals: dict[str, Decimal] = {}
    deltas: dict[str, Decimal] = {}
    for item in tx.items:
        if item.decimaltotal is None:
            continue
        totals[item.sku] = item.decimaltotal
        deltas[item.sku] = deltas.get(item.sku, Decimal(0)) + item.decimalquantity
    levels: list[SitooLevel] = []
    invalid: list[str] = []
    for sku, total in totals.items():
        try:
            levels.append(
                SitooLevel(
                    sku=sku,
                    warehouse_id=tx.warehouseid,
                    total=whole_units(total),
                    version=tx.warehousetransactionid,
                    event_time=float(tx.datecreated or now),
                    external_id=tx.externalid,
                    delta=whole_units(deltas[sku]),
                    return_delivery_id=returned if deltas[sku] > 0 else None,
                )
            )
        except ValidationError as exc:  # what Sitoo allows and a stock event does not: sku ""
            invalid.append(error_reason(exc))
    return levels, invalid


@dataclass(frozen=True)
class Invalid:
    """A record that is not what its topic promises: dead-lettered with the reason."""

    value: bytes
    reason: str


@dataclass
class LedgerBatch:
    """What a batch of raw ledger records becomes."""

    levels: list[SitooLevel] = field(default_factory=list)
    invalid: list[Invalid] = field(default_factory=list)
    # the newest transaction id in the batch (0: none valid), for the cursor table
    newest: int = 0


def read_transactions(values: Iterable[bytes], now: float, *, returns: bool = False) -> LedgerBatch:
    """Each record's levels; a record, or an item of one, that makes no stock event is set
    aside with the reason, and the rest of the batch is taken (the whole record goes to the
    dead letters: replayed, the levels taken already are stale and change nothing)."""
    batch = LedgerBatch()
    for value in values:
        try:
            tx = WarehouseTransaction.model_validate_json(value)
        except ValidationError as exc:
            reason = f"invalid warehouse transaction: {error_reason(exc)}"
            batch.invalid.append(Invalid(value, reason))
            continue
        levels, invalid = levels_of(tx, now, returns=returns)
        batch.levels.extend(levels)
        if invalid:
            reason = f"invalid item of warehouse transaction {tx.warehousetransactionid}: "
            batch.invalid.append(Invalid(value, reason + "; ".join(invalid)))
        batch.newest = max(batch.newest, tx.warehousetransactionid)
    return batch


class Heard(Enum):
    """What a valid Events SPI event means to the poller."""

    WAKE = "wake"  # the ledger may have moved: poll now rather than at the next interval
    QUIET = "quiet"  # an event type that never moves stock
    DUPLICATE = "duplicate"  # Sitoo sent this event id before


class SitooEventGate:
    """Decides, event by event, whether an Events SPI record wakes the poller."""

    def __init__(self) -> None:
        self.recent = RecentIds()

    def hear(self, value: bytes) -> Heard | Invalid:
        try:
            ev = SitooEvent.model_validate_json(value)
        except ValidationError as exc:
            return Invalid(value, f"invalid Sitoo event: {error_reason(exc)}")
        if self.recent.seen(ev.event_id):
            return Heard.DUPLICATE
        return Heard.WAKE if ev.event_type in WAKING_EVENTS else Heard.QUIET


@dataclass(frozen=True)
class TakeOver:
    """Where a worker that starts polling begins, and the snapshot events it sends first."""

    cursor: int
    events: list[SnapshotEvent]
    # nothing was ever taken in: the whole snapshot is the starting point of every position
    first_start: bool


def take_over(stored: int, snapshot: tuple[int, list[Any]] | None) -> TakeOver:
    """`stored` is the cursor table's value (0: never set); `snapshot` is the runtime's."""
    newest, events = snapshot or (0, [])
    if stored == 0:
        return TakeOver(cursor=newest, events=list(events), first_start=True)
    # the ledger from `stored` on tells Sitoo's side; Shopify's levels at start are still news
    observed = [e for e in events if e.kind == "shopify_observed"]
    return TakeOver(cursor=stored, events=observed, first_start=False)


@dataclass(frozen=True)
class LedgerPage:
    """One page of Sitoo's ledger, read from just after the cursor in id order."""

    items: list[dict[str, Any]]
    size: int = PAGE

    @classmethod
    def of(cls, body: Mapping[str, Any], size: int = PAGE) -> LedgerPage:
        return cls(items=list(body.get("items") or []), size=size)

    def records(self) -> list[bytes]:
        """Every transaction as Sitoo sent it, for the raw ledger topic. One the poller had
        already (Sitoo asked again, an id at or below the cursor) goes on as well: the position
        drops a Sitoo version it has seen, so a repeat costs a record, never a wrong level."""
        return [json.dumps(item, separators=(",", ":")).encode() for item in self.items]

    def cursor_after(self, cursor: int) -> int:
        """The cursor once this page is taken in: the newest id seen, never moved back."""
        for item in self.items:
            cursor = max(cursor, int(item["warehousetransactionid"]))
        return cursor

    @property
    def last(self) -> bool:
        """Fewer than a full page: the ledger is read to its end for now."""
        return len(self.items) < self.size


@dataclass
class LedgerWindow:
    """The poller's place in the ledger: the newest id read (the cursor), and which ids of the
    trailing window below it were read already, so that reading the window again passes on
    only what had been missed. Kept in memory: after a restart the first read sends the whole
    window again, which positions drop as versions they have seen."""

    cursor: int
    trailing_ids: int = TRAILING_IDS
    reread_every: float = REREAD_EVERY
    seen: set[int] = field(default_factory=set)
    reread_at: float | None = None  # when a read last started below the cursor
    # the cursor the window began at: an id at or below it that comes now is no news of a
    # late commit, only the first read of the window after a start
    began_at: int = field(init=False)

    def __post_init__(self) -> None:
        self.began_at = self.cursor

    @property
    def floor(self) -> int:
        """The lowest id the window still watches."""
        return max(0, self.cursor - self.trailing_ids)

    def first_id(self, now: float) -> int:
        """The id the next read starts at: just after the cursor, or the window's bottom when
        it is due to be read again (at once after a start)."""
        if self.reread_at is None or now - self.reread_at >= self.reread_every:
            self.reread_at = now
            return self.floor + 1
        return self.cursor + 1

    def take(self, page: LedgerPage) -> list[bytes]:
        """The records of a page not read before, in Sitoo's order; moves the cursor on."""
        fresh: list[bytes] = []
        late: list[int] = []
        for item, record in zip(page.items, page.records(), strict=True):
            tx_id = int(item["warehousetransactionid"])
            if tx_id in self.seen:
                continue
            if self.began_at < tx_id < self.cursor:
                late.append(tx_id)
            self.seen.add(tx_id)
            fresh.append(record)
        self.cursor = page.cursor_after(self.cursor)
        floor = self.floor
        self.seen = {tx_id for tx_id in self.seen if tx_id > floor}
        if late:
            log.info(
                "%d Sitoo transactions became visible after higher ids (%d..%d): taken now",
                len(late),
                min(late),
                max(late),
            )
        return fresh


class SitooLedger:
    """The ledger flow on one worker: the poller's cursor, the events agent's memory of event
    ids, and the agent and task bodies that `register` hands to Faust."""

    def __init__(self, ctx: Context, cursors: TableT[str, int]) -> None:
        assert ctx.runtime is not None
        self.ctx = ctx
        self.rt: Runtime = ctx.runtime
        self.cursors = cursors
        self.ledger_name = topics.RAW_SITOO_LEDGER.name(ctx.settings.app_id)
        self.gate = SitooEventGate()
        # None while another worker polls: re-read from the table if this one takes over
        self.window: LedgerWindow | None = None
        self.clock: Callable[[], float] = time.monotonic
        self.unknown = UnknownSkus()
        self.returns = ctx.settings.returns_to_shopify

    async def take_ledger(self, stream: faust.StreamT[bytes]) -> None:
        """Agent: raw ledger records to stock events, and the cursor table kept up."""
        batches = cast(faust.Stream, stream).take_events(BATCH_MAX, within=BATCH_SECONDS)
        async for events in batches:
            batch = read_transactions((e.value for e in events), time.time(), returns=self.returns)
            self.watch_skus(batch.levels, index_built=self.rt.ready.is_set())
            for bad in batch.invalid:
                await dead_letter(
                    self.ctx, origin=self.ledger_name, reason=bad.reason, value=bad.value
                )
            await self.ctx.send_all(
                topics.STOCK_EVENTS,
                ((lv.sku.encode(), lv.model_dump_json().encode()) for lv in batch.levels),
            )
            if events:
                with in_partition_of(events[-1]):
                    if batch.newest > self.cursors[CURSOR_KEY]:
                        self.cursors[CURSOR_KEY] = batch.newest

    def watch_skus(self, levels: Iterable[SitooLevel], *, index_built: bool) -> None:
        """Sitoo's SKUs as its ledger names them: a new product is known from its first
        transaction on, and one Shopify does not know is counted and logged. Until the index
        is built at start (this agent does not wait for it), every SKU would look unknown."""
        skus = self.rt.skus
        for level in levels:
            skus.add_sitoo(level.sku)
            if index_built and not skus.in_shopify(level.sku):
                self.unknown.note(metrics.Platform.SITOO, level.sku)

    async def take_events(self, stream: faust.StreamT[bytes]) -> None:
        """Agent: Events SPI records wake the poller."""
        # each run of the agent starts with no memory: records it saw before a restart may not
        # have been committed and come again, and must not be taken for duplicates then
        self.gate = SitooEventGate()
        async for event in stream.events():
            heard = self.gate.hear(event.value)
            if isinstance(heard, Invalid):
                await dead_letter(
                    self.ctx, origin=event.message.topic, reason=heard.reason, value=heard.value
                )
            elif heard is Heard.DUPLICATE:
                metrics.events_ignored.labels(reason="duplicate").inc()
            elif heard is Heard.WAKE:
                self.rt.ledger_nudge.set()

    def recovered(self) -> bool:
        return tables_recovered(self.ctx.app)

    def owns_ledger(self) -> bool:
        return owns(self.ctx.app, self.ledger_name)

    async def poll(self) -> None:
        """Task: poll the ledger while this worker owns it, on each nudge or interval."""
        await self.rt.ready.wait()
        while True:
            try:
                await self.poll_once()
            except Exception as exc:  # the poller must outlive a Sitoo outage
                log.warning("ledger poll failed (will retry): %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.rt.ledger_nudge.wait(), POLL_INTERVAL)
            # at hundreds of events a second the nudges never stop: a short pause lets one
            # page carry the transactions of many events instead of one GET per event
            await asyncio.sleep(POLL_AT_MOST_EVERY)
            self.rt.ledger_nudge.clear()

    async def poll_once(self) -> None:
        if not self.owns_ledger() or not self.recovered():
            self.window = None
            return
        if self.window is None:
            self.window = LedgerWindow(cursor=await self._take_over())
        await self._read(self.window)

    async def _take_over(self) -> int:
        start = take_over(int(self.cursors.get(CURSOR_KEY) or 0), self.rt.snapshot)
        if start.first_start:
            log.info("first start: backfilling from a snapshot at ledger id %d", start.cursor)
        await self.ctx.send_all(
            topics.STOCK_EVENTS,
            ((ev.sku.encode(), ev.model_dump_json().encode()) for ev in start.events),
        )
        return start.cursor

    async def _read(self, window: LedgerWindow) -> None:
        """Read the ledger to its end from where the window says, page after page."""
        path = f"/sites/{self.rt.sitoo.site_id}/warehousetransactions.json"
        first = window.first_id(self.clock())
        while True:
            body = await self.rt.sitoo.request(
                "GET",
                path,
                params={
                    "warehousetransactionidfrom": first,
                    "sort": "warehousetransactionid",
                    "start": 0,
                    "num": PAGE,
                },
            )
            page = LedgerPage.of(body)
            records = window.take(page)
            await self.ctx.send_all(topics.RAW_SITOO_LEDGER, ((None, r) for r in records))
            if page.last:
                return
            first = page.cursor_after(first - 1) + 1


def register(ctx: Context) -> None:
    app = ctx.app
    cursors = app.Table(
        "ledger-cursor",
        default=int,
        partitions=1,
        schema=faust.Schema(key_type=str, key_serializer="json", value_serializer="json"),
        help="the newest Sitoo warehouse transaction id taken in",
    )
    ledger = SitooLedger(ctx, cursors)
    app.agent(ctx.topic(topics.RAW_SITOO_LEDGER), name="sitoo-ledger")(ledger.take_ledger)
    app.agent(ctx.topic(topics.RAW_SITOO_EVENTS), name="sitoo-events")(ledger.take_events)
    app.task(ledger.poll)
