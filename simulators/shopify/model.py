"""The simulated shop's records. Plain dataclasses: the simulator owns them, nothing else."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

# Quantity states stored per level; on_hand is derived so the invariant cannot break.
STORED_STATES = (
    "available",
    "committed",
    "reserved",
    "damaged",
    "safety_stock",
    "quality_control",
    "incoming",
)
ON_HAND_PARTS = ("available", "committed", "reserved", "damaged", "safety_stock", "quality_control")
QUANTITY_NAMES = (*STORED_STATES, "on_hand")


_last_stamp: tuple[int, str] = (0, "")


def now_iso() -> str:
    """UTC now at Shopify's one-second resolution (formatted once per second: it is hot)."""
    global _last_stamp
    now = time.time()
    second = int(now)
    if _last_stamp[0] != second:
        _last_stamp = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return _last_stamp[1]


def parse_gid(value: object, kind: str) -> int | None:
    """The numeric id of ``gid://shopify/<kind>/<n>`` (query string ignored), else None."""
    if not isinstance(value, str):
        return None
    prefix = f"gid://shopify/{kind}/"
    if not value.startswith(prefix):
        return None
    tail = value[len(prefix) :].split("?", 1)[0]
    return int(tail) if tail.isdigit() else None


@dataclass
class Location:
    id: int
    name: str
    address1: str = ""
    city: str = ""
    zip: str = ""
    country_code: str = "SE"
    active: bool = True
    fulfills_online_orders: bool = True
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)


@dataclass
class InventoryItem:
    id: int
    variant_id: int
    sku: str
    tracked: bool = True
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)


@dataclass
class Variant:
    id: int
    product_id: int
    sku: str
    price: Decimal
    inventory_item_id: int
    title: str = "Default Title"
    barcode: str | None = None
    position: int = 1
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)


@dataclass
class Product:
    id: int
    title: str
    handle: str
    vendor: str = "tillsync"
    product_type: str = ""
    status: str = "ACTIVE"
    tags: list[str] = field(default_factory=list)
    variant_ids: list[int] = field(default_factory=list)
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)


@dataclass
class Level:
    item_id: int
    location_id: int
    quantities: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STORED_STATES, 0))
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)

    def get(self, name: str) -> int:
        if name == "on_hand":
            return sum(self.quantities[n] for n in ON_HAND_PARTS)
        return self.quantities[name]

    def set(self, name: str, value: int) -> int:
        """Set a state; setting on_hand moves the difference through available, as Shopify
        does. Returns the delta."""
        target = "available" if name == "on_hand" else name
        delta = value - self.get(name)
        self.quantities[target] += delta
        self.updated_at = now_iso()
        return delta

    def add(self, name: str, delta: int) -> None:
        target = "available" if name == "on_hand" else name
        self.quantities[target] += delta
        self.updated_at = now_iso()


@dataclass
class LineItem:
    id: int
    variant_id: int
    product_id: int
    sku: str
    title: str
    quantity: int
    price: Decimal
    fulfilled: int = 0
    refunded: int = 0
    # of ``refunded``, the units refunded through a return: they were fulfilled first, so
    # unlike a refund of units never shipped they do not shorten what is left to fulfil
    returned_refunded: int = 0

    @property
    def unfulfilled(self) -> int:
        """Units still to fulfil: neither fulfilled nor refunded before shipping."""
        return max(0, self.quantity - self.fulfilled - (self.refunded - self.returned_refunded))


@dataclass
class FulfillmentOrderLine:
    id: int
    line_item_id: int
    variant_id: int
    inventory_item_id: int
    sku: str
    total: int
    remaining: int


@dataclass
class FulfillmentOrder:
    id: int
    order_id: int
    location_id: int
    method_type: str
    lines: list[FulfillmentOrderLine]
    status: str = "OPEN"
    prepared_for_pickup: bool = False
    # Shopify emails the customer "ready for pickup" at every call, prepared before or not
    ready_emails: int = 0
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)


@dataclass
class Fulfillment:
    id: int
    order_id: int
    location_id: int
    lines: list[tuple[int, int]]  # (line item id, quantity)
    status: str = "success"
    # the FulfillmentLineItem id of each entry of ``lines`` (same index): a return names the
    # fulfilment line it takes back by this id. ``lines`` stays (line item, quantity) pairs
    # because the scenario driver reads it that way.
    line_ids: list[int] = field(default_factory=list)
    # what fulfillmentCreate's trackingInfo gave: numbers[i] goes with urls[i], one carrier
    tracking_numbers: list[str] = field(default_factory=list)
    tracking_urls: list[str] = field(default_factory=list)
    tracking_company: str | None = None
    notified: bool = False  # notifyCustomer: Shopify emailed the customer the shipment
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)


@dataclass
class RefundLine:
    id: int
    line_item_id: int
    quantity: int
    restock_type: str  # no_restock | cancel | return | legacy_restock
    location_id: int | None
    subtotal: Decimal


@dataclass
class Refund:
    id: int
    order_id: int
    note: str | None
    lines: list[RefundLine]
    amount: Decimal
    return_id: int | None = None  # the Return a returnRefund refunded
    created_at: str = field(default_factory=now_iso)


@dataclass
class ReturnLine:
    """One fulfilment line item (some of its units) a customer sends back."""

    id: int
    fulfillment_line_item_id: int
    line_item_id: int
    quantity: int
    reason: str  # ReturnReason: SIZE_TOO_SMALL, DEFECTIVE, UNKNOWN, ...
    reason_note: str = ""  # returnReasonNote is a non-null String: "" when none was given
    refunded: int = 0


@dataclass
class Return:
    """A return of an order's fulfilled units: OPEN when made by the merchant (returnCreate),
    CLOSED once processed; CANCELED and DECLINED ones no longer hold units."""

    id: int
    order_id: int
    status: str  # ReturnStatus: OPEN, CLOSED, CANCELED, DECLINED, REQUESTED
    lines: list[ReturnLine]
    rfo_id: int
    created_at: str = field(default_factory=now_iso)


# A return's units that no longer count against what the fulfilment can still return.
RETURN_RELEASED_STATUSES = ("CANCELED", "DECLINED")


@dataclass
class Disposition:
    """What became of some returned units: RESTOCKED at a location, NOT_RESTOCKED, ..."""

    id: int
    type: str  # ReverseFulfillmentOrderDispositionType
    quantity: int
    location_id: int | None


@dataclass
class RfoLine:
    id: int
    fulfillment_line_item_id: int
    return_line_id: int
    total: int
    dispositions: list[Disposition] = field(default_factory=list)

    @property
    def undisposed(self) -> int:
        return self.total - sum(d.quantity for d in self.dispositions)


@dataclass
class ReverseFulfillmentOrder:
    """The returned units on their way back to the merchant, one line per return line; its
    lines are disposed (restocked or not) as they arrive."""

    id: int
    return_id: int
    lines: list[RfoLine]


@dataclass
class Transaction:
    """A payment transaction of an order: a sale paid at checkout (or marked as paid), an
    authorisation, or a capture, void or refund of another (``parent_id``)."""

    id: int
    kind: str  # SALE, AUTHORIZATION, CAPTURE, VOID, REFUND
    amount: Decimal
    currency: str
    status: str = "SUCCESS"
    parent_id: int | None = None
    authorization_expires_at: str | None = None
    # "manual" for a payment taken outside Shopify's checkout (orderMarkAsPaid)
    gateway: str = "shopify_payments"
    refund_id: int | None = None  # the Refund a REFUND transaction belongs to
    created_at: str = field(default_factory=now_iso)


@dataclass
class ShippingAddress:
    """Where a shipped order goes: the order's shipping address (a ``MailingAddress``), which
    its shipping fulfilment orders name as their destination."""

    first_name: str
    last_name: str
    address1: str
    city: str
    zip: str
    country_code: str  # ISO 3166 alpha-2
    address2: str | None = None
    province_code: str | None = None
    phone: str | None = None


@dataclass
class Order:
    id: int
    number: int
    email: str | None
    customer_id: int | None
    line_items: list[LineItem]
    currency: str = "SEK"
    financial_status: str = "paid"
    fulfillment_status: str | None = None
    cancelled_at: str | None = None
    cancel_reason: str | None = None
    cancel_staff_note: str | None = None  # orderCancel's staffNote
    cancel_notified: bool = False  # orderCancel's notifyCustomer: the customer was emailed
    fulfillment_order_ids: list[int] = field(default_factory=list)
    fulfillment_ids: list[int] = field(default_factory=list)
    refund_ids: list[int] = field(default_factory=list)
    return_ids: list[int] = field(default_factory=list)
    transactions: list[Transaction] = field(default_factory=list)
    shipping_address: ShippingAddress | None = None  # None for a pickup
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)

    @property
    def name(self) -> str:
        return f"#{self.number}"

    def captured(self, authorization_id: int) -> Decimal:
        return sum(
            (
                t.amount
                for t in self.transactions
                if t.kind == "CAPTURE" and t.status == "SUCCESS" and t.parent_id == authorization_id
            ),
            Decimal("0.00"),
        )

    def voided(self, authorization_id: int) -> Decimal:
        return sum(
            (
                t.amount
                for t in self.transactions
                if t.kind == "VOID" and t.status == "SUCCESS" and t.parent_id == authorization_id
            ),
            Decimal("0.00"),
        )

    def held(self, authorization_id: int) -> Decimal:
        """What one authorisation still holds: neither captured nor voided."""
        parent = next(t for t in self.transactions if t.id == authorization_id)
        return parent.amount - self.captured(authorization_id) - self.voided(authorization_id)

    def capturable(self) -> Decimal:
        """What the order's successful authorisations still hold, not captured yet."""
        return sum(
            (
                self.held(t.id)
                for t in self.transactions
                if t.kind == "AUTHORIZATION" and t.status == "SUCCESS"
            ),
            Decimal("0.00"),
        )

    def received(self) -> Decimal:
        """What the customer paid (sales and captures), before any refund."""
        return sum(
            (
                t.amount
                for t in self.transactions
                if t.kind in ("SALE", "CAPTURE") and t.status == "SUCCESS"
            ),
            Decimal("0.00"),
        )

    def paid_transactions(self) -> list[Transaction]:
        """The successful payments (sales and captures) a refund can go back to, oldest first."""
        return [
            t for t in self.transactions if t.kind in ("SALE", "CAPTURE") and t.status == "SUCCESS"
        ]

    def refundable_from(self, payment_id: int) -> Decimal:
        """What is left of one payment: its amount less the REFUNDs already made against it."""
        parent = next(t for t in self.transactions if t.id == payment_id)
        taken = sum(
            (
                t.amount
                for t in self.transactions
                if t.kind == "REFUND" and t.status == "SUCCESS" and t.parent_id == payment_id
            ),
            Decimal("0.00"),
        )
        return parent.amount - taken

    @property
    def total(self) -> Decimal:
        return sum((li.price * li.quantity for li in self.line_items), Decimal("0.00"))


@dataclass
class Metafield:
    id: int
    owner_id: str
    namespace: str
    key: str
    value: str
    type: str
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)


@dataclass
class Customer:
    id: int
    email: str | None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    note: str | None = None
    tags: list[str] = field(default_factory=list)
    metafields: dict[tuple[str, str], Metafield] = field(default_factory=dict)
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)


@dataclass
class WebhookSubscription:
    id: int
    topic: str  # wire name, e.g. orders/create
    callback_url: str
    name: str | None = None
    created_at: str = field(default_factory=now_iso)


@dataclass
class BulkOperation:
    id: int
    query: str
    status: str = "RUNNING"
    ready_at: float = 0.0
    created_at: str = field(default_factory=now_iso)
    completed_at: str | None = None
    object_count: int = 0
    root_object_count: int = 0
    jsonl: bytes = b""
    error_code: str | None = None
