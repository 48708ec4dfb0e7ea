"""Sitoo's returns at the till, found by reading its orders in id order.

A return at the till is a credit order born closed. Sitoo's Events SPI tells of it as of any
till sale (an ``order`` ``add`` with ids only), so telling the two apart would cost a read of
every sale; its orders have no modified-since filter either, but their ids only grow. So a
poller reads the orders after its cursor, a page of 500 per call, every few seconds, on the
worker that owns the one partition of ``raw.sitoo.orders`` (as the ledger's poller does), and
sends what it read there: the return orders, unchanged, with the new cursor (in several reads
when a page's returns are too big for one Kafka record). The
``sitoo-orders`` agent passes each return on to the returns flow (``sitoo.returns``, keyed by
the order returned) and only then moves the cursor in its table, so a crash reads a page again
(its returns come twice, and are done once) and never skips one.

At first start the cursor is Sitoo's newest order: returns made before tillsync ran are not
its to tell Shopify of.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import faust
from faust.types import TableT
from pydantic import BaseModel, ConfigDict, ValidationError

from tillsync.schemas.events import StoreReturn
from tillsync.streams import topics
from tillsync.streams.context import Context
from tillsync.streams.deadletter import dead_letter, error_reason
from tillsync.streams.ownership import owns, tables_recovered
from tillsync.streams.partitioned import in_partition_of
from tillsync.streams.runtime import Runtime

log = logging.getLogger("tillsync.returns.poller")

POLL_INTERVAL = 3.0
PAGE = 500
CURSOR_KEY = "sitoo.orders"
# A page of 500 returns of a few lines each is over a megabyte, more than Kafka takes in one
# request (the producer's max_request_size, the broker's message.max.bytes): a page's returns
# go in reads of at most this many bytes of orders.
RECORD_BYTES = 256_000


class OrdersRead(BaseModel):
    """One read of Sitoo's orders: its return orders as Sitoo sent them, and the newest id
    read (the cursor once they are passed on)."""

    model_config = ConfigDict(extra="forbid")

    cursor: int
    orders: list[dict[str, Any]]


class _OrderIds(BaseModel):
    model_config = ConfigDict(extra="ignore")

    orderid: int
    creditorderid: int | None = None


def is_return(order: Mapping[str, Any]) -> bool:
    """A credit order: linked to the order it returns, or a row of goods coming back."""
    if order.get("creditorderid") is not None:
        return True
    rows = order.get("orderitems") or []
    return any(
        isinstance(r, Mapping) and r.get("sku") and int(r.get("quantity") or 0) < 0 for r in rows
    )


def returns_of(read: OrdersRead) -> list[StoreReturn]:
    out: list[StoreReturn] = []
    for raw in read.orders:
        ids = _OrderIds.model_validate(raw)
        out.append(
            StoreReturn(
                credit_order_id=ids.orderid, original_order_id=ids.creditorderid, credit=raw
            )
        )
    return out


def reads_of(
    returns: Sequence[dict[str, Any]], newest: int, budget: int = RECORD_BYTES
) -> list[OrdersRead]:
    """A page's returns as reads of at most ``budget`` bytes of orders each (one order bigger
    than that goes alone). A read's cursor is its newest return's id: every return before it is
    in it or in an earlier read, so the agent moving the cursor read by read never skips one.
    The last read's is ``newest``, the page's newest order of any kind."""
    ordered = sorted(returns, key=lambda o: int(o["orderid"]))
    reads: list[OrdersRead] = []
    chunk: list[dict[str, Any]] = []
    size = 0
    for order in ordered:
        n = len(json.dumps(order, separators=(",", ":")))
        if chunk and size + n > budget:
            reads.append(OrdersRead(cursor=int(chunk[-1]["orderid"]), orders=chunk))
            chunk, size = [], 0
        chunk.append(order)
        size += n
    reads.append(OrdersRead(cursor=newest, orders=chunk))
    return reads


class SitooOrdersPoller:
    def __init__(self, ctx: Context, cursors: TableT[str, int]) -> None:
        assert ctx.runtime is not None
        self.ctx = ctx
        self.rt: Runtime = ctx.runtime
        self.cursors = cursors
        self.raw_name = topics.RAW_SITOO_ORDERS.name(ctx.settings.app_id)
        self.cursor: int | None = None  # None while another worker polls

    async def poll(self) -> None:
        """Task: read new orders while this worker owns the poll."""
        await self.rt.ready.wait()
        while True:
            try:
                await self.poll_once()
            except Exception as exc:  # the poller must outlive a Sitoo outage
                log.warning("Sitoo orders poll failed (will retry): %s", exc)
            await asyncio.sleep(POLL_INTERVAL)

    async def poll_once(self) -> None:
        if not owns(self.ctx.app, self.raw_name) or not tables_recovered(self.ctx.app):
            self.cursor = None
            return
        if self.cursor is None:
            kept = int(self.cursors.get(CURSOR_KEY) or 0)
            self.cursor = kept or await self._newest()
            log.info("Sitoo orders poll starts after order %d", self.cursor)
        while True:
            body = await self.rt.sitoo.request(
                "GET",
                "/orders.json",
                params={"orderidfrom": self.cursor + 1, "sort": "orderid", "start": 0, "num": PAGE},
            )
            items = [i for i in (body.get("items") or []) if isinstance(i, dict)]
            if not items:
                return
            newest = max(int(i["orderid"]) for i in items)
            reads = reads_of([i for i in items if is_return(i)], newest)
            await self.ctx.send_all(
                topics.RAW_SITOO_ORDERS,
                [(None, read.model_dump_json().encode()) for read in reads],
                durable=True,
            )
            self.cursor = max(self.cursor, newest)
            if len(items) < PAGE:
                return

    async def _newest(self) -> int:
        body = await self.rt.sitoo.request(
            "GET", "/orders.json", params={"sort": "-orderid", "start": 0, "num": 1}
        )
        items = body.get("items") or []
        return int(items[0]["orderid"]) if items else 0

    async def take(self, stream: faust.StreamT[bytes]) -> None:
        """Agent: each read's returns to the returns flow, then the cursor."""
        async for event in stream.events():
            try:
                read = OrdersRead.model_validate_json(event.value)
                found = returns_of(read)
            except ValidationError as exc:
                await dead_letter(
                    self.ctx,
                    origin=self.raw_name,
                    reason=f"invalid: {error_reason(exc)}",
                    value=bytes(event.value),
                )
                continue
            await self.ctx.send_all(
                topics.SITOO_RETURNS,
                (
                    (
                        str(r.original_order_id or r.credit_order_id).encode(),
                        r.model_dump_json().encode(),
                    )
                    for r in found
                ),
                durable=True,
            )
            with in_partition_of(event):
                if read.cursor > int(self.cursors.get(CURSOR_KEY) or 0):
                    self.cursors[CURSOR_KEY] = read.cursor


def register(ctx: Context) -> SitooOrdersPoller:
    cursors = ctx.app.Table(
        "sitoo-orders-cursor",
        default=int,
        partitions=1,
        schema=faust.Schema(key_type=str, key_serializer="json", value_serializer="json"),
        help="the newest Sitoo order id read for returns at the till",
    )
    poller = SitooOrdersPoller(ctx, cursors)
    ctx.app.agent(ctx.topic(topics.RAW_SITOO_ORDERS), name="sitoo-orders")(poller.take)
    ctx.app.task(poller.poll)
    return poller
