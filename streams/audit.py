"""The audit of what came in: every raw record counted per source, in a changelogged table.

Each entry is owned by one (source, partition) because a Faust table entry lives in the
partition of the record that wrote it; totals are summed at read time. The entry also keeps the
offset of the last record it counted, so a record seen again after a crash (its offset was not
committed yet) is not counted twice: the count and its offset change in one table write.
"""

from __future__ import annotations

from typing import Any, cast

import faust
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


def register(ctx: Context) -> None:
    app = ctx.app
    counts = app.Table(
        "raw-counts",
        default=dict,
        schema=faust.Schema(key_type=str, key_serializer="json", value_serializer="json"),
        help="raw records taken in, per source and partition, with the last offset counted",
    )
    app_id = ctx.settings.app_id
    source_of = {spec.name(app_id): label for spec, label in RAW_SOURCES.items()}
    raw = app.topic(
        *source_of,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )

    @app.agent(raw, name="audit-raw")
    async def audit_raw(stream: faust.StreamT[bytes]) -> None:
        batches = cast(faust.Stream, stream).take_events(BATCH_MAX, within=BATCH_SECONDS)
        async for events in batches:
            # one table write per (source, partition) per batch
            last: dict[str, faust.EventT] = {}
            for event in events:
                msg = event.message
                metrics.events_in.labels(topic=msg.topic).inc()
                last[f"{source_of.get(msg.topic, msg.topic)}:{msg.partition}"] = event
            for key, newest in last.items():
                with in_partition_of(newest):
                    entry = counts[key]
                    done = entry.get("offset", -1)
                    # a record replayed after a crash (offset already counted) is not counted
                    fresh = sum(
                        1
                        for e in events
                        if e.message.partition == newest.message.partition
                        and e.message.topic == newest.message.topic
                        and e.message.offset > done
                    )
                    if fresh:
                        counts[key] = {
                            "n": entry.get("n", 0) + fresh,
                            "offset": newest.message.offset,
                        }

    @app.page("/state/raw-counts")
    class RawCounts(View):
        async def get(self, request: Request) -> Response:
            return self.json(summed(counts.items()))


def summed(items: Any) -> dict[str, int]:
    totals: dict[str, int] = {}
    for key, value in items:
        source = str(key).rpartition(":")[0]
        totals[source] = totals.get(source, 0) + int(value.get("n", 0))
    return totals
