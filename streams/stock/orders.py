"""Online orders and the stock they hold at a store location.

An online order placed in Shopify and routed to a mapped store for shipping commits units
there that Sitoo knows nothing of until the store fulfils it: those are `pending`. Its
fulfilment becomes a Move Out in Sitoo (once: the externalid names order and fulfilment), and
its cancellation releases them. Click & collect orders are not pending here: they become Sitoo
orders, whose reservations Sitoo itself reports.

The decisions are plain functions (``action_of``, ``pending_lines_of``, ``pending_events``,
``move_outs``); ``OrderFlow``'s agent body asks Shopify for the routing and sends the results.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

import faust
from pydantic import ValidationError

from tillsync.connectors.shopify.ids import gid, gid_tail
from tillsync.connectors.shopify.stock_documents import ORDER_ROUTING
from tillsync.schemas.events import OrderPlaced, PendingUnits
from tillsync.schemas.locations import LocationMap
from tillsync.schemas.shopify import Order
from tillsync.schemas.sitoo import WarehouseTransactionIn, WarehouseTransactionItemIn
from tillsync.streams import topics
from tillsync.streams.context import Context
from tillsync.streams.deadletter import dead_letter, error_reason
from tillsync.streams.runtime import Runtime
from tillsync.streams.stock.refs import fulfilment_external_id, pending_ref
from tillsync.streams.stock.shopify_webhooks import TOPIC_HEADER, header

log = logging.getLogger("tillsync.orders")

MOVE_OUT = 20  # Sitoo transactiontype "Move Out" (sitoo-api.md: from the example description)


class OrderAction(Enum):
    """What an order webhook asks of the stock flow."""

    HOLD = "hold"  # placed: its shipping lines at mapped stores hold units there
    RELEASE = "release"  # cancelled: those units are free again
    MOVE_OUT = "move_out"  # fulfilled or updated: store fulfilments leave Sitoo's stock
    NONE = "none"


def action_of(topic: str) -> OrderAction:
    if topic == "orders/create":
        return OrderAction.HOLD
    if topic == "orders/cancelled":
        return OrderAction.RELEASE
    if topic in ("orders/fulfilled", "orders/updated"):
        return OrderAction.MOVE_OUT
    return OrderAction.NONE


@dataclass(frozen=True)
class PendingLine:
    """Units of one SKU that an order ships from a mapped store location."""

    location_id: int
    sku: str
    units: int


def pending_lines_of(routing: Mapping[str, Any], locations: LocationMap) -> list[PendingLine]:
    """The units each SKU of the order ships from each mapped location, from the answer to
    ``ORDER_ROUTING``: the sum over its lines and fulfilment orders there. The position holds
    them under one reference per order and SKU, and a Move Out settles them by SKU: two lines
    of one SKU are one hold, not two that overwrite each other."""
    order = routing.get("order")
    units: dict[tuple[int, str], int] = {}  # in the order first seen
    for fo in ((order or {}).get("fulfillmentOrders") or {}).get("nodes", []):
        if (fo.get("deliveryMethod") or {}).get("methodType") == "PICK_UP":
            continue
        location = ((fo.get("assignedLocation") or {}).get("location") or {}).get("id")
        if location is None or locations.by_shopify(gid_tail(location)) is None:
            continue
        for line in fo["lineItems"]["nodes"]:
            if line.get("sku"):
                at = (gid_tail(location), line["sku"])
                units[at] = units.get(at, 0) + int(line["remainingQuantity"])
    return [PendingLine(location_id=loc, sku=sku, units=n) for (loc, sku), n in units.items()]


def pending_events(
    order: Order, lines: list[PendingLine], final: bool, now: float
) -> list[PendingUnits | OrderPlaced]:
    """The pending units of each SKU at each location (none once `final`: cancelled), then
    the end of the order's shortfall hint at every location of its SKUs."""
    out: list[PendingUnits | OrderPlaced] = [
        PendingUnits(
            sku=line.sku,
            location_id=line.location_id,
            ref=pending_ref(order.id, line.sku),
            units=0 if final else line.units,
            final=final,
            at=now,
        )
        for line in lines
    ]
    # after the pending units (same key, same partition, so they land first)
    out.extend(
        OrderPlaced(sku=sku, order_id=order.id, units=0, at=now, routed=True)
        for sku in sorted({line.sku for line in order.line_items if line.sku})
    )
    return out


def move_outs(order: Order, locations: LocationMap) -> Iterator[WarehouseTransactionIn]:
    """One Move Out per successful fulfilment from a mapped store."""
    pickup = any((line.code or "").lower() == "pickup" for line in order.shipping_lines)
    if pickup:
        return  # click & collect leaves Sitoo's stock when the Sitoo order closes
    for f in order.fulfillments:
        loc = locations.by_shopify(f.location_id or 0)
        if loc is None or (f.status or "success") != "success":
            continue
        items = [
            WarehouseTransactionItemIn(sku=li.sku, decimalquantity=f"{-li.quantity}.000")
            for li in f.line_items
            if li.sku
        ]
        if not items:
            continue
        yield WarehouseTransactionIn(
            warehouseid=loc.sitoo_warehouse_id,
            transactiontype=MOVE_OUT,
            items=items,
            description=f"Shopify order {order.name or order.id} fulfilled from store",
            externalid=fulfilment_external_id(order.id, f.id),
        )


class OrderFlow:
    """The orders agent: order webhooks to pending units and Move Out commands."""

    def __init__(self, ctx: Context) -> None:
        assert ctx.runtime is not None
        self.ctx = ctx
        self.rt: Runtime = ctx.runtime
        self.sitoo_commands = ctx.topic(topics.SITOO_STOCK_COMMANDS)

    async def take(self, stream: faust.StreamT[bytes]) -> None:
        """Agent: order webhooks, one at a time."""
        # de-duplicated upstream; what repeats after a crash is harmless here: pending units
        # are set, not added, and a Move Out is written once per externalid by the Sitoo sink
        await self.rt.ready.wait()
        async for event in stream.events():
            topic = header(event, TOPIC_HEADER)
            try:
                await self.handle(action_of(topic), Order.model_validate_json(event.value))
            except ValidationError as exc:
                await dead_letter(
                    self.ctx,
                    origin=event.message.topic,
                    reason=f"{topic}: {error_reason(exc)}",
                    value=event.value,
                    headers=event.headers,
                )
            except Exception as exc:  # a Shopify outage must not stop the stream
                log.warning("order %s (%s) failed: %s", topic, event.key, error_reason(exc))
                await dead_letter(
                    self.ctx,
                    origin=event.message.topic,
                    reason=f"{topic} not handled: {error_reason(exc)}",
                    value=event.value,
                    headers=event.headers,
                )

    async def handle(self, action: OrderAction, order: Order) -> None:
        if action is OrderAction.HOLD:
            await self.send_pending(order, final=False)
        elif action is OrderAction.RELEASE:
            await self.send_pending(order, final=True)
        elif action is OrderAction.MOVE_OUT:
            await self.send_move_outs(order)

    async def pending_lines(self, order_id: int) -> list[PendingLine]:
        data = await self.rt.shopify.execute(ORDER_ROUTING, {"id": gid("Order", order_id)})
        return pending_lines_of(data, self.rt.locations)

    async def send_pending(self, order: Order, final: bool) -> None:
        now = time.time()  # stamped before the routing query: its latency is not the order's
        lines = await self.pending_lines(order.id)
        events = pending_events(order, lines, final, now)
        await self.ctx.send_all(
            topics.STOCK_EVENTS,
            ((ev.sku.encode(), ev.model_dump_json().encode()) for ev in events),
        )

    async def send_move_outs(self, order: Order) -> None:
        for tx in move_outs(order, self.rt.locations):
            await self.sitoo_commands.send(
                key=(tx.externalid or "").encode(), value=tx.model_dump_json().encode()
            )


def register(ctx: Context) -> None:
    flow = OrderFlow(ctx)
    ctx.app.agent(ctx.topic(topics.SHOPIFY_ORDER_WEBHOOKS), name="shopify-orders")(flow.take)
