"""The Sitoo stock sink: stock transactions (store-fulfilled online orders) written once.

Commands are keyed by their externalid. An applied table records the intent before the write
and the transaction id after it; a command that finds only the intent (a crash between the two)
looks in Sitoo's recent ledger for its externalid before writing, so nothing is written twice.
The ledger has no externalid filter, so that look-up is kept for the rare crash case.

`SitooMoveOutSink` holds the state and the decisions; its `write` needs no Kafka: Sitoo, the
applied table and what the sink sends are handed in, so a test passes fakes. `register` wires
it to the worker's Faust app.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

import faust
from pydantic import ValidationError

from tillsync.connectors.sitoo.client import SitooError
from tillsync.schemas.events import ExceptionRecord, Owner
from tillsync.schemas.sitoo import BatchResult, WarehouseTransactionIn
from tillsync.streams import metrics, topics
from tillsync.streams.context import Context
from tillsync.streams.deadletter import error_reason
from tillsync.streams.runtime import Runtime
from tillsync.streams.stock.sink_output import KafkaSinkOutput, SinkOutput

log = logging.getLogger("tillsync.sitoo_sink")

LOOKBACK = 3600  # seconds of ledger searched for an externalid after a crash mid-write
POSTING = -1  # the write was started; whether it landed is unknown


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
    """externalid -> 0 (never written), `POSTING`, or the Sitoo transaction id written.

    In Faust, an entry lives in the partition of the event being processed."""

    def __getitem__(self, externalid: str) -> int: ...

    def __setitem__(self, externalid: str, state: int) -> None: ...


@dataclass(frozen=True)
class MoveOut:
    """A decoded command and its bytes as received: a failure dead-letters those bytes."""

    transaction: WarehouseTransactionIn
    raw: bytes

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
    failed: int = 0


class SitooMoveOutSink:
    def __init__(
        self,
        client: TransactionClient,
        applied: AppliedTable,
        output: SinkOutput,
        nudge: asyncio.Event,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.applied = applied
        self.output = output
        # set after each write: the ledger poller reads our transaction back without waiting
        self.nudge = nudge
        self.stats = SitooSinkStats()
        self._clock = clock

    async def consume(self, stream: faust.StreamT[bytes]) -> None:
        """The Faust agent's body: a batch of one record at a time, since the applied table
        keeps each entry in the partition of the event Faust is processing."""
        async for event in stream.events():
            try:
                tx = WarehouseTransactionIn.model_validate_json(event.value)
            except ValidationError as exc:
                await self.output.dead_letter(event.value, f"invalid: {error_reason(exc)}")
                continue
            await self.write([MoveOut(tx, event.value)])

    async def write(self, batch: Sequence[MoveOut]) -> None:
        """Post each command once, in order; a failure is dead-lettered and raised as an
        exception, and the next command goes on."""
        for cmd in batch:
            await self._write_one(cmd)

    async def _write_one(self, cmd: MoveOut) -> None:
        ext = cmd.externalid
        step = self.step(self.applied[ext])
        if step is Step.SKIP:
            self.stats.duplicates += 1
            metrics.events_ignored.labels(reason="duplicate").inc()
            return
        try:
            if step is Step.LOOK_FIRST:
                found = await self.client.find_transactions_by_externalid(
                    int(self._clock()) - LOOKBACK, [ext]
                )
                if ext in found:
                    self.stats.found += 1
                    self.applied[ext] = self.recorded(found[ext])
                    return
            self.applied[ext] = POSTING
            results = await self.client.add_warehouse_transactions([cmd.transaction])
            self.applied[ext] = self.posted(results)
            self.stats.posted += 1
            metrics.events_out.labels(topic="sitoo.warehousetransactions").inc()
            self.nudge.set()
        except SitooError as exc:
            # the intent stays recorded: a repeat of this command searches the ledger first
            self.stats.failed += 1
            await self.output.dead_letter(cmd.raw, str(exc))
            await self.output.exception(self.failure(cmd.transaction, exc, self._clock()))

    # -- decisions: no I/O ----------------------------------------------------------------------

    @staticmethod
    def step(state: int) -> Step:
        if state > 0:
            return Step.SKIP
        if state == POSTING:
            return Step.LOOK_FIRST
        return Step.POST

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
    def failure(tx: WarehouseTransactionIn, exc: SitooError, at: float) -> ExceptionRecord:
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

    @app.agent(ctx.topic(topics.SITOO_STOCK_COMMANDS), name="sitoo-stock-sink")
    async def sink(stream: faust.StreamT[bytes]) -> None:
        await sitoo.consume(stream)
