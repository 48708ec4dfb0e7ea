"""Time sources for the simulator: real by default, hand-driven in tests.

The cost bucket and fault windows read ``monotonic()`` through a ``Clock`` so a test can drain
the bucket, advance time by ten seconds and see it refilled, without sleeping.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start

    def monotonic(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds
