"""A token bucket: the client paces itself with it and the simulator enforces Sitoo's limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; rate <= 0 means no limit."""

    def __init__(
        self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate)
        self.clock = clock
        self.tokens = self.burst
        self.stamp = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def try_acquire(self) -> float:
        """Take a token and return 0, or return the seconds until one is available."""
        if self.rate <= 0:
            return 0.0
        self._refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate

    async def acquire(self) -> float:
        """Wait for a token; returns the seconds spent waiting."""
        if self.rate <= 0:
            return 0.0
        waited = 0.0
        # the lock keeps waiters in arrival order instead of all waking at once
        async with self._lock:
            while (wait := self.try_acquire()) > 0:
                await asyncio.sleep(wait)
                waited += wait
        return waited
