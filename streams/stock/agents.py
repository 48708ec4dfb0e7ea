"""The stock position table and the agent that keeps it, plus the drift timer and views."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import faust
from faust.web import Request, Response, View
from pydantic import ValidationError

from tillsync.connectors.shopify.client import ShopifyError
from tillsync.schemas.events import (
    DriftCheck,
    DriftEvent,
    DriftState,
    ObservedSource,
    OrderPlaced,
    SetInventory,
    ShopifyObserved,
    SitooLevel,
    SitooReserved,
    StockEvent,
    stock_events,
)
from tillsync.schemas.locations import Location
from tillsync.streams import metrics, topics
from tillsync.streams.context import Context
from tillsync.streams.deadletter import dead_letter
from tillsync.streams.partitioned import in_partition_of
from tillsync.streams.runtime import Runtime
from tillsync.streams.stock.position import (
    IN_FLIGHT_TIMEOUT,
    Outcome,
    Position,
    in_flight_command,
    position_key,
    step,
)
from tillsync.streams.stock.reads import read_available

log = logging.getLogger("tillsync.stock")

VERIFY_AFTER = 1.5  # let the webhooks of that second arrive before reading back
VERIFY_BATCH = 50
DRIFT_TICK = 0.25  # how often due drift checks are sent
FULL_SCAN_EVERY = 10.0  # how often every local position is looked at (crash leftovers)
SCAN_SLICE = 1_000  # positions looked at between two turns of the event loop
# Events are taken in batches so that a position touched many times is stored once, and
# Faust's per-event overhead is paid with less of ours on top. A batch waits at most this long
# to fill: a small share of the 1.5 s latency budget.
BATCH_MAX = 1_000
BATCH_SECONDS = 0.02


@dataclass(frozen=True, slots=True)
class _Flags:
    """What the state summary counts of one position."""

    in_flight: bool
    drifting: bool
    in_sync: bool


@dataclass
class _Work:
    """A position being changed by a batch, and an event of its partition to store it under."""

    pos: Position
    event: faust.EventT
    changed: bool


def _locations(ctx: Context, event: StockEvent) -> list[Location]:
    assert ctx.runtime is not None
    locations = ctx.runtime.locations
    if isinstance(event, OrderPlaced):
        return list(locations.locations)  # the order's location is not known yet
    found = (
        locations.by_warehouse(event.warehouse_id)
        if isinstance(event, SitooLevel | SitooReserved)
        else locations.by_shopify(event.location_id)
    )
    return [found] if found is not None else []


def register(ctx: Context) -> None:
    app = ctx.app
    assert ctx.runtime is not None
    rt: Runtime = ctx.runtime
    positions = app.Table(
        "stock-positions",
        default=None,
        # values are a Position's JSON made by pydantic: several times cheaper than Faust's
        # json codec on a dict, and the same document on disk and in the changelog
        schema=faust.Schema(key_type=str, key_serializer="json", value_serializer="raw"),
        value_type=bytes,
        help="one entry per (SKU, Shopify location): both platforms' view and what to do",
    )
    stock_topic = ctx.topic(topics.STOCK_EVENTS)
    due: dict[str, tuple[float, str, int]] = {}
    verify: dict[str, tuple[float, str, int, int]] = {}  # when, sku, location, item
    open_drift: set[str] = set()
    # the state summary, polled every half second by the demo and the tests, reads these flags
    # rather than decoding the whole table on the event loop each time
    summary: dict[str, _Flags] = {}
    summary_stale = {"yes": True}

    def _summarise(pos: Position) -> _Flags:
        loc = rt.locations.by_shopify(pos.location_id)
        target = pos.target(loc.buffer_for(pos.sku)) if loc else None
        return _Flags(
            in_flight=pos.in_flight is not None,
            drifting=pos.drift_since is not None,
            in_sync=target is not None and pos.observed == target,
        )

    @app.agent(stock_topic, name="stock-positions")
    async def keep_positions(stream: faust.StreamT[bytes]) -> None:
        await rt.ready.wait()
        batches = cast(faust.Stream, stream).take_events(BATCH_MAX, within=BATCH_SECONDS)
        async for events in batches:
            await take_batch(events)

    async def take_batch(events: Sequence[faust.EventT]) -> None:
        """Apply a batch in arrival order, then store each touched position once and send
        what the outcomes ask for: one table write per position per batch, not per event."""
        now = time.time()
        work: dict[str, _Work] = {}
        commands_out: dict[str, SetInventory] = {}  # the newest command per position
        drifts_out: list[DriftEvent] = []
        for event in events:
            raw = event.value
            try:
                evs = stock_events(raw)
            except ValidationError as exc:
                await dead_letter(
                    ctx,
                    origin=event.message.topic,
                    reason=f"invalid stock event: {exc}",
                    value=raw,
                    key=event.key,
                )
                continue
            for ev in evs:
                targets = _locations(ctx, ev)
                if not targets:
                    metrics.events_ignored.labels(reason="unmapped location").inc()
                    continue
                for loc in targets:
                    key = position_key(ev.sku, loc.shopify_location_id)
                    w = work.get(key)
                    if w is None:
                        w = work[key] = _load(key, ev.sku, loc, event)
                    out = step(w.pos, ev, loc, now)
                    if out.ignored:
                        metrics.events_ignored.labels(reason=out.ignored.split(" ", 1)[0]).inc()
                        continue
                    w.changed = True
                    _follow(key, w.pos, out, commands_out, drifts_out)
        for key, w in work.items():
            if w.changed:
                with in_partition_of(w.event):
                    positions[key] = w.pos.model_dump_json().encode()
                summary[key] = _summarise(w.pos)
        await ctx.send_all(
            topics.SHOPIFY_INVENTORY_COMMANDS,
            ((c.sku.encode(), c.model_dump_json().encode()) for c in commands_out.values()),
        )
        await ctx.send_all(
            topics.DRIFT, ((d.sku.encode(), d.model_dump_json().encode()) for d in drifts_out)
        )
        if events:
            metrics.events_in.labels(topic=events[0].message.topic).inc(len(events))
        metrics.drift_open.set(len(open_drift))

    def _load(key: str, sku: str, loc: Location, event: faust.EventT) -> _Work:
        with in_partition_of(event):
            stored = positions.get(key)
        if stored:
            pos = Position.model_validate_json(stored)
        else:
            pos = Position(sku=sku, location_id=loc.shopify_location_id)
        if pos.inventory_item_id is None:
            pos.inventory_item_id = rt.skus.item_by_sku.get(sku)
        # a position seen for the first time is stored even if its first event changed nothing
        return _Work(pos=pos, event=event, changed=not stored)

    def _follow(
        key: str,
        pos: Position,
        out: Outcome,
        commands_out: dict[str, SetInventory],
        drifts_out: list[DriftEvent],
    ) -> None:
        if out.commands:
            # a later command of the batch supersedes an earlier one: the sink would coalesce
            # them anyway, and the position waits for the newest version only
            commands_out[key] = out.commands[-1]
        for drift in out.drift:
            if drift.state is DriftState.DETECTED:
                metrics.drift_detected.labels(cause=drift.cause.value).inc()
                open_drift.add(key)
            elif drift.state is DriftState.HEALED:
                metrics.drift_healed.inc()
            drifts_out.append(drift)
        if pos.drift_since is None:
            open_drift.discard(key)
            due.pop(key, None)
        if out.check_at is not None:
            due[key] = (out.check_at, pos.sku, pos.location_id)
        if out.verify and pos.inventory_item_id is not None:
            verify[key] = (
                time.time() + VERIFY_AFTER,
                pos.sku,
                pos.location_id,
                pos.inventory_item_id,
            )

    def _check(sku: str, location_id: int, now: float) -> tuple[bytes | None, bytes]:
        check = DriftCheck(sku=sku, location_id=location_id, at=now)
        return sku.encode(), check.model_dump_json().encode()

    @app.timer(DRIFT_TICK)
    async def send_due_checks() -> None:
        now = time.time()
        checks: list[tuple[bytes | None, bytes]] = []
        for key, (when, sku, location_id) in list(due.items()):
            if when <= now:
                due.pop(key, None)
                checks.append(_check(sku, location_id, now))
        await ctx.send_all(topics.STOCK_EVENTS, checks)

    @app.timer(DRIFT_TICK)
    async def verify_ambiguous() -> None:
        now = time.time()
        ready = [(k, v) for k, v in verify.items() if v[0] <= now][:VERIFY_BATCH]
        for key, (_, sku, location_id, item) in ready:
            verify.pop(key, None)
            try:
                available = await read_available(rt.shopify, item, location_id)
            except ShopifyError as exc:
                log.warning("could not read back %s at %s: %s; trying again", sku, location_id, exc)
                verify.setdefault(key, (time.time() + VERIFY_AFTER, sku, location_id, item))
                continue
            if available is None:
                continue
            seen = ShopifyObserved(
                sku=sku,
                location_id=location_id,
                inventory_item_id=item,
                available=available,
                updated_at=time.time(),
                source=ObservedSource.READ,
            )
            await stock_topic.send(key=sku.encode(), value=seen.model_dump_json().encode())

    # After a start or a rebalance, a position may say a write is in flight whose command never
    # reached Kafka: its table entry was stored locally before the crash, the command was still
    # in the producer's buffer, and the replayed events change nothing now. The first scan
    # sends such commands again; the sink drops a version it has already written.
    rescan = {"in_flight": True}

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        rescan["in_flight"] = True
        summary_stale["yes"] = True

    # Sent once the tables of the new assignment are recovered: only then does a scan see
    # every local position, so both are asked for again here.
    @app.on_rebalance_complete.connect
    async def on_recovered(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        rescan["in_flight"] = True
        summary_stale["yes"] = True

    @app.timer(FULL_SCAN_EVERY)
    async def scan_positions() -> None:
        # After a crash the in-memory schedule is gone; the table still knows what is open.
        if not rt.ready.is_set():
            return
        now = time.time()
        resend, rescan["in_flight"] = rescan["in_flight"], False
        again: list[tuple[bytes | None, bytes]] = []
        checks: list[tuple[bytes | None, bytes]] = []
        for n, (key, value) in enumerate(list(positions.items())):
            if n % SCAN_SLICE == SCAN_SLICE - 1:
                await asyncio.sleep(0)  # a large table must not hold up the event loop
            if not value:
                continue
            pos = Position.model_validate_json(value)
            if resend and pos.in_flight is not None and pos.inventory_item_id is not None:
                again.append((pos.sku.encode(), in_flight_command(pos).model_dump_json().encode()))
            if key in due:
                continue
            flight = pos.in_flight
            stuck = flight is not None and now - flight.since > IN_FLIGHT_TIMEOUT
            differs = pos.observed != pos.commanded
            # a new product's stock that came before its SKU reached this worker's index
            learnt = pos.inventory_item_id is None and pos.sku in rt.skus.item_by_sku
            if pos.drift_since is not None or stuck or (differs and flight is None) or learnt:
                checks.append(_check(pos.sku, pos.location_id, now))
        await ctx.send_all(topics.STOCK_EVENTS, checks)
        if again:
            log.info("sending %d in-flight commands again after a start or rebalance", len(again))
            await ctx.send_all(topics.SHOPIFY_INVENTORY_COMMANDS, again)

    @app.timer(1.0)
    async def export_stats() -> None:
        rt.export_client_stats()

    @app.page("/state/stock/{sku}")
    class StockOfSku(View):
        async def get(self, request: Request, sku: str) -> Response:
            out: list[dict[str, Any]] = []
            for loc in rt.locations.locations:
                value = positions.get(position_key(sku, loc.shopify_location_id))
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
                    }
                )
            return self.json({"sku": sku, "positions": out})

    @app.page("/state/stock")
    class StockSummary(View):
        async def get(self, request: Request) -> Response:
            if summary_stale["yes"]:
                # the one full read: after a start or rebalance the table holds positions no
                # batch has touched yet; from then on each stored batch keeps `summary` current
                summary.clear()
                for key, value in positions.items():
                    if value:
                        summary[key] = _summarise(Position.model_validate_json(value))
                summary_stale["yes"] = False
            flags = list(summary.values())
            in_sync = sum(1 for f in flags if f.in_sync)
            return self.json(
                {
                    "positions": len(flags),
                    "in_sync": in_sync,
                    "in_flight": sum(1 for f in flags if f.in_flight),
                    "drifting": sum(1 for f in flags if f.drifting),
                    "drift_open": len(open_drift),
                    "examples_not_in_sync": [k for k, f in summary.items() if not f.in_sync][:20],
                    "skus_in_shopify": len(rt.skus.item_by_sku),
                    "ready": rt.ready.is_set(),
                }
            )
