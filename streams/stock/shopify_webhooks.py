"""Shopify's inventory, product and new-order webhooks, turned into stock events, SKU index
updates and order hints."""

from __future__ import annotations

import json
import logging
import time
from typing import Any, cast

import faust
from pydantic import ValidationError

from tillsync.schemas.events import ObservedSource, OrderPlaced, ShopifyObserved
from tillsync.schemas.shopify import InventoryLevel, Order, Product
from tillsync.streams import metrics, topics
from tillsync.streams.context import Context
from tillsync.streams.deadletter import dead_letter
from tillsync.streams.lru import RecentIds
from tillsync.streams.stock import sku_feed
from tillsync.streams.stock.sku_feed import SkuPair

log = logging.getLogger("tillsync.shopify")


BATCH_MAX = 500
BATCH_SECONDS = 0.02


def header(event: faust.EventT, name: str) -> str:
    headers: Any = event.message.headers or []
    pairs: list[tuple[str, bytes]] = list(headers.items() if isinstance(headers, dict) else headers)
    for key, value in pairs:
        if key.lower() == name.lower():
            return value.decode() if isinstance(value, bytes) else str(value)
    return ""


def register(ctx: Context) -> None:
    app = ctx.app
    rt = ctx.runtime
    assert rt is not None
    order_webhooks = topics.SHOPIFY_ORDER_WEBHOOKS.name(ctx.settings.app_id)

    @app.agent(ctx.topic(topics.RAW_SHOPIFY_WEBHOOKS), name="shopify-webhooks")
    async def shopify_webhooks(stream: faust.StreamT[bytes]) -> None:
        """The one agent acting on raw webhooks (the audit only counts them): duplicates are
        dropped here, inventory levels and order hints become stock events, and order webhooks
        move on to their own topic, keyed by order, for the orders agent (which waits on
        Shopify per order and must not hold up inventory)."""
        await rt.ready.wait()
        recent = RecentIds()
        batches = cast(faust.Stream, stream).take_events(BATCH_MAX, within=BATCH_SECONDS)
        async for events in batches:
            stock: list[tuple[bytes | None, bytes]] = []
            for event in events:
                topic = header(event, "X-Shopify-Topic")
                if recent.seen(header(event, "X-Shopify-Webhook-Id")):
                    metrics.events_ignored.labels(reason="duplicate").inc()
                    continue
                try:
                    if topic == "inventory_levels/update":
                        stock.extend(_inventory_level(json.loads(event.value)))
                    elif topic.startswith("orders/"):
                        order = Order.model_validate_json(event.value)
                        if topic == "orders/create":
                            stock.extend(_order_hints(order))
                        await _forward_order(event, order.id)
                    elif topic in ("products/create", "products/update"):
                        product = Product.model_validate_json(event.value)
                        pairs = [
                            SkuPair(sku=v.sku, inventory_item_id=v.inventory_item_id)
                            for v in product.variants
                            if v.sku and v.inventory_item_id
                        ]
                        for pair in pairs:
                            rt.skus.add_shopify(pair.sku, pair.inventory_item_id)
                        # the other workers learn it from the feed
                        await sku_feed.publish(ctx, pairs)
                except (ValidationError, ValueError, KeyError) as exc:
                    await dead_letter(
                        ctx,
                        origin=event.message.topic,
                        reason=f"{topic}: {exc}",
                        value=event.value,
                        key=event.key,
                    )
            await ctx.send_all(topics.STOCK_EVENTS, stock)

    async def _forward_order(event: faust.EventT, order_id: int) -> None:
        headers: Any = event.message.headers or []
        pairs = list(headers.items() if isinstance(headers, dict) else headers)
        await app.producer.send(
            order_webhooks, str(order_id).encode(), event.value, None, None, pairs
        )

    def _order_hints(order: Order) -> list[tuple[bytes | None, bytes]]:
        """Tell every position of the order's SKUs at once, here and not in the orders agent
        (which waits on a routing query per order): a shortfall Shopify shows now is this
        sale, not an edit to heal."""
        now = time.time()
        return [
            (
                line.sku.encode(),
                OrderPlaced(sku=line.sku, order_id=order.id, units=line.quantity, at=now)
                .model_dump_json()
                .encode(),
            )
            for line in order.line_items
            if line.sku
        ]

    def _inventory_level(body: dict[str, object]) -> list[tuple[bytes | None, bytes]]:
        level = InventoryLevel.model_validate(body)
        if level.available is None:
            return []  # the item stopped being tracked; nothing to compare
        if rt.locations.by_shopify(level.location_id) is None:
            metrics.events_ignored.labels(reason="unmapped").inc()
            return []
        updated = level.updated_at.timestamp() if level.updated_at else time.time()
        if rt.echoes.absorb(level.inventory_item_id, level.location_id, level.available, updated):
            # our own write coming back: its write result already told the position
            metrics.events_ignored.labels(reason="echo").inc()
            return []
        sku = rt.skus.sku_by_item.get(level.inventory_item_id)
        if sku is None:
            metrics.events_ignored.labels(reason="unknown").inc()
            log.info("inventory item %s has no known SKU", level.inventory_item_id)
            return []
        observed = ShopifyObserved(
            sku=sku,
            location_id=level.location_id,
            inventory_item_id=level.inventory_item_id,
            available=level.available,
            updated_at=updated,
            source=ObservedSource.WEBHOOK,
        )
        return [(sku.encode(), observed.model_dump_json().encode())]
