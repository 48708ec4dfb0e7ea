"""Replay a topic: every record it holds now produced again at its end, key, value and
headers as they were, as an operator replays a raw topic after an outage."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition


async def replay(bootstrap: str, topic: str) -> int:
    """Produce every record of ``topic`` (up to its end when called) again; how many."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await consumer.start()
    await producer.start()
    try:
        found = await producer.partitions_for(topic)  # waits for the topic's metadata
        partitions = [TopicPartition(topic, p) for p in sorted(found)]
        assert partitions, f"no topic {topic}"
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
    finally:
        await consumer.stop()
        await producer.stop()


async def count_records(bootstrap: str, topic: str) -> int:
    """How many records ``topic`` holds now (its end offsets, less its beginnings)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await consumer.start()
    await producer.start()
    try:
        found = await producer.partitions_for(topic)
        partitions = [TopicPartition(topic, p) for p in sorted(found)]
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        return sum(ends[tp] - starts[tp] for tp in partitions)
    finally:
        await consumer.stop()
        await producer.stop()
