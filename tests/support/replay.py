"""Replay a topic: every record it holds now produced again at its end, key, value and
headers as they were, as an operator replays a raw topic after an outage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition


@asynccontextmanager
async def opened(
    bootstrap: str, topic: str
) -> AsyncIterator[tuple[AIOKafkaConsumer, AIOKafkaProducer, list[TopicPartition]]]:
    """A consumer and a producer on the broker, and ``topic``'s partitions (waiting for its
    metadata); both stopped on the way out."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await consumer.start()
    await producer.start()
    try:
        found = await producer.partitions_for(topic)
        partitions = [TopicPartition(topic, p) for p in sorted(found or ())]
        assert partitions, f"no topic {topic}"
        yield consumer, producer, partitions
    finally:
        await consumer.stop()
        await producer.stop()


async def replay(bootstrap: str, topic: str) -> int:
    """Produce every record of ``topic`` (up to its end when called) again; how many."""
    async with opened(bootstrap, topic) as (consumer, producer, partitions):
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp, first in (await consumer.beginning_offsets(partitions)).items():
            consumer.seek(tp, first)
        sent = 0
        for tp in partitions:
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                for message in batch.get(tp, []):
                    if message.offset >= ends[tp]:
                        break
                    await producer.send_and_wait(
                        topic,
                        message.value,
                        key=message.key,
                        partition=tp.partition,
                        headers=list(message.headers or ()),
                    )
                    sent += 1
        return sent


async def count_records(bootstrap: str, topic: str) -> int:
    """How many records ``topic`` holds now (its end offsets, less its beginnings)."""
    async with opened(bootstrap, topic) as (consumer, _, partitions):
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        return sum(ends[tp] - starts[tp] for tp in partitions)
