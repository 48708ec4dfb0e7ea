"""What the Shopify inventory sink has written: per (inventory item, location), the newest
command version and the value Shopify then had.

Kept in the sink's own changelogged table: after a crash it is restored before any command is
taken, so a replayed command cannot write an older state than one already written. The
`WrittenVersions` dicts are this worker's cache of it, emptied when partitions move.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import faust
from faust.types import TableT
from pydantic import BaseModel

from tillsync.schemas.events import SetInventory
from tillsync.streams.partitioned import in_partition_of


class Level(NamedTuple):
    """One inventory level: what a command sets and what the sink coalesces on."""

    item: int
    location: int

    @classmethod
    def of(cls, cmd: SetInventory) -> Level:
        return cls(cmd.inventory_item_id, cmd.location_id)


@dataclass(frozen=True)
class Received:
    """A decoded command and where it came from: its partition of the commands topic is its
    SKU's partition of ``stock.events`` (both keyed by SKU, with as many partitions), and of
    the written table."""

    command: SetInventory
    partition: int
    # table reads and writes of a batch go to this event's partition (see `in_partition_of`);
    # None outside Faust, where the table is a fake that needs no partition
    event: faust.EventT | None = None
    # the record as it came, for a dead letter: its bytes (None: the command's JSON) and headers
    raw: bytes | None = None
    headers: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def level(self) -> Level:
        return Level.of(self.command)


class Written(BaseModel):
    """A table entry: the newest version written and the value Shopify had after it."""

    version: int
    value: int | None = None


class WrittenStore(Protocol):
    def load(self, level: Level, origin: Received) -> Written | None: ...

    def save(self, level: Level, origin: Received, entry: Written) -> None: ...


class WrittenTable:
    """The Faust table behind `WrittenStore`: JSON bytes keyed ``item@location``."""

    def __init__(self, table: TableT[str, bytes]) -> None:
        self._table = table

    def load(self, level: Level, origin: Received) -> Written | None:
        assert origin.event is not None
        with in_partition_of(origin.event):
            stored = self._table.get(table_key(level))
        return Written.model_validate_json(stored) if stored else None

    def save(self, level: Level, origin: Received, entry: Written) -> None:
        assert origin.event is not None
        with in_partition_of(origin.event):
            self._table[table_key(level)] = entry.model_dump_json().encode()


def table_key(level: Level) -> str:
    return f"{level.item}@{level.location}"


@dataclass
class WrittenVersions:
    """This worker's cache of the written table, read through on a level's first command."""

    store: WrittenStore
    versions: dict[Level, int] = field(default_factory=dict)
    # what Shopify had after our last write or re-read: the compare value of the next write
    values: dict[Level, int] = field(default_factory=dict)

    def forget(self) -> None:
        """Partitions moved: what another worker writes next is in the table, not here."""
        self.versions.clear()
        self.values.clear()

    def recall(self, level: Level, origin: Received) -> None:
        if level in self.versions:
            return
        entry = self.store.load(level, origin)
        if entry is not None:
            self.versions[level] = entry.version
            if entry.value is not None:
                self.values.setdefault(level, entry.value)

    def remember(self, level: Level, origin: Received, version: int, value: int) -> None:
        self.versions[level] = max(self.versions.get(level, 0), version)
        self.values[level] = value
        self.store.save(level, origin, Written(version=self.versions[level], value=value))

    def learn(self, level: Level, origin: Received, available: int) -> None:
        """A value read back after a stale compare: the next compare uses it. Stored, so that a
        command retried after a restart sends the same call (same key, same compare)."""
        self.values[level] = available
        version = self.versions.get(level, 0)
        self.store.save(level, origin, Written(version=version, value=available))

    def version(self, level: Level) -> int | None:
        return self.versions.get(level)
