"""The ``/_sim`` JSON control API: merchant-side actions, faults and state, over HTTP.

Every action here is also a method on ``ShopState`` / ``ShopifySimulator``; this module only
validates JSON bodies (pydantic) and maps errors to 4xx answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tillsync.connectors.shopify.ids import gid
from tillsync_sim.shopify.faults import Faults
from tillsync_sim.shopify.model import ShippingAddress, parse_gid
from tillsync_sim.shopify.state import CartPart, ShopState, SimError
from tillsync_sim.shopify.webhooks import ALL_TOPICS

if TYPE_CHECKING:
    from tillsync_sim.shopify.app import ShopifySimulator

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _ref(value: int | str, kind: str) -> int:
    if isinstance(value, int):
        return value
    if value.isdigit():
        return int(value)
    parsed = parse_gid(value, kind)
    if parsed is None:
        raise SimError(f"not a {kind} id: {value!r}")
    return parsed


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrderLine(_Body):
    sku: str
    quantity: int = Field(1, ge=1)


class AddressBody(_Body):
    first_name: str
    last_name: str
    address1: str
    address2: str | None = None
    city: str
    zip: str
    province_code: str | None = None
    country_code: str = Field("SE", min_length=2, max_length=2)
    phone: str | None = None


class _OrderFields(_Body):
    email: str | None = None
    financial_status: str = "paid"
    shipping_address: AddressBody | None = Field(
        None, description="an order with a SHIPPING part and without one gets a made-up address"
    )


class OrderBody(_OrderFields):
    lines: list[OrderLine] = Field(min_length=1)
    location_id: int | str
    delivery: str = Field("SHIPPING", description="SHIPPING or PICK_UP")


class CartPartBody(_Body):
    lines: list[tuple[str, Annotated[int, Field(ge=1)]]] = Field(
        min_length=1, description="[sku, quantity] pairs"
    )
    location_id: int | str
    delivery: str = Field("SHIPPING", description="SHIPPING or PICK_UP")


class MixedOrderBody(_OrderFields):
    """A mixed cart: one fulfilment order per part, each at its own location."""

    parts: list[CartPartBody] = Field(min_length=1)


def order_body(raw: Any) -> OrderBody | MixedOrderBody:
    """A body with ``parts`` is a mixed cart; any other is the one-location order."""
    if isinstance(raw, dict) and "parts" in raw:
        return MixedOrderBody.model_validate(raw)
    return OrderBody.model_validate(raw)


class RefundLineBody(_Body):
    line_item_id: int | str | None = None
    sku: str | None = None
    quantity: int = Field(1, ge=1)
    restock_type: str = "RETURN"
    location_id: int | str | None = None


class RefundBody(_Body):
    lines: list[RefundLineBody] = Field(min_length=1)
    note: str | None = None


class CancelBody(_Body):
    reason: str = "customer"
    restock: bool = True
    refund: bool = False
    staff_note: str | None = None
    notify_customer: bool = False


class FulfilBody(_Body):
    fulfillment_order_id: int | str | None = None


class InventoryEditBody(_Body):
    sku: str | None = None
    inventory_item_id: int | str | None = None
    location_id: int | str
    name: str = "available"
    quantity: int | None = None
    delta: int | None = None


class CustomerBody(_Body):
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    tags: list[str] = Field(default_factory=list)


class SubscribeBody(_Body):
    url: str
    topics: list[str] = Field(default_factory=lambda: list(ALL_TOPICS))


def state_ids(state: ShopState) -> dict[str, Any]:
    return {
        "locations": {loc.name: gid("Location", loc.id) for loc in state.locations.values()},
        "variants": {
            v.sku: {
                "variant_id": gid("ProductVariant", v.id),
                "inventory_item_id": gid("InventoryItem", v.inventory_item_id),
                "product_id": gid("Product", v.product_id),
            }
            for v in state.variants.values()
            if v.sku
        },
    }


def _order_json(sim: ShopifySimulator, order_id: int) -> dict[str, Any]:
    from tillsync_sim.shopify import payloads

    order = sim.state.order(order_id)
    body = payloads.order(order, sim.state)
    body["fulfillment_orders"] = [
        {
            "id": gid("FulfillmentOrder", fo.id),
            "status": fo.status,
            "method_type": fo.method_type,
            "location_id": gid("Location", fo.location_id),
            "line_items": [
                {
                    "id": gid("FulfillmentOrderLineItem", ln.id),
                    "sku": ln.sku,
                    "remaining": ln.remaining,
                }
                for ln in fo.lines
            ],
        }
        for fo in (sim.state.fulfillment_orders[i] for i in order.fulfillment_order_ids)
    ]
    return body


def returns_json(state: ShopState, order_id: int) -> dict[str, Any]:
    """An order's returns, their dispositions and its refunds, as a test reads them after
    tillsync processed a store return (ids are gids, amounts strings)."""
    order = state.order(order_id)
    skus = {li.id: li.sku for li in order.line_items}
    money = "{:.2f}".format

    def dispositions(rfo_id: int) -> list[dict[str, Any]]:
        rfo = state.reverse_fulfillment_orders[rfo_id]
        ret = state.returns[rfo.return_id]
        line_items = {line.id: line.line_item_id for line in ret.lines}
        return [
            {
                "sku": skus[line_items[line.return_line_id]],
                "type": d.type,
                "quantity": d.quantity,
                "location_id": gid("Location", d.location_id)
                if d.location_id is not None
                else None,
            }
            for line in rfo.lines
            for d in line.dispositions
        ]

    return {
        "returns": [
            {
                "id": gid("Return", ret.id),
                "status": ret.status,
                "lines": [
                    {
                        "id": gid("ReturnLineItem", line.id),
                        "sku": skus[line.line_item_id],
                        "quantity": line.quantity,
                        "reason": line.reason,
                        "reason_note": line.reason_note,
                        "refunded": line.refunded,
                    }
                    for line in ret.lines
                ],
                "dispositions": dispositions(ret.rfo_id),
            }
            for ret in state.returns_of(order_id)
        ],
        "refunds": [
            {
                "id": gid("Refund", r.id),
                "return_id": gid("Return", r.return_id) if r.return_id is not None else None,
                "amount": money(r.amount),
                "note": r.note,
            }
            for r in (state.refunds[i] for i in order.refund_ids)
        ],
        "received": money(order.received()),
        "refunded": money(state.refunded(order)),
    }


def add_routes(app: web.Application, sim: ShopifySimulator) -> None:
    st = sim.state

    def route(fn: Callable[[web.Request], Awaitable[Any]]) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                result = await fn(request)
            except ValidationError as exc:
                return web.json_response(
                    {"error": exc.errors(include_url=False)}, status=400, dumps=_dumps
                )
            except SimError as exc:
                return web.json_response({"error": str(exc)}, status=422)
            return web.json_response(result, dumps=_dumps)

        return handler

    async def body(request: web.Request) -> Any:
        raw = await request.read()
        return (await request.json()) if raw else {}

    async def seed(request: web.Request) -> Any:
        return sim.seed(await body(request))

    async def place_order(request: web.Request) -> Any:
        b = order_body(await body(request))
        address = ShippingAddress(**b.shipping_address.model_dump()) if b.shipping_address else None
        if isinstance(b, MixedOrderBody):
            parts = [
                CartPart(tuple(p.lines), _ref(p.location_id, "Location"), p.delivery)
                for p in b.parts
            ]
            order = st.place_mixed_order(
                parts,
                email=b.email,
                financial_status=b.financial_status,
                shipping_address=address,
            )
        else:
            order = st.place_order(
                [(ln.sku, ln.quantity) for ln in b.lines],
                location_id=_ref(b.location_id, "Location"),
                delivery=b.delivery,
                email=b.email,
                financial_status=b.financial_status,
                shipping_address=address,
            )
        return _order_json(sim, order.id)

    async def get_order(request: web.Request) -> Any:
        return _order_json(sim, _ref(request.match_info["order_id"], "Order"))

    async def cancel(request: web.Request) -> Any:
        b = CancelBody.model_validate(await body(request))
        order = st.cancel_order(
            _ref(request.match_info["order_id"], "Order"),
            reason=b.reason,
            restock=b.restock,
            refund=b.refund,
            staff_note=b.staff_note,
            notify_customer=b.notify_customer,
        )
        return _order_json(sim, order.id)

    async def refund(request: web.Request) -> Any:
        order_id = _ref(request.match_info["order_id"], "Order")
        b = RefundBody.model_validate(await body(request))
        order = st.order(order_id)
        lines: list[tuple[int, int, str, int | None]] = []
        for ln in b.lines:
            if ln.line_item_id is not None:
                li_id = _ref(ln.line_item_id, "LineItem")
            else:
                match = [li for li in order.line_items if li.sku == ln.sku]
                if not match:
                    raise SimError(f"no line item with SKU {ln.sku!r}")
                li_id = match[0].id
            loc = _ref(ln.location_id, "Location") if ln.location_id is not None else None
            lines.append((li_id, ln.quantity, ln.restock_type, loc))
        r = st.refund(order_id, lines, note=b.note)
        from tillsync_sim.shopify import payloads

        return payloads.refund(r, order)

    async def returns(request: web.Request) -> Any:
        return returns_json(st, _ref(request.match_info["order_id"], "Order"))

    async def fulfil(request: web.Request) -> Any:
        order = st.order(_ref(request.match_info["order_id"], "Order"))
        b = FulfilBody.model_validate(await body(request))
        fo_ids = (
            [_ref(b.fulfillment_order_id, "FulfillmentOrder")]
            if b.fulfillment_order_id is not None
            else [
                i
                for i in order.fulfillment_order_ids
                if st.fulfillment_orders[i].status in ("OPEN", "IN_PROGRESS")
            ]
        )
        for fo_id in fo_ids:
            st.fulfil(fo_id)
        return _order_json(sim, order.id)

    async def prepared(request: web.Request) -> Any:
        fo = st.prepare_for_pickup(_ref(request.match_info["fo_id"], "FulfillmentOrder"))
        return {"id": gid("FulfillmentOrder", fo.id), "status": fo.status}

    async def edit_inventory(request: web.Request) -> Any:
        b = InventoryEditBody.model_validate(await body(request))
        ref: str | int
        if b.inventory_item_id is not None:
            ref = _ref(b.inventory_item_id, "InventoryItem")
        elif b.sku:
            ref = b.sku
        else:
            raise SimError("give sku or inventory_item_id")
        level = st.edit_inventory(
            ref, _ref(b.location_id, "Location"), quantity=b.quantity, delta=b.delta, name=b.name
        )
        return {n: level.get(n) for n in ("available", "committed", "on_hand")}

    async def customers(request: web.Request) -> Any:
        b = CustomerBody.model_validate(await body(request))
        c = st.create_customer(
            b.email, first_name=b.first_name, last_name=b.last_name, phone=b.phone, tags=b.tags
        )
        return {"id": gid("Customer", c.id), "email": c.email}

    async def set_faults(request: web.Request) -> Any:
        changes = await body(request)
        Faults.model_validate({**sim.faults.faults.model_dump(), **changes})
        return sim.set_faults(**changes).model_dump()

    async def clear_faults(_request: web.Request) -> Any:
        sim.faults.clear()
        return sim.faults.faults.model_dump()

    async def get_faults(_request: web.Request) -> Any:
        return sim.faults.faults.model_dump()

    async def subscribe(request: web.Request) -> Any:
        b = SubscribeBody.model_validate(await body(request))
        sim.subscribe_all(b.url, tuple(b.topics))
        return {"subscriptions": len(st.subscriptions)}

    async def deliveries(_request: web.Request) -> Any:
        return [d.summary() for d in sim.webhooks.deliveries]

    async def inventory(_request: web.Request) -> Any:
        return st.inventory_snapshot()

    async def ids(_request: web.Request) -> Any:
        return state_ids(st)

    async def bucket(_request: web.Request) -> Any:
        return {**sim.bucket.status(), "stats": dict(sim.stats)}

    async def drain_bucket(_request: web.Request) -> Any:
        sim.bucket.drain()
        return sim.bucket.status()

    async def health(_request: web.Request) -> Any:
        return {"ok": True}

    r = app.router
    r.add_get("/_sim/health", route(health))
    r.add_post("/_sim/seed", route(seed))
    r.add_post("/_sim/orders", route(place_order))
    r.add_get("/_sim/orders/{order_id}", route(get_order))
    r.add_post("/_sim/orders/{order_id}/cancel", route(cancel))
    r.add_post("/_sim/orders/{order_id}/refund", route(refund))
    r.add_post("/_sim/orders/{order_id}/fulfil", route(fulfil))
    r.add_get("/_sim/orders/{order_id}/returns", route(returns))
    r.add_post("/_sim/fulfillment_orders/{fo_id}/prepared_for_pickup", route(prepared))
    r.add_post("/_sim/inventory/edit", route(edit_inventory))
    r.add_post("/_sim/customers", route(customers))
    r.add_get("/_sim/faults", route(get_faults))
    r.add_post("/_sim/faults", route(set_faults))
    r.add_delete("/_sim/faults", route(clear_faults))
    r.add_post("/_sim/webhooks/subscribe", route(subscribe))
    r.add_get("/_sim/webhooks/deliveries", route(deliveries))
    r.add_get("/_sim/state/inventory", route(inventory))
    r.add_get("/_sim/state/ids", route(ids))
    r.add_get("/_sim/state/bucket", route(bucket))
    r.add_post("/_sim/bucket/drain", route(drain_bucket))


def _dumps(obj: Any) -> str:
    import json

    return json.dumps(obj, default=str)
