"""How a sink runs in the worker: its agent takes records into the sink's backlog and never
waits on the platform; a writer task beside it writes the backlog; a watcher forgets the
backlog when Faust stops the flow of records (a rebalance or a stop).

Faust's conductor hands each record to every agent's queue and waits while one queue is full,
so an agent that waited on its platform would stall every agent of the worker. Here the agent
only waits when its backlog holds as many keys as it may, which an outage does not change.

Faust waits, before it gives partitions up, until every record taken is acknowledged; the
backlog's records are not, until written. So when the flow stops, the backlog is forgotten
(nothing acknowledged: the committed offsets stay behind every command not written) and the
records are taken again from there once the partitions are assigned. A write in flight then is
cancelled with it, since it holds its records too: it is safe to send again, because a Shopify
call repeats its `@idempotent` key and a Sitoo Move Out finds its intent and searches the
ledger first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, cast

import faust

log = logging.getLogger("tillsync.sinks")

FLOW_POLL = 0.2  # how often the watcher looks at Faust's flow control, in seconds
RESTART_AFTER = 1.0  # seconds before a writer that failed unexpectedly starts again

Ack = Callable[[faust.EventT], Awaitable[Any]]
Flowing = Callable[[], bool]


class BackloggedSink(Protocol):
    ack: Ack

    async def accept_events(self, events: Sequence[faust.EventT]) -> None: ...

    async def run_writer(self) -> None: ...

    def release(self) -> None: ...

    def holding(self) -> int: ...


def flow_of(app: faust.App) -> Flowing:
    """Records flow to the agents (False from the start of a rebalance or a stop until the
    partitions are assigned and recovered)."""
    return app.flow_control.is_active


class SinkRunner:
    def __init__(
        self,
        sink: BackloggedSink,
        *,
        window: int,
        within: float,
        flowing: Flowing,
        poll: float = FLOW_POLL,
    ) -> None:
        self.sink = sink
        self.window = window
        self.within = within
        self.flowing = flowing
        self.poll = poll
        self._writer: asyncio.Task[None] | None = None

    async def run(self, stream: faust.StreamT[bytes]) -> None:
        """The agent's body."""
        taking = cast(faust.Stream, stream)
        self.sink.ack = taking.ack
        self._writer = asyncio.create_task(self._write(), name="sink-writer")
        watcher = asyncio.create_task(self.watch(), name="sink-flow-watcher")
        try:
            # the records themselves, acknowledged by the sink once written or superseded
            async for events in taking.noack_take(self.window, within=self.within):
                if not self.flowing():
                    continue  # taken before the flow stopped: taken again from Kafka
                await self.sink.accept_events(cast(Sequence[faust.EventT], events))
        finally:
            tasks = [t for t in (self._writer, watcher) if t is not None]
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _write(self) -> None:
        # the writer must not die while the agent keeps taking: its work would wait for ever
        while True:
            try:
                await self.sink.run_writer()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("a sink's writer failed unexpectedly; starting it again")
                await asyncio.sleep(RESTART_AFTER)

    async def watch(self) -> None:
        while True:
            if not self.flowing() and self.sink.holding():
                log.info(
                    "the flow of records stopped: forgetting %d held writes, taken again "
                    "from Kafka",
                    self.sink.holding(),
                )
                await self.release()
            await asyncio.sleep(self.poll)

    async def release(self) -> None:
        """Forget the backlog and the write in flight; a new writer waits for new work."""
        writer = self._writer
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        self.sink.release()
        if writer is not None:
            self._writer = asyncio.create_task(self._write(), name="sink-writer")
