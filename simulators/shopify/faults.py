"""Faults the simulator injects on demand: slow answers, 5xx, 429 storms, outages, spells of
401 (a token revoked or rotated under the app), and webhook duplicates, delays, reordering and
losses.

``Faults`` is what Python callers and ``POST /_sim/faults`` set; windows are given as a length
in seconds and turned into deadlines on the simulator's clock, so a test's manual clock also
drives them.
"""

from __future__ import annotations

import random

from pydantic import BaseModel, ConfigDict, Field

from tillsync_sim.shopify.clock import Clock


class Faults(BaseModel):
    """Fault settings; every field is optional in a ``POST /_sim/faults`` body."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    latency_ms: float = Field(0.0, ge=0, description="fixed latency added to every API call")
    latency_jitter_ms: float = Field(0.0, ge=0, description="plus uniform 0..jitter ms")
    error_rate: float = Field(0.0, ge=0, le=1, description="share of API calls answered 5xx")
    error_status: int = Field(500, ge=500, le=599, description="status used for error_rate")
    storm_429_seconds: float = Field(
        0.0, ge=0, description="answer every API call 429 for this long, from now"
    )
    outage_seconds: float = Field(
        0.0, ge=0, description="answer every API call 503 for this long, from now"
    )
    unauthorized_seconds: float = Field(
        0.0,
        ge=0,
        description="answer every API call 401 (invalid access token) for this long, from now;"
        " it wins over an outage open at the same time",
    )
    webhook_duplicate_rate: float = Field(
        0.0, ge=0, le=1, description="share of webhook deliveries sent twice"
    )
    webhook_delay_ms: float = Field(0.0, ge=0, description="fixed delay before a delivery")
    webhook_delay_jitter_ms: float = Field(0.0, ge=0, description="plus uniform 0..jitter ms")
    webhook_reorder_rate: float = Field(
        0.0, ge=0, le=1, description="share of deliveries held back so later ones overtake"
    )
    webhook_reorder_window_ms: float = Field(
        500.0, ge=0, description="how long a reordered delivery is held back"
    )
    webhook_lost_topics: list[str] = Field(
        default_factory=list,
        description="topics whose deliveries never arrive, as when Shopify gave up retrying "
        "(e.g. refunds/create)",
    )


class FaultState:
    """Current faults plus the deadlines of the time-boxed ones."""

    def __init__(self, clock: Clock, rng: random.Random) -> None:
        self.clock = clock
        self.rng = rng
        self.faults = Faults()
        self.storm_until = 0.0
        self.outage_until = 0.0
        self.unauthorized_until = 0.0

    def set(self, faults: Faults) -> None:
        self.faults = faults
        now = self.clock.monotonic()
        self.storm_until = now + faults.storm_429_seconds if faults.storm_429_seconds else 0.0
        self.outage_until = now + faults.outage_seconds if faults.outage_seconds else 0.0
        self.unauthorized_until = (
            now + faults.unauthorized_seconds if faults.unauthorized_seconds else 0.0
        )

    def update(self, **changes: object) -> Faults:
        """Change some faults; a window restarts only when its length is among the changes."""
        merged = self.faults.model_dump()
        merged.update(changes)
        faults = Faults.model_validate(merged)
        storm, outage, unauthorized = self.storm_until, self.outage_until, self.unauthorized_until
        self.set(faults)
        if "storm_429_seconds" not in changes:
            self.storm_until = storm
        if "outage_seconds" not in changes:
            self.outage_until = outage
        if "unauthorized_seconds" not in changes:
            self.unauthorized_until = unauthorized
        return faults

    def clear(self) -> None:
        self.set(Faults())

    def latency_seconds(self) -> float:
        f = self.faults
        if not f.latency_ms and not f.latency_jitter_ms:
            return 0.0
        return (f.latency_ms + self.rng.uniform(0, f.latency_jitter_ms)) / 1000.0

    def outage_remaining(self) -> float:
        return max(0.0, self.outage_until - self.clock.monotonic())

    def unauthorized_remaining(self) -> float:
        return max(0.0, self.unauthorized_until - self.clock.monotonic())

    def storm_remaining(self) -> float:
        return max(0.0, self.storm_until - self.clock.monotonic())

    def random_error(self) -> int | None:
        rate = self.faults.error_rate
        if rate and self.rng.random() < rate:
            return self.faults.error_status
        return None

    def webhook_delay_seconds(self) -> float:
        f = self.faults
        delay = f.webhook_delay_ms + self.rng.uniform(0, f.webhook_delay_jitter_ms)
        if f.webhook_reorder_rate and self.rng.random() < f.webhook_reorder_rate:
            delay += f.webhook_reorder_window_ms
        return delay / 1000.0

    def webhook_lost(self, topic: str) -> bool:
        return topic in self.faults.webhook_lost_topics

    def webhook_duplicate(self) -> bool:
        rate = self.faults.webhook_duplicate_rate
        return bool(rate) and self.rng.random() < rate
