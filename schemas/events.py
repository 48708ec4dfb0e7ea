"""Canonical events: what tillsync's agents exchange once raw platform input is validated.

Stock events are keyed by SKU, so every fact about one SKU lands in one partition, in order.
Each carries the time the platform says the change happened (for sync latency) and a version
where the platform gives one (Sitoo's warehouse transaction id), so that nothing older ever
overwrites something newer.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: str = Field(min_length=1)


class SitooLevel(_Event):
    """Sitoo's stock on hand after a warehouse transaction."""

    kind: Literal["sitoo_level"] = "sitoo_level"
    warehouse_id: int
    total: int
    version: int = Field(description="warehousetransactionid: Sitoo's ledger is ordered by it")
    event_time: float = Field(description="when Sitoo recorded it (Unix seconds)")
    external_id: str | None = None
    delta: int = 0


class SitooReserved(_Event):
    """Units Sitoo holds for open orders at a warehouse, read from its warehouse items."""

    kind: Literal["sitoo_reserved"] = "sitoo_reserved"
    warehouse_id: int
    reserved: int
    observed_at: float


class ObservedSource(StrEnum):
    WEBHOOK = "webhook"  # inventory_levels/update
    WRITE = "write"  # the answer to our own mutation
    READ = "read"  # a query (after a stale compare, or at start)
    SNAPSHOT = "snapshot"  # a bulk export at start
    RECONCILE = "reconcile"  # a bulk export an operator asked for (`tillsync reconcile stock`)


class ShopifyObserved(_Event):
    """What Shopify says `available` is at a location."""

    kind: Literal["shopify_observed"] = "shopify_observed"
    location_id: int
    inventory_item_id: int
    available: int
    updated_at: float
    source: ObservedSource


class WriteResult(_Event):
    """The Shopify sink's answer for one position: written, or failed and why."""

    kind: Literal["write_result"] = "write_result"
    location_id: int
    inventory_item_id: int
    ok: bool
    target: int
    written: int | None = None
    version: int
    sitoo_version: int = Field(-1, description="the Sitoo ledger id the written target came from")
    error: str | None = None
    at: float
    shopify_at: float | None = Field(
        None, description="Shopify's createdAt of the write: its clock, to the second"
    )


class PendingUnits(_Event):
    """Units of one online order line that Shopify committed at a location and Sitoo does not
    account for yet. Absolute, not a delta, so that replays and duplicates change nothing."""

    kind: Literal["pending"] = "pending"
    location_id: int
    ref: str = Field(description="order line identity, e.g. order/123/line/456")
    units: int = Field(ge=0)
    final: bool = Field(False, description="the line is settled: later updates are stale")
    at: float


class OrderPlaced(_Event):
    """An online order took units of this SKU somewhere: known from the order webhook at once,
    before the routing query says which location. A shortfall seen in Shopify now is most
    likely this sale, not an edit."""

    kind: Literal["order_placed"] = "order_placed"
    order_id: int
    units: int
    at: float
    routed: bool = Field(
        False,
        description="the order's routing is known and its pending units sent: a shortfall "
        "no longer waits for this order",
    )


class DriftCheck(_Event):
    """A timer's nudge: look at this position again now that its settle window has passed."""

    kind: Literal["drift_check"] = "drift_check"
    location_id: int
    at: float


StockEvent = Annotated[
    SitooLevel
    | SitooReserved
    | ShopifyObserved
    | WriteResult
    | PendingUnits
    | OrderPlaced
    | DriftCheck,
    Field(discriminator="kind"),
]
STOCK_EVENT: TypeAdapter[StockEvent] = TypeAdapter(StockEvent)


class WriteResults(BaseModel):
    """The sink's answers for the positions of one partition, from one window of writes.

    One record per partition instead of one per position, so that fewer records queue ahead of
    the Sitoo levels in this topic (BENCHMARKS.md, b: p99 at 500 levels/s 0.78-0.82 s instead
    of 1.13 s). Sent to the partition of ``stock.events`` the commands came from, which holds
    those SKUs too."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["write_results"] = "write_results"
    results: list[WriteResult] = Field(min_length=1)


# the stock events' union nested in one more member: pydantic still picks by `kind` alone
StockRecord = Annotated[StockEvent | WriteResults, Field(discriminator="kind")]
_STOCK_RECORD: TypeAdapter[StockRecord] = TypeAdapter(StockRecord)


def stock_events(raw: bytes) -> list[StockEvent]:
    """The events of one ``stock.events`` record: one, or a partition's write results.

    Raises pydantic's ValidationError for a record that is neither."""
    record = _STOCK_RECORD.validate_json(raw)
    return list(record.results) if isinstance(record, WriteResults) else [record]


class SetInventory(BaseModel):
    """A command for the Shopify inventory sink: make `available` equal `target`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: str
    inventory_item_id: int
    location_id: int
    target: int = Field(ge=0)
    change_from: int | None = Field(description="the last value seen in Shopify (compare-and-swap)")
    version: int = Field(description="monotonic per position: never write a lower one")
    sitoo_version: int
    event_time: float = Field(description="the source event's time, for sync latency")


class DriftCause(StrEnum):
    SHOPIFY_EDIT = "shopify_edit"  # someone changed Shopify (admin, another app)
    MISSED_EVENT = "missed_event"  # found by reconciliation, not by an event
    FAILED_WRITE = "failed_write"  # our write to Shopify did not land
    UNKNOWN_SKU = "unknown_sku"  # the SKU exists on one side only


class DriftState(StrEnum):
    DETECTED = "detected"
    HEALING = "healing"
    HEALED = "healed"
    REPORTED = "reported"  # policy alert: a person decides


class DriftEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: str
    location_id: int
    state: DriftState
    cause: DriftCause
    target: int | None
    observed: int | None
    since: float
    at: float
    explanation: str


class Owner(StrEnum):
    ECOMMERCE = "e-commerce"
    FINANCE = "finance"
    STORE_OPS = "store-ops"
    ENGINEERING = "engineering"


class ExceptionRecord(BaseModel):
    """Something a person must look at, with the team that owns it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    owner: Owner
    key: str = Field(description="what it is about, e.g. a SKU or an order id")
    message: str
    at: float
    details: dict[str, str | int | float | None] = Field(default_factory=dict)
