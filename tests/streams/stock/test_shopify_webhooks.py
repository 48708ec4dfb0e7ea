"""What a raw Shopify webhook becomes, from Shopify's own payloads, without a broker."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import pytest

from tillsync.schemas.events import ObservedSource, OrderPlaced, ShopifyObserved
from tillsync.schemas.locations import Location, LocationMap
from tillsync.streams import topics
from tillsync.streams.context import Context
from tillsync.streams.echoes import Echoes
from tillsync.streams.skus import SkuIndex
from tillsync.streams.stock.shopify_webhooks import (
    ForwardedOrder,
    Ignored,
    IgnoreReason,
    Malformed,
    RawWebhook,
    ShopifyWebhooks,
    WebhookReader,
    WebhookRecords,
)
from tillsync.streams.stock.sku_feed import SkuPair

FIXTURES = Path(__file__).parents[2] / "connectors" / "shopify" / "fixtures"
ITEM = 808950810  # inventory_level.json
LOCATION = 905684977
ORDER = 450789469  # order.json
NOW = 1_700_000_000.0


def payload(name: str) -> dict[str, Any]:
    """A fixture's resource as a webhook body carries it (not wrapped in its name)."""
    [(_, value)] = json.loads((FIXTURES / f"{name}.json").read_text()).items()
    return cast(dict[str, Any], value)


def webhook(topic: str, body: dict[str, Any] | bytes, webhook_id: str = "w-1") -> RawWebhook:
    value = body if isinstance(body, bytes) else json.dumps(body).encode()
    return RawWebhook(
        body=value,
        headers=[
            ("X-Shopify-Topic", topic.encode()),
            ("X-Shopify-Webhook-Id", webhook_id.encode()),
            (topics.HEADER_RECEIVED_AT, b"1700000000.0"),
        ],
    )


def reader(location: int = LOCATION) -> WebhookReader:
    locations = LocationMap(
        locations=[
            Location(
                name="Store", shopify_location_id=location, sitoo_store_id=1, sitoo_warehouse_id=101
            )
        ]
    )
    skus = SkuIndex()
    skus.add_shopify("IPOD2008GREEN", ITEM)
    return WebhookReader(locations, skus, Echoes())


def level_webhook(webhook_id: str = "w-1", **changes: Any) -> RawWebhook:
    return webhook("inventory_levels/update", {**payload("inventory_level"), **changes}, webhook_id)


# -- inventory levels ----------------------------------------------------------------------------


def test_an_inventory_level_update_becomes_one_stock_event() -> None:
    verdict = reader().read(level_webhook(), NOW)
    assert verdict == WebhookRecords(
        stock=[
            ShopifyObserved(
                sku="IPOD2008GREEN",
                location_id=LOCATION,
                inventory_item_id=ITEM,
                available=6,
                updated_at=datetime.fromisoformat("2018-05-07T15:51:26-04:00").timestamp(),
                source=ObservedSource.WEBHOOK,
            )
        ]
    )


def test_a_duplicate_webhook_id_is_dropped_and_another_id_is_not() -> None:
    r = reader()
    assert isinstance(r.read(level_webhook("w-1"), NOW), WebhookRecords)
    assert r.read(level_webhook("w-1"), NOW) == Ignored(IgnoreReason.DUPLICATE)
    again = r.read(level_webhook("w-2"), NOW)
    assert isinstance(again, WebhookRecords) and len(again.stock) == 1


def test_a_webhook_without_an_id_is_never_taken_for_a_duplicate() -> None:
    r = reader()
    for _ in range(2):
        assert isinstance(r.read(level_webhook(""), NOW), WebhookRecords)


def test_a_level_at_an_unmapped_location_is_ignored() -> None:
    assert reader(location=1).read(level_webhook(), NOW) == Ignored(IgnoreReason.UNMAPPED)


def test_a_level_of_an_unknown_inventory_item_is_ignored() -> None:
    verdict = reader().read(level_webhook(inventory_item_id=1), NOW)
    assert verdict == Ignored(IgnoreReason.UNKNOWN)


def test_an_untracked_level_changes_nothing() -> None:
    assert reader().read(level_webhook(available=None), NOW) == WebhookRecords()


def test_the_echo_of_our_own_write_is_absorbed_once() -> None:
    r = reader()
    updated = datetime.fromisoformat("2018-05-07T15:51:26-04:00").timestamp()
    r.echoes.expect(ITEM, LOCATION, 6, updated)
    assert r.read(level_webhook("w-1"), NOW) == Ignored(IgnoreReason.ECHO)
    assert isinstance(r.read(level_webhook("w-2"), NOW), WebhookRecords)


def test_a_level_without_updated_at_is_stamped_now() -> None:
    verdict = reader().read(level_webhook(updated_at=None), NOW)
    assert isinstance(verdict, WebhookRecords)
    assert [ev.updated_at for ev in verdict.stock] == [NOW]


@pytest.mark.parametrize("body", [b"{not json", b"[]", json.dumps({"location_id": 1}).encode()])
def test_a_malformed_level_is_for_the_dead_letters(body: bytes) -> None:
    verdict = reader().read(webhook("inventory_levels/update", body), NOW)
    assert isinstance(verdict, Malformed)
    assert verdict.reason.startswith("inventory_levels/update: ")


# -- orders --------------------------------------------------------------------------------------


def test_an_order_webhook_is_forwarded_keyed_by_order_unchanged() -> None:
    raw = webhook("orders/updated", payload("order"))
    verdict = reader().read(raw, NOW)
    assert verdict == WebhookRecords(
        order=ForwardedOrder(key=str(ORDER).encode(), value=raw.body, headers=raw.headers)
    )


def test_a_new_order_is_forwarded_and_hints_every_position_of_its_skus() -> None:
    raw = webhook("orders/create", payload("order"))
    verdict = reader().read(raw, NOW)
    assert isinstance(verdict, WebhookRecords)
    assert verdict.order is not None and verdict.order.key == b"450789469"
    assert verdict.stock == [
        OrderPlaced(sku=sku, order_id=ORDER, units=1, at=NOW)
        for sku in ("IPOD2008GREEN", "IPOD2008RED", "IPOD2008BLACK")
    ]


def test_an_order_body_without_an_id_is_for_the_dead_letters() -> None:
    body = {k: v for k, v in payload("order").items() if k != "id"}
    verdict = reader().read(webhook("orders/create", body), NOW)
    assert isinstance(verdict, Malformed) and verdict.reason.startswith("orders/create: ")


# -- products and the rest -------------------------------------------------------------------------


def test_a_product_webhook_gives_its_variants_skus_and_inventory_items() -> None:
    product = payload("product")
    product["variants"][0]["inventory_item_id"] = 11
    product["variants"][1]["inventory_item_id"] = 12
    verdict = reader().read(webhook("products/update", product), NOW)
    # variants without an inventory item (the other two here) say nothing of the index
    assert verdict == WebhookRecords(
        skus=[
            SkuPair(sku="IPOD2008PINK", inventory_item_id=11),
            SkuPair(sku="IPOD2008RED", inventory_item_id=12),
        ]
    )


def test_a_topic_the_stock_flow_has_no_use_for_becomes_nothing() -> None:
    assert reader().read(webhook("customers/create", {"id": 1}), NOW) == WebhookRecords()


# -- carrying a verdict out, with the producer faked ---------------------------------------------


@dataclass
class FakeProducer:
    sent: list[tuple[Any, ...]] = field(default_factory=list)

    async def send(self, *args: Any) -> None:
        self.sent.append(args)


@dataclass
class FakeApp:
    producer: FakeProducer = field(default_factory=FakeProducer)


@dataclass
class FakeSettings:
    app_id: str = "t1"


@dataclass
class FakeRuntime:
    skus: SkuIndex = field(default_factory=SkuIndex)
    locations: LocationMap = field(default_factory=lambda: LocationMap(locations=[]))
    echoes: Echoes = field(default_factory=Echoes)


@dataclass
class FakeContext:
    runtime: FakeRuntime = field(default_factory=FakeRuntime)
    app: FakeApp = field(default_factory=FakeApp)
    settings: FakeSettings = field(default_factory=FakeSettings)
    sent: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)

    async def send_all(self, spec: topics.TopicSpec, records: Any) -> None:
        self.sent.extend((spec.suffix, key, value) for key, value in records)


async def test_an_order_goes_to_the_order_topic_keyed_by_order_with_its_headers() -> None:
    ctx = FakeContext()
    agent = ShopifyWebhooks(cast(Context, ctx))
    raw = webhook("orders/create", payload("order"))
    verdict = agent.reader.read(raw, NOW)
    assert isinstance(verdict, WebhookRecords)
    stock: list[Any] = []
    await agent._carry_out(verdict, stock)
    [(name, key, value, partition, timestamp, headers)] = ctx.app.producer.sent
    assert name == topics.SHOPIFY_ORDER_WEBHOOKS.name("t1")
    assert (key, value, partition, timestamp, headers) == (
        b"450789469",
        raw.body,
        None,
        None,
        raw.headers,
    )
    assert stock == verdict.stock


async def test_a_products_skus_go_to_this_workers_index_and_the_feed() -> None:
    ctx = FakeContext()
    agent = ShopifyWebhooks(cast(Context, ctx))
    pairs = [SkuPair(sku="NEW-1", inventory_item_id=77)]
    await agent._carry_out(WebhookRecords(skus=pairs), [])
    assert ctx.runtime.skus.sku_by_item == {77: "NEW-1"}
    assert [(s, k) for s, k, _ in ctx.sent] == [(topics.SKU_INDEX.suffix, b"NEW-1")]


async def test_a_product_renaming_a_known_items_sku_is_an_exception_for_ecommerce() -> None:
    ctx = FakeContext()
    ctx.runtime.skus.add_shopify("OLD-1", 77)
    agent = ShopifyWebhooks(cast(Context, ctx))
    await agent._carry_out(WebhookRecords(skus=[SkuPair(sku="NEW-1", inventory_item_id=77)]), [])
    assert ctx.runtime.skus.sku_by_item == {77: "NEW-1"}
    sent = [(s, k) for s, k, _ in ctx.sent]
    assert (topics.EXCEPTIONS.suffix, b"OLD-1") in sent
    assert (topics.SKU_INDEX.suffix, b"NEW-1") in sent
