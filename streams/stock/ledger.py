"""Sitoo's side of the stock flow: the ledger poller, the ledger and Events SPI agents.

Sitoo's Events SPI says *that* something happened (ids only); the warehouse-transaction
ledger says *what*: each item's quantity after the transaction, under an increasing id. So an
event only wakes the poller, which reads the ledger from its cursor in pages; the same poller
runs on a timer to catch anything events missed, and backfills on first start.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any, cast

import faust
from faust.types import TP
from pydantic import ValidationError

from tillsync.schemas.events import SitooLevel
from tillsync.schemas.money import whole_units
from tillsync.schemas.sitoo import SitooEvent, WarehouseTransaction
from tillsync.streams import metrics, topics
from tillsync.streams.context import Context
from tillsync.streams.deadletter import dead_letter
from tillsync.streams.lru import RecentIds
from tillsync.streams.partitioned import in_partition_of

log = logging.getLogger("tillsync.ledger")

POLL_INTERVAL = 2.0  # the safety net when no event wakes the poller
POLL_AT_MOST_EVERY = 0.1  # seconds between polls however often events wake the poller
PAGE = 500
CURSOR_KEY = "sitoo.warehousetransactions"
BATCH_MAX = 1_000
BATCH_SECONDS = 0.02


def levels_of(tx: WarehouseTransaction, now: float) -> list[SitooLevel]:
    out = []
    for item in tx.items:
        if item.decimaltotal is None:
            continue
        out.append(
            SitooLevel(
                sku=item.sku,
                warehouse_id=tx.warehouseid,
                total=whole_units(item.decimaltotal),
                version=tx.warehousetransactionid,
                event_time=float(tx.datecreated or now),
                external_id=tx.externalid,
                delta=whole_units(item.decimalquantity),
            )
        )
    return out


def register(ctx: Context) -> None:
    app = ctx.app
    rt = ctx.runtime
    assert rt is not None
    raw_ledger = ctx.topic(topics.RAW_SITOO_LEDGER)
    raw_events = ctx.topic(topics.RAW_SITOO_EVENTS)
    ledger_name = topics.RAW_SITOO_LEDGER.name(ctx.settings.app_id)
    cursors = app.Table(
        "ledger-cursor",
        default=int,
        partitions=1,
        schema=faust.Schema(key_type=str, key_serializer="json", value_serializer="json"),
        help="the newest Sitoo warehouse transaction id taken in",
    )

    @app.agent(raw_ledger, name="sitoo-ledger")
    async def ledger_to_stock(stream: faust.StreamT[bytes]) -> None:
        batches = cast(faust.Stream, stream).take_events(BATCH_MAX, within=BATCH_SECONDS)
        async for events in batches:
            levels: list[tuple[bytes | None, bytes]] = []
            newest = 0
            for event in events:
                try:
                    tx = WarehouseTransaction.model_validate_json(event.value)
                except ValidationError as exc:
                    await dead_letter(
                        ctx,
                        origin=ledger_name,
                        reason=f"invalid warehouse transaction: {exc}",
                        value=event.value,
                    )
                    continue
                for level in levels_of(tx, time.time()):
                    levels.append((level.sku.encode(), level.model_dump_json().encode()))
                newest = max(newest, tx.warehousetransactionid)
            await ctx.send_all(topics.STOCK_EVENTS, levels)
            if events:
                with in_partition_of(events[-1]):
                    if newest > cursors[CURSOR_KEY]:
                        cursors[CURSOR_KEY] = newest

    @app.agent(raw_events, name="sitoo-events")
    async def sitoo_events(stream: faust.StreamT[bytes]) -> None:
        recent = RecentIds()
        async for event in stream.events():
            try:
                ev = SitooEvent.model_validate_json(event.value)
            except ValidationError as exc:
                await dead_letter(
                    ctx,
                    origin=event.message.topic,
                    reason=f"invalid Sitoo event: {exc}",
                    value=event.value,
                )
                continue
            if recent.seen(ev.event_id):
                metrics.events_ignored.labels(reason="duplicate").inc()
                continue
            if ev.event_type in ("warehouse-transaction", "order", "order-delivery"):
                rt.ledger_nudge.set()

    def recovered() -> bool:
        recovery = getattr(app.tables, "recovery", None)
        return recovery is not None and recovery.completed.is_set()

    def owns_ledger() -> bool:
        return TP(ledger_name, 0) in app.assignor.assigned_actives()

    @app.task
    async def poll_ledger() -> None:
        await rt.ready.wait()
        cursor: int | None = None
        while True:
            try:
                if not owns_ledger() or not recovered():
                    cursor = None  # another worker polls; re-read the cursor if we take over
                else:
                    if cursor is None:
                        cursor = await _take_over()
                    cursor = await _poll(cursor)
            except Exception as exc:  # the poller must outlive a Sitoo outage
                log.warning("ledger poll failed (will retry): %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(rt.ledger_nudge.wait(), POLL_INTERVAL)
            # at hundreds of events a second the nudges never stop: a short pause lets one
            # page carry the transactions of many events instead of one GET per event
            await asyncio.sleep(POLL_AT_MOST_EVERY)
            rt.ledger_nudge.clear()

    async def _take_over() -> int:
        stored = int(cursors.get(CURSOR_KEY) or 0)
        newest, snapshot = rt.snapshot or (0, [])
        if stored == 0:
            log.info("first start: backfilling from a snapshot at ledger id %d", newest)
            cursor = newest
            events: list[Any] = snapshot
        else:
            cursor = stored
            events = [e for e in snapshot if e.kind == "shopify_observed"]
        await ctx.send_all(
            topics.STOCK_EVENTS, ((ev.sku.encode(), ev.model_dump_json().encode()) for ev in events)
        )
        return cursor

    async def _poll(cursor: int) -> int:
        path = f"/sites/{rt.sitoo.site_id}/warehousetransactions.json"
        while True:
            body = await rt.sitoo.request(
                "GET",
                path,
                params={
                    "warehousetransactionidfrom": cursor + 1,
                    "sort": "warehousetransactionid",
                    "start": 0,
                    "num": PAGE,
                },
            )
            items = body.get("items") or []
            await ctx.send_all(
                topics.RAW_SITOO_LEDGER,
                ((None, json.dumps(item, separators=(",", ":")).encode()) for item in items),
            )
            for item in items:
                cursor = max(cursor, int(item["warehousetransactionid"]))
            if len(items) < PAGE:
                return cursor
