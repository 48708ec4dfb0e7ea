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

import abc
import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar, cast

import faust

from tillsync.connectors.breaker import BreakerState, CircuitBreaker
from tillsync.connectors.outcomes import Outcome as CallOutcome
from tillsync.streams import metrics
from tillsync.streams.stock.backlog import Backlog

log = logging.getLogger("tillsync.sinks")

FLOW_POLL = 0.2  # how often the watcher looks at Faust's flow control, in seconds
RESTART_AFTER = 1.0  # seconds before a writer that failed unexpectedly starts again

Ack = Callable[[faust.EventT], Awaitable[Any]]
Flowing = Callable[[], bool]


C = TypeVar("C")  # what a sink takes in: one of its commands


def stop_if_cancelled() -> None:
    """Python 3.11's ``asyncio.wait_for`` loses a cancel that comes as the call it waits for
    completes (fixed in 3.12): the task would go on writing, and whoever cancelled it (a
    release, a stop) would wait for it for ever. The task still counts the cancel asked."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class BacklogWriter(abc.ABC, Generic[C]):
    """What both sinks do alike around their backlog: the writer task's loop, a write for a
    caller with no writer task, and forgetting the backlog when partitions go. The sink says
    how a command is taken in (``accept``) and how one round is written (``write_round``)."""

    SINK: metrics.Sink
    backlog: Backlog[Any, Any, Any]

    @abc.abstractmethod
    async def accept(self, batch: Sequence[C]) -> None: ...

    @abc.abstractmethod
    async def write_round(self) -> None: ...

    async def run_writer(self) -> None:
        while True:
            await self.backlog.wait_for_work()
            await self.write_round()
            stop_if_cancelled()

    async def write(self, batch: Sequence[C]) -> None:
        """Take a batch and write until the backlog is empty (while the platform is down, this
        waits on the breaker): for a test, or a caller with no writer task."""
        await self.accept(batch)
        while self.backlog.ready():
            await self.write_round()

    def release(self) -> None:
        """Partitions are being given up: forget the backlog without acknowledging it."""
        self.backlog.release()
        self._gauge()

    def holding(self) -> int:
        return len(self.backlog)

    def _gauge(self) -> None:
        metrics.sink_backlog.labels(sink=self.SINK).set(len(self.backlog))


class GuardedWriter(BacklogWriter[C]):
    """A backlog writer whose platform calls go through the platform's circuit breaker."""

    breaker: CircuitBreaker

    def release(self) -> None:
        """As ``BacklogWriter.release``; the writer was stopped first, so a probe it held is
        free for the next writer."""
        super().release()
        if self.breaker.state is BreakerState.HALF_OPEN:
            self.breaker.failed(CallOutcome.CLIENT_ERROR)


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

    async def run(
        self, stream: faust.StreamT[bytes], *, ready: asyncio.Event | None = None
    ) -> None:
        """The agent's body. ``ready`` (the stock flow's start) is awaited with the first
        records in hand, never before the stream is read: Faust skips, and acknowledges, a
        record an agent takes only after a rebalance of the worker's start, which the agents
        that took it in time have acknowledged too (a lifecycle e2e run: the order webhooks of
        the first second after a SIGKILL's restart never reached the order flow)."""
        taking = cast(faust.Stream, stream)
        self.sink.ack = taking.ack
        self._writer = asyncio.create_task(self._write(), name="sink-writer")
        watcher = asyncio.create_task(self.watch(), name="sink-flow-watcher")
        try:
            # the records themselves, acknowledged by the sink once written or superseded
            async for events in taking.noack_take(self.window, within=self.within):
                if not self.flowing():
                    continue  # taken before the flow stopped: taken again from Kafka
                if ready is not None:
                    await ready.wait()
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
