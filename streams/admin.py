"""Creates tillsync's topics before anything reads or writes them.

The broker runs with automatic topic creation off, so a typo in a topic name fails loudly
instead of silently creating an empty topic.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from tillsync.streams import topics


@dataclass(frozen=True)
class Changelog:
    """A table's changelog topic: compacted, one partition per partition of the table."""

    name: str
    partitions: int


async def ensure_topics(
    bootstrap: str,
    app_id: str,
    partitions: int,
    changelogs: Sequence[Changelog] = (),
    timeout: float = 30.0,
) -> list[str]:
    """Create the topics that are missing, the tables' changelogs among them; return the names
    created.

    Faust would create a changelog itself, but while its consumer starts: the consumer learns
    of it only at its next metadata refresh (5 min by default), and until then a table write
    outside a recovery fails (PartitionsMismatch). Created here, it exists before Faust looks."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    await asyncio.wait_for(admin.start(), timeout)
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                name=spec.name(app_id),
                num_partitions=spec.partitions or partitions,
                replication_factor=1,
                topic_configs={"cleanup.policy": "compact"} if spec.compacted else {},
            )
            for spec in topics.ALL
            if spec.name(app_id) not in existing
        ] + [
            NewTopic(
                name=log.name,
                num_partitions=log.partitions,
                replication_factor=1,
                topic_configs={"cleanup.policy": "compact"},
            )
            for log in changelogs
            if log.name not in existing
        ]
        if wanted:
            # another worker may race us to it; the result is the same
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
        return [t.name for t in wanted]
    finally:
        await admin.close()
