"""A sink's circuit breaker, with one log line when it opens and one when it closes.

The breaker opens, lets a probe through and opens again many times in a long outage; a person
needs to know when writes to a platform stopped and when they started again, not each probe.
The gauge says since when the platform's writes are held back (0 while they flow).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from tillsync.connectors.breaker import (
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    Clock,
    Sleep,
)
from tillsync.streams import metrics

log = logging.getLogger("tillsync.breaker")


class BreakerReport:
    """The breaker's ``on_change``: a line and the metrics at each open and close.

    The gauge and the counter are the stock sinks', one breaker per platform. Another writer
    (``writer``, the pickups') says its name in its lines and leaves them alone: its breaker
    closing must not read as the stock writes flowing again."""

    def __init__(self, wall_clock: Clock = time.time, *, writer: str | None = None) -> None:
        self._wall = wall_clock
        self.writer = writer
        self.open = False
        self.opened_at = 0.0
        self.lines: deque[str] = deque(maxlen=100)  # the last lines logged, for a test to read

    def __call__(self, platform: str, state: BreakerState) -> None:
        gauge = self.writer is None
        whose = f"{self.writer}: " if self.writer else ""
        if state is BreakerState.OPEN and not self.open:
            self.open = True
            self.opened_at = self._wall()
            if gauge:
                metrics.breaker_open.labels(platform=platform).set(self.opened_at)
                metrics.breaker_opened.labels(platform=platform).inc()
            self._say(
                f"{whose}{platform} is failing: its writes are held back until it answers again"
            )
        elif state is BreakerState.CLOSED and self.open:
            self.open = False
            if gauge:
                metrics.breaker_open.labels(platform=platform).set(0)
            held = self._wall() - self.opened_at
            self._say(f"{whose}{platform} answers again after {held:.0f} s: its held writes go on")

    def _say(self, line: str) -> None:
        self.lines.append(line)
        log.warning(line)


def sink_breaker(
    platform: metrics.Platform,
    policy: BreakerPolicy | None = None,
    *,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    report: BreakerReport | None = None,
) -> CircuitBreaker:
    return CircuitBreaker(
        platform.value,
        policy,
        clock=clock,
        sleep=sleep,
        on_change=report if report is not None else BreakerReport(),
    )
