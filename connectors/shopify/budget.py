"""Shopify's cost bucket, shared by priority among the callers of one client.

Every GraphQL call spends points from one bucket per shop (100 points/s restored on the
Standard plan). When the worker wants more than that, someone waits, and who waits decides
correctness: an order's routing answer tells which units are held, so it must not queue behind
a thousand stock writes, and a stock write must not queue behind read-backs and reconciles that
only confirm what is already known. ``CostBudget`` grants points to the waiting call with the
most urgent ``Priority`` first (first come, first served within one priority); only the head
of that queue waits for the bucket to refill, and a more urgent call arriving meanwhile takes
its place. A call that has waited ``max_wait`` seconds goes before every call that has not,
oldest first: when order reads alone want more than the bucket refills (a burst of online
orders), stock writes are delayed by seconds, not starved until the burst ends, which would let
drift pile up unhealed.

The bucket's figures come from the last answer's ``throttleStatus``; between answers the
budget refills them at the restore rate and takes off what it granted, so concurrent callers
pace against each other instead of all seeing the same stale figure.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


class Priority(IntEnum):
    """Lower goes first."""

    ORDER_STATE = 0  # what an order holds: routing, fulfilment orders, refunds
    STOCK_WRITE = 1  # inventorySetQuantities
    READ_BACK = 2  # reading one level to decide again
    BACKGROUND = 3  # snapshots, reconciles, sweeps


@dataclass
class BucketFigures:
    """What the last answer said about the bucket, and when."""

    maximum: float | None = None
    available: float | None = None
    restore_rate: float | None = None
    at: float = 0.0

    def expected_available(self, now: float) -> float | None:
        if self.available is None or not self.restore_rate:
            return None
        refill = (now - self.at) * self.restore_rate
        cap = self.maximum if self.maximum is not None else float("inf")
        return min(cap, self.available + refill)


# how long a call may wait behind more urgent ones before it goes first
MAX_WAIT = 2.0


@dataclass(eq=False)
class _Waiter:
    priority: int
    seq: int
    cost: float
    since: float
    turn: asyncio.Event = field(default_factory=asyncio.Event)


class CostBudget:
    def __init__(
        self,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        max_wait: float = MAX_WAIT,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self.max_wait = max_wait
        self.figures = BucketFigures()
        self._queue: list[_Waiter] = []
        self._seq = itertools.count()
        # points granted per priority since the start: what the budget went to
        self.granted: dict[Priority, float] = dict.fromkeys(Priority, 0.0)

    def observe(self, throttle_status: dict[str, Any]) -> None:
        """Take the bucket's figures from an answer's extensions.cost.throttleStatus."""
        if not throttle_status:
            return
        self.figures = BucketFigures(
            maximum=float(throttle_status.get("maximumAvailable") or 0) or None,
            available=float(throttle_status.get("currentlyAvailable") or 0),
            restore_rate=float(throttle_status.get("restoreRate") or 0) or None,
            at=self._clock(),
        )

    @property
    def waiting(self) -> int:
        return len(self._queue)

    async def acquire(self, cost: float | None, priority: Priority) -> float:
        """Wait for ``cost`` points, behind every more urgent caller; return seconds waited.
        An unknown cost (a document's first call) or an unknown bucket waits for nothing but
        the callers already queued before it."""
        began = self._clock()
        me = _Waiter(int(priority), next(self._seq), cost or 0.0, began)
        self._queue.append(me)
        try:
            while True:
                head = self._head()
                if head is not me:
                    # the head may have become so while everyone slept (it aged): wake it
                    head.turn.set()
                    me.turn.clear()
                    await me.turn.wait()
                    continue
                deficit = self._deficit(me.cost)
                if deficit <= 0:
                    break
                await self._sleep(deficit)
        except BaseException:
            self._leave(me)
            raise
        self._leave(me)
        self._spend(me.cost)
        self.granted[Priority(me.priority)] += me.cost
        return self._clock() - began

    def _head(self) -> _Waiter:
        """Who is granted next: the oldest of the calls that have waited `max_wait`, else the
        most urgent, first come first served."""
        now = self._clock()
        overdue = [w for w in self._queue if now - w.since >= self.max_wait]
        if overdue:
            return min(overdue, key=lambda w: w.seq)
        return min(self._queue, key=lambda w: (w.priority, w.seq))

    def _deficit(self, cost: float) -> float:
        """Seconds until the bucket holds ``cost``; 0 when it does or nothing is known."""
        now = self._clock()
        available = self.figures.expected_available(now)
        rate = self.figures.restore_rate
        # a thousandth of a point is rounding: waiting for it could add nothing to the clock
        if cost <= 0 or available is None or not rate or cost <= available + 1e-3:
            return 0.0
        return (cost - available) / rate

    def _spend(self, cost: float) -> None:
        now = self._clock()
        available = self.figures.expected_available(now)
        if available is None:
            return
        self.figures.available, self.figures.at = max(0.0, available - cost), now

    def _leave(self, me: _Waiter) -> None:
        if me in self._queue:
            self._queue.remove(me)
        if self._queue:
            self._head().turn.set()
