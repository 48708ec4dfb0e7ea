"""What a topic holds about one thing: the records whose key or value names it, with the
broker's timestamps, to say in a failing end-to-end test what the worker saw and did."""

from __future__ import annotations

import json
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition


@dataclass(frozen=True)
class Seen:
    at_ms: int
    partition: int
    offset: int
    key: str
    value: object

    def line(self) -> str:
        return f"{self.at_ms} p{self.partition}@{self.offset} {self.key}: {self.value}"


async def records_naming(bootstrap: str, topic: str, needle: str) -> list[Seen]:
    """Every record of ``topic`` (up to its end now) whose key or value contains ``needle``,
    oldest first by the broker's timestamp."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await consumer.start()
    await producer.start()
    try:
        found = await producer.partitions_for(topic)
        partitions = [TopicPartition(topic, p) for p in sorted(found or ())]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp, first in (await consumer.beginning_offsets(partitions)).items():
            consumer.seek(tp, first)
        out: list[Seen] = []
        for tp in partitions:
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                for m in batch.get(tp, []):
                    key = (m.key or b"").decode(errors="replace")
                    raw = (m.value or b"").decode(errors="replace")
                    if needle not in key and needle not in raw:
                        continue
                    try:
                        value: object = json.loads(raw)
                    except ValueError:
                        value = raw
                    out.append(Seen(m.timestamp, m.partition, m.offset, key, value))
        return sorted(out, key=lambda s: (s.at_ms, s.partition, s.offset))
    finally:
        await consumer.stop()
        await producer.stop()
