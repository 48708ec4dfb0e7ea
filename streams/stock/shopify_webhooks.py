"""Shopify's inventory, product and order webhooks, turned into stock events, SKU index
updates, order hints, and records for the orders agent.

``WebhookReader.read`` decides what one raw webhook becomes, as a typed verdict; the agent of
``ShopifyWebhooks`` only carries verdicts out to Kafka and the SKU index.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, cast

import faust
from pydantic import ValidationError

from tillsync.schemas.events import ObservedSource, OrderPlaced, ShopifyObserved
from tillsync.schemas.locations import LocationMap
from tillsync.schemas.shopify import InventoryLevel, Order, Product
from tillsync.streams import metrics, topics
from tillsync.streams.context import Context
from tillsync.streams.deadletter import dead_letter, error_reason
from tillsync.streams.echoes import Echoes
from tillsync.streams.lru import RecentIds
from tillsync.streams.runtime import Runtime
from tillsync.streams.skus import SkuIndex
from tillsync.streams.stock import sku_feed
from tillsync.streams.stock.order_topics import forwarded, order_key_of
from tillsync.streams.stock.sku_feed import SkuPair

log = logging.getLogger("tillsync.shopify")


BATCH_MAX = 500
BATCH_SECONDS = 0.02

TOPIC_HEADER = "X-Shopify-Topic"
WEBHOOK_ID_HEADER = "X-Shopify-Webhook-Id"

# Kafka record headers as Faust hands them over and the producer takes them
KafkaHeaders = list[tuple[str, bytes]]


def headers_of(event: faust.EventT) -> KafkaHeaders:
    # Faust gives a dict or a list of pairs depending on how the record was produced
    headers: Any = event.message.headers or []
    return list(headers.items() if isinstance(headers, dict) else headers)


def header_in(headers: Iterable[tuple[str, bytes]], name: str) -> str:
    """A header's value (names compare case-insensitively, as HTTP's do); "" if absent."""
    for key, value in headers:
        if key.lower() == name.lower():
            return value.decode() if isinstance(value, bytes) else str(value)
    return ""


def header(event: faust.EventT, name: str) -> str:
    return header_in(headers_of(event), name)


@dataclass(frozen=True)
class RawWebhook:
    """A record of the raw webhooks topic: the body as Shopify sent it, and its headers."""

    body: bytes
    headers: KafkaHeaders

    @classmethod
    def of(cls, event: faust.EventT) -> RawWebhook:
        return cls(body=event.value, headers=headers_of(event))

    @property
    def topic(self) -> str:
        return header_in(self.headers, TOPIC_HEADER)

    @property
    def webhook_id(self) -> str:
        return header_in(self.headers, WEBHOOK_ID_HEADER)


class IgnoreReason(StrEnum):
    """Why a webhook changes nothing, as the `events_ignored` metric labels it."""

    DUPLICATE = "duplicate"
    UNMAPPED = "unmapped"  # a location no store is mapped to
    ECHO = "echo"  # our own write coming back: its write result already told the position
    UNKNOWN = "unknown"  # an inventory item with no known SKU


@dataclass(frozen=True)
class Ignored:
    reason: IgnoreReason


@dataclass(frozen=True)
class Malformed:
    """A body its topic's model refuses: dead-lettered with the reason."""

    reason: str


@dataclass(frozen=True)
class ForwardedOrder:
    """A webhook for the orders topic (an order's, a fulfilment order's, a fulfilment's, a
    refund's), unchanged, headers and all."""

    # the order id (or a fulfilment order's, ``OrderKey``): one order's webhooks reach the
    # orders agent in order
    key: bytes
    value: bytes
    headers: KafkaHeaders


@dataclass(frozen=True)
class WebhookRecords:
    """What a webhook becomes; empty for a topic or level the stock flow has no use for."""

    stock: list[ShopifyObserved | OrderPlaced] = field(default_factory=list)
    order: ForwardedOrder | None = None
    # a product's variants: for this worker's SKU index and, through the feed, the others'
    skus: list[SkuPair] = field(default_factory=list)


Verdict = WebhookRecords | Ignored | Malformed


class WebhookReader:
    """What each raw webhook becomes, given this worker's location map, SKU index and the
    echoes of its own writes (an echo is absorbed by the read that recognises it)."""

    def __init__(self, locations: LocationMap, skus: SkuIndex, echoes: Echoes) -> None:
        self.locations = locations
        self.skus = skus
        self.echoes = echoes
        self.recent = RecentIds()

    def read(self, webhook: RawWebhook, now: float) -> Verdict:
        topic = webhook.topic
        if self.recent.seen(webhook.webhook_id):
            return Ignored(IgnoreReason.DUPLICATE)
        try:
            if topic == "inventory_levels/update":
                return self.inventory_level(json.loads(webhook.body), now)
            if topic.startswith("orders/"):
                return self.order(webhook, now)
            if forwarded(topic):
                return self.about_order(webhook)
            if topic in ("products/create", "products/update"):
                return self.product(webhook.body)
        except (ValidationError, ValueError, KeyError) as exc:
            return Malformed(f"{topic}: {error_reason(exc)}")
        return WebhookRecords()

    def inventory_level(self, body: dict[str, object], now: float) -> WebhookRecords | Ignored:
        level = InventoryLevel.model_validate(body)
        if level.available is None:
            return WebhookRecords()  # the item stopped being tracked; nothing to compare
        if self.locations.by_shopify(level.location_id) is None:
            return Ignored(IgnoreReason.UNMAPPED)
        updated = level.updated_at.timestamp() if level.updated_at else now
        if self.echoes.absorb(level.inventory_item_id, level.location_id, level.available, updated):
            return Ignored(IgnoreReason.ECHO)
        sku = self.skus.sku_by_item.get(level.inventory_item_id)
        if sku is None:
            log.info("inventory item %s has no known SKU", level.inventory_item_id)
            return Ignored(IgnoreReason.UNKNOWN)
        observed = ShopifyObserved(
            sku=sku,
            location_id=level.location_id,
            inventory_item_id=level.inventory_item_id,
            available=level.available,
            updated_at=updated,
            source=ObservedSource.WEBHOOK,
        )
        return WebhookRecords(stock=[observed])

    def order(self, webhook: RawWebhook, now: float) -> WebhookRecords:
        order = Order.model_validate_json(webhook.body)
        forward = ForwardedOrder(
            key=str(order.id).encode(), value=webhook.body, headers=webhook.headers
        )
        hints = order_hints(order, now) if webhook.topic == "orders/create" else []
        return WebhookRecords(stock=list(hints), order=forward)

    def about_order(self, webhook: RawWebhook) -> WebhookRecords | Malformed:
        """A fulfilment-order, fulfilment or refund webhook: its order is read again."""
        key = order_key_of(webhook.topic, webhook.body)
        if key is None:
            return Malformed(f"{webhook.topic}: names no order or fulfilment order")
        return WebhookRecords(
            order=ForwardedOrder(key=key.encode(), value=webhook.body, headers=webhook.headers)
        )

    def product(self, body: bytes) -> WebhookRecords:
        product = Product.model_validate_json(body)
        return WebhookRecords(
            skus=[
                SkuPair(sku=v.sku, inventory_item_id=v.inventory_item_id)
                for v in product.variants
                if v.sku and v.inventory_item_id
            ]
        )


def order_hints(order: Order, now: float) -> list[OrderPlaced]:
    """Tell every position of the order's SKUs at once, here and not in the orders agent
    (which waits on a routing query per order): a shortfall Shopify shows now is this
    sale, not an edit to heal."""
    return [
        OrderPlaced(sku=line.sku, order_id=order.id, units=line.quantity, at=now)
        for line in order.line_items
        if line.sku
    ]


class ShopifyWebhooks:
    """The one agent acting on raw webhooks (the audit only counts them): duplicates are
    dropped here, inventory levels and order hints become stock events, and order webhooks
    move on to their own topic, keyed by order, for the orders agent (which waits on
    Shopify per order and must not hold up inventory)."""

    def __init__(self, ctx: Context) -> None:
        assert ctx.runtime is not None
        self.ctx = ctx
        self.rt: Runtime = ctx.runtime
        self.order_webhooks = topics.SHOPIFY_ORDER_WEBHOOKS.name(ctx.settings.app_id)
        self.reader = self.new_reader()

    def new_reader(self) -> WebhookReader:
        return WebhookReader(self.rt.locations, self.rt.skus, self.rt.echoes)

    async def take(self, stream: faust.StreamT[bytes]) -> None:
        """Agent: raw webhooks in, in batches."""
        fresh = True
        batches = cast(faust.Stream, stream).take_events(BATCH_MAX, within=BATCH_SECONDS)
        async for events in batches:
            # the stock flow's start is awaited with the first batch in hand, not before the
            # stream is read: Faust skips, and acknowledges, a record an agent takes only after
            # a rebalance of the worker's start (``SinkRunner.run`` says more)
            await self.rt.ready.wait()
            if fresh:
                # each run of the agent starts with no memory of webhook ids: records it saw
                # before a restart may not have been committed and come again, and must not be
                # dropped then
                self.reader, fresh = self.new_reader(), False
            stock: list[ShopifyObserved | OrderPlaced] = []
            for event in events:
                webhook = RawWebhook.of(event)
                verdict = self.reader.read(webhook, time.time())
                if isinstance(verdict, Ignored):
                    metrics.events_ignored.labels(reason=verdict.reason).inc()
                    continue
                reason = verdict.reason if isinstance(verdict, Malformed) else None
                if isinstance(verdict, WebhookRecords):
                    try:
                        await self._carry_out(verdict, stock)
                    except (ValidationError, ValueError, KeyError) as exc:
                        reason = f"{webhook.topic}: {error_reason(exc)}"
                if reason is not None:
                    await dead_letter(
                        self.ctx,
                        origin=event.message.topic,
                        reason=reason,
                        value=event.value,
                        headers=webhook.headers,
                        key=event.key,
                    )
            await self.ctx.send_all(
                topics.STOCK_EVENTS,
                ((ev.sku.encode(), ev.model_dump_json().encode()) for ev in stock),
            )

    async def _carry_out(
        self, records: WebhookRecords, stock: list[ShopifyObserved | OrderPlaced]
    ) -> None:
        # one webhook at a time, in order: a product's SKUs are known to the next level read
        stock.extend(records.stock)
        if records.order is not None:
            fwd = records.order
            await self.ctx.app.producer.send(
                self.order_webhooks, fwd.key, fwd.value, None, None, fwd.headers
            )
        if records.skus:
            # into this worker's index, a rename or a duplicate to its owner, and the pairs to
            # the feed the other workers learn from
            await sku_feed.learn(self.ctx, records.skus, time.time())


def register(ctx: Context) -> None:
    webhooks = ShopifyWebhooks(ctx)
    ctx.app.agent(ctx.topic(topics.RAW_SHOPIFY_WEBHOOKS), name="shopify-webhooks")(webhooks.take)
