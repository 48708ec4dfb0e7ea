"""What the agents of one worker share at run time: the platform clients, the location map,
the SKU index and the echoes of its own writes. Built once per worker process."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from tillsync.connectors.shopify.client import ShopifyClient
from tillsync.connectors.sitoo.client import SitooClient
from tillsync.schemas.locations import LocationMap, load_location_map
from tillsync.schemas.settings import ConfigError, Settings
from tillsync.streams import metrics
from tillsync.streams.echoes import Echoes
from tillsync.streams.skus import SkuIndex


def record_call(platform: str, outcome: str, seconds: float) -> None:
    metrics.api_calls.labels(platform=platform, outcome=outcome).inc()
    metrics.api_call_seconds.labels(platform=platform).observe(seconds)


def _sitoo_call(*, platform: str, outcome: str, seconds: float) -> None:
    record_call(platform, outcome, seconds)


def _sitoo_wait(*, platform: str, reason: str, seconds: float) -> None:
    metrics.throttle_wait.labels(platform=platform).inc(seconds)


@dataclass
class Runtime:
    settings: Settings
    locations: LocationMap
    skus: SkuIndex = field(default_factory=SkuIndex)
    echoes: Echoes = field(default_factory=Echoes)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    ledger_nudge: asyncio.Event = field(default_factory=asyncio.Event)
    # (newest ledger id, events) taken at start: the ledger poller sends it on first start
    snapshot: tuple[int, list[Any]] | None = None
    _shopify: ShopifyClient | None = None
    _sitoo: SitooClient | None = None
    _throttle_seen: float = 0.0

    @property
    def shopify(self) -> ShopifyClient:
        if self._shopify is None:
            self._shopify = ShopifyClient(self.settings, on_call=record_call)
        return self._shopify

    @property
    def sitoo(self) -> SitooClient:
        if self._sitoo is None:
            self._sitoo = SitooClient(self.settings, on_call=_sitoo_call, on_wait=_sitoo_wait)
        return self._sitoo

    def export_client_stats(self) -> None:
        if self._shopify is not None:
            waited = self._shopify.stats.throttle_wait_seconds
            if waited > self._throttle_seen:
                metrics.throttle_wait.labels(platform="shopify").inc(waited - self._throttle_seen)
                self._throttle_seen = waited


def load_runtime(settings: Settings) -> Runtime:
    """Validate what the stock flow needs before the worker starts."""
    if settings.locations_file is None:
        raise ConfigError(
            "locations_file is not set: set TILLSYNC_LOCATIONS_FILE (or `locations_file` in "
            "$TILLSYNC_CONFIG) to the YAML file that maps Shopify locations to Sitoo stores"
        )
    settings.require(
        "shopify_access_token",
        "shopify_app_secret",
        "sitoo_account_id",
        "sitoo_api_id",
        "sitoo_api_password",
    )
    return Runtime(settings=settings, locations=load_location_map(settings.locations_file))
