"""A backlog writer of commands that each call both platforms: the pickup flow's two agents
(the Sitoo orders sink, the handover of pickups back to Shopify).

Like the stock sinks (``sink_runner.py``), the agent only takes records into a backlog and
never waits on a platform: Faust's conductor hands each record to every agent's queue and
waits while one queue is full, so an agent that waited out an outage would stall every agent of
the worker. A writer task carries the commands out in ``PARALLEL`` lanes, oldest first, one
command of a key at a time. One key is one Sitoo order (an export and its cancel, a pickup's
ready and its handover): a newer command of a key supersedes one still waiting (a cancel the
export it overtook, a handover the ready, a check either), and one that comes while its key is
being carried out waits for it.

- A failure of a platform (timeouts, 5xx, 429, 401/403 while credentials are rotated, after
  the client's own retries) puts the command back; the writer then waits on that platform's
  breaker, and tries it again once the platform answers, without end.
- A command the platform refuses for itself (a 4xx, a userError raised as an error), or one
  that is not a command at all, is dead-lettered with its record's headers; the writer says
  what else it means (an exception for a person, an answer for the order's flow).
- A surprise (not an answer of a platform's) puts it back and is raised for the runner to log;
  one that keeps coming for the same command is dead-lettered, so it holds nothing up for ever.

A record is acknowledged once its command is carried out, so a crash or a rebalance takes it
again from Kafka: each command is safe to carry out twice (an order is looked up by externalid
before it is made, a ready is asked of Shopify at most once, a fulfilment covers only what is
still owed).
"""

from __future__ import annotations

import abc
import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Generic, TypeVar

import faust
from pydantic import ValidationError

from tillsync.connectors.breaker import CircuitBreaker, is_platform_failure
from tillsync.connectors.outcomes import Outcome
from tillsync.connectors.shopify.client import ShopifyError
from tillsync.connectors.sitoo.client import SitooError
from tillsync.streams import metrics
from tillsync.streams.deadletter import error_reason
from tillsync.streams.partitioned import in_partition_of
from tillsync.streams.stock.backlog import Backlog
from tillsync.streams.stock.sink_breaker import BreakerReport, sink_breaker
from tillsync.streams.stock.sink_runner import BacklogWriter, stop_if_cancelled

log = logging.getLogger("tillsync.commands")

MAX_SURPRISES = 5  # unexpected failures of one command in a row before it is dead-lettered
RESTART_AFTER = 1.0  # seconds a lane waits after a surprise before it takes the next command

C = TypeVar("C")  # one writer's command

Ack = Callable[[faust.EventT], Awaitable[Any]]


async def _no_ack(_: faust.EventT) -> None:
    return None


Platforms = frozenset[metrics.Platform]
BOTH: Platforms = frozenset({metrics.Platform.SITOO, metrics.Platform.SHOPIFY})
SITOO_ONLY: Platforms = frozenset({metrics.Platform.SITOO})
NEITHER: Platforms = frozenset()


@dataclass
class Breakers:
    """One breaker per platform: a command waits until the platforms it calls may be called
    (both, unless its writer says less: a Sitoo cancel must not wait out Shopify's outage), and
    a failure counts against the platform that failed."""

    sitoo: CircuitBreaker
    shopify: CircuitBreaker

    def _of(self, platforms: Platforms) -> list[CircuitBreaker]:
        return [
            b
            for p, b in (
                (metrics.Platform.SITOO, self.sitoo),
                (metrics.Platform.SHOPIFY, self.shopify),
            )
            if p in platforms
        ]

    @classmethod
    def of(cls, writer: str) -> Breakers:
        """A writer's own breakers, its lines named after it (the gauge is the stock sinks')."""
        return cls(
            sink_breaker(metrics.Platform.SITOO, report=BreakerReport(writer=writer)),
            sink_breaker(metrics.Platform.SHOPIFY, report=BreakerReport(writer=writer)),
        )

    async def ready(self, platforms: Platforms = BOTH) -> None:
        for breaker in self._of(platforms):
            await breaker.ready()

    def failed(self, exc: SitooError | ShopifyError, platforms: Platforms = BOTH) -> None:
        failing = self.sitoo if isinstance(exc, SitooError) else self.shopify
        failing.failed(exc.outcome if isinstance(exc, SitooError) else exc.reason)
        for breaker in self._of(platforms):
            if breaker is not failing:
                breaker.failed(Outcome.CLIENT_ERROR)  # a probe it held told nothing

    def succeeded(self, platforms: Platforms = BOTH) -> None:
        for breaker in self._of(platforms):
            breaker.succeeded()

    def told_nothing(self, platforms: Platforms = BOTH) -> None:
        """A surprise, or a writer stopped mid-call: free a probe either holds."""
        for breaker in self._of(platforms):
            breaker.failed(Outcome.CLIENT_ERROR)


def platform_failure(exc: SitooError | ShopifyError) -> bool:
    return is_platform_failure(exc.outcome if isinstance(exc, SitooError) else exc.reason)


@dataclass(frozen=True)
class Queued(Generic[C]):
    """A decoded command and its record as received: a failure dead-letters its bytes with
    its headers."""

    command: C
    raw: bytes
    event: faust.EventT | None = None  # to acknowledge, and to name its partition; None in a test
    headers: Mapping[str, bytes] = field(default_factory=dict)


@dataclass
class WriterStats:
    done: int = 0
    duplicates: int = 0  # the same command again while it waited
    retried: int = 0  # put back after a platform's failure
    refused: int = 0  # dead-lettered: refused by a platform, or failing by surprise
    surprises: int = 0


class CommandWriter(BacklogWriter[Queued[C]], Generic[C]):
    """The writer's loop around ``carry_out``; a subclass says how a record is read
    (``decode``), which key orders its commands (``key_of``), what a command does, and what a
    refusal means besides its dead letter (``refused``)."""

    CAPACITY: ClassVar[int] = 20_000
    # commands carried out at once: each waits on several calls (an export: Sitoo's look-up,
    # Shopify's read, the order made, the reserved read back), so one lane would cap a store
    # chain's pickups at a few a second
    PARALLEL: ClassVar[int] = 8

    def __init__(
        self,
        *,
        breakers: Breakers | None = None,
        ack: Ack = _no_ack,
        dead_letter: Callable[[bytes, str, Mapping[str, bytes]], Awaitable[None]],
    ) -> None:
        self.breakers = breakers or Breakers.of(self.SINK)
        self.ack = ack
        self._dead_letter = dead_letter
        self.backlog: Backlog[str, Queued[C], Queued[C]] = Backlog(self.CAPACITY)
        self.surprised: dict[str, int] = {}
        self.stats = WriterStats()
        self._versions = itertools.count(1)

    # -- what a writer says -----------------------------------------------------------------

    @abc.abstractmethod
    def decode(self, value: bytes) -> C:
        """The command of a record; raises ``ValidationError`` when it is none."""

    @abc.abstractmethod
    def key_of(self, command: C) -> str:
        """One key's commands are carried out one at a time; a newer one supersedes one still
        waiting."""

    @abc.abstractmethod
    async def carry_out(self, command: C) -> None:
        """Raises ``SitooError``/``ShopifyError`` when a platform failed or refused."""

    def merged(self, older: C, newer: C) -> C:
        """What a newer command of a key does in place of the older one still waiting: the
        newer, unless the writer knows it says less (the handover: a parcel's step, which it
        may drop unread, must not supersede a collect that reads the order)."""
        return newer

    def _merged(self, older: Queued[C], newer: Queued[C]) -> Queued[C]:
        kept = self.merged(older.command, newer.command)
        return newer if kept is newer.command else replace(older, event=newer.event)

    def needs(self, command: C) -> Platforms:
        """The platforms a command calls: it waits on their breakers only."""
        return BOTH

    async def refused(self, command: C, reason: str) -> None:
        """Besides the dead letter: what a command refused for good means (none by default)."""
        return None

    # -- taking records: never waits on a platform ---------------------------------------------

    async def accept_events(self, events: Sequence[faust.EventT]) -> None:
        batch: list[Queued[C]] = []
        for event in events:
            value = bytes(event.value)
            headers = dict(event.headers or {})
            try:
                command = self.decode(value)
            except ValidationError as exc:
                await self._dead(value, f"invalid: {error_reason(exc)}", headers)
                await self.ack(event)
                continue
            batch.append(Queued(command, value, event, headers))
        await self.accept(batch)

    async def accept(self, batch: Sequence[Queued[C]]) -> None:
        for queued in batch:
            key = self.key_of(queued.command)
            # a record's offset orders it against the same key's other records; the same
            # offset taken twice (a replay) waits for the one carrying out
            version = queued.event.message.offset if queued.event is not None else None
            await self.backlog.wait_for_room(key)
            superseded = self.backlog.add(
                key,
                version if version is not None else next(self._versions),
                queued,
                queued,
                self._merged,
            )
            self.stats.duplicates += len(superseded)
            await self._ack_all(superseded)
        self._gauge()

    async def take(self, value: bytes, headers: Mapping[str, bytes] | None = None) -> None:
        """One record, carried out before this returns (for a test, or a caller with no
        writer task): while a platform is down this waits on its breaker."""
        try:
            command = self.decode(value)
        except ValidationError as exc:
            await self._dead(value, f"invalid: {error_reason(exc)}", dict(headers or {}))
            return
        await self.write([Queued(command, value, None, dict(headers or {}))])

    # -- carrying out: the writer task ------------------------------------------------------------

    async def run_writer(self) -> None:
        lanes = [
            asyncio.create_task(self._lane(), name=f"{self.SINK}-lane-{n}")
            for n in range(self.PARALLEL)
        ]
        try:
            await asyncio.gather(*lanes)
        finally:
            for lane in lanes:
                lane.cancel()
            await asyncio.gather(*lanes, return_exceptions=True)

    async def _lane(self) -> None:
        while True:
            await self.backlog.wait_for_work()
            try:
                await self.write_round()
            except Exception:
                # a lane must not die while the agent keeps taking: its work would wait for ever
                log.exception("%s: a command failed unexpectedly; tried again", self.SINK)
                await asyncio.sleep(RESTART_AFTER)
            stop_if_cancelled()

    async def write_round(self) -> None:
        # the command first, then the breakers: a lane that waits for the platforms holds one
        # to carry out, so a probe the breakers let through is always used (lanes with nothing
        # to do never take one, nor free another lane's)
        taken = self.backlog.take(1)
        if not taken:
            return
        key, version, queued = taken[0].key, taken[0].version, taken[0].work
        needs = self.needs(queued.command)
        await self.breakers.ready(needs)
        try:
            with self._partition_of(queued):
                await self.carry_out(queued.command)
        except (SitooError, ShopifyError) as exc:
            if platform_failure(exc):
                self.breakers.failed(exc, needs)
                self.stats.retried += 1
                log.warning("%s: %s; tried again once the platform answers", key, exc)
                self.backlog.back(key)
                return
            self.breakers.told_nothing(needs)
            await self._refuse(key, version, queued, f"refused: {exc}")
            return
        except Exception as exc:
            self.breakers.told_nothing(needs)
            self.stats.surprises += 1
            tries = self.surprised.get(key, 0) + 1
            if tries < MAX_SURPRISES:
                self.surprised[key] = tries
                self.backlog.back(key)
                raise
            self.surprised.pop(key, None)
            reason = f"unexpected error {tries} times: {type(exc).__name__}: {exc}"
            await self._refuse(key, version, queued, reason)
            return
        self.surprised.pop(key, None)
        self.breakers.succeeded(needs)
        self.stats.done += 1
        await self._ack_all(self.backlog.done(key, version))
        self._gauge()

    def release(self) -> None:
        super().release()
        self.breakers.told_nothing()

    async def _refuse(self, key: str, version: int, queued: Queued[C], reason: str) -> None:
        self.stats.refused += 1
        await self._dead(queued.raw, reason, queued.headers)
        with self._partition_of(queued):
            await self.refused(queued.command, reason)
        await self._ack_all(self.backlog.done(key, version))
        self._gauge()

    async def _dead(self, value: bytes, reason: str, headers: Mapping[str, bytes]) -> None:
        await self._dead_letter(value, reason, headers)

    async def _ack_all(self, queued: Iterable[Queued[C]]) -> None:
        for q in queued:
            if q.event is not None:
                await self.ack(q.event)

    @staticmethod
    @contextmanager
    def _partition_of(queued: Queued[C]) -> Iterator[None]:
        """The writer is not processing the command's record: name its partition, where a
        table entry of the command lives."""
        with in_partition_of(queued.event) if queued.event is not None else nullcontext():
            yield
