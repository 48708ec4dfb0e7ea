"""Every setting tillsync reads, in one place.

Settings come from environment variables prefixed ``TILLSYNC_`` and, optionally, from a TOML
file named by ``TILLSYNC_CONFIG`` (environment wins over the file). The worker, the CLI and the
simulators all read the same settings, so a simulator and a worker started with one environment
agree on credentials with no further configuration.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from tillsync.schemas.returns import DEFAULT_RETURN_REASONS, ReasonRule

CONFIG_ENV = "TILLSYNC_CONFIG"
_API_VERSION = re.compile(r"^\d{4}-(01|04|07|10)$")
# what an HTTP header carries as one word: visible ASCII, no spaces
_TOKEN = re.compile(r"[\x21-\x7e]+")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TILLSYNC_",
        extra="forbid",
        validate_default=True,
    )

    # Kafka / Faust
    kafka_bootstrap: str = Field(
        "127.0.0.1:9092", description="host:port of a Kafka broker (comma-separate several)"
    )
    app_id: str = Field("tillsync", description="Faust app id: consumer group and topic prefix")
    data_dir: Path = Field(Path("var/worker"), description="where the worker keeps RocksDB tables")
    topic_partitions: int = Field(8, ge=1, le=256, description="partitions of every topic")
    web_port: int = Field(6066, ge=1, le=65535, description="worker HTTP port (/metrics, /health)")
    web_host: str = Field("127.0.0.1", description="worker HTTP bind address")
    worker_id: str | None = Field(
        None,
        description="stable id of this worker (Kafka static membership): a restarted worker "
        "takes its partitions back at once instead of after the session timeout",
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="worker log lines: text, or JSON lines for a log shipper"
    )
    session_timeout: float = Field(
        15.0, gt=1, le=300, description="seconds before a silent worker loses its partitions"
    )
    state_token: SecretStr | None = Field(
        None,
        description="bearer token the worker's /state/* views require (they publish stock "
        "levels): `Authorization: Bearer <token>`; unset, they are open. /metrics and /health "
        "stay open; `tillsync stock show` and `reconcile stock --worker` send it",
    )

    # Shopify
    shopify_shop: str = Field(
        "tillsync-demo.myshopify.com", description="the shop's myshopify.com domain"
    )
    shopify_api_version: str = Field("2026-04", description="Admin API version, e.g. 2026-04")
    shopify_url: str | None = Field(
        None, description="base URL of the Admin API host; defaults to https://<shop>"
    )
    shopify_access_token: SecretStr | None = Field(None, description="Admin API access token")
    shopify_app_secret: SecretStr | None = Field(
        None, description="app client secret; verifies webhook HMAC signatures"
    )
    shopify_plan: str = Field(
        "standard", description="plan whose rate limits apply: standard, advanced, plus"
    )

    # Sitoo
    shopify_budget_max_wait: float = Field(
        2.0,
        gt=0,
        le=60,
        description="seconds a Shopify call waits behind more urgent ones (order reads before "
        "stock writes before read-backs) before it goes first",
    )
    order_read_timeout: float = Field(
        10.0,
        gt=0,
        le=300,
        description="seconds one read of an online order's state may take before it is tried "
        "again, then deferred to the sweep",
    )
    pickups_to_sitoo: bool = Field(
        True,
        description="click & collect through Sitoo: pickup orders made, cancelled and handed "
        "over at the till, late pickups raised. Off, a pickup holds its units and leaves "
        "Sitoo through a Move Out when Shopify fulfils it, as a ship-from-store order does",
    )
    ship_from_store_to_sitoo: bool = Field(
        False,
        description="ship-from-store through Sitoo: an online order shipped from a store is a "
        "Sitoo order with its delivery address there (staff get a pick list, a store return "
        "an original to link to), shipped by staff in Sitoo, whose delivery becomes the Shopify "
        "fulfilment with its tracking. Off, it leaves Sitoo through a Move Out when Shopify "
        "fulfils it. Needs pickups_to_sitoo (the same writers carry both)",
    )
    returns_to_shopify: bool = Field(
        False,
        description="store returns of online orders: a Sitoo credit order of an order tillsync "
        "made in Sitoo becomes one Shopify return of its lines, restocked at the store's "
        "location when the goods are resellable, refunded by Shopify only when the till did not "
        "pay the customer back, and closed. Needs pickups_to_sitoo (the originals)",
    )
    refunds_to_sitoo: bool = Field(
        False,
        description="a refund staff make in Shopify that restocks units at a store location "
        "becomes a Move In at that store's Sitoo warehouse (once per refund and store), so the "
        "stock flow does not take the units out of Shopify again; a refund of an order a Sitoo "
        "till handed over becomes one closed credit order against that Sitoo order, for "
        "Sitoo's order reports",
    )
    return_reasons: dict[str, ReasonRule] = Field(
        default_factory=lambda: dict(DEFAULT_RETURN_REASONS),
        description="Sitoo reason code -> {shopify: a Shopify ReturnReason, resellable: "
        "false for damaged goods}, as JSON in TILLSYNC_RETURN_REASONS; a code not named "
        "becomes OTHER with the code in the return line's note",
    )
    order_sweep_seconds: float = Field(
        300.0,
        ge=10,
        description="an order still holding units, unread this long, is read again by the sweep "
        "(what heals a webhook Shopify never delivered)",
    )
    sitoo_base_url: str = Field(
        "https://api.mysitoo.com", description="Sitoo API host, without /v2/accounts/..."
    )
    sitoo_account_id: int | None = Field(None, ge=1, description="Sitoo account id, e.g. 10020")
    sitoo_site_id: int = Field(1, ge=1, description="Sitoo eshopid used as {siteid}")
    sitoo_api_id: str | None = Field(None, description="Sitoo API id, e.g. 10020-140")
    sitoo_api_password: SecretStr | None = Field(None, description="Sitoo API password")
    sitoo_requests_per_second: float = Field(
        10.0, gt=0, description="ceiling on our request rate to Sitoo"
    )
    sitoo_reserved_refresh_seconds: float = Field(
        300.0,
        gt=0,
        description="seconds between full re-reads of Sitoo's reserved quantities (order events "
        "re-read their own items at once; this catches what no event told of)",
    )
    sitoo_events_username: str | None = Field(
        None,
        description="Basic auth user that Sitoo's Events SPI must send to our receiver; "
        "required, with the password, when the stock flow runs (see sitoo_events_insecure)",
    )
    sitoo_events_password: SecretStr | None = Field(
        None, description="Basic auth password that Sitoo's Events SPI must send to us"
    )
    sitoo_events_insecure: bool = Field(
        False,
        description="let the stock flow run with no Events SPI credentials: anyone who reaches "
        "the receiver can send events (a local demo only; a warning is logged at start)",
    )

    # Stock sync
    locations_file: Path | None = Field(
        None, description="YAML file mapping Shopify locations to Sitoo stores and warehouses"
    )

    @field_validator("shopify_api_version")
    @classmethod
    def _api_version(cls, v: str) -> str:
        if not _API_VERSION.match(v):
            raise ValueError("must look like 2026-04 (a quarterly release: YYYY-01/04/07/10)")
        return v

    @field_validator("state_token")
    @classmethod
    def _state_token(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not _TOKEN.fullmatch(v.get_secret_value()):
            raise ValueError("must be one word of visible ASCII characters (sent in a header)")
        return v

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap(cls, v: str) -> str:
        for part in v.split(","):
            host, _, port = part.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"{part!r} is not host:port")
        return v

    @model_validator(mode="after")
    def _store_orders(self) -> Settings:
        if self.ship_from_store_to_sitoo and not self.pickups_to_sitoo:
            raise ValueError(
                "ship_from_store_to_sitoo needs pickups_to_sitoo: the writers of pickup orders "
                "carry ship-from-store orders too; turn both on, or ship_from_store_to_sitoo off"
            )
        if self.returns_to_shopify and not self.pickups_to_sitoo:
            raise ValueError(
                "returns_to_shopify needs pickups_to_sitoo: a store return links to the Sitoo "
                "order tillsync made of the online order; turn both on, or returns_to_shopify off"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config = os.environ.get(CONFIG_ENV)
        if config:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config)))
        return tuple(sources)

    # Derived values -------------------------------------------------------------------

    @property
    def sitoo_order_methods(self) -> frozenset[str]:
        """The Shopify delivery methods whose fulfilment orders at a store are Sitoo orders."""
        methods = {"PICK_UP"} if self.pickups_to_sitoo else set()
        if self.ship_from_store_to_sitoo:
            methods.add("SHIPPING")
        return frozenset(methods)

    @property
    def kafka_broker_url(self) -> str:
        return ";".join(f"kafka://{p.strip()}" for p in self.kafka_bootstrap.split(","))

    @property
    def shopify_graphql_url(self) -> str:
        base = (self.shopify_url or f"https://{self.shopify_shop}").rstrip("/")
        return f"{base}/admin/api/{self.shopify_api_version}/graphql.json"

    @property
    def sitoo_account_url(self) -> str:
        return f"{self.sitoo_base_url.rstrip('/')}/v2/accounts/{self.sitoo_account_id}"

    @property
    def state_auth_headers(self) -> dict[str, str]:
        """What a reader of a worker's /state/* views sends: the state token, if one is set."""
        if self.state_token is None:
            return {}
        return {"Authorization": f"Bearer {self.state_token.get_secret_value()}"}

    def require(self, *names: str) -> None:
        """Fail with one message that names every missing setting and its variable."""
        missing = [n for n in names if getattr(self, n) in (None, "")]
        if missing:
            lines = [
                f"  {n}: set TILLSYNC_{n.upper()} (or `{n}` in $TILLSYNC_CONFIG)" for n in missing
            ]
            raise ConfigError("missing settings:\n" + "\n".join(lines))


class ConfigError(Exception):
    """A setting is missing or wrong; the message says which and what to do."""


def load_settings(**overrides: Any) -> Settings:
    """Read and validate settings, turning pydantic's errors into one readable message."""
    config = os.environ.get(CONFIG_ENV)
    if config and not Path(config).is_file():
        raise ConfigError(f"{CONFIG_ENV}={config}: no such file")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]) or "?"
            # input values are left out on purpose: they may be secrets
            lines.append(f"  {name} (TILLSYNC_{name.upper()}): {err['msg']}")
        raise ConfigError("invalid settings:\n" + "\n".join(lines)) from None
