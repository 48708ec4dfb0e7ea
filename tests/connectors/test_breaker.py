"""The per-platform circuit breaker on a manual clock: no real waits."""

from __future__ import annotations

import asyncio

import pytest

from tillsync.connectors.breaker import BreakerPolicy, BreakerState, CircuitBreaker
from tillsync.connectors.outcomes import Outcome


class ManualClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class RecordingBreaker(CircuitBreaker):
    def __init__(self, clock: ManualClock, policy: BreakerPolicy) -> None:
        self.changes: list[BreakerState] = []
        super().__init__(
            "shopify",
            policy,
            clock=clock,
            sleep=clock.sleep,
            on_change=lambda _platform, state: self.changes.append(state),
        )


def breaker(
    clock: ManualClock, threshold: int = 3, open_for: float = 5.0, max_open: float = 60.0
) -> RecordingBreaker:
    return RecordingBreaker(clock, BreakerPolicy(threshold, open_for, max_open))


async def test_it_opens_after_the_threshold_of_platform_failures_in_a_row() -> None:
    clock = ManualClock()
    b = breaker(clock, threshold=3, open_for=5.0)
    b.failed(Outcome.SERVER_ERROR)
    b.failed(Outcome.TRANSPORT_ERROR)
    assert b.state is BreakerState.CLOSED
    await b.ready()
    assert clock.slept == []
    b.failed(Outcome.UNAUTHORIZED)  # a 401 while credentials rotate counts
    assert b.state is BreakerState.OPEN
    await b.ready()  # waits the spell out, then goes as the probe
    assert clock.slept == [5.0]
    assert b.state is BreakerState.HALF_OPEN


async def test_a_success_between_failures_starts_the_count_again() -> None:
    b = breaker(ManualClock(), threshold=2)
    b.failed(Outcome.THROTTLED)
    b.succeeded()
    b.failed(Outcome.RATE_LIMITED)
    assert b.state is BreakerState.CLOSED


async def test_an_input_refused_for_good_says_nothing_about_the_platform() -> None:
    b = breaker(ManualClock(), threshold=1)
    b.failed(Outcome.CLIENT_ERROR)
    b.failed(Outcome.GRAPHQL_ERROR)
    assert b.state is BreakerState.CLOSED


async def test_a_failed_probe_opens_it_again_for_longer_and_a_good_one_closes_it() -> None:
    clock = ManualClock()
    b = breaker(clock, threshold=1, open_for=5.0, max_open=12.0)
    b.failed(Outcome.SERVER_ERROR)
    await b.ready()
    b.failed(Outcome.SERVER_ERROR)  # the probe fails
    assert b.state is BreakerState.OPEN
    await b.ready()
    b.failed(Outcome.SERVER_ERROR)
    await b.ready()
    assert clock.slept == [5.0, 10.0, 12.0]  # doubling, capped
    assert b.open_seconds() == pytest.approx(27.0)
    b.succeeded()
    assert b.state is BreakerState.CLOSED
    assert b.open_seconds() == 0.0
    b.failed(Outcome.SERVER_ERROR)
    await b.ready()
    assert clock.slept[-1] == 5.0  # a closed breaker starts from the first spell again
    assert b.changes == [
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.CLOSED,
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
    ]


async def test_only_one_probe_is_out_and_the_others_go_when_it_succeeds() -> None:
    clock = ManualClock()
    b = breaker(clock, threshold=1, open_for=1.0)
    b.failed(Outcome.SERVER_ERROR)
    await b.ready()  # the probe
    waiting = asyncio.create_task(b.ready())
    await asyncio.sleep(0)
    assert not waiting.done()
    b.succeeded()
    await asyncio.wait_for(waiting, 1.0)


async def test_a_probe_refused_for_its_input_lets_another_caller_probe() -> None:
    clock = ManualClock()
    b = breaker(clock, threshold=1, open_for=1.0)
    b.failed(Outcome.SERVER_ERROR)
    await b.ready()
    waiting = asyncio.create_task(b.ready())
    await asyncio.sleep(0)
    b.failed(Outcome.CLIENT_ERROR)
    await asyncio.wait_for(waiting, 1.0)
    assert b.state is BreakerState.HALF_OPEN


def test_the_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        BreakerPolicy(threshold=0)
    with pytest.raises(ValueError):
        BreakerPolicy(open_for=10.0, max_open=5.0)
