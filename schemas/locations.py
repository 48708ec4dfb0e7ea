"""The location map: which Shopify location is which Sitoo store and warehouse.

The one place where the pairing, the safety buffers and the drift policies are defined. Loaded
from YAML and validated at start so that a typo stops the worker with a message, not a
half-synced store network.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class DriftPolicy(StrEnum):
    HEAL = "heal"  # write the target again
    ALERT = "alert"  # report only; a person decides


class PickupDeadlines(BaseModel):
    """How long a click & collect step may take at a store before a person is told (an
    exception with its owner), and when that is cleared again."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reach_store_minutes: float = Field(
        10.0, gt=0, description="routed in Shopify, still no Sitoo order (integration)"
    )
    ready_within_minutes: float = Field(
        120.0, gt=0, description="in Sitoo, not marked ready for pickup (store manager)"
    )
    collect_within_hours: float = Field(
        72.0, gt=0, description="ready, not collected (customer service)"
    )
    close_in_shopify_minutes: float = Field(
        15.0, gt=0, description="collected at the till, still open in Shopify (integration)"
    )
    ship_within_hours: float = Field(
        24.0, gt=0, description="a ship-from-store order in Sitoo, not shipped (store manager)"
    )
    on_rejected: Literal["alert", "cancel"] = Field(
        "alert",
        description="a pickup the store rejects: 'alert' raises it for e-commerce, who decide; "
        "'cancel' also cancels the Shopify order, refunded and restocked, when the pickup is "
        "all that is left of it (otherwise it is raised only), and cancels and refunds units "
        "a customer declines at the counter (a partial pickup) in Shopify",
    )
    authorisation_margin_hours: float = Field(
        24.0,
        ge=0,
        description="a card only authorised at checkout lapses within this, not collected "
        "(finance)",
    )


class Location(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="a name operators recognise, e.g. 'Stockholm Drottninggatan'")
    shopify_location_id: int = Field(ge=1, description="numeric id (the tail of the Location GID)")
    sitoo_store_id: int = Field(ge=1)
    sitoo_warehouse_id: int = Field(ge=1)
    buffer: int = Field(0, ge=0, description="units held back from Shopify at this location")
    buffer_overrides: dict[str, int] = Field(
        default_factory=dict, description="per-SKU buffers that replace `buffer`"
    )
    drift_policy: DriftPolicy = DriftPolicy.HEAL
    settle_seconds: float = Field(
        2.0, ge=0, le=3600, description="how long target and Shopify may differ before it is drift"
    )
    pickup: PickupDeadlines = Field(default_factory=PickupDeadlines)

    @field_validator("shopify_location_id", mode="before")
    @classmethod
    def _gid(cls, v: object) -> object:
        if isinstance(v, str) and v.startswith("gid://shopify/Location/"):
            return int(v.rsplit("/", 1)[1])
        return v

    @field_validator("buffer_overrides")
    @classmethod
    def _non_negative(cls, v: dict[str, int]) -> dict[str, int]:
        bad = [sku for sku, n in v.items() if n < 0]
        if bad:
            raise ValueError(f"buffers must be >= 0 (SKUs {', '.join(bad)})")
        return v

    def buffer_for(self, sku: str) -> int:
        return self.buffer_overrides.get(sku, self.buffer)


class LocationMap(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    locations: list[Location]

    @model_validator(mode="after")
    def _unique(self) -> LocationMap:
        for attr in ("shopify_location_id", "sitoo_store_id", "sitoo_warehouse_id"):
            seen: set[int] = set()
            for loc in self.locations:
                value = getattr(loc, attr)
                if value in seen:
                    raise ValueError(f"{attr} {value} is mapped twice; each must map one-to-one")
                seen.add(value)
        return self

    def by_shopify(self, location_id: int) -> Location | None:
        return self._shopify.get(location_id)

    def by_warehouse(self, warehouse_id: int) -> Location | None:
        return self._warehouse.get(warehouse_id)

    # the map is frozen, so each lookup table is built once; lookups happen on every event
    @cached_property
    def _shopify(self) -> dict[int, Location]:
        return {loc.shopify_location_id: loc for loc in self.locations}

    @cached_property
    def _warehouse(self) -> dict[int, Location]:
        return {loc.sitoo_warehouse_id: loc for loc in self.locations}


class LocationMapError(ValueError):
    pass


def load_location_map(path: Path) -> LocationMap:
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise LocationMapError(f"location map {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise LocationMapError(f"location map {path} is not valid YAML: {exc}") from None
    try:
        return LocationMap.model_validate(raw)
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise LocationMapError(f"location map {path} is invalid:\n" + "\n".join(lines)) from None
