"""A store fulfilment order (a pickup, or ship-from-store) as the Sitoo order made of it needs
it: its order's name, email, payment state and currency, each line's SKU, name, remaining
quantity and price, and for a shipment its destination (the customer's address: personal data,
sent to Sitoo for the parcel and never logged).

Read once per export (``PICKUP_FULFILLMENT_ORDER``, every page of lines), not at every read of
the order: the held units need none of this. The reader takes any ``execute`` (the client's,
or a test's fake); ``None`` when Shopify has no such fulfilment order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from tillsync.connectors.shopify.documents import PICKUP_FULFILLMENT_ORDER
from tillsync.connectors.shopify.ids import gid, gid_tail

JSON = dict[str, Any]
Execute = Callable[[str, JSON], Awaitable[JSON]]


@dataclass(frozen=True, slots=True)
class PickupLine:
    fulfilment_order_line_id: int
    line_item_id: int
    sku: str  # "" for a line without one (a custom item, a gift card)
    name: str
    remaining: int
    total: int  # the line's units on this fulfilment order: total - remaining are fulfilled
    unit_price: Decimal  # after discounts, tax as the shop shows prices


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a shipment goes (``FulfillmentOrderDestination``)."""

    first_name: str
    last_name: str
    address1: str
    address2: str
    city: str
    zip: str
    province: str
    country_code: str  # ISO 3166 alpha-2, as Sitoo's delivery_countryid wants it
    phone: str

    def __repr__(self) -> str:
        return "Destination(<personal data>)"  # a traceback or a log line never shows it


@dataclass(frozen=True, slots=True)
class Tracking:
    """A parcel's tracking, as the store shipped it (Sitoo's delivery reference and carrier)."""

    number: str
    company: str = ""


@dataclass(frozen=True, slots=True)
class PickupDetails:
    fulfilment_order_id: int
    status: str
    method: str
    location_id: int | None
    order_id: int
    order_name: str
    email: str | None
    financial_status: str  # PAID, AUTHORIZED, PENDING, ...
    currency: str
    lines: tuple[PickupLine, ...]
    # when the earliest card authorisation not yet captured in full lapses (Unix time); None
    # when the checkout was paid, or Shopify gives no date
    authorisation_expires_at: float | None = None
    destination: Destination | None = None  # a shipment's; None for a pickup


async def read_pickup(execute: Execute, fulfilment_order_id: int) -> PickupDetails | None:
    lines: list[PickupLine] = []
    after: str | None = None
    head: JSON | None = None
    while True:
        data = await execute(
            PICKUP_FULFILLMENT_ORDER,
            {"id": gid("FulfillmentOrder", fulfilment_order_id), "after": after},
        )
        node = data.get("fulfillmentOrder")
        if node is None:
            return None
        head = head or node
        page = node["lineItems"]
        for n in page.get("nodes", []):
            item = n.get("lineItem") or {}
            price = ((item.get("discountedUnitPriceSet") or {}).get("shopMoney") or {}).get(
                "amount"
            )
            lines.append(
                PickupLine(
                    fulfilment_order_line_id=gid_tail(n["id"]),
                    line_item_id=gid_tail(item["id"]) if item.get("id") else 0,
                    sku=n.get("sku") or "",
                    name=str(item.get("name") or n.get("sku") or "item"),
                    remaining=int(n["remainingQuantity"]),
                    total=int(n["totalQuantity"]),
                    unit_price=Decimal(str(price or "0")),
                )
            )
        info = page.get("pageInfo") or {}
        if not info.get("hasNextPage"):
            break
        after = info.get("endCursor")
    order = head["order"]
    location = ((head.get("assignedLocation") or {}).get("location") or {}).get("id")
    return PickupDetails(
        fulfilment_order_id=fulfilment_order_id,
        status=str(head["status"]),
        method=str((head.get("deliveryMethod") or {}).get("methodType") or "NONE").upper(),
        location_id=gid_tail(location) if location else None,
        order_id=gid_tail(order["id"]),
        order_name=str(order.get("name") or ""),
        email=order.get("email"),
        financial_status=str(order.get("displayFinancialStatus") or "").upper(),
        currency=str(order.get("currencyCode") or ""),
        lines=tuple(lines),
        authorisation_expires_at=_earliest_expiry(order),
        destination=_destination(head.get("destination")),
    )


def _destination(node: JSON | None) -> Destination | None:
    if not node:
        return None

    def text(name: str) -> str:
        return str(node.get(name) or "")

    return Destination(
        first_name=text("firstName"),
        last_name=text("lastName"),
        address1=text("address1"),
        address2=text("address2"),
        city=text("city"),
        zip=text("zip"),
        province=text("province"),
        country_code=text("countryCode").upper(),
        phone=text("phone"),
    )


def _earliest_expiry(order: JSON) -> float | None:
    """The earliest expiry of the order's successful authorisations, while it is not paid in
    full (a captured authorisation no longer lapses)."""
    if str(order.get("displayFinancialStatus") or "").upper() not in (
        "AUTHORIZED",
        "PARTIALLY_PAID",
    ):
        return None
    dates = [
        datetime.fromisoformat(str(t["authorizationExpiresAt"]).replace("Z", "+00:00")).timestamp()
        for t in order.get("transactions") or []
        if t.get("kind") == "AUTHORIZATION"
        and t.get("status") == "SUCCESS"
        and t.get("authorizationExpiresAt")
    ]
    return min(dates) if dates else None
