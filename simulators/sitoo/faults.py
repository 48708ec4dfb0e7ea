"""Faults on demand: latency, 5xx, 429 storms, outages, Events SPI duplicates and delays."""

from __future__ import annotations

import math
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any

SPEC_KEYS = frozenset(
    {
        "reset",
        "latency_ms",
        "event_delay_ms",
        "error_rate",
        "error_status",
        "retry_after_s",
        "event_duplicate_rate",
        "storm_every_s",
        "storm_length_s",
        "throttle_for_s",
        "outage_for_s",
    }
)


@dataclass
class Faults:
    latency_ms: tuple[float, float] = (0.0, 0.0)  # uniform range added to every REST answer
    error_rate: float = 0.0  # share of REST calls answered with error_status
    error_status: int = 500
    throttle_until: float = 0.0  # monotonic deadline of a one-off 429 storm
    storm_every_s: float = 0.0  # recurring 429 storms: one every ... seconds
    storm_length_s: float = 0.0  # ... lasting this long
    retry_after_s: float = 0.0  # Retry-After during storms; 0 = until the storm ends
    outage_until: float = 0.0  # monotonic deadline of a 503 outage
    event_duplicate_rate: float = 0.0  # share of delivered event batches sent twice
    event_delay_ms: tuple[float, float] = (0.0, 0.0)  # wait before each push
    started: float = field(default_factory=time.monotonic)

    def update(self, spec: dict[str, Any], now: float | None = None) -> None:
        """Apply a control-API spec; ``*_for_s`` keys open a window starting now."""
        now = time.monotonic() if now is None else now
        unknown = set(spec) - SPEC_KEYS
        if unknown:
            # a misspelt fault would otherwise silently do nothing
            raise ValueError(
                f"unknown fault settings {sorted(unknown)}; known: {sorted(SPEC_KEYS)}"
            )
        if spec.get("reset"):
            fresh = Faults()
            for name in fresh.__dataclass_fields__:
                setattr(self, name, getattr(fresh, name))
        for name in ("latency_ms", "event_delay_ms"):
            if name in spec:
                low, high = (
                    spec[name] if isinstance(spec[name], list | tuple) else (spec[name], spec[name])
                )
                setattr(self, name, (float(low), float(high)))
        for name in (
            "error_rate",
            "retry_after_s",
            "event_duplicate_rate",
            "storm_every_s",
            "storm_length_s",
        ):
            if name in spec:
                setattr(self, name, float(spec[name]))
        if "storm_every_s" in spec:
            self.started = now
        if "error_status" in spec:
            self.error_status = int(spec["error_status"])
        if "throttle_for_s" in spec:
            self.throttle_until = now + float(spec["throttle_for_s"])
        if "outage_for_s" in spec:
            self.outage_until = now + float(spec["outage_for_s"])

    def throttled_for(self, now: float) -> float:
        """Seconds left in the current 429 storm, 0 when none is on."""
        if now < self.throttle_until:
            return self.throttle_until - now
        if self.storm_every_s > 0 and self.storm_length_s > 0:
            into = (now - self.started) % self.storm_every_s
            if into < self.storm_length_s:
                return self.storm_length_s - into
        return 0.0

    def retry_after(self, now: float) -> int:
        left = self.throttled_for(now)
        if self.retry_after_s > 0:
            left = min(left, self.retry_after_s) if left else self.retry_after_s
        return max(1, math.ceil(left))

    def in_outage(self, now: float) -> bool:
        return now < self.outage_until

    def latency(self, rng: random.Random) -> float:
        low, high = self.latency_ms
        return rng.uniform(low, high) / 1000 if high > 0 else 0.0

    def event_delay(self, rng: random.Random) -> float:
        low, high = self.event_delay_ms
        return rng.uniform(low, high) / 1000 if high > 0 else 0.0

    def describe(self, now: float | None = None) -> dict[str, Any]:
        now = time.monotonic() if now is None else now
        out = asdict(self)
        out["throttle_left_s"] = round(self.throttled_for(now), 3)
        out["outage_left_s"] = round(max(0.0, self.outage_until - now), 3)
        for name in ("throttle_until", "outage_until", "started"):
            out.pop(name)
        return out
