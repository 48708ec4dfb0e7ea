"""The one retry policy of both platform clients: which failures are tried again, how long to
wait before the next try, and when to give up.

A client runs each call through ``call_with_retries``. Inside a try, a failure another try may
mend raises ``Retry`` (only the ``RETRYABLE`` outcomes can); any other exception ends the call at
once. A wait the platform sets itself (Retry-After) travels on the ``Retry``; every other retry
backs off by ``RetryPolicy.backoff``. The loop is tenacity's: its sleep, clock and hooks are ours
to inject, which the clients' manual-clock tests and per-client counters need.

Pacing the platform asks for without failing the call (Shopify's THROTTLED, Sitoo's 429 budget)
stays inside each client's try and costs no attempt.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from tillsync.connectors.outcomes import RETRYABLE, Outcome

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]
# on_retry(outcome, seconds): a failed try is tried again after `seconds`
OnRetry = Callable[[Outcome, float], None]

_rng = random.Random()
# 2**63 seconds is past any cap; a larger exponent would overflow the float
_MAX_DOUBLINGS = 63


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently one call is tried."""

    attempts: int = 8  # tries in all, the first one included
    base: float = 0.5  # the first backoff's ceiling, in seconds; each later one doubles
    cap: float = 30.0  # no backoff ceiling above this
    # seconds from the first try after which no retry starts; None: attempts alone decide
    deadline: float | None = None
    max_server_wait: float = 60.0  # a longer Retry-After is cut to this

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if not 0 < self.base <= self.cap:
            raise ValueError("backoff needs 0 < base <= cap")
        if self.deadline is not None and self.deadline <= 0:
            raise ValueError("deadline must be positive (or None)")
        if self.max_server_wait < 0:
            raise ValueError("max_server_wait must not be negative")

    def ceiling(self, failures: int) -> float:
        """The longest backoff after the ``failures``-th failed try in a row (1-based)."""
        return min(self.cap, self.base * 2.0 ** min(max(failures, 1) - 1, _MAX_DOUBLINGS))

    def backoff(self, failures: int, rng: random.Random | None = None) -> float:
        """Between half and all of the ceiling. The jitter spreads the retries of many workers
        after a shared outage; the floor keeps a failing platform from being asked at once."""
        ceiling = self.ceiling(failures)
        return (rng or _rng).uniform(ceiling / 2, ceiling)

    def server_wait(
        self, retry_after: str | None, failures: int, rng: random.Random | None = None
    ) -> float:
        """A 429's wait: its Retry-After (cut to ``max_server_wait``), else the backoff."""
        asked = retry_after_seconds(retry_after)
        if asked is None:
            return self.backoff(failures, rng)
        return min(self.max_server_wait, asked)


class Retry(Exception):
    """Raised inside a try: it failed in a way another try may mend."""

    def __init__(
        self,
        outcome: Outcome,
        message: str,
        *,
        wait: float | None = None,
        error: Exception | None = None,
    ) -> None:
        if outcome not in RETRYABLE:
            raise ValueError(f"{outcome} is not retried")
        super().__init__(f"{outcome}: {message}")
        self.outcome = outcome
        self.message = message
        # seconds the platform asked for; None: the policy's backoff
        self.wait = wait
        # what the caller is told if no try is left; None: the client builds it
        self.error = error


class GaveUp(Exception):
    """Every try the policy allows failed; ``last`` is the last try's failure."""

    def __init__(self, last: Retry, attempts: int) -> None:
        super().__init__(f"gave up after {attempts} attempts ({last.message})")
        self.last = last
        self.attempts = attempts


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds, from either delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


async def call_with_retries(
    policy: RetryPolicy,
    attempt: Callable[[int], Awaitable[T]],
    *,
    sleep: Sleep = asyncio.sleep,
    clock: Clock = time.monotonic,
    rng: random.Random | None = None,
    on_retry: OnRetry | None = None,
) -> T:
    """``attempt(n)`` for n = 1, 2, ... until it returns, raises something other than ``Retry``,
    or the policy allows no further try: then ``GaveUp``."""
    began = clock()
    tries = 0

    async def one() -> T:
        nonlocal tries
        tries += 1
        return await attempt(tries)

    def failure(state: RetryCallState) -> Retry:
        assert state.outcome is not None
        exc = state.outcome.exception()
        assert isinstance(exc, Retry)  # the retry predicate lets nothing else through
        return exc

    def wait(state: RetryCallState) -> float:
        asked = failure(state).wait
        return policy.backoff(state.attempt_number, rng) if asked is None else asked

    def stop(state: RetryCallState) -> bool:
        if state.attempt_number >= policy.attempts:
            return True
        # a retry that could only start past the deadline is not waited for
        ends = clock() + state.upcoming_sleep - began
        return policy.deadline is not None and ends > policy.deadline

    def before_sleep(state: RetryCallState) -> None:
        if on_retry is not None:
            on_retry(failure(state).outcome, state.upcoming_sleep)

    async def pause(seconds: float) -> None:
        if seconds > 0:
            await sleep(seconds)

    retrying = AsyncRetrying(
        retry=retry_if_exception_type(Retry),
        stop=stop,
        wait=wait,
        before_sleep=before_sleep,
        sleep=pause,
        reraise=True,
    )
    try:
        return await retrying(one)
    except Retry as last:
        raise GaveUp(last, tries) from last
