"""The simulated shop: its records and every change to them, merchant-side or through the API.

All changes go through here so the quantity invariant and the webhooks that each change fires
live in one place. ``publish(topic, body)`` is set by the simulator to its webhook dispatcher.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tillsync.connectors.shopify.ids import gid
from tillsync_sim.shopify import payloads
from tillsync_sim.shopify.model import (
    QUANTITY_NAMES,
    RETURN_RELEASED_STATUSES,
    Customer,
    Disposition,
    Fulfillment,
    FulfillmentOrder,
    FulfillmentOrderLine,
    InventoryItem,
    Level,
    LineItem,
    Location,
    Metafield,
    Order,
    Product,
    Refund,
    RefundLine,
    Return,
    ReturnLine,
    ReverseFulfillmentOrder,
    RfoLine,
    ShippingAddress,
    Transaction,
    Variant,
    WebhookSubscription,
    now_iso,
)

Publish = Callable[[str, dict[str, Any]], None]

QUANTITY_LIMIT = 1_000_000_000
AUTHORIZATION_DAYS = 7  # how long a card authorisation holds (Shopify Payments: 7 days)


# the DeliveryMethodType values a fulfilment order can have
DELIVERY_METHODS = ("SHIPPING", "PICK_UP", "LOCAL", "NONE", "RETAIL", "PICKUP_POINT")
# the ReverseFulfillmentOrderDispositionType values
DISPOSITION_TYPES = ("RESTOCKED", "PROCESSING_REQUIRED", "NOT_RESTOCKED", "MISSING")


class SimError(ValueError):
    """A merchant-side action that cannot be done (unknown SKU, location, order...)."""


@dataclass
class UserError:
    field: list[str] | None
    message: str
    code: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "message": self.message, "code": self.code}


class Refused(SimError):
    """An API action Shopify answers with userErrors: every error found (fields relative to
    the mutation's input object), and nothing changed."""

    def __init__(self, errors: list[UserError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class ReturnRequest:
    """One ``ReturnLineItemInput``: units of a fulfilment line item to take back."""

    fulfillment_line_item_id: int
    quantity: int
    reason: str = "UNKNOWN"
    reason_note: str | None = None


@dataclass(frozen=True)
class DisposeRequest:
    """One ``ReverseFulfillmentOrderDisposeInput``."""

    rfo_line_id: int
    quantity: int
    type: str  # ReverseFulfillmentOrderDispositionType
    location_id: int | None = None


@dataclass(frozen=True)
class RefundPayment:
    """One ``ReturnRefundOrderTransactionInput``: money back against a payment."""

    parent_id: int
    amount: Decimal
    currency: str


@dataclass(frozen=True)
class SuggestedRefund:
    """``Return.suggestedRefund``: what the lines are worth, capped at what is refundable,
    split over the payments as (payment, amount) in order."""

    subtotal: Decimal
    amount: Decimal
    maximum: Decimal
    transactions: list[tuple[Transaction, Decimal]]


@dataclass(frozen=True)
class CartPart:
    """What one fulfilment order of an online order holds: (sku, quantity) lines, the
    location they come from and how they reach the customer (SHIPPING, PICK_UP, ...)."""

    lines: tuple[tuple[str, int], ...]
    location_id: int
    delivery: str = "SHIPPING"


@dataclass
class QuantityChange:
    name: str
    delta: int
    quantity_after: int
    item_id: int
    location_id: int
    ledger_document_uri: str | None = None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "product"


def made_up_address(number: int) -> ShippingAddress:
    """The shipping address of an order placed without one: plainly fake, and the same for
    the same order number, so two runs of a scenario ship to the same places. The phone
    number is in the range Sweden's PTS keeps for fiction (070-174 06 05 to 070-174 06 99)."""
    return ShippingAddress(
        first_name="Test",
        last_name=f"Kund {number}",
        address1=f"Testgatan {number % 100 + 1}",
        city="Stockholm",
        zip="11122",
        country_code="SE",
        phone=f"+46701740{605 + number % 95:03d}",
    )


class ShopState:
    def __init__(self, shop_domain: str, publish: Publish | None = None) -> None:
        self.shop_domain = shop_domain
        self.publish: Publish = publish or (lambda _topic, _body: None)
        self._ids = itertools.count(1_000_001)
        self._order_numbers = itertools.count(1001)
        self.locations: dict[int, Location] = {}
        self.products: dict[int, Product] = {}
        self.variants: dict[int, Variant] = {}
        self.items: dict[int, InventoryItem] = {}
        self.levels: dict[tuple[int, int], Level] = {}
        self.orders: dict[int, Order] = {}
        self.fulfillment_orders: dict[int, FulfillmentOrder] = {}
        self.fulfillments: dict[int, Fulfillment] = {}
        self.refunds: dict[int, Refund] = {}
        self.returns: dict[int, Return] = {}
        self.reverse_fulfillment_orders: dict[int, ReverseFulfillmentOrder] = {}
        # ids of the lines of fulfilments, returns and reverse fulfilment orders -> the id of
        # the record holding them, so an input naming a line finds it without a scan
        self._fulfillment_of_line: dict[int, int] = {}
        self._return_of_line: dict[int, int] = {}
        self._rfo_of_line: dict[int, int] = {}
        self.customers: dict[int, Customer] = {}
        self.subscriptions: dict[int, WebhookSubscription] = {}
        self._sku_index: dict[str, int] = {}
        # (inventory item, location) -> time.monotonic() of the last staff edit in the admin:
        # a scenario tells an oversell in the moment before tillsync undoes an edit up apart
        self.staff_edited: dict[tuple[int, int], float] = {}

    def next_id(self) -> int:
        return next(self._ids)

    # -- lookups ----------------------------------------------------------------------------

    def variant_by_sku(self, sku: str) -> Variant | None:
        vid = self._sku_index.get(sku)
        return self.variants.get(vid) if vid is not None else None

    def item_for(self, sku_or_item: str | int) -> InventoryItem:
        if isinstance(sku_or_item, int):
            item = self.items.get(sku_or_item)
        else:
            v = self.variant_by_sku(sku_or_item)
            item = self.items.get(v.inventory_item_id) if v else None
        if item is None:
            raise SimError(f"no inventory item for {sku_or_item!r}")
        return item

    def location(self, location_id: int) -> Location:
        loc = self.locations.get(location_id)
        if loc is None:
            raise SimError(f"no location {location_id}")
        return loc

    def order(self, order_id: int) -> Order:
        o = self.orders.get(order_id)
        if o is None:
            raise SimError(f"no order {order_id}")
        return o

    def customer_by_email(self, email: str) -> Customer | None:
        wanted = email.strip().lower()
        for c in self.customers.values():
            if c.email and c.email.lower() == wanted:
                return c
        return None

    # -- seeding ----------------------------------------------------------------------------

    def add_location(self, name: str, **fields: Any) -> Location:
        loc = Location(id=self.next_id(), name=name, **fields)
        self.locations[loc.id] = loc
        return loc

    def add_product(
        self,
        title: str,
        variants: Iterable[dict[str, Any]],
        *,
        inventory: dict[int, int] | None = None,
        notify: bool = False,
        **fields: Any,
    ) -> Product:
        """Create a product; each variant dict has ``sku``, optional ``price``, ``barcode``,
        ``title`` and ``inventory`` ({location id: available}) overriding ``inventory``."""
        product = Product(id=self.next_id(), title=title, handle=_slug(title), **fields)
        self.products[product.id] = product
        for pos, spec in enumerate(variants, start=1):
            v = self._add_variant(product, spec, pos)
            for loc_id, qty in (spec.get("inventory") or inventory or {}).items():
                self.activate(v.inventory_item_id, int(loc_id), available=int(qty))
        if notify:
            self.publish("products/create", payloads.product(product, self))
        return product

    def _add_variant(self, product: Product, spec: dict[str, Any], position: int) -> Variant:
        sku = str(spec.get("sku") or "")
        if sku and sku in self._sku_index:
            raise SimError(f"SKU {sku!r} exists")
        vid, iid = self.next_id(), self.next_id()
        v = Variant(
            id=vid,
            product_id=product.id,
            sku=sku,
            price=Decimal(str(spec.get("price", "0.00"))),
            inventory_item_id=iid,
            title=str(spec.get("title") or "Default Title"),
            barcode=spec.get("barcode"),
            position=position,
        )
        self.variants[vid] = v
        self.items[iid] = InventoryItem(id=iid, variant_id=vid, sku=sku)
        product.variant_ids.append(vid)
        if sku:
            self._sku_index[sku] = vid
        return v

    def activate(self, item_id: int, location_id: int, available: int = 0) -> Level:
        key = (item_id, location_id)
        level = self.levels.get(key)
        if level is None:
            level = Level(item_id=item_id, location_id=location_id)
            level.set("available", available)
            self.levels[key] = level
        return level

    # -- inventory --------------------------------------------------------------------------

    def _notify_levels(self, levels: Iterable[Level]) -> None:
        seen: set[tuple[int, int]] = set()
        for level in levels:
            key = (level.item_id, level.location_id)
            if key not in seen:
                seen.add(key)
                self.publish("inventory_levels/update", payloads.inventory_level(level))

    def apply_set(self, name: str, entries: list[tuple[int, int, int]]) -> list[QuantityChange]:
        """Set ``name`` for (item, location, quantity) entries already checked by the caller."""
        changes: list[QuantityChange] = []
        touched: list[Level] = []
        for item_id, loc_id, qty in entries:
            level = self.levels[(item_id, loc_id)]
            delta = level.set(name, qty)
            changes.append(QuantityChange(name, delta, level.get(name), item_id, loc_id))
            other = "on_hand" if name == "available" else "available"
            changes.append(QuantityChange(other, delta, level.get(other), item_id, loc_id))
            if delta:
                touched.append(level)
        self._notify_levels(touched)
        return changes

    def apply_adjust(
        self, name: str, entries: list[tuple[int, int, int, str | None]]
    ) -> list[QuantityChange]:
        changes: list[QuantityChange] = []
        touched: list[Level] = []
        for item_id, loc_id, delta, ledger in entries:
            level = self.levels[(item_id, loc_id)]
            level.add(name, delta)
            changes.append(QuantityChange(name, delta, level.get(name), item_id, loc_id, ledger))
            if name in ("available", "on_hand") or name in QUANTITY_NAMES:
                touched.append(level)
        self._notify_levels(touched)
        return changes

    def edit_inventory(
        self,
        sku_or_item: str | int,
        location_id: int,
        *,
        quantity: int | None = None,
        delta: int | None = None,
        name: str = "available",
    ) -> Level:
        """A staff member edits stock in the Shopify admin (absolute ``quantity`` or ``delta``)."""
        if name not in QUANTITY_NAMES or name == "incoming":
            raise SimError(f"cannot edit {name!r}")
        item = self.item_for(sku_or_item)
        self.location(location_id)
        level = self.levels.get((item.id, location_id)) or self.activate(item.id, location_id)
        if quantity is not None:
            level.set(name, quantity)
        elif delta is not None:
            level.add(name, delta)
        else:
            raise SimError("give quantity or delta")
        self.staff_edited[(item.id, location_id)] = time.monotonic()
        self._notify_levels([level])
        return level

    # -- orders -----------------------------------------------------------------------------

    def place_order(
        self,
        lines: Iterable[tuple[str, int]],
        *,
        location_id: int,
        delivery: str = "SHIPPING",
        email: str | None = None,
        financial_status: str = "paid",
        currency: str = "SEK",
        shipping_address: ShippingAddress | None = None,
    ) -> Order:
        """An online order with one fulfilment order: stock at ``location_id`` moves from
        available to committed (``place_mixed_order`` with one part).

        ``financial_status`` "paid" is a SALE of the total at checkout and "authorized" an
        authorisation of it; "pending" (paid in store, or by a manual method) took no money
        and has no transaction until ``mark_as_paid``.

        A SHIPPING order without ``shipping_address`` gets ``made_up_address(number)``; a
        pickup has none (the customer collects it), so one given with it is refused."""
        part = CartPart(tuple(lines), location_id, delivery)
        return self.place_mixed_order(
            [part],
            email=email,
            financial_status=financial_status,
            currency=currency,
            shipping_address=shipping_address,
        )

    @staticmethod
    def _delivery_method(name: str) -> str:
        method = name.upper()
        # "pickup" is taken for PICK_UP; only the whole word, so PICKUP_POINT stays itself
        method = "PICK_UP" if method == "PICKUP" else method
        if method not in DELIVERY_METHODS:
            raise SimError(f"unknown delivery method {method!r}")
        return method

    def _check_part(self, part: CartPart) -> None:
        self.location(part.location_id)
        if not part.lines:
            raise SimError(f"a cart part at location {part.location_id} has no lines")
        for sku, _qty in part.lines:
            v = self.variant_by_sku(sku)
            if v is None:
                raise SimError(f"unknown SKU {sku!r}")
            if (v.inventory_item_id, part.location_id) not in self.levels:
                raise SimError(f"SKU {sku!r} is not stocked at location {part.location_id}")

    def place_mixed_order(
        self,
        parts: Sequence[CartPart],
        *,
        email: str | None = None,
        financial_status: str = "paid",
        currency: str = "SEK",
        shipping_address: ShippingAddress | None = None,
    ) -> Order:
        """An online order whose cart Shopify splits over fulfilment orders, one per part
        (say two lines picked up at one store, one shipped from another): each part's stock
        moves from available to committed at its own location. See ``place_order`` for
        ``financial_status``; the order has a shipping address (given or made up) when any
        part is shipped, and refuses one when every part is picked up.

        Everything is checked before anything changes, so a refused order leaves no trace."""
        if not parts:
            raise SimError("an order needs at least one cart part")
        deliveries = [self._delivery_method(part.delivery) for part in parts]
        if shipping_address is not None and all(d == "PICK_UP" for d in deliveries):
            raise SimError("a pickup order has no shipping address")
        for part in parts:
            self._check_part(part)
        customer = None
        created_customer = False
        if email:
            customer = self.customer_by_email(email)
            if customer is None:
                customer = Customer(id=self.next_id(), email=email)
                self.customers[customer.id] = customer
                created_customer = True
        items: list[LineItem] = []
        fo_specs: list[tuple[CartPart, str, list[FulfillmentOrderLine]]] = []
        touched: list[Level] = []
        for part, delivery in zip(parts, deliveries, strict=True):
            fo_lines: list[FulfillmentOrderLine] = []
            for sku, qty in part.lines:
                v = self.variant_by_sku(sku)
                assert v is not None
                product = self.products[v.product_id]
                li = LineItem(
                    id=self.next_id(),
                    variant_id=v.id,
                    product_id=v.product_id,
                    sku=sku,
                    title=product.title,
                    quantity=int(qty),
                    price=v.price,
                )
                items.append(li)
                fo_lines.append(
                    FulfillmentOrderLine(
                        id=self.next_id(),
                        line_item_id=li.id,
                        variant_id=v.id,
                        inventory_item_id=v.inventory_item_id,
                        sku=sku,
                        total=int(qty),
                        remaining=int(qty),
                    )
                )
                level = self.levels[(v.inventory_item_id, part.location_id)]
                level.add("available", -int(qty))
                level.add("committed", int(qty))
                touched.append(level)
            fo_specs.append((part, delivery, fo_lines))
        number = next(self._order_numbers)
        if shipping_address is None and "SHIPPING" in deliveries:
            shipping_address = made_up_address(number)
        order = Order(
            id=self.next_id(),
            number=number,
            email=email,
            customer_id=customer.id if customer else None,
            line_items=items,
            currency=currency,
            financial_status=financial_status,
            shipping_address=shipping_address,
        )
        if financial_status in ("paid", "authorized"):
            authorised = financial_status == "authorized"
            expires = time.time() + AUTHORIZATION_DAYS * 86400
            order.transactions.append(
                Transaction(
                    id=self.next_id(),
                    kind="AUTHORIZATION" if authorised else "SALE",
                    amount=order.total,
                    currency=currency,
                    authorization_expires_at=(
                        datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                        if authorised
                        else None
                    ),
                )
            )
        for part, delivery, fo_lines in fo_specs:
            fo = FulfillmentOrder(
                id=self.next_id(),
                order_id=order.id,
                location_id=part.location_id,
                method_type=delivery,
                lines=fo_lines,
            )
            self.fulfillment_orders[fo.id] = fo
            order.fulfillment_order_ids.append(fo.id)
        self.orders[order.id] = order
        if customer and created_customer:
            self.publish("customers/create", payloads.customer(customer, self))
        body = payloads.order(order, self)
        self.publish("orders/create", body)
        if financial_status == "paid":
            self.publish("orders/paid", body)
        self._notify_levels(touched)
        return order

    def capture(
        self, order_id: int, parent_id: int, amount: Decimal, currency: str | None = None
    ) -> Transaction:
        """Capture ``amount`` of an order's authorisation (``orderCapture``): refused beyond
        what it still holds. The order is paid once nothing is left to capture."""
        order = self.orders.get(order_id)
        if order is None:
            raise SimError("Order does not exist")
        parent = next((t for t in order.transactions if t.id == parent_id), None)
        if parent is None or parent.kind != "AUTHORIZATION" or parent.status != "SUCCESS":
            raise SimError("Parent transaction is not a successful authorization")
        if currency is not None and currency != order.currency:
            raise SimError(f"Currency must be {order.currency}")
        if amount <= 0 or amount > order.held(parent_id):
            raise SimError("Amount is greater than the capturable amount")
        capture = Transaction(
            id=self.next_id(),
            kind="CAPTURE",
            amount=amount,
            currency=order.currency,
            parent_id=parent_id,
        )
        order.transactions.append(capture)
        order.financial_status = "paid" if order.capturable() == 0 else "partially_paid"
        self._touch_order(order)
        if order.financial_status == "paid":
            self.publish("orders/paid", payloads.order(order, self))
        return capture

    def refunded(self, order: Order) -> Decimal:
        """What the order's refunds amount to."""
        return sum((self.refunds[r].amount for r in order.refund_ids), Decimal("0.00"))

    def outstanding(self, order: Order) -> Decimal:
        """What the customer still owes: the total less what was paid and what refunds took
        off (a refund of a line not paid for yet lowers what is owed)."""
        return max(order.total - order.received() - self.refunded(order), Decimal("0.00"))

    def can_mark_as_paid(self, order: Order) -> bool:
        # an authorisation is captured, not marked as paid; a paid order owes nothing
        return (
            not order.cancelled_at
            and order.financial_status in ("pending", "partially_paid")
            and self.outstanding(order) > 0
        )

    def mark_as_paid(self, order_id: int) -> Transaction:
        """A payment taken outside Shopify's checkout is recorded (``orderMarkAsPaid``), as
        for an order paid in store at the till: what is still owed becomes one manual SALE
        and the order is paid."""
        order = self.orders.get(order_id)
        if order is None:
            raise SimError("Order does not exist.")
        if not self.can_mark_as_paid(order):
            raise SimError("Order cannot be marked as paid.")
        sale = Transaction(
            id=self.next_id(),
            kind="SALE",
            amount=self.outstanding(order),
            currency=order.currency,
            gateway="manual",
        )
        order.transactions.append(sale)
        order.financial_status = "paid"
        self._touch_order(order)
        body = payloads.order(order, self)
        self.publish("orders/paid", body)
        self.publish("orders/updated", body)
        return sale

    def _touch_order(self, order: Order) -> None:
        order.updated_at = now_iso()

    def cancel_order(
        self,
        order_id: int,
        *,
        reason: str = "customer",
        restock: bool = True,
        refund: bool = False,
        staff_note: str | None = None,
        notify_customer: bool = False,
    ) -> Order:
        """Cancel what was not fulfilled. Its committed units go back to available with
        ``restock``; without, they leave on_hand (gone, as damaged goods are). ``refund``
        gives back what the customer paid and voids what authorisations still hold."""
        order = self.order(order_id)
        if order.cancelled_at:
            raise SimError(f"order {order_id} is already cancelled")
        touched: list[Level] = []
        released: dict[int, int] = {}  # line item id -> location its units were committed at
        for fo_id in order.fulfillment_order_ids:
            fo = self.fulfillment_orders[fo_id]
            for line in fo.lines:
                if line.remaining:
                    level = self.levels[(line.inventory_item_id, fo.location_id)]
                    level.add("committed", -line.remaining)
                    if restock:
                        level.add("available", line.remaining)
                    touched.append(level)
                    released.setdefault(line.line_item_id, fo.location_id)
                    line.remaining = 0
            if fo.status not in ("CLOSED",):
                fo.status = "CANCELLED"
                fo.updated_at = now_iso()
        made = self._refund_payment(order, released, restock=restock) if refund else None
        order.cancelled_at = now_iso()
        order.cancel_reason = reason
        order.cancel_staff_note = staff_note
        order.cancel_notified = notify_customer
        self._touch_order(order)
        body = payloads.order(order, self)
        if made is not None:
            self.publish("refunds/create", payloads.refund(made, order))
        self.publish("orders/cancelled", body)
        self.publish("orders/updated", body)
        self._notify_levels(touched)
        return order

    def _refund_payment(
        self, order: Order, released: dict[int, int], *, restock: bool
    ) -> Refund | None:
        """The money side of a cancel with refund: authorisations still holding are voided,
        and what was paid and not refunded yet comes back in one Refund of the units neither
        fulfilled nor refunded, a REFUND transaction against each payment it comes from.
        None when nothing was paid (a pending or only authorised order)."""
        voided = False
        for t in list(order.transactions):
            if t.kind == "AUTHORIZATION" and t.status == "SUCCESS" and order.held(t.id) > 0:
                order.transactions.append(
                    Transaction(
                        id=self.next_id(),
                        kind="VOID",
                        amount=order.held(t.id),
                        currency=order.currency,
                        parent_id=t.id,
                    )
                )
                voided = True
        owed = max(order.received() - self.refunded(order), Decimal("0.00"))
        if owed == 0:
            if voided and order.received() == 0:
                order.financial_status = "voided"
            return None
        lines: list[RefundLine] = []
        for li in order.line_items:
            qty = li.unfulfilled
            if qty <= 0:
                continue
            li.refunded += qty
            kind = "cancel" if restock and li.id in released else "no_restock"
            lines.append(
                RefundLine(self.next_id(), li.id, qty, kind, released.get(li.id), li.price * qty)
            )
        r = Refund(id=self.next_id(), order_id=order.id, note=None, lines=lines, amount=owed)
        left = owed
        # an order is cancelled once, so no payment has a REFUND against it yet
        for paid in [t for t in order.transactions if t.kind in ("SALE", "CAPTURE")]:
            amount = min(left, paid.amount)
            if paid.status != "SUCCESS" or amount <= 0:
                continue
            order.transactions.append(
                Transaction(
                    id=self.next_id(),
                    kind="REFUND",
                    amount=amount,
                    currency=order.currency,
                    parent_id=paid.id,
                    gateway=paid.gateway,
                    refund_id=r.id,
                )
            )
            left -= amount
        self.refunds[r.id] = r
        order.refund_ids.append(r.id)
        order.financial_status = "refunded"
        return r

    def fulfil(
        self,
        fulfillment_order_id: int,
        lines: list[tuple[int, int]] | None = None,
        *,
        tracking_numbers: Sequence[str] = (),
        tracking_urls: Sequence[str] = (),
        tracking_company: str | None = None,
        notify_customer: bool = False,
    ) -> Fulfillment:
        """Fulfil a fulfillment order (all of it, or (fo line id, quantity) pairs):
        committed and on_hand both fall. The tracking (``tracking_numbers[i]`` shipped with
        ``tracking_urls[i]`` by ``tracking_company``) is kept on the fulfilment and goes out
        in its fulfillments/create webhook."""
        fo = self.fulfillment_orders.get(fulfillment_order_id)
        if fo is None:
            raise SimError(f"no fulfillment order {fulfillment_order_id}")
        if fo.status in ("CLOSED", "CANCELLED"):
            raise SimError(f"fulfillment order {fulfillment_order_id} is {fo.status.lower()}")
        by_id = {line.id: line for line in fo.lines}
        wanted = lines if lines is not None else [(ln.id, ln.remaining) for ln in fo.lines]
        for line_id, qty in wanted:
            line = by_id.get(line_id)
            if line is None or qty < 1 or qty > line.remaining:
                raise SimError(f"invalid quantity {qty} for fulfillment order line {line_id}")
        order = self.orders[fo.order_id]
        items = {li.id: li for li in order.line_items}
        done: list[tuple[int, int]] = []
        for line_id, qty in wanted:
            line = by_id[line_id]
            if not qty:
                continue
            line.remaining -= qty
            self.levels[(line.inventory_item_id, fo.location_id)].add("committed", -qty)
            items[line.line_item_id].fulfilled += qty
            done.append((line.line_item_id, qty))
        fo.status = "CLOSED" if all(ln.remaining == 0 for ln in fo.lines) else "IN_PROGRESS"
        fo.updated_at = now_iso()
        f = Fulfillment(
            id=self.next_id(),
            order_id=order.id,
            location_id=fo.location_id,
            lines=done,
            line_ids=[self.next_id() for _ in done],
            tracking_numbers=list(tracking_numbers),
            tracking_urls=list(tracking_urls),
            tracking_company=tracking_company,
            notified=notify_customer,
        )
        self.fulfillments[f.id] = f
        for line_id in f.line_ids:
            self._fulfillment_of_line[line_id] = f.id
        order.fulfillment_ids.append(f.id)
        complete = all(li.unfulfilled == 0 for li in order.line_items)
        order.fulfillment_status = "fulfilled" if complete else "partial"
        self._touch_order(order)
        body = payloads.order(order, self)
        self.publish("fulfillments/create", payloads.fulfillment(f, order))
        if complete:
            self.publish("orders/fulfilled", body)
        self.publish("orders/updated", body)
        return f

    def cancel_fulfillment(self, fulfillment_id: int) -> Fulfillment:
        """Cancel a fulfilment: its units are committed again on the fulfilment order they
        came from (on_hand comes back), and the fulfilment order can be fulfilled again."""
        f = self.fulfillments.get(fulfillment_id)
        if f is None:
            raise SimError(f"no fulfillment {fulfillment_id}")
        if f.status != "success":
            raise SimError(f"fulfillment {fulfillment_id} is {f.status}")
        if any(self._returned(f.order_id, line_id) for line_id in f.line_ids):
            # the returned units came back through the return, not through this fulfilment
            raise SimError(f"fulfillment {fulfillment_id} has returns")
        order = self.orders[f.order_id]
        items = {li.id: li for li in order.line_items}
        fos = [self.fulfillment_orders[i] for i in order.fulfillment_order_ids]
        for li_id, qty in f.lines:
            left = qty
            for fo in fos:
                if fo.location_id != f.location_id or fo.status == "CANCELLED":
                    continue
                for line in fo.lines:
                    back = (
                        min(left, line.total - line.remaining) if line.line_item_id == li_id else 0
                    )
                    if back <= 0:
                        continue
                    line.remaining += back
                    left -= back
                    self.levels[(line.inventory_item_id, fo.location_id)].add("committed", back)
                    fo.status = "IN_PROGRESS" if fo.prepared_for_pickup else "OPEN"
                    fo.updated_at = now_iso()
            items[li_id].fulfilled -= qty
        f.status = "cancelled"
        f.updated_at = now_iso()
        order.fulfillment_status = (
            "partial" if any(li.fulfilled for li in order.line_items) else None
        )
        self._touch_order(order)
        self.publish("fulfillments/update", payloads.fulfillment(f, order))
        self.publish("orders/updated", payloads.order(order, self))
        return f

    def move_fulfillment_order(
        self, fulfillment_order_id: int, new_location_id: int
    ) -> tuple[FulfillmentOrder, FulfillmentOrder]:
        """Move what is left to fulfil to another location, as ``fulfillmentOrderMove``: a
        fulfilment order with nothing fulfilled moves whole (same id); otherwise the rest goes
        to a new fulfilment order there and the original is closed. Returns (original, moved).
        The committed units move with it."""
        fo = self.fulfillment_orders.get(fulfillment_order_id)
        if fo is None:
            raise SimError(f"no fulfillment order {fulfillment_order_id}")
        if fo.status in ("CLOSED", "CANCELLED"):
            raise SimError(f"fulfillment order {fulfillment_order_id} is {fo.status.lower()}")
        self.location(new_location_id)
        if new_location_id == fo.location_id:
            raise SimError("the fulfillment order is already assigned to that location")
        touched: list[Level] = []
        for line in fo.lines:
            if line.remaining:
                old = self.levels[(line.inventory_item_id, fo.location_id)]
                old.add("committed", -line.remaining)
                old.add("available", line.remaining)
                new = self.levels.get((line.inventory_item_id, new_location_id)) or self.activate(
                    line.inventory_item_id, new_location_id
                )
                new.add("available", -line.remaining)
                new.add("committed", line.remaining)
                touched.extend([old, new])
        order = self.orders[fo.order_id]
        if all(line.remaining == line.total for line in fo.lines):
            fo.location_id = new_location_id
            fo.updated_at = now_iso()
            original = moved = fo
        else:
            moved = FulfillmentOrder(
                id=self.next_id(),
                order_id=fo.order_id,
                location_id=new_location_id,
                method_type=fo.method_type,
                lines=[
                    FulfillmentOrderLine(
                        id=self.next_id(),
                        line_item_id=line.line_item_id,
                        variant_id=line.variant_id,
                        inventory_item_id=line.inventory_item_id,
                        sku=line.sku,
                        total=line.remaining,
                        remaining=line.remaining,
                    )
                    for line in fo.lines
                    if line.remaining
                ],
            )
            for line in fo.lines:
                line.total -= line.remaining
                line.remaining = 0
            fo.status = "CLOSED"
            fo.updated_at = now_iso()
            self.fulfillment_orders[moved.id] = moved
            order.fulfillment_order_ids.append(moved.id)
            original = fo
        self._touch_order(order)
        self.publish("fulfillment_orders/moved", payloads.fulfillment_order_moved(original, moved))
        self._notify_levels(touched)
        return original, moved

    def prepare_for_pickup(self, fulfillment_order_id: int) -> FulfillmentOrder:
        fo = self.fulfillment_orders.get(fulfillment_order_id)
        if fo is None:
            raise SimError(f"no fulfillment order {fulfillment_order_id}")
        if fo.method_type != "PICK_UP":
            raise SimError("fulfillment order is not for local pickup")
        if fo.status not in ("OPEN", "IN_PROGRESS"):
            raise SimError(f"fulfillment order is {fo.status.lower()}")
        fo.prepared_for_pickup = True
        fo.ready_emails += 1
        fo.status = "IN_PROGRESS"
        fo.updated_at = now_iso()
        self.publish(
            "fulfillment_orders/line_items_prepared_for_pickup", payloads.fulfillment_order(fo)
        )
        return fo

    def refund(
        self,
        order_id: int,
        lines: list[tuple[int, int, str, int | None]],
        *,
        note: str | None = None,
        money: Decimal | None = None,
    ) -> Refund:
        """Refund (line item id, quantity, restock type, location id) lines.

        RETURN puts units back into available at the location; CANCEL releases units still
        committed on an open fulfillment order; NO_RESTOCK moves no stock. ``money``: what
        the refund's transactions pay back (``refundCreate``: none without them); by default
        the lines' worth (a refund in the admin, which suggests it).
        """
        order = self.order(order_id)
        items = {li.id: li for li in order.line_items}
        for li_id, qty, restock, loc_id in lines:
            li = items.get(li_id)
            if li is None:
                raise SimError(f"line item {li_id} is not on order {order_id}")
            if qty < 1 or qty > li.quantity - li.refunded:
                raise SimError(f"cannot refund {qty} of line item {li_id}")
            if restock.lower() not in ("no_restock", "cancel", "return", "legacy_restock"):
                raise SimError(f"unknown restock type {restock!r}")
            if restock.lower() == "return" and loc_id is None:
                raise SimError("a RETURN restock needs a location")
        touched: list[Level] = []
        refund_lines: list[RefundLine] = []
        for li_id, qty, restock, loc_id in lines:
            li = items[li_id]
            kind = restock.lower()
            li.refunded += qty
            if kind in ("return", "legacy_restock") and loc_id is not None:
                v = self.variants[li.variant_id]
                level = self.levels.get((v.inventory_item_id, loc_id)) or self.activate(
                    v.inventory_item_id, loc_id
                )
                level.add("available", qty)
                touched.append(level)
            elif kind == "cancel":
                touched.extend(self._release_committed(order, li, qty))
            refund_lines.append(
                RefundLine(self.next_id(), li_id, qty, kind, loc_id, li.price * qty)
            )
        amount = sum((rl.subtotal for rl in refund_lines), Decimal(0)) if money is None else money
        r = Refund(
            id=self.next_id(), order_id=order.id, note=note, lines=refund_lines, amount=amount
        )
        self.refunds[r.id] = r
        order.refund_ids.append(r.id)
        refunded_all = all(li.refunded >= li.quantity for li in order.line_items)
        order.financial_status = "refunded" if refunded_all else "partially_refunded"
        self._touch_order(order)
        self.publish("refunds/create", payloads.refund(r, order))
        self.publish("orders/updated", payloads.order(order, self))
        self._notify_levels(touched)
        return r

    def _release_committed(self, order: Order, li: LineItem, qty: int) -> list[Level]:
        out: list[Level] = []
        for fo_id in order.fulfillment_order_ids:
            fo = self.fulfillment_orders[fo_id]
            for line in fo.lines:
                if line.line_item_id == li.id and line.remaining and qty:
                    n = min(qty, line.remaining)
                    line.remaining -= n
                    qty -= n
                    if all(x.remaining == 0 for x in fo.lines):
                        fo.status = "CLOSED"  # every unit fulfilled or cancelled
                    level = self.levels[(line.inventory_item_id, fo.location_id)]
                    level.add("committed", -n)
                    level.add("available", n)
                    out.append(level)
        return out

    # -- returns ----------------------------------------------------------------------------
    #
    # The store-return chain of the 2025-01 Admin API: returnCreate makes an OPEN return and
    # its reverse fulfilment order, reverseFulfillmentOrderDispose restocks (or not) what came
    # back, returnRefund refunds the lines (with or without money) and returnClose closes it.
    # Each checks everything first and raises ``Refused`` with all it found, changing nothing.

    def fulfillment_line(self, line_id: int) -> tuple[Fulfillment, int, int] | None:
        """A fulfilment line item by its id: (its fulfilment, line item id, quantity)."""
        f_id = self._fulfillment_of_line.get(line_id)
        if f_id is None:
            return None
        f = self.fulfillments[f_id]
        li_id, qty = f.lines[f.line_ids.index(line_id)]
        return f, li_id, qty

    def returns_of(self, order_id: int) -> list[Return]:
        """An order's returns, oldest first."""
        return [self.returns[r] for r in self.order(order_id).return_ids]

    def return_line(self, line_id: int) -> tuple[Return, ReturnLine] | None:
        r_id = self._return_of_line.get(line_id)
        if r_id is None:
            return None
        ret = self.returns[r_id]
        return ret, next(line for line in ret.lines if line.id == line_id)

    def rfo_line(self, line_id: int) -> tuple[ReverseFulfillmentOrder, RfoLine] | None:
        rfo_id = self._rfo_of_line.get(line_id)
        if rfo_id is None:
            return None
        rfo = self.reverse_fulfillment_orders[rfo_id]
        return rfo, next(line for line in rfo.lines if line.id == line_id)

    def _returned(self, order_id: int, fulfillment_line_id: int) -> int:
        """Units of a fulfilment line item that the order's returns hold (all but canceled
        and declined ones)."""
        return sum(
            line.quantity
            for r in self.returns_of(order_id)
            if r.status not in RETURN_RELEASED_STATUSES
            for line in r.lines
            if line.fulfillment_line_item_id == fulfillment_line_id
        )

    def returnable(self, fulfillment_line_id: int) -> int:
        """Units of a fulfilment line item a new return can still take back: none of a
        cancelled fulfilment (its units never reached the customer)."""
        found = self.fulfillment_line(fulfillment_line_id)
        if found is None or found[0].status != "success":
            return 0
        f, _li_id, qty = found
        return qty - self._returned(f.order_id, fulfillment_line_id)

    def create_return(self, order_id: int, requests: Sequence[ReturnRequest]) -> Return:
        """``returnCreate``: an OPEN return of fulfilled units and the reverse fulfilment
        order that receives them (one line per return line, nothing disposed yet)."""
        order = self.orders.get(order_id)
        if order is None:
            raise Refused([UserError(["orderId"], "Order does not exist.", "NOT_FOUND")])
        errors: list[UserError] = []
        if not requests:
            errors.append(
                UserError(["returnLineItems"], "A return needs at least one line item.", "BLANK")
            )
        asked: dict[int, int] = {}  # one fulfilment line may come twice: both count
        for i, req in enumerate(requests):
            path = ["returnLineItems", str(i)]
            found = self.fulfillment_line(req.fulfillment_line_item_id)
            if found is None or found[0].order_id != order.id:
                errors.append(
                    UserError(
                        [*path, "fulfillmentLineItemId"],
                        "Fulfillment line item does not exist on the order.",
                        "NOT_FOUND",
                    )
                )
                continue
            if found[0].status != "success":
                errors.append(
                    UserError(
                        [*path, "fulfillmentLineItemId"],
                        "The fulfillment of this line item is cancelled.",
                        "INVALID",
                    )
                )
                continue
            if req.quantity < 1:
                errors.append(
                    UserError([*path, "quantity"], "Quantity must be greater than 0.", "INVALID")
                )
                continue
            fli = req.fulfillment_line_item_id
            asked[fli] = asked.get(fli, 0) + req.quantity
            left = self.returnable(fli)
            if asked[fli] > left:
                errors.append(
                    UserError(
                        [*path, "quantity"],
                        f"Quantity {asked[fli]} is more than the {left} returnable.",
                        "INVALID",
                    )
                )
        if errors:
            raise Refused(errors)
        ret_id, rfo_id = self.next_id(), self.next_id()
        lines: list[ReturnLine] = []
        for req in requests:
            found = self.fulfillment_line(req.fulfillment_line_item_id)
            assert found is not None
            lines.append(
                ReturnLine(
                    id=self.next_id(),
                    fulfillment_line_item_id=req.fulfillment_line_item_id,
                    line_item_id=found[1],
                    quantity=req.quantity,
                    reason=req.reason,
                    reason_note=req.reason_note or "",
                )
            )
        ret = Return(id=ret_id, order_id=order.id, status="OPEN", lines=lines, rfo_id=rfo_id)
        rfo = ReverseFulfillmentOrder(
            id=rfo_id,
            return_id=ret_id,
            lines=[
                RfoLine(
                    id=self.next_id(),
                    fulfillment_line_item_id=line.fulfillment_line_item_id,
                    return_line_id=line.id,
                    total=line.quantity,
                )
                for line in lines
            ],
        )
        self.returns[ret.id] = ret
        self.reverse_fulfillment_orders[rfo.id] = rfo
        for line in ret.lines:
            self._return_of_line[line.id] = ret.id
        for rfo_line in rfo.lines:
            self._rfo_of_line[rfo_line.id] = rfo.id
        order.return_ids.append(ret.id)
        self._touch_order(order)
        return ret

    def dispose(self, requests: Sequence[DisposeRequest]) -> list[RfoLine]:
        """``reverseFulfillmentOrderDispose``: say what became of returned units. RESTOCKED
        units go back into available at the location (a level made there when the item was
        not stocked yet); the other types move no stock. Returns the lines touched."""
        errors: list[UserError] = []
        asked: dict[int, int] = {}
        for i, req in enumerate(requests):
            path = [str(i)]
            found = self.rfo_line(req.rfo_line_id)
            if found is None:
                errors.append(
                    UserError(
                        [*path, "reverseFulfillmentOrderLineItemId"],
                        "Reverse fulfillment order line item does not exist.",
                        "NOT_FOUND",
                    )
                )
                continue
            rfo, line = found
            status = self.returns[rfo.return_id].status
            if status != "OPEN":
                errors.append(
                    UserError(
                        [*path, "reverseFulfillmentOrderLineItemId"],
                        f"The return is {status.lower()}.",
                        "INVALID_STATE",
                    )
                )
                continue
            if req.type not in DISPOSITION_TYPES:
                errors.append(
                    UserError(
                        [*path, "dispositionType"],
                        f"Unknown disposition type {req.type!r}.",
                        "INVALID",
                    )
                )
                continue
            if req.quantity < 1:
                errors.append(
                    UserError([*path, "quantity"], "Quantity must be greater than 0.", "INVALID")
                )
                continue
            asked[line.id] = asked.get(line.id, 0) + req.quantity
            if asked[line.id] > line.undisposed:
                errors.append(
                    UserError(
                        [*path, "quantity"],
                        f"Quantity {asked[line.id]} is more than the {line.undisposed} "
                        "units not disposed yet.",
                        "INVALID",
                    )
                )
                continue
            if req.type == "RESTOCKED" and req.location_id is None:
                errors.append(
                    UserError(
                        [*path, "locationId"], "A location is required to restock.", "INVALID"
                    )
                )
            elif req.location_id is not None and req.location_id not in self.locations:
                errors.append(
                    UserError([*path, "locationId"], "Location does not exist.", "NOT_FOUND")
                )
        if errors:
            raise Refused(errors)
        touched: list[Level] = []
        done: list[RfoLine] = []
        for req in requests:
            found = self.rfo_line(req.rfo_line_id)
            assert found is not None
            rfo, line = found
            line.dispositions.append(
                Disposition(self.next_id(), req.type, req.quantity, req.location_id)
            )
            if line not in done:
                done.append(line)
            if req.type == "RESTOCKED":
                assert req.location_id is not None
                item_id = self._returned_item(rfo, line)
                level = self.levels.get((item_id, req.location_id)) or self.activate(
                    item_id, req.location_id
                )
                level.add("available", req.quantity)
                touched.append(level)
        self._notify_levels(touched)
        return done

    def _returned_item(self, rfo: ReverseFulfillmentOrder, line: RfoLine) -> int:
        """The inventory item of a reverse fulfilment order line's units."""
        ret = self.returns[rfo.return_id]
        li_id = next(x.line_item_id for x in ret.lines if x.id == line.return_line_id)
        li = next(x for x in self.orders[ret.order_id].line_items if x.id == li_id)
        return self.variants[li.variant_id].inventory_item_id

    def _return_lines(
        self, ret: Return, lines: Sequence[tuple[int, int]], *, at_least: int
    ) -> list[UserError]:
        """Check (return line id, quantity) pairs against what each line can still refund."""
        errors: list[UserError] = []
        by_id = {line.id: line for line in ret.lines}
        asked: dict[int, int] = {}
        for i, (line_id, qty) in enumerate(lines):
            path = ["returnRefundLineItems", str(i)]
            line = by_id.get(line_id)
            if line is None:
                errors.append(
                    UserError(
                        [*path, "returnLineItemId"],
                        "Return line item does not exist on the return.",
                        "NOT_FOUND",
                    )
                )
                continue
            if qty < at_least:
                errors.append(
                    UserError(
                        [*path, "quantity"], f"Quantity must be at least {at_least}.", "INVALID"
                    )
                )
                continue
            asked[line_id] = asked.get(line_id, 0) + qty
            left = line.quantity - line.refunded
            if asked[line_id] > left:
                errors.append(
                    UserError(
                        [*path, "quantity"],
                        f"Quantity {asked[line_id]} is more than the {left} refundable.",
                        "INVALID",
                    )
                )
        return errors

    def refundable(self, order: Order) -> Decimal:
        """What can still be refunded: what the customer paid less what refunds gave back."""
        return max(order.received() - self.refunded(order), Decimal("0.00"))

    def suggested_refund(self, return_id: int, lines: Sequence[tuple[int, int]]) -> SuggestedRefund:
        """``Return.suggestedRefund``: the lines at their (tax-included, undiscounted) price,
        capped at what is refundable, split over the payments in order, each giving at most
        what earlier refunds left of it."""
        ret = self.returns.get(return_id)
        if ret is None:
            raise Refused([UserError(["id"], "Return does not exist.", "NOT_FOUND")])
        errors = self._return_lines(ret, lines, at_least=0)
        if errors:
            raise Refused(errors)
        order = self.orders[ret.order_id]
        prices = {li.id: li.price for li in order.line_items}
        by_id = {line.id: line for line in ret.lines}
        subtotal = sum(
            (prices[by_id[line_id].line_item_id] * qty for line_id, qty in lines),
            Decimal("0.00"),
        )
        return self._suggested(order, subtotal)

    def suggested_order_refund(
        self, order_id: int, lines: Sequence[tuple[int, int]]
    ) -> SuggestedRefund:
        """``Order.suggestedRefund`` for (line item id, units) lines: as a return's."""
        order = self.order(order_id)
        items = {li.id: li for li in order.line_items}
        errors = [
            UserError(["refundLineItems"], f"Line item {li_id} cannot refund {qty}.", "INVALID")
            for li_id, qty in lines
            if li_id not in items or not 0 < qty <= items[li_id].quantity - items[li_id].refunded
        ]
        if errors:
            raise Refused(errors)
        subtotal = sum((items[li_id].price * qty for li_id, qty in lines), Decimal("0.00"))
        return self._suggested(order, subtotal)

    def _suggested(self, order: Order, subtotal: Decimal) -> SuggestedRefund:
        maximum = self.refundable(order)
        amount = min(subtotal, maximum)
        split: list[tuple[Transaction, Decimal]] = []
        left = amount
        for paid in order.paid_transactions():
            share = min(left, order.refundable_from(paid.id))
            if share <= 0:
                continue
            split.append((paid, share))
            left -= share
        return SuggestedRefund(subtotal, amount, maximum, split)

    def refund_return(
        self,
        return_id: int,
        lines: Sequence[tuple[int, int]],
        payments: Sequence[RefundPayment] = (),
    ) -> Refund:
        """``returnRefund``: refund (return line id, quantity) lines of an OPEN return, with
        money back against the order's payments, or none ("refunded outside Shopify": the
        till paid the customer). No stock moves: the disposition restocked the units."""
        ret = self.returns.get(return_id)
        if ret is None:
            raise Refused([UserError(["returnId"], "Return does not exist.", "NOT_FOUND")])
        if ret.status != "OPEN":
            raise Refused(
                [UserError(["returnId"], f"The return is {ret.status.lower()}.", "INVALID_STATE")]
            )
        order = self.orders[ret.order_id]
        errors = self._return_lines(ret, lines, at_least=1)
        if not lines and not payments:
            errors.append(UserError(["returnRefundLineItems"], "Nothing to refund.", "BLANK"))
        paid = {t.id: t for t in order.paid_transactions()}
        asked: dict[int, Decimal] = {}
        for i, p in enumerate(payments):
            path = ["orderTransactions", str(i)]
            if p.parent_id not in paid:
                errors.append(
                    UserError(
                        [*path, "parentId"],
                        "Parent transaction is not a successful payment of the order.",
                        "NOT_FOUND",
                    )
                )
                continue
            if p.currency != order.currency:
                errors.append(
                    UserError(
                        [*path, "transactionAmount", "currencyCode"],
                        f"Currency must be {order.currency}.",
                        "INVALID",
                    )
                )
                continue
            if p.amount <= 0:
                errors.append(
                    UserError(
                        [*path, "transactionAmount", "amount"],
                        "Amount must be greater than 0.",
                        "INVALID",
                    )
                )
                continue
            asked[p.parent_id] = asked.get(p.parent_id, Decimal(0)) + p.amount
            left = order.refundable_from(p.parent_id)
            if asked[p.parent_id] > left:
                errors.append(
                    UserError(
                        [*path, "transactionAmount", "amount"],
                        f"Amount {asked[p.parent_id]} is more than the {left} left of the "
                        "parent transaction.",
                        "INVALID",
                    )
                )
        total = sum((p.amount for p in payments), Decimal("0.00"))
        if not errors and total > self.refundable(order):
            errors.append(
                UserError(
                    ["orderTransactions"],
                    f"Amount {total} is more than the {self.refundable(order)} refundable.",
                    "INVALID",
                )
            )
        if errors:
            raise Refused(errors)
        items = {li.id: li for li in order.line_items}
        by_id = {line.id: line for line in ret.lines}
        refund_lines: list[RefundLine] = []
        for line_id, qty in lines:
            line = by_id[line_id]
            li = items[line.line_item_id]
            line.refunded += qty
            li.refunded += qty
            li.returned_refunded += qty
            refund_lines.append(
                RefundLine(self.next_id(), li.id, qty, "no_restock", None, li.price * qty)
            )
        r = Refund(
            id=self.next_id(),
            order_id=order.id,
            note=None,
            lines=refund_lines,
            amount=total,
            return_id=ret.id,
        )
        for p in payments:
            order.transactions.append(
                Transaction(
                    id=self.next_id(),
                    kind="REFUND",
                    amount=p.amount,
                    currency=order.currency,
                    parent_id=p.parent_id,
                    gateway=paid[p.parent_id].gateway,
                    refund_id=r.id,
                )
            )
        self.refunds[r.id] = r
        order.refund_ids.append(r.id)
        received, refunded = order.received(), self.refunded(order)
        if received > 0 and refunded >= received:
            order.financial_status = "refunded"
        elif refunded > 0:
            order.financial_status = "partially_refunded"
        self._touch_order(order)
        self.publish("refunds/create", payloads.refund(r, order))
        self.publish("orders/updated", payloads.order(order, self))
        return r

    def request_return(self, order_id: int, requests: Sequence[ReturnRequest]) -> Return:
        """A return the customer asks for online (``returnRequest``, the customer account's
        self-serve returns): REQUESTED, its units held against the fulfilment, nothing to
        dispose or refund until the merchant approves it."""
        ret = self.create_return(order_id, requests)
        ret.status = "REQUESTED"
        return ret

    def approve_return(self, return_id: int) -> Return:
        """``returnApproveRequest``: a REQUESTED return becomes OPEN, its reverse fulfilment
        order ready to receive the goods; any other state is refused."""
        ret = self.returns.get(return_id)
        if ret is None:
            raise Refused([UserError(["input", "id"], "Return does not exist.", "NOT_FOUND")])
        if ret.status != "REQUESTED":
            raise Refused(
                [
                    UserError(
                        ["input", "id"],
                        f"A {ret.status.lower()} return cannot be approved.",
                        "INVALID_STATE",
                    )
                ]
            )
        ret.status = "OPEN"
        self._touch_order(self.orders[ret.order_id])
        return ret

    def close_return(self, return_id: int) -> Return:
        """``returnClose``: an OPEN return is done with; any other state is refused."""
        ret = self.returns.get(return_id)
        if ret is None:
            raise Refused([UserError(["id"], "Return does not exist.", "NOT_FOUND")])
        if ret.status != "OPEN":
            raise Refused(
                [
                    UserError(
                        ["id"],
                        f"A {ret.status.lower()} return cannot be closed.",
                        "INVALID_STATE",
                    )
                ]
            )
        ret.status = "CLOSED"
        self._touch_order(self.orders[ret.order_id])
        return ret

    # -- customers --------------------------------------------------------------------------

    def create_customer(self, email: str | None, **fields: Any) -> Customer:
        if email and self.customer_by_email(email):
            raise SimError("Email has already been taken")
        c = Customer(id=self.next_id(), email=email, **fields)
        self.customers[c.id] = c
        self.publish("customers/create", payloads.customer(c, self))
        return c

    def update_customer(self, customer_id: int, **fields: Any) -> Customer:
        c = self.customers.get(customer_id)
        if c is None:
            raise SimError(f"no customer {customer_id}")
        new_email = fields.get("email")
        if new_email:
            other = self.customer_by_email(new_email)
            if other is not None and other.id != c.id:
                raise SimError("Email has already been taken")
        for k, v in fields.items():
            setattr(c, k, v)
        c.updated_at = now_iso()
        self.publish("customers/update", payloads.customer(c, self))
        return c

    def add_tags(self, customer_id: int, tags: list[str]) -> Customer:
        c = self.customers.get(customer_id)
        if c is None:
            raise SimError(f"no customer {customer_id}")
        merged = list(dict.fromkeys([*c.tags, *(t.strip() for t in tags if t.strip())]))
        return self.update_customer(customer_id, tags=merged)

    def set_metafield(
        self, customer_id: int, namespace: str, key: str, value: str, type_: str
    ) -> Metafield:
        c = self.customers.get(customer_id)
        if c is None:
            raise SimError(f"no customer {customer_id}")
        mf = c.metafields.get((namespace, key))
        if mf is None:
            mf = Metafield(self.next_id(), gid("Customer", c.id), namespace, key, value, type_)
            c.metafields[(namespace, key)] = mf
        else:
            mf.value, mf.type, mf.updated_at = value, type_, now_iso()
        c.updated_at = now_iso()
        self.publish("customers/update", payloads.customer(c, self))
        return mf

    # -- products ---------------------------------------------------------------------------

    def update_product(self, product_id: int, **fields: Any) -> Product:
        p = self.products.get(product_id)
        if p is None:
            raise SimError(f"no product {product_id}")
        for k, v in fields.items():
            setattr(p, k, v)
        p.updated_at = now_iso()
        self.publish("products/update", payloads.product(p, self))
        return p

    # -- reporting --------------------------------------------------------------------------

    def inventory_snapshot(self) -> list[dict[str, Any]]:
        out = []
        for (item_id, loc_id), level in sorted(self.levels.items()):
            item = self.items[item_id]
            row: dict[str, Any] = {
                "sku": item.sku,
                "inventory_item_id": gid("InventoryItem", item_id),
                "location_id": gid("Location", loc_id),
            }
            row.update({n: level.get(n) for n in QUANTITY_NAMES})
            out.append(row)
        return out
