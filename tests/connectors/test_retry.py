"""The shared retry policy: backoff bounds and jitter, which outcomes retry, attempts and the
deadline; and both clients following it over a mock transport."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

import httpx
import pytest

from tillsync.connectors.outcomes import RETRYABLE, CallStats, Outcome, WaitReason, outcome_of
from tillsync.connectors.retry import (
    GaveUp,
    Retry,
    RetryPolicy,
    call_with_retries,
    retry_after_seconds,
)
from tillsync.connectors.shopify.client import ShopifyClient, ShopifyConfig, ShopifyError
from tillsync.connectors.sitoo.client import SitooClient, SitooConfig, SitooError


class FakeTime:
    """A clock that moves only when slept on, and a record of the sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def failing(
    outcomes: list[Outcome], *, wait: float | None = None
) -> Callable[[int], Awaitable[int]]:
    """An attempt that fails with each of ``outcomes`` in turn, then returns its number."""

    async def attempt(n: int) -> int:
        if n <= len(outcomes):
            raise Retry(outcomes[n - 1], f"try {n}", wait=wait)
        return n

    return attempt


# -- backoff ---------------------------------------------------------------------------------


def test_backoff_ceiling_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(base=0.5, cap=3.0)
    assert [policy.ceiling(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.ceiling(100_000) == 3.0  # no overflow however long the run of failures


def test_backoff_is_jittered_between_half_and_all_of_the_ceiling() -> None:
    policy = RetryPolicy(base=0.5, cap=30.0)
    rng = random.Random(1)
    for failures in range(1, 10):
        ceiling = policy.ceiling(failures)
        waits = [policy.backoff(failures, rng) for _ in range(200)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        # spread over the range, so workers that failed together do not retry together
        assert max(waits) - min(waits) > ceiling / 4


@pytest.mark.parametrize(
    "kwargs",
    [{"attempts": 0}, {"base": 0.0}, {"base": 2.0, "cap": 1.0}, {"deadline": 0.0}],
)
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_server_wait_honours_retry_after_up_to_a_cap() -> None:
    policy = RetryPolicy(base=0.5, cap=30.0, max_server_wait=10.0)
    assert policy.server_wait("3", 1) == 3.0
    assert policy.server_wait("120", 1) == 10.0
    # no (or a garbled) Retry-After: the policy's own backoff
    assert 0.25 <= policy.server_wait(None, 1) <= 0.5
    assert 0.5 <= policy.server_wait("soon", 2) <= 1.0


def test_retry_after_parsing() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("-3") == 0.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0


# -- which outcomes retry --------------------------------------------------------------------


def test_which_outcomes_retry() -> None:
    assert {
        Outcome.THROTTLED,
        Outcome.RATE_LIMITED,
        Outcome.SERVER_ERROR,
        Outcome.TRANSPORT_ERROR,
    } == RETRYABLE
    for outcome in set(Outcome) - RETRYABLE:
        with pytest.raises(ValueError):
            Retry(outcome, "the same answer again")


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.OK),
        (204, Outcome.OK),
        (302, Outcome.CLIENT_ERROR),
        (400, Outcome.CLIENT_ERROR),
        (401, Outcome.UNAUTHORIZED),
        (403, Outcome.UNAUTHORIZED),
        (404, Outcome.CLIENT_ERROR),
        (429, Outcome.RATE_LIMITED),
        (500, Outcome.SERVER_ERROR),
        (503, Outcome.SERVER_ERROR),
    ],
)
def test_outcome_of_status(status: int, outcome: Outcome) -> None:
    assert outcome_of(status) is outcome


def test_outcome_names_are_the_metric_labels() -> None:
    # tillsync_api_calls_total{outcome=...}: dashboards and the e2e suite read these values
    assert {str(o) for o in Outcome} == {
        "ok",
        "throttled",
        "rate_limited",
        "server_error",
        "transport_error",
        "unauthorized",
        "client_error",
        "graphql_error",
    }


def test_stats_count_platform_waits_apart_from_backoff() -> None:
    stats = CallStats()
    stats.retried(Outcome.SERVER_ERROR, 0.5)
    stats.retried(Outcome.RATE_LIMITED, 2.0)
    stats.wait(WaitReason.PACING, 0.25)
    assert stats.retries == 2
    assert stats.waited[WaitReason.BACKOFF] == 0.5
    assert stats.waited[WaitReason.RETRY_AFTER] == 2.0
    assert stats.throttle_wait_seconds == 2.25


# -- the loop --------------------------------------------------------------------------------


async def test_retries_until_an_attempt_succeeds() -> None:
    t = FakeTime()
    retried: list[tuple[Outcome, float]] = []
    policy = RetryPolicy(attempts=4, base=1.0, cap=10.0)
    result = await call_with_retries(
        policy,
        failing([Outcome.SERVER_ERROR, Outcome.TRANSPORT_ERROR]),
        sleep=t.sleep,
        clock=t.clock,
        rng=random.Random(3),
        on_retry=lambda outcome, seconds: retried.append((outcome, seconds)),
    )
    assert result == 3
    assert [o for o, _ in retried] == [Outcome.SERVER_ERROR, Outcome.TRANSPORT_ERROR]
    assert [s for _, s in retried] == t.sleeps
    assert 0.5 <= t.sleeps[0] <= 1.0 and 1.0 <= t.sleeps[1] <= 2.0


async def test_gives_up_after_its_attempts_without_a_last_wait() -> None:
    t = FakeTime()
    with pytest.raises(GaveUp) as info:
        await call_with_retries(
            RetryPolicy(attempts=3),
            failing([Outcome.SERVER_ERROR] * 5),
            sleep=t.sleep,
            clock=t.clock,
        )
    assert info.value.attempts == 3
    assert info.value.last.outcome is Outcome.SERVER_ERROR
    assert info.value.last.message == "try 3"
    assert len(t.sleeps) == 2


async def test_a_wait_the_platform_set_replaces_the_backoff() -> None:
    t = FakeTime()
    await call_with_retries(
        RetryPolicy(attempts=3, base=1.0),
        failing([Outcome.RATE_LIMITED] * 2, wait=7.0),
        sleep=t.sleep,
        clock=t.clock,
    )
    assert t.sleeps == [7.0, 7.0]


async def test_other_exceptions_are_not_retried() -> None:
    t = FakeTime()
    tries: list[int] = []

    async def attempt(n: int) -> None:
        tries.append(n)
        raise KeyError("a bug, not a platform failure")

    with pytest.raises(KeyError):
        await call_with_retries(RetryPolicy(), attempt, sleep=t.sleep, clock=t.clock)
    assert tries == [1] and t.sleeps == []


async def test_no_retry_starts_past_the_deadline() -> None:
    t = FakeTime()
    policy = RetryPolicy(attempts=100, deadline=10.0)
    with pytest.raises(GaveUp) as info:
        await call_with_retries(
            policy, failing([Outcome.RATE_LIMITED] * 100, wait=3.0), sleep=t.sleep, clock=t.clock
        )
    # retries at 3, 6 and 9 s; the next would start at 12 s, past the deadline
    assert t.sleeps == [3.0, 3.0, 3.0]
    assert info.value.attempts == 4
    assert t.now <= policy.deadline  # type: ignore[operator]


async def test_a_zero_wait_retries_at_once() -> None:
    t = FakeTime()
    result = await call_with_retries(
        RetryPolicy(attempts=2),
        failing([Outcome.THROTTLED], wait=0.0),
        sleep=t.sleep,
        clock=t.clock,
    )
    assert result == 2 and t.sleeps == []


# -- both clients follow it ------------------------------------------------------------------


def _transport(answers: list[httpx.Response], seen: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0)

    return httpx.MockTransport(handle)


async def test_shopify_honours_retry_after_and_backs_off_on_5xx() -> None:
    t = FakeTime()
    seen: list[httpx.Request] = []
    answers = [
        httpx.Response(429, headers={"Retry-After": "4"}),
        httpx.Response(503),
        httpx.Response(200, json={"data": {"shop": {"id": "gid://shopify/Shop/1"}}}),
    ]
    config = ShopifyConfig(
        graphql_url="https://shop.example/admin/api/2026-04/graphql.json",
        access_token="shpat_x",
        retry=RetryPolicy(attempts=3, base=1.0, max_server_wait=60.0),
    )
    async with ShopifyClient(
        config, transport=_transport(answers, seen), sleep=t.sleep, monotonic=t.clock
    ) as c:
        data = await c.execute("{ shop { id } }")
    assert data["shop"]["id"] == "gid://shopify/Shop/1"
    assert t.sleeps[0] == 4.0 and 1.0 <= t.sleeps[1] <= 2.0
    assert c.stats.calls == {Outcome.RATE_LIMITED: 1, Outcome.SERVER_ERROR: 1, Outcome.OK: 1}
    assert seen[0].headers["X-Shopify-Access-Token"] == "shpat_x"
    assert "shpat_x" not in repr(config)


async def test_shopify_gives_up_with_the_last_outcome() -> None:
    t = FakeTime()
    config = ShopifyConfig(
        graphql_url="https://shop.example/graphql.json",
        access_token="t",
        retry=RetryPolicy(attempts=2),
    )
    answers = [httpx.Response(503), httpx.Response(502)]
    async with ShopifyClient(
        config, transport=_transport(answers, []), sleep=t.sleep, monotonic=t.clock
    ) as c:
        with pytest.raises(ShopifyError) as info:
            await c.execute("{ shop { id } }")
    assert info.value.reason == "server_error" and info.value.attempts == 2
    assert "gave up after 2 attempts (HTTP 502)" in str(info.value)


async def test_sitoo_retries_a_get_but_not_a_post() -> None:
    t = FakeTime()
    seen: list[httpx.Request] = []
    answers = [httpx.Response(503), httpx.Response(200, json={"ok": True}), httpx.Response(503)]
    config = SitooConfig(
        account_url="https://api.example/v2/accounts/1",
        api_id="1-1",
        api_password="pw",
        requests_per_second=0,
        retry=RetryPolicy(attempts=3, base=1.0),
    )
    async with SitooClient(config, transport=_transport(answers, seen), sleep=t.sleep) as c:
        assert await c.request("GET", "/sites/1/stores.json") == {"ok": True}
        with pytest.raises(SitooError) as err:
            await c.request("POST", "/sites/1/products.json", json=[])
    assert err.value.statuscode == 503
    assert [r.method for r in seen] == ["GET", "GET", "POST"]
    assert len(t.sleeps) == 1 and 0.5 <= t.sleeps[0] <= 1.0
    assert c.stats.retries == 1
