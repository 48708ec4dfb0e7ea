"""The Sitoo stock sink: stock transactions (store-fulfilled online orders) written once.

Commands are keyed by their externalid. An applied table records the intent (with its time)
before the write and the transaction id after it; a command that finds only the intent (a
crash, or a failure whose answer never came, between the two) looks in Sitoo's ledger from the
intent's time on for its externalid before writing, so nothing is written twice, however long
an outage kept it waiting. The ledger has no externalid filter, so that look-up is kept for
those cases.

The agent only takes commands into a backlog keyed by externalid (see ``backlog.py``); a writer
task posts them one at a time and acknowledges a record once its Move Out is recorded. A
failure of Sitoo itself (timeouts, 5xx, 429, connection errors, a 401/403 while credentials
are rotated), after the client's own retries, keeps the command: the writer waits on the
breaker and posts it again once Sitoo answers. Only a Move Out Sitoo refuses for itself (a
4xx) is dead-lettered, with its record's headers, and raised as an exception. A Shopify outage
never holds these writes up: each sink has its own writer and breaker.

`SitooMoveOutSink` holds the state and the decisions; its `accept`, `write_round` and `write`
need no Kafka: Sitoo, the applied table, what the sink sends, the breaker and the
acknowledgement are handed in, so a test passes fakes. `register` wires it to the worker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

import faust
from pydantic import ValidationError

from tillsync.connectors.breaker import BreakerState, CircuitBreaker, is_platform_failure
from tillsync.connectors.outcomes import Outcome as CallOutcome
from tillsync.connectors.sitoo.client import SitooError
from tillsync.schemas.events import ExceptionRecord, Owner
from tillsync.schemas.sitoo import BatchResult, WarehouseTransactionIn
from tillsync.streams import metrics, topics
from tillsync.streams.context import Context
from tillsync.streams.deadletter import error_reason
from tillsync.streams.partitioned import in_partition_of
from tillsync.streams.runtime import Runtime
from tillsync.streams.stock.backlog import Backlog
from tillsync.streams.stock.sink_breaker import sink_breaker
from tillsync.streams.stock.sink_output import KafkaSinkOutput, SinkOutput
from tillsync.streams.stock.sink_runner import GuardedWriter, SinkRunner, flow_of

log = logging.getLogger("tillsync.sitoo_sink")

# seconds of ledger searched for an externalid whose intent has no time (recorded before
# intents carried one)
LOOKBACK = 3600
# seconds searched before an intent's time: our clock and Sitoo's may disagree
SKEW = 300
POSTING = -1  # the write was started at an unknown time; whether it landed is unknown
WINDOW = 100  # commands taken from the stream at once
WINDOW_SECONDS = 0.05
# Move Outs the backlog holds before the agent waits (and, through Faust's conductor, the
# worker's other agents): a Sitoo outage of many hours at a busy retailer's pace
BACKLOG_CAPACITY = 100_000
VERSION = 1  # a Move Out is one action: its externalid names it, no version supersedes it
MAX_SURPRISES = 5  # unexpected failures of one Move Out before it is dead-lettered

Ack = Callable[[faust.EventT], Awaitable[Any]]  # Faust's `Stream.ack`


async def _no_ack(_: faust.EventT) -> None:
    return None


class TransactionClient(Protocol):
    """What the sink asks of Sitoo: the write, and the ledger look-up after a crash."""

    async def add_warehouse_transactions(
        self, transactions: Sequence[WarehouseTransactionIn]
    ) -> list[BatchResult]: ...

    async def find_transactions_by_externalid(
        self, since: int, externalids: Iterable[str]
    ) -> dict[str, int]: ...


class RuntimeSitoo:
    """The worker's Sitoo client as a `TransactionClient`, looked up at each call: the
    runtime builds its client on first use, not when the agents are registered."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    async def add_warehouse_transactions(
        self, transactions: Sequence[WarehouseTransactionIn]
    ) -> list[BatchResult]:
        return await self._runtime.sitoo.add_warehouse_transactions(transactions)

    async def find_transactions_by_externalid(
        self, since: int, externalids: Iterable[str]
    ) -> dict[str, int]:
        return await self._runtime.sitoo.find_transactions_by_externalid(since, externalids)


class AppliedTable(Protocol):
    """externalid -> 0 (never written), an intent (negative: minus the time the write began,
    or `POSTING` when that time is unknown), or the Sitoo transaction id written.

    In Faust, an entry lives in the partition of the event being processed."""

    def __getitem__(self, externalid: str) -> int: ...

    def __setitem__(self, externalid: str, state: int) -> None: ...


@dataclass(frozen=True)
class MoveOut:
    """A decoded command and its record as received: a failure dead-letters its bytes with its
    headers."""

    transaction: WarehouseTransactionIn
    raw: bytes
    # the record, to acknowledge and to name the applied table's partition; None in a test
    event: faust.EventT | None = None
    headers: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def externalid(self) -> str:
        return self.transaction.externalid or ""


class Step(Enum):
    """What a command's applied state asks for."""

    SKIP = "skip"  # written before: a duplicate
    LOOK_FIRST = "look_first"  # a write started and was never recorded: search the ledger first
    POST = "post"


@dataclass
class SitooSinkStats:
    posted: int = 0
    duplicates: int = 0
    found: int = 0  # found in Sitoo's ledger after a crash mid-write, not posted again
    retried: int = 0  # put back after a failure of Sitoo itself
    failed: int = 0  # failed for good (dead-lettered)


class SitooMoveOutSink(GuardedWriter[MoveOut]):
    SINK = metrics.Sink.SITOO_MOVE_OUT

    def __init__(
        self,
        client: TransactionClient,
        applied: AppliedTable,
        output: SinkOutput,
        nudge: asyncio.Event,
        *,
        breaker: CircuitBreaker | None = None,
        ack: Ack = _no_ack,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.applied = applied
        self.output = output
        # set after each write: the ledger poller reads our transaction back without waiting
        self.nudge = nudge
        self.breaker = breaker or sink_breaker(metrics.Platform.SITOO)
        self.ack = ack
        self.backlog: Backlog[str, MoveOut, MoveOut] = Backlog(BACKLOG_CAPACITY)
        self.surprises: dict[str, int] = {}  # externalid -> unexpected failures in a row
        self.stats = SitooSinkStats()
        self._clock = clock

    # -- taking commands: never waits on Sitoo ---------------------------------------------------

    async def accept_events(self, events: Sequence[faust.EventT]) -> None:
        """The agent's part: decode a window of records and take them into the backlog."""
        batch: list[MoveOut] = []
        for event in events:
            headers = dict(event.headers or {})
            try:
                tx = WarehouseTransactionIn.model_validate_json(event.value)
            except ValidationError as exc:
                reason = f"invalid: {error_reason(exc)}"
                await self.output.dead_letter(event.value, reason, headers=headers)
                await self.ack(event)
                continue
            batch.append(MoveOut(tx, event.value, event, headers))
        await self.accept(batch)

    async def accept(self, batch: Sequence[MoveOut]) -> None:
        """Take Move Outs into the backlog; one written before is acknowledged at once."""
        for cmd in batch:
            if self.step(self._state(cmd)) is Step.SKIP:
                self._duplicate()
                await self._ack_all([cmd])
                continue
            await self.backlog.wait_for_room(cmd.externalid)
            self.backlog.add(cmd.externalid, VERSION, cmd, cmd)
        self._gauge()

    # -- writing: the writer task ------------------------------------------------------------------

    async def write_round(self) -> None:
        """Wait for the breaker, then post one Move Out. A surprise (not an answer of Sitoo's)
        puts it back and is raised, for the runner to log and start again after a pause; one
        that keeps coming for the same Move Out is dead-lettered, so it cannot hold the others
        up for ever."""
        await self.breaker.ready()
        taken = self.backlog.take(1)
        if not taken:
            self.breaker.failed(CallOutcome.CLIENT_ERROR)  # no probe to make: the next may
            return
        cmd = taken[0].work
        try:
            await self._write_one(cmd)
        except Exception as exc:
            if self.breaker.state is BreakerState.HALF_OPEN:
                self.breaker.failed(CallOutcome.CLIENT_ERROR)  # the probe told nothing
            tries = self.surprises.get(cmd.externalid, 0) + 1
            if tries < MAX_SURPRISES:
                self.surprises[cmd.externalid] = tries
                self.backlog.back(cmd.externalid)
                raise
            self.surprises.pop(cmd.externalid, None)
            await self._fail(cmd, f"unexpected error {tries} times: {type(exc).__name__}: {exc}")
        else:
            self.surprises.pop(cmd.externalid, None)
        self._gauge()

    async def _write_one(self, cmd: MoveOut) -> None:
        ext = cmd.externalid
        state = self._state(cmd)
        step = self.step(state)
        if step is Step.SKIP:
            self._duplicate()
            await self._done(cmd)
            return
        try:
            if step is Step.LOOK_FIRST:
                found = await self.client.find_transactions_by_externalid(
                    self.search_from(state, self._clock()), [ext]
                )
                if ext in found:
                    self.breaker.succeeded()
                    self.stats.found += 1
                    self._record(cmd, self.recorded(found[ext]))
                    await self._done(cmd)
                    return
            self._record(cmd, self.intent(self._clock()))
            results = await self.client.add_warehouse_transactions([cmd.transaction])
            self._record(cmd, self.posted(results))
        except SitooError as exc:
            self.breaker.failed(exc.outcome)
            # the intent stays recorded: the next try of this command searches the ledger first
            if is_platform_failure(exc.outcome):
                self.stats.retried += 1
                self.backlog.back(ext)
                return
            await self._fail(cmd, exc)
            return
        self.breaker.succeeded()
        self.stats.posted += 1
        metrics.events_out.labels(topic="sitoo.warehousetransactions").inc()
        self.nudge.set()
        await self._done(cmd)

    async def _fail(self, cmd: MoveOut, exc: SitooError | str) -> None:
        """Refused for good: dead-lettered with the record's headers, raised."""
        self.stats.failed += 1
        await self.output.dead_letter(cmd.raw, str(exc), headers=cmd.headers)
        await self.output.exception(self.failure(cmd.transaction, exc, self._clock()))
        await self._done(cmd)

    async def _done(self, cmd: MoveOut) -> None:
        await self._ack_all(self.backlog.done(cmd.externalid, VERSION))

    async def _ack_all(self, cmds: Iterable[MoveOut]) -> None:
        for cmd in cmds:
            if cmd.event is not None:
                await self.ack(cmd.event)

    def _duplicate(self) -> None:
        self.stats.duplicates += 1
        metrics.events_ignored.labels(reason="duplicate").inc()

    def _state(self, cmd: MoveOut) -> int:
        with self._partition_of(cmd):
            return self.applied[cmd.externalid]

    def _record(self, cmd: MoveOut, state: int) -> None:
        with self._partition_of(cmd):
            self.applied[cmd.externalid] = state

    @staticmethod
    @contextmanager
    def _partition_of(cmd: MoveOut) -> Iterator[None]:
        """The writer is not processing the command's record: name its partition, where the
        command's table entry lives."""
        with in_partition_of(cmd.event) if cmd.event is not None else nullcontext():
            yield

    # -- decisions: no I/O ----------------------------------------------------------------------

    @staticmethod
    def step(state: int) -> Step:
        if state > 0:
            return Step.SKIP
        if state < 0:
            return Step.LOOK_FIRST
        return Step.POST

    @staticmethod
    def intent(now: float) -> int:
        """The state recorded before a post: negative (not written yet), naming its time."""
        return -max(2, int(now))

    @staticmethod
    def search_from(state: int, now: float) -> int:
        """Where the ledger search for a started write begins: a little before its intent, or
        ``LOOKBACK`` ago for an intent without a time."""
        if state == POSTING:
            return int(now) - LOOKBACK
        return min(-state, int(now)) - SKEW

    @staticmethod
    def recorded(found_id: int) -> int:
        """The state of a transaction found in the ledger: its id, or 1 when Sitoo gave none
        (any positive state means written)."""
        return found_id or 1

    @staticmethod
    def posted(results: list[BatchResult]) -> int:
        """The state after a post: the new transaction's id (1 when Sitoo gave none); raises
        `SitooError` when the batch has no answer or a failed one."""
        if not results or not results[0].ok:
            raise SitooError(
                results[0].statuscode if results else 0,
                (results[0].errortext if results else None) or "no answer",
            )
        return int(results[0].return_ or 1)

    @staticmethod
    def failure(tx: WarehouseTransactionIn, exc: SitooError | str, at: float) -> ExceptionRecord:
        ext = tx.externalid or ""
        return ExceptionRecord(
            type="sitoo_stock_write_failed",
            owner=Owner.STORE_OPS,
            key=ext,
            message=f"could not write {ext} to Sitoo warehouse {tx.warehouseid}: {exc}",
            at=at,
        )


def register(ctx: Context) -> None:
    app = ctx.app
    rt = ctx.runtime
    assert rt is not None
    applied = app.Table(
        "sitoo-applied",
        default=int,
        schema=faust.Schema(key_type=str, key_serializer="json", value_serializer="json"),
        help="externalid -> Sitoo warehouse transaction id written for it",
    )
    sitoo = SitooMoveOutSink(
        RuntimeSitoo(rt),
        applied,
        KafkaSinkOutput(ctx, topics.SITOO_STOCK_COMMANDS),
        rt.ledger_nudge,
    )
    runner = SinkRunner(sitoo, window=WINDOW, within=WINDOW_SECONDS, flowing=flow_of(app))

    @app.agent(ctx.topic(topics.SITOO_STOCK_COMMANDS), name="sitoo-stock-sink")
    async def sink(stream: faust.StreamT[bytes]) -> None:
        await runner.run(stream)
