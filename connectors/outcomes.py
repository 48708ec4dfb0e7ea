"""What one call to a platform came to, in the names both clients record and the metrics use.

Each answer is one ``Outcome`` (the ``outcome`` label of ``tillsync_api_calls_total``); each
pause is one ``WaitReason``. ``CallStats`` keeps a client's totals of both.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


class Outcome(StrEnum):
    OK = "ok"
    # Shopify's cost bucket turned the call away (HTTP 200, errors[].extensions.code THROTTLED)
    THROTTLED = "throttled"
    RATE_LIMITED = "rate_limited"  # HTTP 429
    SERVER_ERROR = "server_error"  # HTTP 5xx
    TRANSPORT_ERROR = "transport_error"  # no answer: connecting, sending or reading failed
    UNAUTHORIZED = "unauthorized"  # HTTP 401 or 403
    CLIENT_ERROR = "client_error"  # any other answer that is not a success
    GRAPHQL_ERROR = "graphql_error"  # HTTP 200 whose errors are not THROTTLED


# The platform may answer differently if asked again; the others repeat the same answer.
RETRYABLE: frozenset[Outcome] = frozenset(
    {Outcome.THROTTLED, Outcome.RATE_LIMITED, Outcome.SERVER_ERROR, Outcome.TRANSPORT_ERROR}
)


def outcome_of(status: int) -> Outcome:
    """The outcome an HTTP status means before the body is read."""
    if status == 429:
        return Outcome.RATE_LIMITED
    if status >= 500:
        return Outcome.SERVER_ERROR
    if status in (401, 403):
        return Outcome.UNAUTHORIZED
    if 200 <= status < 300:
        return Outcome.OK
    # a redirect too: httpx does not follow them, so the configured URL is wrong
    return Outcome.CLIENT_ERROR


class WaitReason(StrEnum):
    # before a call, by our own estimate of the platform's limit (Shopify's cost bucket,
    # Sitoo's request rate)
    PACING = "pacing"
    THROTTLED = "throttled"  # for Shopify's cost bucket to refill after THROTTLED
    RETRY_AFTER = "retry_after"  # what a 429 asked for
    BACKOFF = "backoff"  # between tries after a failure


# on_call(platform, outcome, seconds): one per answer (or missing answer), retries included
CallHook = Callable[[str, Outcome, float], None]


def _no_waits() -> dict[WaitReason, float]:
    return dict.fromkeys(WaitReason, 0.0)


@dataclass
class CallStats:
    """One client's answers by outcome, the retries it made and the seconds it waited."""

    calls: Counter[Outcome] = field(default_factory=Counter)
    retries: int = 0
    waited: dict[WaitReason, float] = field(default_factory=_no_waits)

    @property
    def throttle_wait_seconds(self) -> float:
        """Seconds spent on the platform's limits: a backoff after a failure is not one."""
        return sum(s for reason, s in self.waited.items() if reason is not WaitReason.BACKOFF)

    def answered(self, outcome: Outcome) -> None:
        self.calls[outcome] += 1

    def wait(self, reason: WaitReason, seconds: float) -> None:
        self.waited[reason] += seconds

    def retried(self, outcome: Outcome, seconds: float) -> None:
        """A failed try is tried again after ``seconds``."""
        self.retries += 1
        self.wait(_RETRY_WAITS.get(outcome, WaitReason.BACKOFF), seconds)


# a retry after these waits on the platform's say, not on our backoff
_RETRY_WAITS = {
    Outcome.RATE_LIMITED: WaitReason.RETRY_AFTER,
    Outcome.THROTTLED: WaitReason.THROTTLED,
}
