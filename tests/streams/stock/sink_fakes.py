"""What the sink tests share: a manual clock for the breaker, records that can be acknowledged,
an acknowledgement that records them, and a condition waited on with a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import faust

from tillsync.connectors.breaker import BreakerPolicy, CircuitBreaker
from tillsync.streams import metrics
from tillsync.streams.stock.sink_breaker import BreakerReport, sink_breaker


class ManualClock:
    """The breaker's clock and sleep: a sleep moves the clock on at once and lets the other
    tasks run, so an open spell passes without a real wait."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def breaker(
    platform: metrics.Platform, clock: ManualClock, report: BreakerReport, threshold: int = 3
) -> CircuitBreaker:
    return sink_breaker(
        platform,
        BreakerPolicy(threshold=threshold, open_for=5.0, max_open=60.0),
        clock=clock,
        sleep=clock.sleep,
        report=report,
    )


@dataclass(frozen=True)
class FakeMessage:
    partition: int
    offset: int | None = None


@dataclass(eq=False)
class FakeEvent:
    """A record as Faust hands it to an agent: its bytes, headers and partition."""

    value: bytes
    headers: Mapping[str, bytes] = field(default_factory=dict)
    message: FakeMessage = field(default_factory=lambda: FakeMessage(0))


def event(
    value: bytes,
    partition: int = 0,
    headers: Mapping[str, bytes] | None = None,
    offset: int | None = None,
) -> faust.EventT:
    message = FakeMessage(partition, offset)
    return cast(faust.EventT, FakeEvent(value, dict(headers or {}), message))


@dataclass
class Acks:
    """The sink's `ack`: the records acknowledged, in order."""

    events: list[Any] = field(default_factory=list)

    async def __call__(self, event: faust.EventT) -> None:
        self.events.append(event)


async def until(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.001)
