"""The stock position table and the agent that keeps it, plus the drift timers and views.

:class:`PositionsAgent` is the logic: it applies batches of ``stock.events`` records to the
table and says what to send, and scans the table for what a restart left open. It needs no
broker: its table is any mapping, its dead letters go where it is told. :class:`StockAgents` is
the Faust side: the agent body, the timers, the signal handlers and the views, each a thin
method over a :class:`PositionsAgent`, a :class:`DriftScheduler` and a :class:`StateSummary`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence, Set
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, cast

import faust
from faust.types import TP
from faust.web import Request, Response, View
from pydantic import ValidationError

from tillsync.connectors.shopify.client import ShopifyError
from tillsync.schemas.events import (
    DriftCheck,
    DriftEvent,
    DriftState,
    OrderPlaced,
    SetInventory,
    SitooLevel,
    SitooReserved,
    StockEvent,
    stock_events,
)
from tillsync.schemas.locations import Location, LocationMap
from tillsync.streams import metrics, topics
from tillsync.streams.context import Context
from tillsync.streams.deadletter import dead_letter, error_reason
from tillsync.streams.partitioned import in_partition_of
from tillsync.streams.runtime import Runtime
from tillsync.streams.skus import SkuIndex, item_of
from tillsync.streams.stock.drift_schedule import DriftScheduler, drift_check
from tillsync.streams.stock.position import (
    IN_FLIGHT_TIMEOUT,
    Outcome,
    Position,
    in_flight_command,
    position_key,
    step,
)
from tillsync.streams.stock.reads import read_available
from tillsync.streams.stock.summary import StateSummary

log = logging.getLogger("tillsync.stock")

DRIFT_TICK = 0.25  # how often due drift checks are sent
FULL_SCAN_EVERY = 10.0  # how often every local position is looked at (crash leftovers)
SCAN_SLICE = 1_000  # positions looked at between two turns of the event loop
# Events are taken in batches so that a position touched many times is stored once, and
# Faust's per-event overhead is paid with less of ours on top. A batch waits at most this long
# to fill: a small share of the 1.5 s latency budget.
BATCH_MAX = 1_000
BATCH_SECONDS = 0.02

Encoded = tuple[bytes | None, bytes]  # a (key, value) record for `Context.send_all`


@dataclass(frozen=True, slots=True)
class Record:
    """One ``stock.events`` record of a batch."""

    topic: str
    key: bytes | None
    value: bytes
    # the event whose partition the table reads and writes of this record's positions go to;
    # None when the table is a plain mapping (no Faust), which has no partitions to name
    event: faust.EventT | None = None
    headers: Mapping[str, bytes] = field(default_factory=dict)  # as the record had them
    partition: int | None = None  # of the topic, and of the table (co-partitioned)

    @classmethod
    def of(cls, event: faust.EventT) -> Record:
        return cls(
            topic=event.message.topic,
            key=cast(bytes | None, event.key),
            value=cast(bytes, event.value),
            event=event,
            headers=cast(Mapping[str, bytes], event.headers or {}),
            partition=event.message.partition,
        )


DeadLetter = Callable[[Record, str], Awaitable[None]]  # (record, reason)


@dataclass(slots=True)
class Batch:
    """What a batch asks to send, once its positions are stored."""

    commands: list[SetInventory] = field(default_factory=list)  # the newest per position
    drifts: list[DriftEvent] = field(default_factory=list)
    stored: list[str] = field(default_factory=list)  # the position keys written, once each


@dataclass(slots=True)
class Scan:
    """What a full scan of the table found to send."""

    checks: list[DriftCheck] = field(default_factory=list)
    again: list[SetInventory] = field(default_factory=list)  # in-flight commands to resend


@dataclass(slots=True)
class _Work:
    """A position being changed by a batch, and a record of its partition to store it under."""

    pos: Position
    record: Record
    changed: bool


def _partition_of(record: Record) -> AbstractContextManager[None]:
    return in_partition_of(record.event) if record.event is not None else nullcontext()


def locations_of(locations: LocationMap, event: StockEvent) -> list[Location]:
    """The locations whose positions an event is about: none for an unmapped one."""
    if isinstance(event, OrderPlaced):
        return list(locations.locations)  # the order's location is not known yet
    found = (
        locations.by_warehouse(event.warehouse_id)
        if isinstance(event, SitooLevel | SitooReserved)
        else locations.by_shopify(event.location_id)
    )
    return [found] if found is not None else []


class PositionsAgent:
    """The position table and the rules that change it, batch by batch."""

    def __init__(
        self,
        table: MutableMapping[str, bytes],
        locations: LocationMap,
        skus: SkuIndex,
        *,
        dead_letter: DeadLetter,
        scheduler: DriftScheduler | None = None,
        summary: StateSummary | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.table = table  # position key -> the Position's JSON
        self.locations = locations
        self.skus = skus
        self.scheduler = scheduler if scheduler is not None else DriftScheduler()
        self.summary = summary if summary is not None else StateSummary(locations)
        self._dead_letter = dead_letter
        self._clock = clock

    async def apply(self, records: Sequence[Record]) -> Batch:
        """Apply a batch in arrival order, then store each touched position once: one table
        write per position per batch, not per event. Returns what the outcomes ask to send."""
        now = self._clock()
        work: dict[str, _Work] = {}
        commands: dict[str, SetInventory] = {}  # the newest command per position
        drifts: list[DriftEvent] = []
        for record in records:
            try:
                evs = stock_events(record.value)
            except ValidationError as exc:
                await self._dead_letter(record, f"invalid stock event: {error_reason(exc)}")
                continue
            failed: list[str] = []
            for ev in evs:
                targets = locations_of(self.locations, ev)
                if not targets:
                    metrics.events_ignored.labels(reason="unmapped location").inc()
                    continue
                for loc in targets:
                    key = position_key(ev.sku, loc.shopify_location_id)
                    # No I/O happens here: an exception is a bug or input no rule can take,
                    # never transient, and trying again would fail again. The rest of the
                    # batch goes on, and the record goes to the dead letters: nothing is
                    # dropped silently, and a fix can replay it.
                    try:
                        w, out = self._step(work, key, ev, loc, record, now)
                    except Exception as exc:
                        log.exception("%s at %s not applied", ev.kind, loc.shopify_location_id)
                        failed.append(
                            f"{type(exc).__name__} in {ev.kind} at {loc.shopify_location_id}"
                        )
                        continue
                    if out.ignored:
                        metrics.events_ignored.labels(reason=metrics.reason_of(out.ignored)).inc()
                        continue
                    w.changed = True
                    self._follow(key, w.pos, out, commands, drifts)
            if failed:
                # the reason is ours (what failed, where), never the payload's values
                await self._dead_letter(record, "stock event not applied: " + "; ".join(failed))
        stored: list[str] = []
        for key, w in work.items():
            if w.changed:
                with _partition_of(w.record):
                    self.table[key] = w.pos.model_dump_json().encode()
                self.summary.update(key, w.pos, w.record.partition)
                stored.append(key)
        return Batch(commands=list(commands.values()), drifts=drifts, stored=stored)

    def _step(
        self,
        work: dict[str, _Work],
        key: str,
        ev: StockEvent,
        loc: Location,
        record: Record,
        now: float,
    ) -> tuple[_Work, Outcome]:
        """One event on one position, all or nothing: a step that raises may have changed part
        of the position, which is put back as it was before the event."""
        w = work.get(key)
        if w is None:
            w = work[key] = self._load(key, ev.sku, loc, record)
        before = w.pos.model_dump_json()  # 4 µs; a deep copy takes 23
        try:
            return w, step(w.pos, ev, loc, now)
        except Exception:
            w.pos = Position.model_validate_json(before)
            raise

    def _load(self, key: str, sku: str, loc: Location, record: Record) -> _Work:
        with _partition_of(record):
            stored = self.table.get(key)
        if stored:
            pos = Position.model_validate_json(stored)
        else:
            pos = Position(sku=sku, location_id=loc.shopify_location_id)
        pos.inventory_item_id = item_of(self.skus, sku, pos.inventory_item_id)
        # a position seen for the first time is stored even if its first event changed nothing
        return _Work(pos=pos, record=record, changed=not stored)

    def _follow(
        self,
        key: str,
        pos: Position,
        out: Outcome,
        commands: dict[str, SetInventory],
        drifts: list[DriftEvent],
    ) -> None:
        if out.commands:
            # a later command of the batch supersedes an earlier one: the sink would coalesce
            # them anyway, and the position waits for the newest version only
            commands[key] = out.commands[-1]
        for drift in out.drift:
            if drift.state is DriftState.DETECTED:
                metrics.drift_detected.labels(cause=drift.cause.value).inc()
            elif drift.state is DriftState.HEALED:
                metrics.drift_healed.inc()
            drifts.append(drift)
        # the read-back waits from now, not from the batch's start
        self.scheduler.follow(key, pos, out, self._clock())

    async def scan(self, now: float, *, resend: bool) -> Scan:
        """Every local position whose drift check is not scheduled but should be, and with
        `resend`, every command in flight: the in-memory schedule does not survive a crash, the
        table still knows what is open."""
        found = Scan()
        for n, (key, value) in enumerate(list(self.table.items())):
            if n % SCAN_SLICE == SCAN_SLICE - 1:
                await asyncio.sleep(0)  # a large table must not hold up the event loop
            if not value:
                continue
            pos = Position.model_validate_json(value)
            if resend and pos.in_flight is not None and pos.inventory_item_id is not None:
                found.again.append(in_flight_command(pos))
            if self.scheduler.is_scheduled(key):
                continue
            flight = pos.in_flight
            stuck = flight is not None and now - flight.since > IN_FLIGHT_TIMEOUT
            differs = pos.observed != pos.commanded
            # a new product's stock that came before its SKU reached this worker's index
            learnt = pos.inventory_item_id is None and pos.sku in self.skus.item_by_sku
            if pos.drift_since is not None or stuck or (differs and flight is None) or learnt:
                found.checks.append(drift_check(pos.sku, pos.location_id, now))
        return found

    def stock_of_sku(self, sku: str, settled_holds: bool = False) -> list[dict[str, Any]]:
        """One SKU's positions at every location that has one, for a person to read; with
        ``settled_holds``, the orders that hold nothing there any more too."""
        out: list[dict[str, Any]] = []
        for loc in self.locations.locations:
            value = self.table.get(position_key(sku, loc.shopify_location_id))
            if value is None:
                continue
            pos = Position.model_validate_json(value)
            out.append(
                {
                    "location": loc.name,
                    "shopify_location_id": loc.shopify_location_id,
                    "sitoo_warehouse_id": loc.sitoo_warehouse_id,
                    "sitoo_total": pos.sitoo_total,
                    "sitoo_reserved": pos.sitoo_reserved,
                    "sitoo_version": pos.sitoo_version,
                    "buffer": loc.buffer_for(sku),
                    "pending": pos.pending_units,
                    "target": pos.target(loc.buffer_for(sku)),
                    "shopify_observed": pos.observed,
                    "in_flight": pos.in_flight is not None,
                    "drift_since": pos.drift_since,
                    "drift_cause": pos.drift_cause,
                    # which online orders make up `pending`: what a person asks first
                    "holds": {
                        order: {
                            "held": hold.held,
                            "open": hold.open,
                            "fulfilled": hold.fulfilled,
                            "booked": hold.booked,
                            "version": hold.version,
                        }
                        for order, hold in pos.holds.items()
                        if settled_holds or hold.settled_at is None
                    },
                }
            )
        return out


def _encoded(records: Sequence[SetInventory | DriftEvent | DriftCheck]) -> list[Encoded]:
    return [(r.sku.encode(), r.model_dump_json().encode()) for r in records]


class StockAgents:
    """The Faust side of the positions: what `register` hands to the app."""

    def __init__(self, ctx: Context, table: MutableMapping[str, bytes]) -> None:
        assert ctx.runtime is not None
        self.ctx = ctx
        self.rt: Runtime = ctx.runtime
        positions = PositionsAgent(
            table, self.rt.locations, self.rt.skus, dead_letter=self.dead_letter
        )
        self.positions = positions
        self.scheduler = positions.scheduler
        self.summary = positions.summary
        self.stock_topic = ctx.topic(topics.STOCK_EVENTS)
        # After a start or a rebalance, a position may say a write is in flight whose command
        # never reached Kafka: its table entry was stored locally before the crash, the command
        # was still in the producer's buffer, and the replayed events change nothing now. The
        # first scan sends such commands again; the sink drops a version it has already written.
        self.rescan_in_flight = True

    async def keep_positions(self, stream: faust.StreamT[bytes]) -> None:
        batches = cast(faust.Stream, stream).take_events(BATCH_MAX, within=BATCH_SECONDS)
        async for events in batches:
            # awaited with the batch in hand, not before the stream is read: Faust skips (and
            # acknowledges) a record it hands over after a rebalance of the start
            await self.rt.ready.wait()
            await self.take_batch(events)

    async def take_batch(self, events: Sequence[faust.EventT]) -> None:
        batch = await self.positions.apply([Record.of(event) for event in events])
        await self.ctx.send_all(topics.SHOPIFY_INVENTORY_COMMANDS, _encoded(batch.commands))
        await self.ctx.send_all(topics.DRIFT, _encoded(batch.drifts))
        if events:
            metrics.events_in.labels(topic=events[0].message.topic).inc(len(events))
        metrics.drift_open.set(len(self.scheduler.open_drift))

    async def dead_letter(self, record: Record, reason: str) -> None:
        await dead_letter(
            self.ctx,
            origin=record.topic,
            reason=reason,
            value=record.value,
            headers=record.headers,
            key=record.key,
        )

    async def send_due_checks(self) -> None:
        now = time.time()
        checks = [due.drift_check(now) for due in self.scheduler.due_now(now)]
        await self.ctx.send_all(topics.STOCK_EVENTS, _encoded(checks))

    async def verify_ambiguous(self) -> None:
        for rb in self.scheduler.read_backs_ready(time.time()):
            self.scheduler.start(rb)
            started = time.time()
            try:
                available = await read_available(
                    self.rt.shopify, rb.inventory_item_id, rb.location_id
                )
            except ShopifyError as exc:
                log.warning(
                    "could not read back %s at %s: %s; trying again", rb.sku, rb.location_id, exc
                )
                self.scheduler.retry(rb, time.time())
                continue
            if available is None:
                continue
            # stamped by Shopify's clock (see ReadBack.stamp): a stamp of ours could be behind
            # the webhook it was asked to settle and be ignored
            seen = rb.observed(available, started)
            await self.stock_topic.send(key=rb.sku.encode(), value=seen.model_dump_json().encode())

    async def on_assigned(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        self.rescan_in_flight = True
        assigned = cast(Set[TP], args[0])  # Faust sends the whole new assignment
        topic = self.stock_topic.get_topic_name()
        self.summary.assigned(frozenset(tp.partition for tp in assigned if tp.topic == topic))

    # Sent once the tables of the new assignment are recovered: only then does a scan see
    # every local position, so both are asked for again here.
    async def on_recovered(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        self.rescan_in_flight = True
        self.summary.mark_stale()

    async def scan_positions(self) -> None:
        if not self.rt.ready.is_set():
            return
        now = time.time()
        # taken before the scan awaits: a rebalance during it asks for the next one
        resend, self.rescan_in_flight = self.rescan_in_flight, False
        found = await self.positions.scan(now, resend=resend)
        await self.ctx.send_all(topics.STOCK_EVENTS, _encoded(found.checks))
        if found.again:
            log.info(
                "sending %d in-flight commands again after a start or rebalance", len(found.again)
            )
            await self.ctx.send_all(topics.SHOPIFY_INVENTORY_COMMANDS, _encoded(found.again))

    async def export_stats(self) -> None:
        self.rt.export_client_stats()

    def state_summary(self) -> dict[str, Any]:
        counts = self.summary.counts(self.positions.table)
        return {
            "positions": counts.positions,
            "in_sync": counts.in_sync,
            "in_flight": counts.in_flight,
            "drifting": counts.drifting,
            "drift_open": len(self.scheduler.open_drift),
            "examples_not_in_sync": counts.examples_not_in_sync,
            "skus_in_shopify": len(self.rt.skus.item_by_sku),
            "ready": self.rt.ready.is_set(),
        }


def register(ctx: Context) -> None:
    app = ctx.app
    table = app.Table(
        "stock-positions",
        default=None,
        # values are a Position's JSON made by pydantic: several times cheaper than Faust's
        # json codec on a dict, and the same document on disk and in the changelog
        schema=faust.Schema(key_type=str, key_serializer="json", value_serializer="raw"),
        value_type=bytes,
        help="one entry per (SKU, Shopify location): both platforms' view and what to do",
    )
    agents = StockAgents(ctx, table)

    app.agent(agents.stock_topic, name="stock-positions")(agents.keep_positions)
    app.timer(DRIFT_TICK)(agents.send_due_checks)
    app.timer(DRIFT_TICK)(agents.verify_ambiguous)
    app.on_partitions_assigned.connect(agents.on_assigned)
    app.on_rebalance_complete.connect(agents.on_recovered)
    app.timer(FULL_SCAN_EVERY)(agents.scan_positions)
    app.timer(1.0)(agents.export_stats)

    @app.page("/state/stock/{sku}")
    class StockOfSku(View):
        async def get(self, request: Request, sku: str) -> Response:
            every = request.query.get("holds") == "all"
            positions = agents.positions.stock_of_sku(sku, settled_holds=every)
            return self.json({"sku": sku, "positions": positions})

    @app.page("/state/stock")
    class StockSummary(View):
        async def get(self, request: Request) -> Response:
            return self.json(agents.state_summary())
