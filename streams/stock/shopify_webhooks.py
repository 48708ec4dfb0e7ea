"""Shopify's inventory, product and new-order webhooks, turned into stock events, SKU index
updates and order hints."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import faust
from pydantic import ValidationError

from schemas.events import ObservedSource, OrderPlaced, ShopifyObserved
from schemas.shopify import InventoryLevel, Order, Product
from streams import metrics, topics
from streams.app import Context
from streams.deadletter import dead_letter
from streams.lru import RecentIds

log = logging.getLogger("tillsync.shopify")


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
    stock_topic = ctx.topic(topics.STOCK_EVENTS)

    @app.agent(ctx.topic(topics.RAW_SHOPIFY_WEBHOOKS), name="shopify-webhooks")
    async def shopify_webhooks(stream: faust.StreamT[bytes]) -> None:
        await rt.ready.wait()
        recent = RecentIds()
        async for event in stream.events():
            topic = header(event, "X-Shopify-Topic")
            if recent.seen(header(event, "X-Shopify-Webhook-Id")):
                metrics.events_ignored.labels(reason="duplicate").inc()
                continue
            try:
                if topic == "inventory_levels/update":
                    await _inventory_level(json.loads(event.value))
                elif topic == "orders/create":
                    await _order_hints(Order.model_validate_json(event.value))
                elif topic in ("products/create", "products/update"):
                    product = Product.model_validate_json(event.value)
                    for variant in product.variants:
                        if variant.sku and variant.inventory_item_id:
                            rt.skus.add_shopify(variant.sku, variant.inventory_item_id)
            except (ValidationError, ValueError, KeyError) as exc:
                await dead_letter(
                    ctx,
                    origin=event.message.topic,
                    reason=f"{topic}: {exc}",
                    value=event.value,
                    key=event.key,
                )

    async def _order_hints(order: Order) -> None:
        """Tell every position of the order's SKUs at once, here and not in the orders agent
        (which waits on a routing query per order): a shortfall Shopify shows now is this
        sale, not an edit to heal."""
        now = time.time()
        for line in order.line_items:
            if line.sku:
                hint = OrderPlaced(sku=line.sku, order_id=order.id, units=line.quantity, at=now)
                await stock_topic.send(key=line.sku.encode(), value=hint.model_dump_json().encode())

    async def _inventory_level(body: dict[str, object]) -> None:
        level = InventoryLevel.model_validate(body)
        if level.available is None:
            return  # the item stopped being tracked; nothing to compare
        if rt.locations.by_shopify(level.location_id) is None:
            metrics.events_ignored.labels(reason="unmapped").inc()
            return
        sku = rt.skus.sku_by_item.get(level.inventory_item_id)
        if sku is None:
            metrics.events_ignored.labels(reason="unknown").inc()
            log.info("inventory item %s has no known SKU", level.inventory_item_id)
            return
        updated = level.updated_at.timestamp() if level.updated_at else time.time()
        observed = ShopifyObserved(
            sku=sku,
            location_id=level.location_id,
            inventory_item_id=level.inventory_item_id,
            available=level.available,
            updated_at=updated,
            source=ObservedSource.WEBHOOK,
        )
        await stock_topic.send(key=sku.encode(), value=observed.model_dump_json().encode())
