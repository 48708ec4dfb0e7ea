"""REST-shaped webhook bodies, following the shapes of Shopify's own resource fixtures."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tillsync.connectors.shopify.ids import gid
from tillsync_sim.shopify.model import (
    Customer,
    Fulfillment,
    FulfillmentOrder,
    Level,
    LineItem,
    Location,
    Order,
    Product,
    Refund,
    ShippingAddress,
    Variant,
)

if TYPE_CHECKING:
    from tillsync_sim.shopify.state import ShopState


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def _money_set(value: Decimal, currency: str) -> dict[str, Any]:
    amount = {"amount": _money(value), "currency_code": currency}
    return {"shop_money": amount, "presentment_money": dict(amount)}


def level_gid(level: Level) -> str:
    return f"gid://shopify/InventoryLevel/{level.location_id}?inventory_item_id={level.item_id}"


def inventory_level(level: Level) -> dict[str, Any]:
    return {
        "inventory_item_id": level.item_id,
        "location_id": level.location_id,
        "available": level.get("available"),
        "updated_at": level.updated_at,
        "admin_graphql_api_id": level_gid(level),
    }


def location(loc: Location) -> dict[str, Any]:
    return {
        "id": loc.id,
        "name": loc.name,
        "address1": loc.address1,
        "city": loc.city,
        "zip": loc.zip,
        "country_code": loc.country_code,
        "active": loc.active,
        "created_at": loc.created_at,
        "updated_at": loc.updated_at,
        "admin_graphql_api_id": gid("Location", loc.id),
    }


def line_item(li: LineItem, currency: str) -> dict[str, Any]:
    remaining = li.quantity - li.refunded
    return {
        "id": li.id,
        "admin_graphql_api_id": gid("LineItem", li.id),
        "variant_id": li.variant_id,
        "product_id": li.product_id,
        "sku": li.sku,
        "title": li.title,
        "name": li.title,
        "quantity": li.quantity,
        "current_quantity": remaining,
        "fulfillable_quantity": li.unfulfilled,
        "fulfillment_status": "fulfilled" if li.fulfilled >= li.quantity else None,
        "price": _money(li.price),
        "price_set": _money_set(li.price, currency),
        "total_discount": "0.00",
        "requires_shipping": True,
        "taxable": True,
        "gift_card": False,
        "variant_inventory_management": "shopify",
        "fulfillment_service": "manual",
        "properties": [],
        "tax_lines": [],
        "discount_allocations": [],
        "duties": [],
    }


def customer(c: Customer, state: ShopState | None = None) -> dict[str, Any]:
    orders = [o for o in state.orders.values() if o.customer_id == c.id] if state else []
    return {
        "id": c.id,
        "email": c.email,
        "accepts_marketing": False,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "first_name": c.first_name,
        "last_name": c.last_name,
        "orders_count": len(orders),
        "state": "enabled",
        "total_spent": _money(sum((o.total for o in orders), Decimal(0))),
        "last_order_id": orders[-1].id if orders else None,
        "note": c.note,
        "verified_email": True,
        "phone": c.phone,
        "tags": ", ".join(c.tags),
        "currency": "SEK",
        "addresses": [],
        "admin_graphql_api_id": gid("Customer", c.id),
    }


def fulfillment(f: Fulfillment, order: Order) -> dict[str, Any]:
    items = {li.id: li for li in order.line_items}
    return {
        "id": f.id,
        "order_id": f.order_id,
        "status": f.status,
        "created_at": f.created_at,
        "updated_at": f.updated_at,
        "location_id": f.location_id,
        "service": "manual",
        "notify_customer": f.notified,
        "shipment_status": None,
        # the REST resource's singular fields are the first of the lists
        "tracking_company": f.tracking_company,
        "tracking_number": f.tracking_numbers[0] if f.tracking_numbers else None,
        "tracking_numbers": list(f.tracking_numbers),
        "tracking_url": f.tracking_urls[0] if f.tracking_urls else None,
        "tracking_urls": list(f.tracking_urls),
        "admin_graphql_api_id": gid("Fulfillment", f.id),
        "line_items": [
            {**line_item(items[li_id], order.currency), "quantity": qty} for li_id, qty in f.lines
        ],
    }


def shipping_address(a: ShippingAddress) -> dict[str, Any]:
    return {
        "first_name": a.first_name,
        "last_name": a.last_name,
        "name": f"{a.first_name} {a.last_name}".strip(),
        "company": None,
        "address1": a.address1,
        "address2": a.address2,
        "city": a.city,
        "zip": a.zip,
        "province": a.province_code,
        "province_code": a.province_code,
        # the country's name is not kept; its code stands in, as the GraphQL objects do
        "country": a.country_code,
        "country_code": a.country_code,
        "phone": a.phone,
        "latitude": None,
        "longitude": None,
    }


def refund_transactions(r: Refund, order: Order) -> list[dict[str, Any]]:
    """The REFUND transactions a refund made (a cancel with refund keeps them); a refund
    kept without any (refundCreate here) is told as one of its amount, but a return's
    refund without any moved no money and has none."""
    made = [t for t in order.transactions if t.refund_id == r.id]
    if not made and r.return_id is not None:
        # a return refunded outside Shopify (the till paid the customer) moved no money
        return []
    if not made:
        return [
            {
                "id": r.id,
                "order_id": r.order_id,
                "kind": "refund",
                "gateway": "manual",
                "status": "success",
                "amount": _money(r.amount),
                "currency": order.currency,
                "created_at": r.created_at,
            }
        ]
    return [
        {
            "id": t.id,
            "order_id": r.order_id,
            "kind": t.kind.lower(),
            "gateway": t.gateway,
            "status": t.status.lower(),
            "amount": _money(t.amount),
            "currency": t.currency,
            "parent_id": t.parent_id,
            "created_at": t.created_at,
            "admin_graphql_api_id": gid("OrderTransaction", t.id),
        }
        for t in made
    ]


def refund(r: Refund, order: Order) -> dict[str, Any]:
    items = {li.id: li for li in order.line_items}
    return {
        "id": r.id,
        "order_id": r.order_id,
        "created_at": r.created_at,
        "processed_at": r.created_at,
        "note": r.note,
        "user_id": None,
        "restock": any(rl.restock_type != "no_restock" for rl in r.lines),
        "admin_graphql_api_id": gid("Refund", r.id),
        "refund_line_items": [
            {
                "id": rl.id,
                "line_item_id": rl.line_item_id,
                "quantity": rl.quantity,
                "location_id": rl.location_id,
                "restock_type": rl.restock_type,
                "subtotal": _money(rl.subtotal),
                "subtotal_set": _money_set(rl.subtotal, order.currency),
                "total_tax": "0.00",
                "line_item": line_item(items[rl.line_item_id], order.currency),
            }
            for rl in r.lines
        ],
        "transactions": refund_transactions(r, order),
        "order_adjustments": [],
        "duties": [],
        # the return a returnRefund refunded, as Shopify's refund payload names it
        "return": (
            {"id": r.return_id, "admin_graphql_api_id": gid("Return", r.return_id)}
            if r.return_id is not None
            else None
        ),
    }


def order(o: Order, state: ShopState) -> dict[str, Any]:
    # one shipping line per delivery method, named after its first fulfilment order: a mixed
    # cart (picked up here, shipped from there) has two; a fulfilment order moved later adds none
    first_of_method: dict[str, FulfillmentOrder] = {}
    for fo_id in o.fulfillment_order_ids:
        fo = state.fulfillment_orders[fo_id]
        first_of_method.setdefault(fo.method_type, fo)
    shipping_lines: list[dict[str, Any]] = [
        {
            "id": fo.id,
            "code": "Pickup" if fo.method_type == "PICK_UP" else "Standard",
            "title": (
                state.locations[fo.location_id].name if fo.method_type == "PICK_UP" else "Standard"
            ),
            "source": "shopify",
            "price": "0.00",
            "price_set": _money_set(Decimal(0), o.currency),
            "discounted_price": "0.00",
            "tax_lines": [],
            "discount_allocations": [],
            "carrier_identifier": None,
            "is_removed": False,
        }
        for fo in first_of_method.values()
    ]
    total = o.total
    cust = state.customers.get(o.customer_id) if o.customer_id else None
    return {
        "id": o.id,
        "admin_graphql_api_id": gid("Order", o.id),
        "name": o.name,
        "order_number": o.number,
        "number": o.number,
        "email": o.email,
        "created_at": o.created_at,
        "updated_at": o.updated_at,
        "processed_at": o.created_at,
        "cancelled_at": o.cancelled_at,
        "cancel_reason": o.cancel_reason,
        "closed_at": None,
        "financial_status": o.financial_status,
        "fulfillment_status": o.fulfillment_status,
        "currency": o.currency,
        "presentment_currency": o.currency,
        "total_price": _money(total),
        "subtotal_price": _money(total),
        "total_tax": "0.00",
        "total_discounts": "0.00",
        "current_total_price": _money(
            total - sum((state.refunds[r].amount for r in o.refund_ids), Decimal(0))
        ),
        "total_price_set": _money_set(total, o.currency),
        "taxes_included": True,
        "source_name": "web",
        "location_id": None,
        "tags": "",
        "note": None,
        "test": False,
        "customer": customer(cust) if cust else None,
        "shipping_address": shipping_address(o.shipping_address) if o.shipping_address else None,
        "line_items": [line_item(li, o.currency) for li in o.line_items],
        "shipping_lines": shipping_lines,
        "tax_lines": [],
        "discount_codes": [],
        "discount_applications": [],
        "fulfillments": [fulfillment(state.fulfillments[f], o) for f in o.fulfillment_ids],
        "refunds": [refund(state.refunds[r], o) for r in o.refund_ids],
        "returns": [],
    }


def fulfillment_order(fo: FulfillmentOrder) -> dict[str, Any]:
    # The body of fulfillment_orders/line_items_prepared_for_pickup is not in the reference
    # material; this minimal shape (ids and status) is an assumption.
    return {
        "fulfillment_order": {
            "id": gid("FulfillmentOrder", fo.id),
            "status": fo.status.lower(),
            "order_id": gid("Order", fo.order_id),
            "assigned_location_id": gid("Location", fo.location_id),
            "delivery_method": {"method_type": fo.method_type.lower()},
            "prepared_for_pickup": fo.prepared_for_pickup,
        }
    }


def variant(v: Variant, state: ShopState) -> dict[str, Any]:
    levels = [lv for (item, _), lv in state.levels.items() if item == v.inventory_item_id]
    return {
        "id": v.id,
        "product_id": v.product_id,
        "title": v.title,
        "price": _money(v.price),
        "sku": v.sku,
        "position": v.position,
        "inventory_policy": "deny",
        "compare_at_price": None,
        "fulfillment_service": "manual",
        "inventory_management": "shopify",
        "barcode": v.barcode,
        "inventory_item_id": v.inventory_item_id,
        "inventory_quantity": sum(lv.get("available") for lv in levels),
        "requires_shipping": True,
        "taxable": True,
        "created_at": v.created_at,
        "updated_at": v.updated_at,
        "admin_graphql_api_id": gid("ProductVariant", v.id),
    }


def product(p: Product, state: ShopState) -> dict[str, Any]:
    return {
        "id": p.id,
        "title": p.title,
        "body_html": "",
        "vendor": p.vendor,
        "product_type": p.product_type,
        "handle": p.handle,
        "status": p.status.lower(),
        "tags": ", ".join(p.tags),
        "created_at": p.created_at,
        "updated_at": p.updated_at,
        "published_at": p.created_at,
        "admin_graphql_api_id": gid("Product", p.id),
        "variants": [variant(state.variants[v], state) for v in p.variant_ids],
        "options": [{"name": "Title", "position": 1, "values": ["Default Title"]}],
        "images": [],
    }


def fulfillment_order_moved(original: FulfillmentOrder, moved: FulfillmentOrder) -> dict[str, Any]:
    # The body of fulfillment_orders/moved is not in the reference material; this shape (the
    # two fulfilment orders by id and status, the destination, no order id) is an assumption,
    # in the spirit of order_routing_complete's "only id and status" (flows.md, A).
    return {
        "original_fulfillment_order": {
            "id": gid("FulfillmentOrder", original.id),
            "status": original.status.lower(),
        },
        "moved_fulfillment_order": {
            "id": gid("FulfillmentOrder", moved.id),
            "status": moved.status.lower(),
        },
        "destination_location_id": moved.location_id,
        "source_location": None,
    }
