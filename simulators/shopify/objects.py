"""The simulator's GraphQL objects: plain dicts built from the shop's records.

Fields that take arguments, or that would cost work nobody asked for, are callables; the
executor calls them with the field's arguments (graphql-core's default resolver does the same),
so every field the schema allows can be answered while a small mutation stays cheap. Fields a
dict does not have resolve to null.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, TypeVar

from graphql import GraphQLError, GraphQLResolveInfo

from tillsync.connectors.shopify.ids import gid
from tillsync_sim.shopify import payloads
from tillsync_sim.shopify.model import (
    QUANTITY_NAMES,
    BulkOperation,
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
    Return,
    ReturnLine,
    ReverseFulfillmentOrder,
    RfoLine,
    ShippingAddress,
    Transaction,
    Variant,
    WebhookSubscription,
    parse_gid,
)
from tillsync_sim.shopify.state import Refused, ShopState, SuggestedRefund

T = TypeVar("T")
Node = dict[str, Any]

MAX_INPUT_ITEMS = 250

# Webhook topic enum values whose wire names are not just "first word / rest".
_TOPIC_WIRE = {
    "FULFILLMENT_ORDERS_LINE_ITEMS_PREPARED_FOR_PICKUP": (
        "fulfillment_orders/line_items_prepared_for_pickup"
    ),
    "INVENTORY_LEVELS_UPDATE": "inventory_levels/update",
    "INVENTORY_ITEMS_UPDATE": "inventory_items/update",
    "INVENTORY_ITEMS_CREATE": "inventory_items/create",
    "BULK_OPERATIONS_FINISH": "bulk_operations/finish",
    "CUSTOMER_TAGS_ADDED": "customer_tags/added",
    "FULFILLMENT_ORDERS_MOVED": "fulfillment_orders/moved",
    "FULFILLMENT_ORDERS_ORDER_ROUTING_COMPLETE": "fulfillment_orders/order_routing_complete",
}


def topic_wire_name(enum_value: str) -> str:
    if enum_value in _TOPIC_WIRE:
        return _TOPIC_WIRE[enum_value]
    head, _, tail = enum_value.lower().rpartition("_")
    return f"{head}/{tail}"


def topic_enum_name(wire: str) -> str:
    return wire.replace("/", "_").upper()


def _cursor(index: int) -> str:
    return base64.b64encode(f"i:{index}".encode()).decode()


def _uncursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        return int(base64.b64decode(cursor).decode().split(":", 1)[1])
    except (ValueError, IndexError):
        raise GraphQLError(f"Invalid cursor {cursor!r}") from None


def connection(
    items: Sequence[T],
    to_node: Callable[[T], Node],
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    reverse: bool | None = False,
    **_: Any,
) -> Node:
    for n in (first, last):
        if n is not None and not 0 <= n <= MAX_INPUT_ITEMS:
            raise GraphQLError(f"first/last must be between 0 and {MAX_INPUT_ITEMS}")
    indexed = list(enumerate(items))
    if reverse:
        indexed.reverse()
    a, b = _uncursor(after), _uncursor(before)
    if a is not None:
        pos = next((i for i, (idx, _) in enumerate(indexed) if idx == a), len(indexed))
        indexed = indexed[pos + 1 :]
    if b is not None:
        pos = next((i for i, (idx, _) in enumerate(indexed) if idx == b), len(indexed))
        indexed = indexed[:pos]
    total = len(indexed)
    has_next = has_prev = False
    if first is not None and total > first:
        indexed, has_next = indexed[:first], True
    if last is not None and len(indexed) > last:
        indexed, has_prev = indexed[-last:], True
    nodes = [to_node(x) for _, x in indexed]
    cursors = [_cursor(i) for i, _ in indexed]
    return {
        "nodes": nodes,
        "edges": lambda _info: [
            {"cursor": c, "node": n} for c, n in zip(cursors, nodes, strict=True)
        ],
        "pageInfo": {
            "hasNextPage": has_next,
            "hasPreviousPage": has_prev or a is not None,
            "startCursor": cursors[0] if cursors else None,
            "endCursor": cursors[-1] if cursors else None,
        },
    }


_TERM = re.compile(r'(\w+):(?:"([^"]*)"|(\S+))')


def search_terms(query: str | None) -> list[tuple[str, str]]:
    """Shopify search syntax, enough of it: ``sku:A OR sku:"B C"``; AND/OR both widen."""
    if not query:
        return []
    return [(m[1].lower(), m[2] if m[2] is not None else m[3]) for m in _TERM.finditer(query)]


def tracking_info(f: Fulfillment) -> list[Node]:
    """A fulfilment's ``FulfillmentTrackingInfo`` list: a number with the url at its index
    (either may run out first), all with the one carrier."""
    count = max(len(f.tracking_numbers), len(f.tracking_urls))
    return [
        {
            "company": f.tracking_company,
            "number": f.tracking_numbers[i] if i < len(f.tracking_numbers) else None,
            "url": f.tracking_urls[i] if i < len(f.tracking_urls) else None,
        }
        for i in range(count)
    ]


def _money_v2(amount: Decimal, currency: str) -> Node:
    return {"amount": str(amount.quantize(Decimal("0.01"))), "currencyCode": currency}


def _money_bag(amount: Decimal, currency: str) -> Node:
    m = _money_v2(amount, currency)
    return {"shopMoney": m, "presentmentMoney": dict(m)}


class Objects:
    """Builders of GraphQL objects over a ``ShopState``."""

    def __init__(self, state: ShopState) -> None:
        self.state = state
        self.base_url = "http://127.0.0.1"

    # -- object builders --------------------------------------------------------------------

    def location(self, loc: Location) -> Node:
        st = self.state
        address = {
            "address1": loc.address1,
            "city": loc.city,
            "zip": loc.zip,
            "countryCode": loc.country_code,
            "country": loc.country_code,
            "formatted": [p for p in (loc.address1, f"{loc.zip} {loc.city}".strip()) if p],
        }
        return {
            "__typename": "Location",
            "id": gid("Location", loc.id),
            "legacyResourceId": str(loc.id),
            "name": loc.name,
            "isActive": loc.active,
            "activatable": not loc.active,
            "deactivatable": loc.active,
            "deletable": False,
            "addressVerified": True,
            "fulfillsOnlineOrders": loc.fulfills_online_orders,
            "hasActiveInventory": True,
            "hasUnfulfilledOrders": False,
            "isFulfillmentService": False,
            "isPrimary": loc.id == min(st.locations),
            "shipsInventory": True,
            "createdAt": loc.created_at,
            "updatedAt": loc.updated_at,
            "address": address,
            "inventoryLevels": lambda _i, **a: connection(
                [lv for (_, l_id), lv in st.levels.items() if l_id == loc.id], self.level, **a
            ),
            "inventoryLevel": lambda _i, inventoryItemId: self._level_or_none(
                parse_gid(inventoryItemId, "InventoryItem"), loc.id
            ),
        }

    def _level_or_none(self, item_id: int | None, loc_id: int | None) -> Node | None:
        if item_id is None or loc_id is None:
            return None
        level = self.state.levels.get((item_id, loc_id))
        return self.level(level) if level else None

    def level(self, level: Level) -> Node:
        level_id = payloads.level_gid(level)

        def quantities(_info: GraphQLResolveInfo, names: list[str]) -> list[Node]:
            bad = [n for n in names if n not in QUANTITY_NAMES]
            if bad:
                raise GraphQLError(f"Invalid quantity names: {', '.join(bad)}")
            return [
                {
                    "id": f"{level_id}&name={n}",
                    "name": n,
                    "quantity": level.get(n),
                    "updatedAt": level.updated_at,
                }
                for n in names
            ]

        return {
            "__typename": "InventoryLevel",
            "id": level_id,
            "canDeactivate": True,
            "createdAt": level.created_at,
            "updatedAt": level.updated_at,
            "item": lambda _i: self.item(self.state.items[level.item_id]),
            "location": lambda _i: self.location(self.state.locations[level.location_id]),
            "quantities": quantities,
        }

    def item(self, item: InventoryItem) -> Node:
        st = self.state
        return {
            "__typename": "InventoryItem",
            "id": gid("InventoryItem", item.id),
            "legacyResourceId": str(item.id),
            "sku": item.sku,
            "tracked": item.tracked,
            "requiresShipping": True,
            "duplicateSkuCount": 0,
            "createdAt": item.created_at,
            "updatedAt": item.updated_at,
            "variant": lambda _i: self.variant(st.variants[item.variant_id]),
            "inventoryLevels": lambda _i, **a: connection(
                [lv for (i_id, _), lv in st.levels.items() if i_id == item.id], self.level, **a
            ),
            "inventoryLevel": lambda _i, locationId: self._level_or_none(
                item.id, parse_gid(locationId, "Location")
            ),
        }

    def variant(self, v: Variant) -> Node:
        st = self.state
        product = st.products[v.product_id]
        return {
            "__typename": "ProductVariant",
            "id": gid("ProductVariant", v.id),
            "legacyResourceId": str(v.id),
            "sku": v.sku,
            "barcode": v.barcode,
            "title": v.title,
            "displayName": f"{product.title} - {v.title}",
            "price": str(v.price.quantize(Decimal("0.01"))),
            "position": v.position,
            "taxable": True,
            "availableForSale": True,
            "inventoryPolicy": "DENY",
            "createdAt": v.created_at,
            "updatedAt": v.updated_at,
            "inventoryQuantity": lambda _i: sum(
                lv.get("available")
                for (i_id, _), lv in st.levels.items()
                if i_id == v.inventory_item_id
            ),
            "product": lambda _i: self.product(product),
            "inventoryItem": lambda _i: self.item(st.items[v.inventory_item_id]),
        }

    def product(self, p: Product) -> Node:
        st = self.state
        return {
            "__typename": "Product",
            "id": gid("Product", p.id),
            "legacyResourceId": str(p.id),
            "title": p.title,
            "handle": p.handle,
            "status": p.status,
            "vendor": p.vendor,
            "productType": p.product_type,
            "tags": list(p.tags),
            "description": "",
            "descriptionHtml": "",
            "createdAt": p.created_at,
            "updatedAt": p.updated_at,
            "tracksInventory": True,
            "hasOnlyDefaultVariant": len(p.variant_ids) == 1,
            "variants": lambda _i, **a: connection(
                [st.variants[v] for v in p.variant_ids], self.variant, **a
            ),
        }

    def metafield(self, mf: Metafield) -> Node:
        return {
            "__typename": "Metafield",
            "id": gid("Metafield", mf.id),
            "legacyResourceId": str(mf.id),
            "namespace": mf.namespace,
            "key": mf.key,
            "value": mf.value,
            "jsonValue": mf.value,
            "type": mf.type,
            "compareDigest": str(hash((mf.namespace, mf.key, mf.value))),
            "ownerType": "CUSTOMER",
            "createdAt": mf.created_at,
            "updatedAt": mf.updated_at,
        }

    def customer(self, c: Customer) -> Node:
        orders = [o for o in self.state.orders.values() if o.customer_id == c.id]
        return {
            "__typename": "Customer",
            "id": gid("Customer", c.id),
            "legacyResourceId": str(c.id),
            "email": c.email,
            "firstName": c.first_name,
            "lastName": c.last_name,
            "displayName": " ".join(p for p in (c.first_name, c.last_name) if p) or c.email,
            "phone": c.phone,
            "note": c.note,
            "tags": list(c.tags),
            "state": "ENABLED",
            "verifiedEmail": True,
            "taxExempt": False,
            "locale": "en",
            "numberOfOrders": str(len(orders)),
            "amountSpent": _money_v2(sum((o.total for o in orders), Decimal(0)), "SEK"),
            "createdAt": c.created_at,
            "updatedAt": c.updated_at,
            "metafields": lambda _i, namespace=None, **a: connection(
                [m for m in c.metafields.values() if namespace in (None, m.namespace)],
                self.metafield,
                **a,
            ),
            "metafield": lambda _i, key, namespace=None: (
                self.metafield(c.metafields[(namespace or "", key)])
                if (namespace or "", key) in c.metafields
                else None
            ),
        }

    def line_item(self, li: LineItem, order: Order) -> Node:
        return {
            "__typename": "LineItem",
            "id": gid("LineItem", li.id),
            "sku": li.sku,
            "name": li.title,
            "title": li.title,
            "quantity": li.quantity,
            "currentQuantity": li.quantity - li.refunded,
            "refundableQuantity": li.quantity - li.refunded,
            "unfulfilledQuantity": li.unfulfilled,
            "requiresShipping": True,
            "restockable": True,
            "taxable": True,
            "isGiftCard": False,
            "merchantEditable": True,
            "nonFulfillableQuantity": 0,
            "originalUnitPriceSet": _money_bag(li.price, order.currency),
            "discountedUnitPriceSet": _money_bag(li.price, order.currency),
            "originalTotalSet": _money_bag(li.price * li.quantity, order.currency),
            "variant": lambda _i: self.variant(self.state.variants[li.variant_id]),
            "product": lambda _i: self.product(self.state.products[li.product_id]),
        }

    def fo_line(self, line: FulfillmentOrderLine, order: Order) -> Node:
        li = next(x for x in order.line_items if x.id == line.line_item_id)
        return {
            "__typename": "FulfillmentOrderLineItem",
            "id": gid("FulfillmentOrderLineItem", line.id),
            "sku": line.sku,
            "inventoryItemId": gid("InventoryItem", line.inventory_item_id),
            "remainingQuantity": line.remaining,
            "totalQuantity": line.total,
            "requiresShipping": True,
            "productTitle": li.title,
            "lineItem": lambda _i: self.line_item(li, order),
            "variant": lambda _i: self.variant(self.state.variants[line.variant_id]),
        }

    def fulfillment_order(self, fo: FulfillmentOrder) -> Node:
        st = self.state
        order = st.orders[fo.order_id]
        loc = st.locations[fo.location_id]
        return {
            "__typename": "FulfillmentOrder",
            "id": gid("FulfillmentOrder", fo.id),
            "orderId": gid("Order", order.id),
            "orderName": order.name,
            "status": fo.status,
            "requestStatus": "UNSUBMITTED",
            "createdAt": fo.created_at,
            "updatedAt": fo.updated_at,
            "orderProcessedAt": order.created_at,
            "supportedActions": [],
            "fulfillmentHolds": [],
            "assignedLocation": {
                "name": loc.name,
                "address1": loc.address1,
                "city": loc.city,
                "zip": loc.zip,
                "countryCode": loc.country_code,
                "location": lambda _i: self.location(loc),
            },
            "deliveryMethod": {
                "id": gid("DeliveryMethod", fo.id),
                "methodType": fo.method_type,
                "presentedName": "Pickup" if fo.method_type == "PICK_UP" else "Standard",
            },
            "destination": lambda _i: self.destination(fo, order),
            "lineItems": lambda _i, **a: connection(
                fo.lines, lambda ln: self.fo_line(ln, order), **a
            ),
            "order": lambda _i: self.order(order),
        }

    @staticmethod
    def destination(fo: FulfillmentOrder, order: Order) -> Node | None:
        """Where a fulfilment order's items go: the order's shipping address. A pickup has
        none, also in an order with a shipped part too (the order then has an address)."""
        a = order.shipping_address
        if a is None or fo.method_type == "PICK_UP":
            return None
        return {
            "__typename": "FulfillmentOrderDestination",
            # one destination per fulfilment order, so its id can be the fulfilment order's
            "id": gid("FulfillmentOrderDestination", fo.id),
            "firstName": a.first_name,
            "lastName": a.last_name,
            "company": None,
            "address1": a.address1,
            "address2": a.address2,
            "city": a.city,
            "zip": a.zip,
            "province": a.province_code,
            "countryCode": a.country_code,
            "phone": a.phone,
            "email": order.email,
            "location": None,
        }

    @staticmethod
    def mailing_address(a: ShippingAddress, order: Order) -> Node:
        return {
            "__typename": "MailingAddress",
            "id": gid("MailingAddress", order.id),
            "firstName": a.first_name,
            "lastName": a.last_name,
            "name": f"{a.first_name} {a.last_name}".strip(),
            "company": None,
            "address1": a.address1,
            "address2": a.address2,
            "city": a.city,
            "zip": a.zip,
            "province": a.province_code,
            "provinceCode": a.province_code,
            # the country's name is not kept; its code stands in, as for locations
            "country": a.country_code,
            "countryCode": a.country_code,
            "countryCodeV2": a.country_code,
            "phone": a.phone,
            "coordinatesValidated": False,
            "formatted": [
                p
                for p in (a.address1, a.address2, f"{a.zip} {a.city}".strip(), a.country_code)
                if p
            ],
        }

    def fulfillment(self, f: Fulfillment) -> Node:
        return {
            "__typename": "Fulfillment",
            "id": gid("Fulfillment", f.id),
            "legacyResourceId": str(f.id),
            "name": f"#{f.id}",
            "status": f.status.upper(),
            "displayStatus": "FULFILLED",
            "createdAt": f.created_at,
            "updatedAt": f.updated_at,
            "requiresShipping": True,
            "totalQuantity": sum(q for _, q in f.lines),
            "trackingInfo": lambda _i, first=None: tracking_info(f)[:first],
            "location": lambda _i: self.location(self.state.locations[f.location_id]),
            "order": lambda _i: self.order(self.state.orders[f.order_id]),
            "fulfillmentLineItems": lambda _i, **a: connection(
                f.line_ids, self.fulfillment_line, **a
            ),
        }

    def fulfillment_line(self, line_id: int) -> Node:
        """A FulfillmentLineItem by its id (``Fulfillment.line_ids``): a return names it."""
        found = self.state.fulfillment_line(line_id)
        assert found is not None, f"no fulfillment line item {line_id}"
        f, li_id, quantity = found
        order = self.state.orders[f.order_id]
        li = next(x for x in order.line_items if x.id == li_id)
        return {
            "__typename": "FulfillmentLineItem",
            "id": gid("FulfillmentLineItem", line_id),
            "quantity": quantity,
            "lineItem": lambda _i: self.line_item(li, order),
            "originalTotalSet": _money_bag(li.price * quantity, order.currency),
            "discountedTotalSet": _money_bag(li.price * quantity, order.currency),
        }

    def refund(self, r: Refund) -> Node:
        order = self.state.orders[r.order_id]
        return {
            "__typename": "Refund",
            "id": gid("Refund", r.id),
            "legacyResourceId": str(r.id),
            "note": r.note,
            "createdAt": r.created_at,
            "updatedAt": r.created_at,
            "totalRefunded": _money_v2(r.amount, order.currency),
            "totalRefundedSet": _money_bag(r.amount, order.currency),
            "order": lambda _i: self.order(order),
            "return": lambda _i: (
                self.return_(self.state.returns[r.return_id]) if r.return_id is not None else None
            ),
            "transactions": lambda _i, **a: connection(
                [t for t in order.transactions if t.refund_id == r.id],
                lambda t: self.transaction(t, order),
                **a,
            ),
        }

    def order(self, o: Order) -> Node:
        st = self.state
        fulfilled = {None: "UNFULFILLED", "partial": "PARTIALLY_FULFILLED"}
        return {
            "__typename": "Order",
            "id": gid("Order", o.id),
            "legacyResourceId": str(o.id),
            "name": o.name,
            "email": o.email,
            "createdAt": o.created_at,
            "updatedAt": o.updated_at,
            "processedAt": o.created_at,
            "cancelledAt": o.cancelled_at,
            "cancelReason": o.cancel_reason.upper() if o.cancel_reason else None,
            "closed": False,
            "test": False,
            "tags": [],
            "currencyCode": o.currency,
            "displayFinancialStatus": o.financial_status.upper(),
            "displayFulfillmentStatus": fulfilled.get(o.fulfillment_status, "FULFILLED"),
            "totalPriceSet": _money_bag(o.total, o.currency),
            "currentTotalPriceSet": _money_bag(
                o.total - sum((st.refunds[r].amount for r in o.refund_ids), Decimal(0)),
                o.currency,
            ),
            "customer": lambda _i: (
                self.customer(st.customers[o.customer_id]) if o.customer_id else None
            ),
            "shippingAddress": lambda _i: (
                self.mailing_address(o.shipping_address, o) if o.shipping_address else None
            ),
            "lineItems": lambda _i, **a: connection(
                o.line_items, lambda li: self.line_item(li, o), **a
            ),
            "fulfillmentOrders": lambda _i, **a: connection(
                [st.fulfillment_orders[i] for i in o.fulfillment_order_ids],
                self.fulfillment_order,
                **a,
            ),
            "fulfillments": lambda _i, first=None: [
                self.fulfillment(st.fulfillments[f]) for f in o.fulfillment_ids[:first]
            ],
            "refunds": lambda _i, first=None: [
                self.refund(st.refunds[r]) for r in o.refund_ids[:first]
            ],
            "transactions": lambda _i, first=None, capturable=None, manuallyResolvable=None: [
                self.transaction(t, o)
                for t in o.transactions[:first]
                if not capturable or (t.kind == "AUTHORIZATION" and o.held(t.id) > 0)
            ],
            "capturable": o.capturable() > 0,
            "totalCapturableSet": _money_bag(o.capturable(), o.currency),
            "canMarkAsPaid": st.can_mark_as_paid(o),
            "totalOutstandingSet": _money_bag(st.outstanding(o), o.currency),
            "totalReceivedSet": _money_bag(o.received(), o.currency),
            "totalRefundedSet": _money_bag(st.refunded(o), o.currency),
            "suggestedRefund": lambda _i, refundLineItems=None, **_: self.order_suggested_refund(
                o, refundLineItems
            ),
            "returns": lambda _i, **a: connection(
                [st.returns[r] for r in o.return_ids], self.return_, **a
            ),
            "cancellation": {"staffNote": o.cancel_staff_note} if o.cancelled_at else None,
        }

    def transaction(self, t: Transaction, order: Order) -> Node:
        parent = next((p for p in order.transactions if p.id == t.parent_id), None)
        return {
            "__typename": "OrderTransaction",
            "id": gid("OrderTransaction", t.id),
            "kind": t.kind,
            "status": t.status,
            "gateway": t.gateway,
            "manualPaymentGateway": t.gateway == "manual",
            "test": False,
            "createdAt": t.created_at,
            "processedAt": t.created_at,
            "authorizationExpiresAt": t.authorization_expires_at,
            "amountSet": _money_bag(t.amount, t.currency),
            "parentTransaction": (lambda _i: self.transaction(parent, order)) if parent else None,
            "order": lambda _i: self.order(order),
        }

    # -- returns ----------------------------------------------------------------------------

    def return_(self, ret: Return) -> Node:
        st = self.state
        order = st.orders[ret.order_id]
        rfo = st.reverse_fulfillment_orders[ret.rfo_id]
        return {
            "__typename": "Return",
            "id": gid("Return", ret.id),
            # Shopify names returns after their order: #1001-R1, #1001-R2, ...
            "name": f"{order.name}-R{order.return_ids.index(ret.id) + 1}",
            "status": ret.status,
            "totalQuantity": sum(line.quantity for line in ret.lines),
            "decline": None,
            "returnShippingFees": [],
            "order": lambda _i: self.order(order),
            "returnLineItems": lambda _i, **a: connection(
                ret.lines, lambda line: self.return_line(line, order), **a
            ),
            # Shopify makes a return's reverse fulfilment order when it is approved
            "reverseFulfillmentOrders": lambda _i, **a: connection(
                [] if ret.status == "REQUESTED" else [rfo],
                lambda x: self.reverse_fulfillment_order(x, ret),
                **a,
            ),
            "refunds": lambda _i, **a: connection(
                [st.refunds[r] for r in order.refund_ids if st.refunds[r].return_id == ret.id],
                self.refund,
                **a,
            ),
            "exchangeLineItems": lambda _i, **a: connection([], lambda x: x, **a),
            "suggestedRefund": lambda _i, returnRefundLineItems, **_: self.suggested_refund(
                ret, returnRefundLineItems
            ),
        }

    def return_line(self, line: ReturnLine, order: Order) -> Node:
        li = next(x for x in order.line_items if x.id == line.line_item_id)
        return {
            # the ReturnLineItemType interface: its one store-return implementation
            "__typename": "ReturnLineItem",
            "id": gid("ReturnLineItem", line.id),
            "quantity": line.quantity,
            "refundableQuantity": line.quantity - line.refunded,
            "refundedQuantity": line.refunded,
            "returnReason": line.reason,
            "returnReasonNote": line.reason_note,
            "customerNote": None,
            "restockingFee": None,
            "totalWeight": None,
            "withCodeDiscountedTotalPriceSet": _money_bag(li.price * line.quantity, order.currency),
            "fulfillmentLineItem": lambda _i: self.fulfillment_line(line.fulfillment_line_item_id),
        }

    def reverse_fulfillment_order(self, rfo: ReverseFulfillmentOrder, ret: Return) -> Node:
        # it closes and cancels with its return: the sim tracks no reverse deliveries
        status = {"CLOSED": "CLOSED", "CANCELED": "CANCELED", "DECLINED": "CANCELED"}
        return {
            "__typename": "ReverseFulfillmentOrder",
            "id": gid("ReverseFulfillmentOrder", rfo.id),
            "status": status.get(ret.status, "OPEN"),
            "order": lambda _i: self.order(self.state.orders[ret.order_id]),
            "thirdPartyConfirmation": None,
            "reverseDeliveries": lambda _i, **a: connection([], lambda x: x, **a),
            "lineItems": lambda _i, **a: connection(rfo.lines, self.rfo_line, **a),
        }

    def rfo_line(self, line: RfoLine) -> Node:
        return {
            "__typename": "ReverseFulfillmentOrderLineItem",
            "id": gid("ReverseFulfillmentOrderLineItem", line.id),
            "totalQuantity": line.total,
            "fulfillmentLineItem": lambda _i: self.fulfillment_line(line.fulfillment_line_item_id),
            "dispositions": [self.disposition(d) for d in line.dispositions],
        }

    def disposition(self, d: Disposition) -> Node:
        loc_id = d.location_id
        return {
            "__typename": "ReverseFulfillmentOrderDisposition",
            "id": gid("ReverseFulfillmentOrderDisposition", d.id),
            "type": d.type,
            "quantity": d.quantity,
            "location": (
                (lambda _i: self.location(self.state.locations[loc_id]))
                if loc_id is not None
                else None
            ),
        }

    def order_suggested_refund(self, order: Order, lines: list[Node] | None) -> Node:
        """``Order.suggestedRefund`` for ``RefundLineItemInput`` lines."""
        pairs = [
            (parse_gid(x["lineItemId"], "LineItem") or -1, int(x["quantity"])) for x in lines or []
        ]
        try:
            s = self.state.suggested_order_refund(order.id, pairs)
        except Refused as exc:
            raise GraphQLError(str(exc)) from None
        node = self._suggestion(s, order, "SuggestedRefund")
        # the order's suggestion keeps its older Money scalars beside the MoneyBags
        for name, value in (("amount", s.amount), ("subtotal", s.subtotal)):
            node[name] = str(value.quantize(Decimal("0.01")))
        node["maximumRefundable"] = str(s.maximum.quantize(Decimal("0.01")))
        return node

    def suggested_refund(self, ret: Return, lines: list[Node]) -> Node:
        """``Return.suggestedRefund`` for ``ReturnRefundLineItemInput`` lines; a line not on
        the return, or more units than it can refund, is an error on the field."""
        pairs = [
            (parse_gid(x["returnLineItemId"], "ReturnLineItem") or -1, int(x["quantity"]))
            for x in lines
        ]
        try:
            s = self.state.suggested_refund(ret.id, pairs)
        except Refused as exc:
            raise GraphQLError(str(exc)) from None
        return self._suggestion(s, self.state.orders[ret.order_id], "SuggestedReturnRefund")

    def _suggestion(self, s: SuggestedRefund, order: Order, typename: str) -> Node:
        cur = order.currency
        zero = _money_bag(Decimal(0), cur)
        return {
            "__typename": typename,
            "amount": _money_bag(s.amount, cur),
            "amountSet": _money_bag(s.amount, cur),
            "subtotalSet": _money_bag(s.subtotal, cur),
            "maximumRefundableSet": _money_bag(s.maximum, cur),
            "subtotal": _money_bag(s.subtotal, cur),
            # prices are tax-included and the simulator keeps no discounts, duties or tax lines
            "discountedSubtotal": _money_bag(s.subtotal, cur),
            "totalCartDiscountAmount": zero,
            "totalDuties": zero,
            "totalTax": zero,
            "refundDuties": [],
            "maximumRefundable": _money_bag(s.maximum, cur),
            "shipping": {
                "amount": _money_v2(Decimal(0), cur),
                "amountSet": zero,
                "maximumRefundable": _money_v2(Decimal(0), cur),
                "maximumRefundableSet": zero,
                "tax": _money_v2(Decimal(0), cur),
                "taxSet": zero,
            },
            "suggestedTransactions": [
                self._suggested_transaction(paid, amount, order) for paid, amount in s.transactions
            ],
        }

    def _suggested_transaction(self, paid: Transaction, amount: Decimal, order: Order) -> Node:
        left = order.refundable_from(paid.id)
        return {
            "__typename": "SuggestedOrderTransaction",
            "kind": "SUGGESTED_REFUND",
            "gateway": paid.gateway,
            "formattedGateway": paid.gateway.replace("_", " ").title(),
            "accountNumber": None,
            "paymentDetails": None,
            "amount": _money_v2(amount, paid.currency),
            "amountSet": _money_bag(amount, paid.currency),
            "maximumRefundable": _money_v2(left, paid.currency),
            "maximumRefundableSet": _money_bag(left, paid.currency),
            "parentTransaction": lambda _i: self.transaction(paid, order),
        }

    def bulk_operation(self, op: BulkOperation) -> Node:
        done = op.status == "COMPLETED"
        return {
            "__typename": "BulkOperation",
            "id": gid("BulkOperation", op.id),
            "status": op.status,
            "type": "QUERY",
            "query": op.query,
            "errorCode": op.error_code,
            "createdAt": op.created_at,
            "completedAt": op.completed_at,
            "objectCount": str(op.object_count),
            "rootObjectCount": str(op.root_object_count),
            "fileSize": str(len(op.jsonl)) if done else None,
            "url": f"{self.base_url}/_sim/bulk/{op.id}.jsonl" if done and op.jsonl else None,
            "partialDataUrl": None,
        }

    def webhook_subscription(self, sub: WebhookSubscription) -> Node:
        return {
            "__typename": "WebhookSubscription",
            "id": gid("WebhookSubscription", sub.id),
            "legacyResourceId": str(sub.id),
            "topic": topic_enum_name(sub.topic),
            "format": "JSON",
            "callbackUrl": sub.callback_url,
            "includeFields": [],
            "metafieldNamespaces": [],
            "apiVersion": {"handle": "2026-04", "displayName": "2026-04", "supported": True},
            "createdAt": sub.created_at,
            "updatedAt": sub.created_at,
            "endpoint": {"__typename": "WebhookHttpEndpoint", "callbackUrl": sub.callback_url},
        }
