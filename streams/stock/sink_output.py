"""What the two stock sinks send besides their writes: write results for the positions, dead
letters and exceptions for people. A protocol, so that a sink's `write` runs in a test with a
recording fake instead of a producer."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from tillsync.schemas.events import ExceptionRecord, ShopifyObserved, WriteResults
from tillsync.streams import metrics, topics
from tillsync.streams.context import Context
from tillsync.streams.deadletter import dead_letter


class SinkOutput(Protocol):
    async def dead_letter(
        self,
        value: bytes,
        reason: str,
        key: bytes | None = None,
        headers: Mapping[str, bytes] | None = None,
    ) -> None:
        """Park a command that can never be written, with why and its record's headers."""
        ...

    async def exception(self, record: ExceptionRecord) -> None:
        """Hand a failure to the team that owns it."""
        ...


class ResultsOutput(SinkOutput, Protocol):
    async def write_results(self, batches: Iterable[tuple[int, WriteResults]]) -> None:
        """Send each partition's results to that partition of ``stock.events``."""
        ...

    async def readings(self, readings: Iterable[tuple[int, ShopifyObserved]]) -> None:
        """Send levels read back to their partition of ``stock.events``."""
        ...


class KafkaSinkOutput:
    """The sink output of a worker: records handed to the app's producer."""

    def __init__(self, ctx: Context, commands: topics.TopicSpec) -> None:
        self._ctx = ctx
        self._origin = commands.name(ctx.settings.app_id)
        self._exceptions = ctx.topic(topics.EXCEPTIONS)

    async def dead_letter(
        self,
        value: bytes,
        reason: str,
        key: bytes | None = None,
        headers: Mapping[str, bytes] | None = None,
    ) -> None:
        await dead_letter(
            self._ctx, origin=self._origin, reason=reason, value=value, key=key, headers=headers
        )

    async def exception(self, record: ExceptionRecord) -> None:
        metrics.exceptions_raised.labels(type=record.type, owner=record.owner.value).inc()
        await self._exceptions.send(value=record.model_dump_json().encode())

    async def write_results(self, batches: Iterable[tuple[int, WriteResults]]) -> None:
        await self._ctx.send_to_partitions(
            topics.STOCK_EVENTS,
            ((partition, batch.model_dump_json().encode()) for partition, batch in batches),
        )

    async def readings(self, readings: Iterable[tuple[int, ShopifyObserved]]) -> None:
        await self._ctx.send_to_partitions(
            topics.STOCK_EVENTS,
            ((partition, seen.model_dump_json().encode()) for partition, seen in readings),
        )
