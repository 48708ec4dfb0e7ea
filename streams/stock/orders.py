"""Online orders and the stock they hold at a store location.

An online order placed in Shopify and routed to a mapped store for shipping commits units
there that Sitoo knows nothing of until the store fulfils it: those are `pending`. Its
fulfilment becomes a Move Out in Sitoo (once: the externalid names order and fulfilment), and
its cancellation releases them. Click & collect orders are not pending here: they become Sitoo
orders, whose reservations Sitoo itself reports.
"""

from __future__ import annotations

import logging
import time

import faust
from pydantic import ValidationError

from tillsync.connectors.shopify.ids import gid, gid_tail
from tillsync.connectors.shopify.stock_documents import ORDER_ROUTING
from tillsync.schemas.events import OrderPlaced, PendingUnits
from tillsync.schemas.shopify import Order
from tillsync.schemas.sitoo import WarehouseTransactionIn, WarehouseTransactionItemIn
from tillsync.streams import topics
from tillsync.streams.context import Context
from tillsync.streams.deadletter import dead_letter
from tillsync.streams.stock.refs import fulfilment_external_id, pending_ref
from tillsync.streams.stock.shopify_webhooks import header

log = logging.getLogger("tillsync.orders")

MOVE_OUT = 20  # Sitoo transactiontype "Move Out" (sitoo-api.md: from the example description)


def register(ctx: Context) -> None:
    app = ctx.app
    rt = ctx.runtime
    assert rt is not None
    sitoo_commands = ctx.topic(topics.SITOO_STOCK_COMMANDS)

    async def pending_lines(order_id: int) -> list[tuple[int, str, int]]:
        """(location, sku, units) of the order's shipping lines at mapped locations."""
        data = await rt.shopify.execute(ORDER_ROUTING, {"id": gid("Order", order_id)})
        order = data.get("order")
        out: list[tuple[int, str, int]] = []
        for fo in ((order or {}).get("fulfillmentOrders") or {}).get("nodes", []):
            if (fo.get("deliveryMethod") or {}).get("methodType") == "PICK_UP":
                continue
            location = ((fo.get("assignedLocation") or {}).get("location") or {}).get("id")
            if location is None or rt.locations.by_shopify(gid_tail(location)) is None:
                continue
            for line in fo["lineItems"]["nodes"]:
                if line.get("sku"):
                    out.append((gid_tail(location), line["sku"], int(line["remainingQuantity"])))
        return out

    async def send_pending(order: Order, final: bool) -> None:
        now = time.time()
        out: list[tuple[bytes | None, bytes]] = []
        for location, sku, units in await pending_lines(order.id):
            ev = PendingUnits(
                sku=sku,
                location_id=location,
                ref=pending_ref(order.id, sku),
                units=0 if final else units,
                final=final,
                at=now,
            )
            out.append((sku.encode(), ev.model_dump_json().encode()))
        # after the pending units (same key, same partition, so they land first): every
        # location of the order's SKUs stops holding a shortfall for this order
        for sku in sorted({line.sku for line in order.line_items if line.sku}):
            done = OrderPlaced(sku=sku, order_id=order.id, units=0, at=now, routed=True)
            out.append((sku.encode(), done.model_dump_json().encode()))
        await ctx.send_all(topics.STOCK_EVENTS, out)

    async def send_fulfilments(order: Order) -> None:
        pickup = any((line.code or "").lower() == "pickup" for line in order.shipping_lines)
        if pickup:
            return  # click & collect leaves Sitoo's stock when the Sitoo order closes
        for f in order.fulfillments:
            loc = rt.locations.by_shopify(f.location_id or 0)
            if loc is None or (f.status or "success") != "success":
                continue
            items = [
                WarehouseTransactionItemIn(sku=li.sku, decimalquantity=f"{-li.quantity}.000")
                for li in f.line_items
                if li.sku
            ]
            if not items:
                continue
            tx = WarehouseTransactionIn(
                warehouseid=loc.sitoo_warehouse_id,
                transactiontype=MOVE_OUT,
                items=items,
                description=f"Shopify order {order.name or order.id} fulfilled from store",
                externalid=fulfilment_external_id(order.id, f.id),
            )
            await sitoo_commands.send(
                key=(tx.externalid or "").encode(), value=tx.model_dump_json().encode()
            )

    @app.agent(ctx.topic(topics.SHOPIFY_ORDER_WEBHOOKS), name="shopify-orders")
    async def orders(stream: faust.StreamT[bytes]) -> None:
        # de-duplicated upstream; what repeats after a crash is harmless here: pending units
        # are set, not added, and a Move Out is written once per externalid by the Sitoo sink
        await rt.ready.wait()
        async for event in stream.events():
            topic = header(event, "X-Shopify-Topic")
            try:
                order = Order.model_validate_json(event.value)
                if topic == "orders/create":
                    await send_pending(order, final=False)
                elif topic == "orders/cancelled":
                    await send_pending(order, final=True)
                elif topic in ("orders/fulfilled", "orders/updated"):
                    await send_fulfilments(order)
            except ValidationError as exc:
                await dead_letter(
                    ctx, origin=event.message.topic, reason=f"{topic}: {exc}", value=event.value
                )
            except Exception as exc:  # a Shopify outage must not stop the stream
                log.warning("order %s (%s) failed: %s", topic, event.key, exc)
                await dead_letter(
                    ctx,
                    origin=event.message.topic,
                    reason=f"{topic} not handled: {exc}",
                    value=event.value,
                )
