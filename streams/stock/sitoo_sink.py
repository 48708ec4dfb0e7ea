"""The Sitoo stock sink: stock transactions (store-fulfilled online orders) written once.

Commands are keyed by their externalid. An applied table records the intent before the write
and the transaction id after it; a command that finds only the intent (a crash between the two)
looks in Sitoo's recent ledger for its externalid before writing, so nothing is written twice.
The ledger has no externalid filter, so that look-up is kept for the rare crash case.
"""

from __future__ import annotations

import logging
import time

import faust
from pydantic import ValidationError

from tillsync.connectors.sitoo.client import SitooError
from tillsync.schemas.events import ExceptionRecord, Owner
from tillsync.schemas.sitoo import WarehouseTransactionIn
from tillsync.streams import metrics, topics
from tillsync.streams.context import Context
from tillsync.streams.deadletter import dead_letter

log = logging.getLogger("tillsync.sitoo_sink")

LOOKBACK = 3600  # seconds of ledger searched for an externalid after a crash mid-write
POSTING = -1  # the write was started; whether it landed is unknown


def register(ctx: Context) -> None:
    app = ctx.app
    rt = ctx.runtime
    assert rt is not None
    exceptions = ctx.topic(topics.EXCEPTIONS)
    origin = topics.SITOO_STOCK_COMMANDS.name(ctx.settings.app_id)
    applied = app.Table(
        "sitoo-applied",
        default=int,
        schema=faust.Schema(key_type=str, key_serializer="json", value_serializer="json"),
        help="externalid -> Sitoo warehouse transaction id written for it",
    )

    @app.agent(ctx.topic(topics.SITOO_STOCK_COMMANDS), name="sitoo-stock-sink")
    async def sink(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            try:
                tx = WarehouseTransactionIn.model_validate_json(event.value)
            except ValidationError as exc:
                await dead_letter(ctx, origin=origin, reason=f"invalid: {exc}", value=event.value)
                continue
            ext = tx.externalid or ""
            state = applied[ext]
            if state > 0:
                metrics.events_ignored.labels(reason="duplicate").inc()
                continue
            try:
                if state == POSTING:
                    # we crashed between writing and recording it: look before writing again
                    found = await rt.sitoo.find_transactions_by_externalid(
                        int(time.time()) - LOOKBACK, [ext]
                    )
                    if ext in found:
                        applied[ext] = found[ext] or 1
                        continue
                applied[ext] = POSTING
                results = await rt.sitoo.add_warehouse_transactions([tx])
                if not results or not results[0].ok:
                    raise SitooError(
                        results[0].statuscode if results else 0,
                        (results[0].errortext if results else None) or "no answer",
                    )
                applied[ext] = int(results[0].return_ or 1)
                metrics.events_out.labels(topic="sitoo.warehousetransactions").inc()
                rt.ledger_nudge.set()
            except SitooError as exc:
                await dead_letter(ctx, origin=origin, reason=str(exc), value=event.value)
                record = ExceptionRecord(
                    type="sitoo_stock_write_failed",
                    owner=Owner.STORE_OPS,
                    key=ext,
                    message=f"could not write {ext} to Sitoo warehouse {tx.warehouseid}: {exc}",
                    at=time.time(),
                )
                metrics.exceptions_raised.labels(type=record.type, owner=record.owner.value).inc()
                await exceptions.send(value=record.model_dump_json().encode())
