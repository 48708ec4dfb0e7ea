"""Events for a SKU that one platform knows and the other does not: its stock is not synced,
which must not be silent. Every such event is counted (``tillsync_unknown_sku_events_total``);
each SKU is logged once per ``log_every`` seconds, so a busy SKU cannot flood the log."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from tillsync.streams import metrics

log = logging.getLogger("tillsync.skus")

LOG_EVERY = 3600.0
REMEMBER_AT_MOST = 10_000  # SKUs whose last log line is remembered; the oldest go first

_OTHER = {metrics.Platform.SITOO: "Shopify", metrics.Platform.SHOPIFY: "Sitoo"}


class UnknownSkus:
    """When each unknown SKU was last logged, per platform the event came from."""

    def __init__(
        self,
        *,
        log_every: float = LOG_EVERY,
        remember_at_most: int = REMEMBER_AT_MOST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log_every = log_every
        self.remember_at_most = remember_at_most
        self._clock = clock
        self._logged: dict[tuple[metrics.Platform, str], float] = {}

    def note(self, platform: metrics.Platform, sku: str) -> bool:
        """One event of `platform` for a SKU the other platform does not know; True when it
        was logged."""
        metrics.unknown_skus.labels(platform=platform.value).inc()
        now = self._clock()
        key = (platform, sku)
        last = self._logged.get(key)
        if last is not None and now - last < self.log_every:
            return False
        self._logged.pop(key, None)  # re-inserted last: the dict stays in logging order
        self._logged[key] = now
        while len(self._logged) > self.remember_at_most:
            del self._logged[next(iter(self._logged))]
        log.warning(
            "SKU %s is in %s but not in %s: its stock is not synced "
            "(logged once per %.0f s per SKU; tillsync_unknown_sku_events_total counts them all)",
            sku,
            platform.value.capitalize(),
            _OTHER[platform],
            self.log_every,
        )
        return True
