"""What the agents of one worker share at run time: the platform clients, the location map,
the SKU index and the echoes of its own writes. Built once per worker process."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from tillsync.connectors.outcomes import Outcome
from tillsync.connectors.shopify.client import ShopifyClient, ShopifyConfig
from tillsync.connectors.sitoo.client import SitooClient, SitooConfig
from tillsync.schemas.locations import LocationMap, load_location_map
from tillsync.schemas.settings import ConfigError, Settings
from tillsync.streams import metrics
from tillsync.streams.echoes import Echoes
from tillsync.streams.skus import SkuIndex


def record_call(platform: str, outcome: Outcome, seconds: float) -> None:
    metrics.api_calls.labels(platform=platform, outcome=outcome).inc()
    metrics.api_call_seconds.labels(platform=platform).observe(seconds)


def record_cost(operation: str, requested: float, actual: float) -> None:
    metrics.shopify_points.labels(document=operation, kind="requested").inc(requested)
    metrics.shopify_points.labels(document=operation, kind="actual").inc(actual)


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
    # each platform's client-side throttle wait already added to the metric
    _throttle_seen: dict[str, float] = field(default_factory=dict)

    @property
    def shopify(self) -> ShopifyClient:
        if self._shopify is None:
            config = ShopifyConfig.from_settings(self.settings)
            self._shopify = ShopifyClient(config, on_call=record_call, on_cost=record_cost)
        return self._shopify

    @property
    def sitoo(self) -> SitooClient:
        if self._sitoo is None:
            self._sitoo = SitooClient(SitooConfig.from_settings(self.settings), on_call=record_call)
        return self._sitoo

    def export_client_stats(self) -> None:
        """Add what each client waited on its platform's limits since the last export."""
        clients: dict[str, ShopifyClient | SitooClient | None] = {
            "shopify": self._shopify,
            "sitoo": self._sitoo,
        }
        for platform, client in clients.items():
            if client is None:
                continue
            waited = client.stats.throttle_wait_seconds
            seen = self._throttle_seen.get(platform, 0.0)
            if waited > seen:
                metrics.throttle_wait.labels(platform=platform).inc(waited - seen)
                self._throttle_seen[platform] = waited


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
    # the stock flow acts on Sitoo's events: an open receiver lets anyone move stock levels
    events_auth = (settings.sitoo_events_username, settings.sitoo_events_password)
    if any(events_auth):
        settings.require("sitoo_events_username", "sitoo_events_password")
    elif not settings.sitoo_events_insecure:
        raise ConfigError(
            "the Sitoo Events receiver has no credentials, and the stock flow acts on its "
            "events: set TILLSYNC_SITOO_EVENTS_USERNAME and TILLSYNC_SITOO_EVENTS_PASSWORD (or "
            "`sitoo_events_username` and `sitoo_events_password` in $TILLSYNC_CONFIG) to the "
            "Basic auth credentials given to Sitoo's Events SPI. To run without (a local demo), "
            "set TILLSYNC_SITOO_EVENTS_INSECURE=true or start `tillsync worker "
            "--insecure-sitoo-endpoint`"
        )
    return Runtime(settings=settings, locations=load_location_map(settings.locations_file))
