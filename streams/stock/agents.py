"""The stock position table and the agent that keeps it, plus the drift timer and views."""

from __future__ import annotations

import logging
import time
from typing import Any

import faust
from faust.web import Request, Response, View
from pydantic import ValidationError

from connectors.shopify.client import ShopifyError
from schemas.events import (
    STOCK_EVENT,
    DriftCheck,
    DriftState,
    ObservedSource,
    OrderPlaced,
    ShopifyObserved,
    SitooLevel,
    SitooReserved,
    StockEvent,
)
from schemas.locations import Location
from streams import metrics, topics
from streams.app import Context
from streams.deadletter import dead_letter
from streams.runtime import Runtime
from streams.stock.position import IN_FLIGHT_TIMEOUT, Position, position_key, step
from streams.stock.reads import read_available

log = logging.getLogger("tillsync.stock")

VERIFY_AFTER = 1.5  # let the webhooks of that second arrive before reading back
VERIFY_BATCH = 50
DRIFT_TICK = 0.25  # how often due drift checks are sent
FULL_SCAN_EVERY = 10.0  # how often every local position is looked at (crash leftovers)


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
        schema=faust.Schema(key_type=str, key_serializer="json", value_serializer="json"),
        help="one entry per (SKU, Shopify location): both platforms' view and what to do",
    )
    rt.positions = positions
    stock_topic = ctx.topic(topics.STOCK_EVENTS)
    commands = ctx.topic(topics.SHOPIFY_INVENTORY_COMMANDS)
    drift_topic = ctx.topic(topics.DRIFT)
    due: dict[str, tuple[float, str, int]] = {}
    verify: dict[str, tuple[float, str, int, int]] = {}  # when, sku, location, item
    open_drift: set[str] = set()

    @app.agent(stock_topic, name="stock-positions")
    async def keep_positions(stream: faust.StreamT[bytes]) -> None:
        await rt.ready.wait()
        async for event in stream.events():
            raw = event.value
            rt.stock_offsets[event.message.partition] = event.message.offset
            metrics.events_in.labels(topic=event.message.topic).inc()
            try:
                ev = STOCK_EVENT.validate_json(raw)
            except ValidationError as exc:
                await dead_letter(
                    ctx,
                    origin=event.message.topic,
                    reason=f"invalid stock event: {exc}",
                    value=raw,
                    key=event.key,
                )
                continue
            targets = _locations(ctx, ev)
            if not targets:
                metrics.events_ignored.labels(reason="unmapped location").inc()
                continue
            for loc in targets:
                await apply(ev, loc)

    async def apply(ev: StockEvent, loc: Location) -> None:
        key = position_key(ev.sku, loc.shopify_location_id)
        stored = positions.get(key)
        pos = (
            Position.model_validate(stored)
            if stored
            else Position(sku=ev.sku, location_id=loc.shopify_location_id)
        )
        if pos.inventory_item_id is None:
            pos.inventory_item_id = rt.skus.item_by_sku.get(ev.sku)
        out = step(pos, ev, loc, time.time())
        if out.ignored:
            metrics.events_ignored.labels(reason=out.ignored.split(" ", 1)[0]).inc()
            if stored is not None:
                return
        positions[key] = pos.model_dump(mode="json")
        for cmd in out.commands:
            await commands.send(key=cmd.sku.encode(), value=cmd.model_dump_json().encode())
        for drift in out.drift:
            if drift.state is DriftState.DETECTED:
                metrics.drift_detected.labels(cause=drift.cause.value).inc()
                open_drift.add(key)
            elif drift.state is DriftState.HEALED:
                metrics.drift_healed.inc()
            await drift_topic.send(key=drift.sku.encode(), value=drift.model_dump_json().encode())
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
        metrics.drift_open.set(len(open_drift))

    async def _nudge(sku: str, location_id: int, now: float) -> None:
        check = DriftCheck(sku=sku, location_id=location_id, at=now)
        await stock_topic.send(key=sku.encode(), value=check.model_dump_json().encode())

    @app.timer(DRIFT_TICK)
    async def send_due_checks() -> None:
        now = time.time()
        for key, (when, sku, location_id) in list(due.items()):
            if when <= now:
                due.pop(key, None)
                await _nudge(sku, location_id, now)

    @app.timer(DRIFT_TICK)
    async def verify_ambiguous() -> None:
        now = time.time()
        ready = [(k, v) for k, v in verify.items() if v[0] <= now][:VERIFY_BATCH]
        for key, (_, sku, location_id, item) in ready:
            verify.pop(key, None)
            try:
                available = await read_available(rt.shopify, item, location_id)
            except ShopifyError as exc:
                log.warning("could not read back %s at %s: %s", sku, location_id, exc)
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

    @app.timer(FULL_SCAN_EVERY)
    async def scan_positions() -> None:
        # After a crash the in-memory schedule is gone; the table still knows what is open.
        if not rt.ready.is_set():
            return
        now = time.time()
        for key, value in list(positions.items()):
            if not value or key in due:
                continue
            flight = value.get("in_flight")
            stuck = flight is not None and now - flight["since"] > IN_FLIGHT_TIMEOUT
            differs = value.get("observed") != value.get("commanded")
            if value.get("drift_since") is not None or stuck or (differs and flight is None):
                await _nudge(value["sku"], value["location_id"], now)

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
                pos = Position.model_validate(value)
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
            total = in_sync = in_flight = drifting = 0
            mismatched: list[str] = []
            for key, value in positions.items():
                if not value:
                    continue
                total += 1
                pos = Position.model_validate(value)
                loc = rt.locations.by_shopify(pos.location_id)
                target = pos.target(loc.buffer_for(pos.sku)) if loc else None
                if pos.in_flight is not None:
                    in_flight += 1
                if pos.drift_since is not None:
                    drifting += 1
                if target is not None and pos.observed == target:
                    in_sync += 1
                elif len(mismatched) < 20:
                    mismatched.append(str(key))
            return self.json(
                {
                    "positions": total,
                    "in_sync": in_sync,
                    "in_flight": in_flight,
                    "drifting": drifting,
                    "drift_open": len(open_drift),
                    "examples_not_in_sync": mismatched,
                    "ready": rt.ready.is_set(),
                }
            )
