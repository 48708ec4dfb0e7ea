"""The audit of what came in: every raw record counted per source, in a changelogged table.

Each entry is owned by one (source, partition) because a Faust table entry lives in the
partition of the record that wrote it; totals are summed at read time. The entry also keeps the
offset of the last record it counted, so a record seen again after a crash (its offset was not
committed yet) is not counted twice: the count and its offset change in one table write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import faust
from faust.types import TableT
from faust.web import Request, Response, View

from tillsync.streams import metrics, topics
from tillsync.streams.context import Context
from tillsync.streams.partitioned import in_partition_of

BATCH_MAX = 1_000
BATCH_SECONDS = 0.05

RAW_SOURCES = {
    topics.RAW_SHOPIFY_WEBHOOKS: "shopify.webhooks",
    topics.RAW_SITOO_EVENTS: "sitoo.events",
}


@dataclass(frozen=True)
class RawCount:
    """One table entry: records counted for a (source, partition), and the last offset counted.
    Stored as the JSON object ``{"n": .., "offset": ..}``, which the changelog already holds."""

    n: int = 0
    offset: int = -1

    @classmethod
    def of(cls, stored: Mapping[str, int]) -> RawCount:
        return cls(n=int(stored.get("n", 0)), offset=int(stored.get("offset", -1)))

    def stored(self) -> dict[str, int]:
        return {"n": self.n, "offset": self.offset}

    def counting(self, offsets: Iterable[int], newest: int) -> RawCount | None:
        """The entry once a batch's `offsets` of its partition are counted, up to `newest`;
        None if every one was counted already (a replay after a crash)."""
        fresh = sum(1 for offset in offsets if offset > self.offset)
        return RawCount(n=self.n + fresh, offset=newest) if fresh else None


@dataclass
class PartitionBatch:
    """A batch's records of one (source, partition)."""

    # the last of them: the table entry is read and written in its partition
    newest: faust.EventT
    offsets: list[int] = field(default_factory=list)


class RawAudit:
    """Counts every record of the raw topics into the table, per source and partition."""

    def __init__(self, counts: TableT[str, dict[str, int]], source_of: dict[str, str]) -> None:
        self.counts = counts
        # raw topic name -> the source label its counts are kept and shown under
        self.source_of = source_of

    def key_of(self, topic: str, partition: int) -> str:
        return f"{self.source_of.get(topic, topic)}:{partition}"

    def by_partition(self, events: Iterable[faust.EventT]) -> dict[str, PartitionBatch]:
        parts: dict[str, PartitionBatch] = {}
        for event in events:
            msg = event.message
            key = self.key_of(msg.topic, msg.partition)
            part = parts.setdefault(key, PartitionBatch(newest=event))
            part.newest = event
            part.offsets.append(msg.offset)
        return parts

    async def take(self, stream: faust.StreamT[bytes]) -> None:
        """Agent: every raw record, counted in batches."""
        batches = cast(faust.Stream, stream).take_events(BATCH_MAX, within=BATCH_SECONDS)
        async for events in batches:
            for event in events:
                metrics.events_in.labels(topic=event.message.topic).inc()
            # one table write per (source, partition) per batch
            for key, part in self.by_partition(events).items():
                with in_partition_of(part.newest):
                    counted = RawCount.of(self.counts[key]).counting(
                        part.offsets, part.newest.message.offset
                    )
                    if counted is not None:
                        self.counts[key] = counted.stored()

    def totals(self) -> dict[str, int]:
        return summed(self.counts.items())


def register(ctx: Context) -> None:
    app = ctx.app
    counts = app.Table(
        "raw-counts",
        default=dict,
        schema=faust.Schema(key_type=str, key_serializer="json", value_serializer="json"),
        help="raw records taken in, per source and partition, with the last offset counted",
    )
    app_id = ctx.settings.app_id
    audit = RawAudit(counts, {spec.name(app_id): label for spec, label in RAW_SOURCES.items()})
    raw = app.topic(
        *audit.source_of,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    app.agent(raw, name="audit-raw")(audit.take)

    @app.page("/state/raw-counts")
    class RawCounts(View):
        async def get(self, request: Request) -> Response:
            return self.json(audit.totals())


def summed(items: Any) -> dict[str, int]:
    totals: dict[str, int] = {}
    for key, value in items:
        source = str(key).rpartition(":")[0]
        totals[source] = totals.get(source, 0) + int(value.get("n", 0))
    return totals
