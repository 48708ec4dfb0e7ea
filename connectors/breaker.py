"""One circuit breaker per platform: what a writer does when the platform is down.

A call's own retries (``connectors/retry.py``) ride out a blip of seconds. An outage is longer:
every call gives up, and a writer that dead-letters or re-queues each failure floods logs and
dead letters and hammers the platform the moment it returns. The breaker turns repeated
platform failures into one state: after ``threshold`` failures in a row it opens, callers wait
in ``ready()`` instead of calling, and after the open spell one probe call is let through. A
probe that succeeds closes it; one that fails opens it again for a longer spell (doubling up to
``max_open``). The work itself is never dropped: the caller keeps it and tries again once
``ready()`` returns.

Only failures of the platform count (``is_platform_failure``): timeouts, 5xx, 429, THROTTLED,
connection errors, and 401/403, which a platform answers while credentials are being rotated.
An input the platform refuses for good (a 4xx, a userError) says nothing about its health.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from tillsync.connectors.outcomes import RETRYABLE, Outcome

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]

# what a platform may answer while it is unwell, or while its credentials are being rotated
PLATFORM_FAILURES: frozenset[Outcome] = RETRYABLE | {Outcome.UNAUTHORIZED}


def is_platform_failure(outcome: Outcome | str) -> bool:
    return outcome in PLATFORM_FAILURES


class BreakerState(StrEnum):
    CLOSED = "closed"  # calls go through
    OPEN = "open"  # calls wait for the open spell to end
    HALF_OPEN = "half_open"  # one probe call is out; the others wait for its answer


@dataclass(frozen=True)
class BreakerPolicy:
    threshold: int = 3  # platform failures in a row (each after the call's own retries)
    open_for: float = 5.0  # the first open spell, in seconds
    max_open: float = 60.0  # no spell longer than this

    def __post_init__(self) -> None:
        if self.threshold < 1:
            raise ValueError("threshold must be at least 1")
        if not 0 < self.open_for <= self.max_open:
            raise ValueError("the open spell needs 0 < open_for <= max_open")

    def spell(self, reopened: int) -> float:
        """The open spell after the breaker opened ``reopened`` times without closing."""
        return min(self.max_open, self.open_for * 2.0 ** min(reopened, 30))


# on_change(platform, state): for the breaker-state gauge and a log line
OnChange = Callable[[str, BreakerState], None]


class CircuitBreaker:
    """The health of one platform as its writers see it."""

    def __init__(
        self,
        platform: str,
        policy: BreakerPolicy | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        on_change: OnChange | None = None,
    ) -> None:
        self.platform = platform
        self.policy = policy or BreakerPolicy()
        self._clock = clock
        self._sleep = sleep
        self._on_change = on_change
        self.state = BreakerState.CLOSED
        self.failures = 0  # platform failures in a row
        self.reopened = 0  # opens since the breaker last closed
        self.opened_at: float | None = None
        self.open_until = 0.0
        self._probe_out = False
        self._changed = asyncio.Event()

    async def ready(self) -> None:
        """Return when a call may go: at once while closed; after the open spell as the one
        probe; otherwise once the probe's answer closes the breaker."""
        while True:
            if self.state is BreakerState.CLOSED:
                return
            if self.state is BreakerState.OPEN:
                left = self.open_until - self._clock()
                if left > 0:
                    await self._sleep(left)
                    continue
                self._set(BreakerState.HALF_OPEN)
            if not self._probe_out:
                self._probe_out = True
                return
            self._changed.clear()
            await self._changed.wait()

    def succeeded(self) -> None:
        self.failures = 0
        self.reopened = 0
        self._probe_out = False
        self.opened_at = None
        if self.state is not BreakerState.CLOSED:
            self._set(BreakerState.CLOSED)

    def failed(self, outcome: Outcome | str) -> None:
        """A call ended in ``outcome``, after its own retries. An outcome that is not the
        platform's failure ends a probe without changing the platform's health."""
        if not is_platform_failure(outcome):
            if self.state is BreakerState.HALF_OPEN:
                self._probe_out = False
                self._changed.set()
            return
        self.failures += 1
        if self.state is BreakerState.HALF_OPEN:
            self.reopened += 1
            self._open()
        elif self.state is BreakerState.CLOSED and self.failures >= self.policy.threshold:
            self._open()

    @property
    def is_open(self) -> bool:
        return self.state is not BreakerState.CLOSED

    def open_seconds(self) -> float:
        """How long the platform has been failing, for a log line or a gauge."""
        return 0.0 if self.opened_at is None else self._clock() - self.opened_at

    def _open(self) -> None:
        now = self._clock()
        if self.opened_at is None:
            self.opened_at = now
        self.open_until = now + self.policy.spell(self.reopened)
        self._probe_out = False
        self._set(BreakerState.OPEN)

    def _set(self, state: BreakerState) -> None:
        self.state = state
        self._changed.set()
        if self._on_change is not None:
            self._on_change(self.platform, state)
