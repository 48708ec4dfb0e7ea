"""What the SKU index learns from Shopify, and the exceptions it raises when a SKU is claimed
twice or renamed: for a person, never a silent merge."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from tillsync.schemas.events import ExceptionRecord, Owner
from tillsync.streams import topics
from tillsync.streams.context import Context
from tillsync.streams.skus import DuplicateSku, RenamedSku, SkuIndex
from tillsync.streams.stock import sku_feed
from tillsync.streams.stock.sku_feed import SkuFeedFollower, SkuPair


@dataclass
class FakeRuntime:
    skus: SkuIndex = field(default_factory=SkuIndex)


@dataclass
class FakeContext:
    runtime: FakeRuntime = field(default_factory=FakeRuntime)
    sent: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)

    async def send_all(self, spec: topics.TopicSpec, records: Any) -> None:
        self.sent.extend((spec.suffix, key, value) for key, value in records)

    def raised(self) -> list[ExceptionRecord]:
        return [
            ExceptionRecord.model_validate_json(v)
            for s, _, v in self.sent
            if s == topics.EXCEPTIONS.suffix
        ]

    def fed(self) -> list[tuple[str, bytes | None]]:
        return [(s, k) for s, k, _ in self.sent if s == topics.SKU_INDEX.suffix]


def test_a_duplicate_is_an_exception_for_e_commerce_naming_the_items() -> None:
    record = sku_feed.sku_exception(DuplicateSku(sku="A", items=(7, 8)), at=5.0)
    assert (record.type, record.owner, record.key) == ("duplicate_sku", Owner.ECOMMERCE, "A")
    assert "7, 8" in record.message and "not synced" in record.message


def test_a_rename_is_an_exception_keyed_by_the_old_sku() -> None:
    record = sku_feed.sku_exception(RenamedSku(item=7, old="OLD", new="NEW"), at=5.0)
    assert (record.type, record.key) == ("renamed_sku", "OLD")
    assert record.details == {"item": 7, "old": "OLD", "new": "NEW"}


async def test_learning_a_duplicate_raises_it_logs_it_and_still_feeds_the_other_workers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ctx = FakeContext()
    ctx.runtime.skus.add_shopify("A", 7)
    pairs = [SkuPair(sku="A", inventory_item_id=8), SkuPair(sku="B", inventory_item_id=9)]
    with caplog.at_level(logging.WARNING, logger="tillsync.skus"):
        await sku_feed.learn(cast(Context, ctx), pairs, at=5.0)
    [record] = ctx.raised()
    assert record.type == "duplicate_sku" and record.key == "A"
    assert [r.getMessage() for r in caplog.records] == [f"duplicate_sku: {record.message}"]
    feed = topics.SKU_INDEX.suffix
    assert ctx.fed() == [(feed, b"A"), (feed, b"B")]
    assert ctx.runtime.skus.item_by_sku == {"B": 9}


async def test_learning_what_the_index_knows_raises_nothing() -> None:
    ctx = FakeContext()
    ctx.runtime.skus.add_shopify("A", 7)
    await sku_feed.learn(cast(Context, ctx), [SkuPair(sku="A", inventory_item_id=7)], at=5.0)
    assert ctx.raised() == []


def test_the_feed_applies_a_rename_on_every_worker() -> None:
    skus = SkuIndex()
    skus.add_shopify("OLD", 7)
    follower = SkuFeedFollower("unused:9092", cast(Any, None), skus, start=0)
    follower.take(0, SkuPair(sku="NEW", inventory_item_id=7).model_dump_json().encode())
    assert skus.item_by_sku == {"NEW": 7} and follower.position == 1
