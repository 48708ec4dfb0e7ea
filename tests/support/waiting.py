"""Waiting on conditions with deadlines instead of sleeping a fixed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class Timeout(AssertionError):
    pass


def wait_until(
    condition: Callable[[], T], timeout: float, interval: float = 0.1, what: str = "condition"
) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = condition()
        if last:
            return last
        if time.monotonic() > deadline:
            raise Timeout(f"{what} not met within {timeout}s (last value: {last!r})")
        time.sleep(interval)


async def async_wait_until(
    condition: Callable[[], Awaitable[T]],
    timeout: float,
    interval: float = 0.1,
    what: str = "condition",
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        last = await condition()
        if last:
            return last
        if time.monotonic() > deadline:
            raise Timeout(f"{what} not met within {timeout}s (last value: {last!r})")
        await asyncio.sleep(interval)
