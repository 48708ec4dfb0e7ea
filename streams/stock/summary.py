"""The counts behind ``/state/stock``: a few flags per position, kept as batches store them.

The summary is polled every half second by the demo and the tests; decoding the whole table on
the event loop each time would hold up the agents, so it reads these flags instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tillsync.schemas.locations import LocationMap
from tillsync.streams.stock.position import Position

EXAMPLES = 20  # positions named as not in sync: enough to look into, short enough to poll


@dataclass(frozen=True, slots=True)
class PositionFlags:
    """What the state summary counts of one position."""

    in_flight: bool
    drifting: bool
    in_sync: bool


@dataclass(frozen=True, slots=True)
class SummaryCounts:
    positions: int
    in_sync: int
    in_flight: int
    drifting: int
    examples_not_in_sync: list[str]


class StateSummary:
    """Flags per position key, and whether they still cover the whole table."""

    def __init__(self, locations: LocationMap) -> None:
        self._locations = locations
        self.flags: dict[str, PositionFlags] = {}
        # after a start or rebalance the table holds positions no batch has touched yet
        self.stale = True
        # the table's partitions this worker owns; None until the first assignment (and for a
        # plain mapping, which has no partitions)
        self.partitions: frozenset[int] | None = None

    def flags_of(self, pos: Position) -> PositionFlags:
        loc = self._locations.by_shopify(pos.location_id)
        target = pos.target(loc.buffer_for(pos.sku)) if loc else None
        return PositionFlags(
            in_flight=pos.in_flight is not None,
            drifting=pos.drift_since is not None,
            in_sync=target is not None and pos.observed == target,
        )

    def update(self, key: str, pos: Position, partition: int | None = None) -> None:
        # A batch taken before a rebalance may be stored after it: a position of a partition
        # given away is the new owner's to count, and the read after the rebalance left it out.
        given_away = self.partitions is not None and partition not in self.partitions
        if partition is not None and given_away:
            return
        self.flags[key] = self.flags_of(pos)

    def assigned(self, partitions: frozenset[int]) -> None:
        """A rebalance gave this worker `partitions`: count only theirs, read afresh."""
        self.partitions = partitions
        self.stale = True

    def mark_stale(self) -> None:
        self.stale = True

    def counts(self, table: Mapping[str, bytes]) -> SummaryCounts:
        """The counts over every position; reads `table` whole only when the flags are stale."""
        if self.stale:
            # the one full read: from then on each stored batch keeps the flags current
            self.flags.clear()
            for key, value in table.items():
                if value:
                    self.update(key, Position.model_validate_json(value))
            self.stale = False
        flags = list(self.flags.values())
        return SummaryCounts(
            positions=len(flags),
            in_sync=sum(1 for f in flags if f.in_sync),
            in_flight=sum(1 for f in flags if f.in_flight),
            drifting=sum(1 for f in flags if f.drifting),
            examples_not_in_sync=[k for k, f in self.flags.items() if not f.in_sync][:EXAMPLES],
        )
