"""Canonical events: what tillsync's agents exchange once raw platform input is validated.

Stock events are keyed by SKU, so every fact about one SKU lands in one partition, in order.
Each carries the time the platform says the change happened (for sync latency) and a version
where the platform gives one (Sitoo's warehouse transaction id), so that nothing older ever
overwrites something newer.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

# Bounds that no platform's real value comes near, so that a unit mix-up or a corrupt record is
# refused at the edge with the field named, instead of becoming a target a position writes.
# NaN and infinities are refused everywhere (`allow_inf_nan=False`): NaN compares false with
# everything, so a position holding one would never be stale and never in sync.
MAX_UNITS = 1_000_000_000
# Unix seconds up to the year 2286: a time in milliseconds (13 digits) is refused, not read as
# a date thousands of years on, which would make every later change look stale.
MAX_UNIX_SECONDS = 10_000_000_000.0

Units = Annotated[int, Field(ge=-MAX_UNITS, le=MAX_UNITS)]  # may be negative (oversold stock)
Count = Annotated[int, Field(ge=0, le=MAX_UNITS)]
Id = Annotated[int, Field(ge=0)]  # never negative
UnixTime = Annotated[float, Field(ge=0.0, le=MAX_UNIX_SECONDS)]
Sku = Annotated[str, Field(min_length=1, pattern=r"\S")]  # not empty, not only blanks


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    sku: Sku


class SitooLevel(_Event):
    """Sitoo's stock on hand after a warehouse transaction."""

    kind: Literal["sitoo_level"] = "sitoo_level"
    warehouse_id: Id
    total: Units
    version: int = Field(
        ge=0, description="warehousetransactionid: Sitoo's ledger is ordered by it"
    )
    event_time: UnixTime = Field(description="when Sitoo recorded it (Unix seconds)")
    external_id: str | None = None
    delta: Units = 0
    return_delivery_id: Id | None = Field(
        None,
        description="the Sitoo delivery of a return at a till that brought these units back, "
        "while the returns flow pairs it with Shopify's own restock (None otherwise)",
    )


class SitooReserved(_Event):
    """Units Sitoo holds for open orders at a warehouse, read from its warehouse items."""

    kind: Literal["sitoo_reserved"] = "sitoo_reserved"
    warehouse_id: Id
    reserved: Count
    observed_at: UnixTime


class ObservedSource(StrEnum):
    WEBHOOK = "webhook"  # inventory_levels/update
    WRITE = "write"  # the answer to our own mutation
    READ = "read"  # a query (after a stale compare, or at start)
    SNAPSHOT = "snapshot"  # a bulk export at start
    RECONCILE = "reconcile"  # a bulk export an operator asked for (`tillsync reconcile stock`)


class ShopifyObserved(_Event):
    """What Shopify says `available` is at a location."""

    kind: Literal["shopify_observed"] = "shopify_observed"
    location_id: Id
    inventory_item_id: Id
    available: Units
    updated_at: UnixTime
    source: ObservedSource


class WriteResult(_Event):
    """The Shopify sink's answer for one position: written, or failed and why."""

    kind: Literal["write_result"] = "write_result"
    location_id: Id
    inventory_item_id: Id
    ok: bool
    # what was asked: a write result tells of any command, so it is bounded, not judged
    target: Units
    written: Units | None = None
    version: int = Field(ge=0)
    sitoo_version: int = Field(
        -1, ge=-1, description="the Sitoo ledger id the written target came from"
    )
    error: str | None = None
    at: UnixTime
    shopify_at: UnixTime | None = Field(
        None, description="Shopify's createdAt of the write: its clock, to the second"
    )


class HeldUnits(_Event):
    """Units of one SKU that Shopify has taken out of `available` at a location for one online
    order and that Sitoo may not account for yet: ``open`` (committed on the order's fulfilment
    orders there, not yet fulfilled) and ``fulfilled`` (per fulfilment, units it took from the
    location, whose Move Out Sitoo books). The position subtracts what Sitoo has booked.

    Re-derived in full from the order's fulfilment state in Shopify on every order,
    fulfilment-order, fulfilment and refund webhook and by a periodic sweep, never a delta, so a
    record replaces the one before it; ``version`` orders one order's derivations, so a replayed
    older record changes nothing."""

    kind: Literal["held_units"] = "held_units"
    location_id: Id
    order_id: Id
    version: int = Field(
        ge=0, description="orders one order's derivations: newer state, higher version"
    )
    open: Count = 0
    fulfilled: dict[str, Count] = Field(
        default_factory=dict, description="fulfilment id -> units it took from this location"
    )
    at: UnixTime = Field(description="when the fulfilment state was read (Unix seconds)")
    in_sitoo: Count = Field(
        0,
        description="of `open`, the units a Sitoo pickup order reserves (Sitoo counts them "
        "itself once a reading of its reserved quantity taken after `in_sitoo_since` is in)",
    )
    in_sitoo_since: UnixTime = Field(
        0.0, description="when Sitoo confirmed the pickup order made (Unix seconds)"
    )
    took: Count = Field(
        0,
        description="units Sitoo's own sale took at a pickup's handover: held no more once the "
        "position's ledger is as new as `took_since`",
    )
    took_since: UnixTime = Field(
        0.0, description="when Sitoo delivered them, by Sitoo's clock (as its ledger's times)"
    )


class PendingUnits(_Event):
    """Retired: the per-line units of versions before ``HeldUnits``. Still read, so that a
    topic written by an older version replays; a position takes nothing from it."""

    kind: Literal["pending"] = "pending"
    location_id: Id
    ref: str = Field(min_length=1, description="order line identity, e.g. order/123/line/456")
    units: Count
    final: bool = Field(False, description="the line is settled: later updates are stale")
    at: UnixTime


class OrderPlaced(_Event):
    """An online order took units of this SKU somewhere: known from the order webhook at once,
    before the routing query says which location. A shortfall seen in Shopify now is most
    likely this sale, not an edit."""

    kind: Literal["order_placed"] = "order_placed"
    order_id: Id
    units: Count
    at: UnixTime
    routed: bool = Field(
        False,
        description="the order's routing is known and its pending units sent: a shortfall "
        "no longer waits for this order",
    )


class DriftCheck(_Event):
    """A timer's nudge: look at this position again now that its settle window has passed."""

    kind: Literal["drift_check"] = "drift_check"
    location_id: Id
    at: UnixTime


class RestockState(StrEnum):
    EXPECTED = "expected"  # Shopify is about to restock these units (its dispose is asked)
    DONE = "done"  # Shopify restocked them: its level has them now
    RELEASED = "released"  # Shopify will not restock them: Sitoo's level alone counts


class ReturnRestock(_Event):
    """What becomes in Shopify of the units one return at a till (one Sitoo delivery) brought
    back here. Sitoo counts them from its own return transaction on; the position holds them
    back from Shopify until this says whether Shopify restocks them itself (a RESTOCKED
    disposition: offered once, by Shopify's own restock) or not (released to the stock flow).
    Derived by the returns flow from both platforms' state, so a repeat says the same; a
    return's state only moves forward."""

    kind: Literal["return_restock"] = "return_restock"
    location_id: Id
    delivery_id: Id = Field(description="the Sitoo delivery of the credit order")
    state: RestockState
    at: UnixTime


StockEvent = Annotated[
    SitooLevel
    | SitooReserved
    | ShopifyObserved
    | WriteResult
    | HeldUnits
    | PendingUnits
    | OrderPlaced
    | DriftCheck
    | ReturnRestock,
    Field(discriminator="kind"),
]
STOCK_EVENT: TypeAdapter[StockEvent] = TypeAdapter(StockEvent)


class WriteResults(BaseModel):
    """The sink's answers for the positions of one partition, from one window of writes.

    One record per partition instead of one per position, so that fewer records queue ahead of
    the Sitoo levels in this topic (BENCHMARKS.md, b: p99 at 500 levels/s 0.78-0.82 s instead
    of 1.13 s). Sent to the partition of ``stock.events`` the commands came from, which holds
    those SKUs too."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

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

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    sku: Sku
    inventory_item_id: Id
    location_id: Id
    target: Count
    change_from: Units | None = Field(
        description="the last value seen in Shopify (compare-and-swap)"
    )
    version: int = Field(ge=1, description="monotonic per position: never write a lower one")
    sitoo_version: int = Field(ge=-1)
    event_time: UnixTime = Field(description="the source event's time, for sync latency")


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
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

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

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    type: str
    owner: Owner
    key: str = Field(description="what it is about, e.g. a SKU or an order id")
    message: str
    at: float
    details: dict[str, str | int | float | None] = Field(default_factory=dict)
    # the same (type, key) again once its condition no longer holds: nothing left to do
    cleared: bool = False


class PickupAction(StrEnum):
    EXPORT = "export"  # make the Sitoo order of a pickup fulfilment order, once
    CANCEL = "cancel"  # cancel it: the pickup was fulfilled, cancelled or moved in Shopify
    # bring its rows up to date: Shopify's fulfilment order holds fewer or other units now (an
    # order edited, a line refunded, part of it moved away) while it stays at that store
    UPDATE = "update"


class PickupCommand(BaseModel):
    """What the Sitoo orders sink is to do for one pickup fulfilment order at one store,
    keyed by ``externalid``: the Sitoo order's own key, which names the fulfilment order and the
    store, so an export repeated (a replay, a second derivation) finds the order made before,
    and a pickup moved to another store is a new order there."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: PickupAction
    externalid: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")
    order_id: Id
    fulfilment_order_id: Id
    location_id: Id
    warehouse_id: Id
    at: UnixTime = Field(description="when the order flow asked for it (Unix seconds)")
    method: Literal["PICK_UP", "SHIPPING"] = Field(
        "PICK_UP", description="the fulfilment order's delivery method: a pickup or ship-from-store"
    )


class SitooPickupState(StrEnum):
    OPEN = "open"  # made (or found made before): it reserves the pickup's units
    CANCELLED = "cancelled"  # cancelled by us while open: Sitoo delivered nothing of it
    ABSENT = "absent"  # never made: Sitoo delivered nothing of it
    CLOSED = "closed"  # closed in Sitoo before our cancel: handed over, its handover tells
    READY = "ready"  # marked ready for pickup at the till


class PickupInSitoo(BaseModel):
    """The Sitoo orders sink's answer, back to the order's flow: after an export, the Sitoo
    order exists and reserves the pickup's units since ``at``; after a cancel, what Sitoo's
    order was, which tells whether the units left the store through Sitoo or through Shopify
    (and so whether a fulfilment of them in Shopify needs a Move Out)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    externalid: str
    order_id: Id
    fulfilment_order_id: Id
    sitoo_order_id: Id = 0
    at: UnixTime
    state: SitooPickupState = SitooPickupState.OPEN
    # when the order's card authorisation lapses, if checkout only authorised it (an export's
    # answer): past it the handover can no longer capture
    authorised_until: float = 0.0
    # what the Sitoo order holds now, per Shopify fulfilment order line (its web-itemid): an
    # export's or an update's answer
    lines: dict[str, int] = Field(default_factory=dict)


class PickupStepKind(StrEnum):
    READY = "ready"
    COLLECTED = "collected"
    REJECTED = "rejected"
    # from the order flow's sweep: read the order for the steps whose events Sitoo never
    # delivered
    CHECK = "check"
    # from the Sitoo orders sink: a ship-from-store order was made, so its parcels are to be
    # heard before it closes (a parcel's event is read only for an order so marked: every till
    # sale has delivery events too)
    WATCH = "watch"
    PARCEL = "parcel"  # an order-delivery event: a parcel of a watched shipment may be out


class PickupStep(BaseModel):
    """One step staff took on a Sitoo order that may be a pickup (``sitoo.pickup-events``,
    keyed by the Sitoo order), from Sitoo's events, or a check asked for by the sweep."""

    sitoo_order_id: int
    step: PickupStepKind
    event_id: str


class RefundCreditRow(BaseModel):
    """One refunded line of a Shopify refund, as its Sitoo credit order's negative row."""

    sku: str
    name: str
    units: int = Field(ge=1)
    gross: str = Field(description="the line's refunded amount, tax included, 2 decimals")
    line_item_id: int


class RefundCredit(BaseModel):
    """A Shopify refund of an order whose pickup Sitoo handed over, for Sitoo's books: one
    closed credit order against that Sitoo order (``cmd.sitoo.credits``, keyed by its
    externalid ``rf-<refund>``, which names the one refund)."""

    refund_id: int
    order_id: int
    externalid: str
    mirror_order_id: int = Field(description="the Sitoo order the refund credits")
    warehouse_id: int
    rows: list[RefundCreditRow]
    refunded: str = Field(description="money Shopify paid back, 2 decimals (0.00: none)")
    currency: str
    at: float


class StoreReturn(BaseModel):
    """A Sitoo credit order (a return at the till) for the returns flow (``sitoo.returns``,
    keyed by the original Sitoo order, so one order's returns are planned one at a time; a
    blind return's by the credit order, with its link by hand)."""

    credit_order_id: int
    original_order_id: int | None = Field(
        None, description="the Sitoo order it returns; None for a blind return (no link)"
    )
    credit: dict[str, Any] | None = Field(
        None,
        description="the credit order as the poller read it (born closed, it never changes): "
        "saves reading it again; None, it is read",
    )
    shopify_order_id: int | None = Field(
        None,
        description="a blind return linked by hand (`tillsync returns link`): the Shopify "
        "order it returns",
    )
    settled_by_hand: bool = Field(
        False,
        description="a blind return staff settled outside tillsync (`tillsync returns "
        "dismiss`): it leaves the queue and nothing is written for it",
    )


class PickupHandedOver(BaseModel):
    """Sitoo handed a store order over (its order closed: collected at the till, or shipped),
    or shipped some parcels of a shipment still open (``partial``): the units it delivered so
    far, per SKU, have left Sitoo's stock through its own sale. Sent to the order's flow before
    Shopify is told (``fulfillmentCreate``), so that the fulfilment Shopify makes of them is
    never mistaken for one whose units Sitoo still counts (no Move Out is written for them).
    Cumulative: a later word never takes less."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    externalid: str
    order_id: Id
    fulfilment_order_id: Id
    location_id: Id
    took: dict[str, Count] = Field(description="SKU -> units Sitoo delivered")
    at: UnixTime
    delivered_at: UnixTime = Field(
        0.0, description="Sitoo's time of its last delivery of them (its ledger's clock)"
    )
    delivered_at_by_sku: dict[str, UnixTime] = Field(
        default_factory=dict,
        description="per SKU, Sitoo's time of its last delivery of it: a position's ledger has "
        "the sale of a SKU once it is that new (parcels of other SKUs may come later)",
    )
    partial: bool = Field(False, description="a shipment still open in Sitoo: more may come")
