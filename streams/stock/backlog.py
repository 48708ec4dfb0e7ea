"""A sink's coalescing backlog: the work not yet written, and the records that wait for it.

A sink's agent only puts commands here and never waits on the platform, so that Faust's
conductor (which blocks every agent of the worker while one agent's queue is full) never waits
on an outage. A writer task takes the work out, writes it, and says which version of a key is
done; only then are the records that asked for it acknowledged.

One entry per key (a Shopify level, a Sitoo externalid), holding the newest version asked for
and the records not yet acknowledged. A newer version supersedes an older one: the older
records are acknowledged at once, since the newer record, later in the same partition, keeps
the committed offset behind both until it is written. So the backlog never holds more entries
than there are keys, however long an outage lasts, and Kafka's committed offset stays behind
every command whose write is not done: a restart replays them.

``release`` forgets every entry without acknowledging anything: Faust waits for every record
taken to be acknowledged before it gives partitions up (a rebalance, a stop), and the records
are taken again from the committed offset afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
W = TypeVar("W")  # the work to write (one sink's command)
R = TypeVar("R")  # a record to acknowledge once its work is done or superseded


@dataclass
class Entry(Generic[W, R]):
    version: int
    work: W
    held: list[R] = field(default_factory=list)
    in_flight: int | None = None  # the version a writer is writing now, if any


@dataclass(frozen=True)
class Taken(Generic[K, W]):
    """Work a writer took: ``done(key, version)`` or ``back(key)`` once it knows."""

    key: K
    version: int
    work: W


class Backlog(Generic[K, W, R]):
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.entries: dict[K, Entry[W, R]] = {}
        self._work = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def versions(self) -> Iterator[tuple[K, int]]:
        return ((k, e.version) for k, e in self.entries.items())

    def add(
        self,
        key: K,
        version: int,
        work: W,
        record: R,
        merge: Callable[[W, W], W] | None = None,
    ) -> list[R]:
        """Ask for ``version`` of ``key``; returns the records to acknowledge now: those of an
        older version it supersedes, or this one if a newer version is asked for already.
        ``merge(older, newer)``: the work the newer version does, when it is not simply the
        newer work (a writer whose newer command may say less than the one it supersedes)."""
        entry = self.entries.get(key)
        if entry is None:
            self.entries[key] = Entry(version, work, [record])
            self._changed()
            return []
        if version < entry.version:
            return [record]
        if version == entry.version:
            # the same command again (a replay): both records wait for its write, since they
            # may be the same offset taken twice
            entry.held.append(record)
            return []
        merged = merge(entry.work, work) if merge is not None else work
        if merged is work:
            superseded, entry.held = entry.held, [record]
        else:
            # the older work goes on in the newer's place: its records wait for it, since a
            # replay after a crash must find a record that asks for it
            superseded = []
            entry.held.append(record)
        entry.version, entry.work = version, merged
        self._changed()
        return superseded

    def take(self, limit: int) -> list[Taken[K, W]]:
        """Up to ``limit`` entries no writer is writing, oldest first."""
        out: list[Taken[K, W]] = []
        for key, entry in self.entries.items():
            if len(out) >= limit:
                break
            if entry.in_flight is None:
                entry.in_flight = entry.version
                out.append(Taken(key, entry.version, entry.work))
        if not self.ready():
            self._work.clear()
        return out

    def done(self, key: K, version: int) -> list[R]:
        """``version`` of ``key`` is written (or failed for good): the records of that version
        or older to acknowledge. A newer version asked for meanwhile stays to be written."""
        entry = self.entries.get(key)
        if entry is None:
            return []  # released meanwhile: its records are taken again from Kafka
        if entry.in_flight == version:
            entry.in_flight = None
        if entry.version > version:
            self._changed()
            return []
        del self.entries[key]
        if len(self.entries) < self.capacity:
            self._room.set()
        return entry.held

    def back(self, key: K) -> None:
        """The write did not happen (the platform is down): written again later."""
        entry = self.entries.get(key)
        if entry is not None:
            entry.in_flight = None
            self._changed()

    def release(self) -> None:
        """Forget everything, acknowledging nothing (see the module's docstring)."""
        self.entries.clear()
        self._work.clear()
        self._room.set()

    def ready(self) -> bool:
        """Some entry waits for a writer."""
        return any(e.in_flight is None for e in self.entries.values())

    async def wait_for_work(self) -> None:
        while not self.ready():
            self._work.clear()
            await self._work.wait()

    async def wait_for_room(self, key: K) -> None:
        """Before adding ``key``: a new key waits while the backlog is full."""
        while key not in self.entries and len(self.entries) >= self.capacity:
            self._room.clear()
            await self._room.wait()

    def _changed(self) -> None:
        self._work.set()
        if len(self.entries) >= self.capacity:
            self._room.clear()
