"""What every agent of a worker is handed: the Faust app, the settings, the run-time of the
stock flow and the declared topics; and the bulk send that agents use instead of per-record
``Topic.send``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

import faust

from tillsync.schemas.settings import Settings
from tillsync.streams import topics
from tillsync.streams.runtime import Runtime


@dataclass
class Context:
    """What agents share: the app, its settings and its declared topics."""

    app: faust.App
    settings: Settings
    runtime: Runtime | None = None
    declared: dict[str, faust.TopicT] = field(default_factory=dict)

    def topic(self, spec: topics.TopicSpec) -> faust.TopicT:
        return self.declared[spec.suffix]

    async def send_all(
        self,
        spec: topics.TopicSpec,
        records: Iterable[tuple[bytes | None, bytes]],
        *,
        durable: bool = False,
    ) -> None:
        """Hand (key, value) records to the producer, partitioned by key.

        Cheaper than ``Topic.send`` per record (no future or callback bookkeeping of Faust's),
        and as safe: Faust flushes the producer before it commits the offsets of the events
        that caused these records. ``durable`` returns only once Kafka has them all, for a
        sender whose next step (a table write, an acknowledgement) must not be taken first."""
        name = spec.name(self.settings.app_id)
        send = self.app.producer.send
        sent = [await send(name, key, value, None, None, None) for key, value in records]
        if durable:
            await asyncio.gather(*sent)

    async def send_to_partitions(
        self, spec: topics.TopicSpec, records: Iterable[tuple[int, bytes]]
    ) -> None:
        """Hand (partition, value) records to the producer: for a record about many keys that
        all live in one partition, which its sender knows."""
        name = spec.name(self.settings.app_id)
        send = self.app.producer.send
        for partition, value in records:
            await send(name, None, value, partition, None, None)
