"""The Events SPI push, as sitoo-api.md §3 describes it.

Sitoo POSTs JSON arrays of up to 10 events in chronological order to the subscriber and waits
up to 15 s for the answer. Delivery is blocking: nothing newer is sent until the current batch
is accepted (2xx) or dropped. 429, 503, 504, timeouts and connection failures are retried
(Sitoo: ~10 times in the first hour, then hourly, for ~24 h; the simulator's schedule is a
constructor argument so tests and demos need not wait hours); any other status drops the
batch. Duplicates can be injected through Faults.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from .faults import Faults

log = logging.getLogger(__name__)

MAX_BATCH = 10
ANSWER_TIMEOUT_S = 15.0
RETRY_STATUSES = frozenset({429, 503, 504})
# Sitoo retries ~10 times in the first hour then hourly; scaled down for local use.
DEFAULT_RETRY_DELAYS_S: tuple[float, ...] = (0.5, 1, 2, 5, 10, 30, 60)
RETRY_HORIZON_S = 24 * 3600.0


@dataclass
class PushStats:
    emitted: int = 0
    delivered_events: int = 0
    delivered_batches: int = 0
    attempts: int = 0
    retries: int = 0
    dropped_events: int = 0
    duplicate_batches: int = 0


class EventsPusher:
    def __init__(
        self,
        url: str | None,
        *,
        account_id: int,
        auth: tuple[str, str] | None = None,
        faults: Faults | None = None,
        rng: random.Random | None = None,
        answer_timeout: float = ANSWER_TIMEOUT_S,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS_S,
        retry_horizon: float = RETRY_HORIZON_S,
        clock: Callable[[], float] = time.time,
        history: int = 10_000,
    ) -> None:
        self.url = url
        self.account_id = account_id
        self.headers: dict[str, str] = {}
        if auth:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"
        self.faults = faults or Faults()
        self.rng = rng or random.Random()
        self.answer_timeout = answer_timeout
        self.retry_delays = tuple(retry_delays) or (1.0,)
        self.retry_horizon = retry_horizon
        self.clock = clock
        self.queue: deque[dict[str, Any]] = deque()
        self.history: deque[dict[str, Any]] = deque(maxlen=history)
        self.stats = PushStats()
        self.last_status: int | str | None = None
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    # -- producing --------------------------------------------------------------------------

    def envelope(self, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "event_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "event_type": event_type,
            "event_date": int(self.clock()),
            "account_id": self.account_id,
            "data": data,
        }

    def emit(self, event_type: str, data: dict[str, Any]) -> None:
        event = self.envelope(event_type, data)
        self.stats.emitted += 1
        self.history.append(event)
        if self.url:
            self.queue.append(event)
            self._idle.clear()
            self._wakeup.set()

    @property
    def pending(self) -> int:
        return len(self.queue)

    async def wait_idle(self, timeout: float) -> bool:
        """True once every queued event was delivered or dropped."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    # -- delivering -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.answer_timeout)
            )
            self._task = asyncio.create_task(self._run(), name="sitoo-events-push")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        while True:
            if not self.queue:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = [self.queue[i] for i in range(min(MAX_BATCH, len(self.queue)))]
            await self._deliver(batch)
            for _ in batch:
                self.queue.popleft()

    async def _deliver(self, batch: list[dict[str, Any]]) -> None:
        first = time.monotonic()
        attempt = 0
        while True:
            delay = self.faults.event_delay(self.rng)
            if delay:
                await asyncio.sleep(delay)
            outcome = await self._post(batch)
            if outcome == "ok":
                self.stats.delivered_events += len(batch)
                self.stats.delivered_batches += 1
                if self.rng.random() < self.faults.event_duplicate_rate:
                    self.stats.duplicate_batches += 1
                    await self._post(batch)
                return
            if outcome == "drop" or time.monotonic() - first > self.retry_horizon:
                self.stats.dropped_events += len(batch)
                log.warning("events SPI: dropped %d events (%s)", len(batch), self.last_status)
                return
            self.stats.retries += 1
            await asyncio.sleep(self.retry_delays[min(attempt, len(self.retry_delays) - 1)])
            attempt += 1

    async def _post(self, batch: list[dict[str, Any]]) -> str:
        assert self._session is not None and self.url
        self.stats.attempts += 1
        try:
            async with self._session.post(self.url, json=batch, headers=self.headers) as resp:
                await resp.read()
                self.last_status = resp.status
                if 200 <= resp.status < 300:
                    return "ok"
                return "retry" if resp.status in RETRY_STATUSES else "drop"
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            # no answer within the window: Sitoo requeues the batch
            self.last_status = type(exc).__name__
            return "retry"

    def describe(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "pending": self.pending,
            "last_status": self.last_status,
            **self.stats.__dict__,
        }
