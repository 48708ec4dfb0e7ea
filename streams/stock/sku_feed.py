"""The SKU index shared by every worker of a deployment.

Each worker builds its own index from both platforms at start (``startup.build_index``) and
keeps it in memory, because every stock event looks a SKU up. A product webhook reaches one
worker only: the one that owns its partition of the raw topic. So what that worker learns is
published to a compacted one-partition topic, which every worker reads in full with a consumer
of its own, outside the consumer group, from the offset it noted just before its snapshot:
nothing learnt after the snapshot is missed, and nothing before it is needed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import BaseModel, ConfigDict, ValidationError

from tillsync.schemas.events import ExceptionRecord, Owner
from tillsync.streams import metrics, topics
from tillsync.streams.context import Context
from tillsync.streams.deadletter import error_reason
from tillsync.streams.skus import DuplicateSku, SkuFinding, SkuIndex

log = logging.getLogger("tillsync.skus")

POLL_MS = 500
RETRY_SECONDS = 1.0


class SkuPair(BaseModel):
    """One variant's SKU and its Shopify inventory item."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: str
    inventory_item_id: int


def _partition(ctx: Context) -> TopicPartition:
    return TopicPartition(topics.SKU_INDEX.name(ctx.settings.app_id), 0)


async def end_offset(ctx: Context) -> int:
    """Where the feed ends now: what is published later is news to a snapshot taken after."""
    consumer = AIOKafkaConsumer(bootstrap_servers=ctx.settings.kafka_bootstrap)
    await consumer.start()
    try:
        tp = _partition(ctx)
        return int((await consumer.end_offsets([tp]))[tp])
    finally:
        await consumer.stop()


async def publish(ctx: Context, pairs: Iterable[SkuPair]) -> None:
    await ctx.send_all(
        topics.SKU_INDEX, ((p.sku.encode(), p.model_dump_json().encode()) for p in pairs)
    )


def sku_exception(finding: SkuFinding, at: float) -> ExceptionRecord:
    """What a person is told of a SKU the index will not map as it did: the catalogue is the
    e-commerce team's to fix. Catalogue identifiers only, no customer's data."""
    if isinstance(finding, DuplicateSku):
        items = ", ".join(str(i) for i in finding.items)
        return ExceptionRecord(
            type=metrics.ExceptionType.DUPLICATE_SKU,
            owner=Owner.ECOMMERCE,
            key=finding.sku,
            message=(
                f"SKU {finding.sku} is on {len(finding.items)} Shopify inventory items ({items}): "
                "its stock is not synced until one of them keeps it"
            ),
            at=at,
            details={"items": items},
        )
    return ExceptionRecord(
        type=metrics.ExceptionType.RENAMED_SKU,
        owner=Owner.ECOMMERCE,
        key=finding.old,
        message=(
            f"Shopify inventory item {finding.item} changed its SKU from {finding.old} to "
            f"{finding.new or '(none)'}: stock of {finding.old} is no longer written to it"
        ),
        at=at,
        details={"item": finding.item, "old": finding.old, "new": finding.new},
    )


async def raise_findings(ctx: Context, findings: Iterable[SkuFinding], at: float) -> None:
    """Log each finding and hand it to its owner on the exceptions topic."""
    records = [sku_exception(finding, at) for finding in findings]
    for record in records:
        log.warning("%s: %s", record.type, record.message)
        metrics.exceptions_raised.labels(type=record.type, owner=record.owner.value).inc()
    await ctx.send_all(
        topics.EXCEPTIONS, [(r.key.encode(), r.model_dump_json().encode()) for r in records]
    )


async def learn(ctx: Context, pairs: Iterable[SkuPair], at: float) -> None:
    """What a product webhook says of its variants: into this worker's index, findings to
    their owner, and the pairs to the feed for the other workers (which raise nothing: the
    worker that heard the webhook did)."""
    rt = ctx.runtime
    assert rt is not None
    pairs = list(pairs)
    findings = [f for p in pairs for f in rt.skus.add_shopify(p.sku, p.inventory_item_id)]
    await raise_findings(ctx, findings, at)
    await publish(ctx, pairs)


class SkuFeedFollower:
    """One worker's reader of the feed: where it has read to, and the index it keeps."""

    def __init__(
        self, bootstrap: str, partition: TopicPartition, skus: SkuIndex, start: int
    ) -> None:
        self.bootstrap = bootstrap
        self.partition = partition
        self.skus = skus
        # the next offset to read: a lost connection is read again from here
        self.position = start

    def take(self, offset: int, value: bytes | None) -> SkuPair | None:
        """Apply the record at `offset` to the index; the pair it held, if it was one."""
        self.position = offset + 1
        try:
            pair = SkuPair.model_validate_json(value or b"")
        except ValidationError as exc:
            # only our own agent writes here: a bad record is a bug, not input
            log.warning("skipping SKU index record %d: %s", offset, error_reason(exc))
            return None
        self.skus.add_shopify(pair.sku, pair.inventory_item_id)
        return pair

    async def run(self) -> None:
        """Read for good; a lost connection is retried from the next offset, so nothing is
        skipped."""
        tp = self.partition
        while True:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
            try:
                await consumer.start()
                consumer.assign([tp])
                consumer.seek(tp, self.position)
                while True:
                    batch = await consumer.getmany(tp, timeout_ms=POLL_MS)
                    for record in batch.get(tp, []):
                        self.take(record.offset, record.value)
            except KafkaError as exc:
                log.warning(
                    "SKU index feed interrupted at offset %d (%s); reading again",
                    self.position,
                    exc,
                )
                await asyncio.sleep(RETRY_SECONDS)
            finally:
                await consumer.stop()


async def follow(ctx: Context, start: int) -> None:
    """Apply every pair published from ``start`` on to this worker's index, for good."""
    rt = ctx.runtime
    assert rt is not None
    follower = SkuFeedFollower(ctx.settings.kafka_bootstrap, _partition(ctx), rt.skus, start)
    await follower.run()
