"""Query and mutation resolvers of the simulator: Shopify's rules for each operation.

Idempotency (``@idempotent``), compare-and-swap, input limits and the 2026-04 strictness live
here; the records and their side effects (stock moves, webhooks) live in ``state``.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import graphql
from graphql import GraphQLError, GraphQLResolveInfo, VariableNode

from tillsync.connectors.shopify.ids import gid
from tillsync_sim.shopify import executor
from tillsync_sim.shopify.graphql_schema import admin_schema, operation_of, prepare_document
from tillsync_sim.shopify.model import (
    QUANTITY_NAMES,
    BulkOperation,
    Fulfillment,
    Variant,
    WebhookSubscription,
    now_iso,
    parse_gid,
)
from tillsync_sim.shopify.objects import (
    MAX_INPUT_ITEMS,
    Node,
    Objects,
    connection,
    search_terms,
    topic_wire_name,
)
from tillsync_sim.shopify.state import (
    QUANTITY_LIMIT,
    DisposeRequest,
    RefundPayment,
    Refused,
    ReturnRequest,
    ShopState,
    SimError,
    UserError,
)

if TYPE_CHECKING:
    from tillsync_sim.shopify.clock import Clock

# From this version on, inventory and refund mutations must carry @idempotent and every set
# quantity must carry changeFromQuantity (shopify-api.md §1).
STRICT_FROM_VERSION = "2026-04"
IDEMPOTENT_MUTATIONS = frozenset(
    {"inventorySetQuantities", "inventoryAdjustQuantities", "refundCreate"}
)
# Error code for a missing @idempotent at 2026-04+: not documented in the reference; assumed.
IDEMPOTENCY_REQUIRED_CODE = "IDEMPOTENCY_KEY_REQUIRED"
# Shopify's key retention window is not documented; the simulator keeps the newest keys.
IDEMPOTENCY_KEYS_KEPT = 100_000


@dataclass
class RequestContext:
    api_version: str

    @property
    def strict(self) -> bool:
        return self.api_version >= STRICT_FROM_VERSION


def _user_errors(errors: list[UserError]) -> list[Node]:
    return [e.as_dict() for e in errors]


def _refused(exc: Refused, argument: str | None) -> list[Node]:
    """The userErrors of a refused action: its field paths are relative to the input, so
    the mutation's argument name goes in front, as Shopify's paths start with it."""
    return [
        UserError(
            [argument, *(e.field or [])] if argument else e.field, e.message, e.code
        ).as_dict()
        for e in exc.errors
    ]


class Resolvers(Objects):
    """Builds the query and mutation roots over a ``ShopState``."""

    def __init__(self, state: ShopState, clock: Clock) -> None:
        super().__init__(state)
        self.clock = clock
        self.bulk_delay_seconds = 0.0
        self.bulk_operations: dict[int, BulkOperation] = {}
        self._idempotency: OrderedDict[str, tuple[str, Any]] = OrderedDict()
        self.query_root: Node = {
            "shop": self.q_shop,
            "locations": self.q_locations,
            "location": self.q_location,
            "productVariants": self.q_product_variants,
            "productVariant": self.q_product_variant,
            "products": self.q_products,
            "product": self.q_product,
            "inventoryItem": self.q_inventory_item,
            "inventoryItems": self.q_inventory_items,
            "inventoryLevel": self.q_inventory_level,
            "order": self.q_order,
            "orders": self.q_orders,
            "return": self.q_return,
            "fulfillmentOrder": self.q_fulfillment_order,
            "fulfillment": self.q_fulfillment,
            "customers": self.q_customers,
            "customer": self.q_customer,
            "currentBulkOperation": self.q_current_bulk_operation,
            "node": self.q_node,
            "webhookSubscriptions": self.q_webhook_subscriptions,
        }
        self.mutation_root: Node = {
            "inventorySetQuantities": self.m_inventory_set_quantities,
            "inventoryAdjustQuantities": self.m_inventory_adjust_quantities,
            "inventoryActivate": self.m_inventory_activate,
            "fulfillmentOrderLineItemsPreparedForPickup": self.m_prepared_for_pickup,
            "fulfillmentCreate": self.m_fulfillment_create,
            "fulfillmentCancel": self.m_fulfillment_cancel,
            "fulfillmentOrderMove": self.m_fulfillment_order_move,
            "refundCreate": self.m_refund_create,
            "orderCapture": self.m_order_capture,
            "orderMarkAsPaid": self.m_order_mark_as_paid,
            "orderCancel": self.m_order_cancel,
            "returnCreate": self.m_return_create,
            "reverseFulfillmentOrderDispose": self.m_reverse_fulfillment_order_dispose,
            "returnRefund": self.m_return_refund,
            "returnClose": self.m_return_close,
            "returnApproveRequest": self.m_return_approve_request,
            "customerCreate": self.m_customer_create,
            "customerUpdate": self.m_customer_update,
            "tagsAdd": self.m_tags_add,
            "metafieldsSet": self.m_metafields_set,
            "productCreate": self.m_product_create,
            "productUpdate": self.m_product_update,
            "bulkOperationRunQuery": self.m_bulk_operation_run_query,
            "webhookSubscriptionCreate": self.m_webhook_subscription_create,
        }

    # -- queries ----------------------------------------------------------------------------

    def q_shop(self, _info: GraphQLResolveInfo) -> Node:
        domain = self.state.shop_domain
        return {
            "__typename": "Shop",
            "id": gid("Shop", 1),
            "name": domain.split(".", 1)[0],
            "email": f"owner@{domain}",
            "myshopifyDomain": domain,
            "currencyCode": "SEK",
            "ianaTimezone": "Europe/Stockholm",
            "plan": {"displayName": "Basic", "partnerDevelopment": False, "shopifyPlus": False},
            "locations": self.q_locations,
        }

    def q_locations(
        self,
        _info: GraphQLResolveInfo,
        includeInactive: bool | None = False,
        query: str | None = None,
        **a: Any,
    ) -> Node:
        locs = [loc for loc in self.state.locations.values() if loc.active or includeInactive]
        names = [v for k, v in search_terms(query) if k == "name"]
        if names:
            locs = [loc for loc in locs if loc.name in names]
        return connection(locs, self.location, **a)

    def q_location(self, _info: GraphQLResolveInfo, id: str | None = None) -> Node | None:
        if id is None:
            return self.location(self.state.locations[min(self.state.locations)])
        loc = self.state.locations.get(parse_gid(id, "Location") or -1)
        return self.location(loc) if loc else None

    def _variants_matching(self, query: str | None) -> list[Variant]:
        terms = search_terms(query)
        skus = {v for k, v in terms if k == "sku"}
        if not skus:
            return list(self.state.variants.values())
        found = [self.state.variant_by_sku(s) for s in skus]
        return sorted((v for v in found if v is not None), key=lambda v: v.id)

    def q_product_variants(
        self, _info: GraphQLResolveInfo, query: str | None = None, **a: Any
    ) -> Node:
        return connection(self._variants_matching(query), self.variant, **a)

    def q_product_variant(self, _info: GraphQLResolveInfo, id: str) -> Node | None:
        v = self.state.variants.get(parse_gid(id, "ProductVariant") or -1)
        return self.variant(v) if v else None

    def q_products(self, _info: GraphQLResolveInfo, query: str | None = None, **a: Any) -> Node:
        products = list(self.state.products.values())
        skus = {v for k, v in search_terms(query) if k == "sku"}
        if skus:
            products = [
                p
                for p in products
                if any(self.state.variants[v].sku in skus for v in p.variant_ids)
            ]
        return connection(products, self.product, **a)

    def q_product(self, _info: GraphQLResolveInfo, id: str) -> Node | None:
        p = self.state.products.get(parse_gid(id, "Product") or -1)
        return self.product(p) if p else None

    def q_inventory_item(self, _info: GraphQLResolveInfo, id: str) -> Node | None:
        item = self.state.items.get(parse_gid(id, "InventoryItem") or -1)
        return self.item(item) if item else None

    def q_inventory_items(
        self, _info: GraphQLResolveInfo, query: str | None = None, **a: Any
    ) -> Node:
        items = list(self.state.items.values())
        skus = {v for k, v in search_terms(query) if k == "sku"}
        if skus:
            items = [i for i in items if i.sku in skus]
        return connection(items, self.item, **a)

    def q_inventory_level(self, _info: GraphQLResolveInfo, id: str) -> Node | None:
        m = re.match(r"gid://shopify/InventoryLevel/(\d+)\?inventory_item_id=(\d+)$", id)
        return self._level_or_none(int(m[2]), int(m[1])) if m else None

    def q_order(self, _info: GraphQLResolveInfo, id: str) -> Node | None:
        o = self.state.orders.get(parse_gid(id, "Order") or -1)
        return self.order(o) if o else None

    def q_orders(
        self,
        _info: GraphQLResolveInfo,
        query: str | None = None,
        sortKey: str | None = "ID",
        reverse: bool | None = False,
        **a: Any,
    ) -> Node:
        """Orders, filtered on ``email:`` (what tillsync searches by); ``CREATED_AT`` and
        ``ID`` sort alike here, since ids rise with time."""
        orders = sorted(self.state.orders.values(), key=lambda o: o.id)
        emails = {v.lower() for k, v in search_terms(query) if k == "email"}
        if emails:
            orders = [o for o in orders if o.email and o.email.lower() in emails]
        return connection(orders, self.order, reverse=reverse, **a)

    def q_return(self, _info: GraphQLResolveInfo, id: str) -> Node | None:
        ret = self.state.returns.get(parse_gid(id, "Return") or -1)
        return self.return_(ret) if ret else None

    def q_fulfillment_order(self, _info: GraphQLResolveInfo, id: str) -> Node | None:
        fo = self.state.fulfillment_orders.get(parse_gid(id, "FulfillmentOrder") or -1)
        return self.fulfillment_order(fo) if fo else None

    def q_fulfillment(self, _info: GraphQLResolveInfo, id: str) -> Node | None:
        f = self.state.fulfillments.get(parse_gid(id, "Fulfillment") or -1)
        return self.fulfillment(f) if f else None

    def q_customers(self, _info: GraphQLResolveInfo, query: str | None = None, **a: Any) -> Node:
        customers = list(self.state.customers.values())
        emails = {v.lower() for k, v in search_terms(query) if k == "email"}
        if emails:
            customers = [c for c in customers if c.email and c.email.lower() in emails]
        return connection(customers, self.customer, **a)

    def q_customer(self, _info: GraphQLResolveInfo, id: str) -> Node | None:
        c = self.state.customers.get(parse_gid(id, "Customer") or -1)
        return self.customer(c) if c else None

    def q_current_bulk_operation(
        self, _info: GraphQLResolveInfo, type: str | None = "QUERY"
    ) -> Node | None:
        if type == "MUTATION" or not self.bulk_operations:
            return None
        op = self.bulk_operations[max(self.bulk_operations)]
        self._maybe_finish(op)
        return self.bulk_operation(op)

    def q_node(self, _info: GraphQLResolveInfo, id: str) -> Node | None:
        """Any object by its global id in Shopify; here bulk operations only (what tillsync
        polls this way), so any other id reads as not found (null)."""
        kind, _, tail = id.removeprefix("gid://shopify/").partition("/")
        if kind == "BulkOperation" and tail.isdigit() and int(tail) in self.bulk_operations:
            op = self.bulk_operations[int(tail)]
            self._maybe_finish(op)
            return self.bulk_operation(op)
        return None

    def q_webhook_subscriptions(self, _info: GraphQLResolveInfo, **a: Any) -> Node:
        return connection(list(self.state.subscriptions.values()), self.webhook_subscription, **a)

    # -- idempotency ------------------------------------------------------------------------

    def _idempotency_key(self, info: GraphQLResolveInfo) -> str | None:
        values = _directive_args(info, "idempotent")
        if values is None:
            ctx: RequestContext = info.context
            if ctx.strict and info.field_name in IDEMPOTENT_MUTATIONS:
                raise GraphQLError(
                    f"The @idempotent directive is required for {info.field_name} "
                    f"from API version {STRICT_FROM_VERSION}",
                    extensions={"code": IDEMPOTENCY_REQUIRED_CODE},
                )
            return None
        key = str(values.get("key") or "")
        if not key.strip():
            raise GraphQLError(
                "Idempotency key must not be empty", extensions={"code": "BAD_REQUEST"}
            )
        return key

    def _idempotent(
        self,
        info: GraphQLResolveInfo,
        args: dict[str, Any],
        run: Callable[[], Node],
        mismatch: Callable[[str], Node],
    ) -> Node:
        key = self._idempotency_key(info)
        if key is None:
            return run()
        fingerprint = json.dumps([info.field_name, args], sort_keys=True, default=str)
        seen = self._idempotency.get(key)
        if seen is not None:
            if seen[0] == fingerprint:
                return seen[1]
            return mismatch("The idempotency key was already used with different parameters")
        result = run()
        self._idempotency[key] = (fingerprint, result)
        if len(self._idempotency) > IDEMPOTENCY_KEYS_KEPT:
            self._idempotency.popitem(last=False)
        return result

    # -- inventory mutations ----------------------------------------------------------------

    @staticmethod
    def _check_size(items: list[Any], field: str) -> None:
        if len(items) > MAX_INPUT_ITEMS:
            raise GraphQLError(
                f"The input array size of {len(items)} is greater than the maximum allowed "
                f"of {MAX_INPUT_ITEMS}.",
                extensions={"code": "MAX_INPUT_SIZE_EXCEEDED", "argument": field},
            )

    def _resolve_entry(
        self, entry: dict[str, Any], path: list[str], code_prefix: str = ""
    ) -> tuple[int, int] | UserError:
        item_id = parse_gid(entry.get("inventoryItemId"), "InventoryItem")
        if item_id is None or item_id not in self.state.items:
            return UserError(
                [*path, "inventoryItemId"],
                "The specified inventory item could not be found.",
                "INVALID_INVENTORY_ITEM",
            )
        loc_id = parse_gid(entry.get("locationId"), "Location")
        if loc_id is None or loc_id not in self.state.locations:
            return UserError(
                [*path, "locationId"],
                "The specified location could not be found.",
                "INVALID_LOCATION",
            )
        if (item_id, loc_id) not in self.state.levels:
            return UserError(
                [*path, "locationId"],
                "The specified inventory item is not stocked at the location.",
                "ITEM_NOT_STOCKED_AT_LOCATION",
            )
        return item_id, loc_id

    def _adjustment_group(self, reason: str, uri: str | None, changes: list[Any]) -> Node:
        st = self.state
        return {
            "__typename": "InventoryAdjustmentGroup",
            "id": gid("InventoryAdjustmentGroup", st.next_id()),
            "createdAt": now_iso(),
            "reason": reason,
            "referenceDocumentUri": uri,
            "app": None,
            "staffMember": None,
            "changes": [
                {
                    "name": c.name,
                    "delta": c.delta,
                    "quantityAfterChange": c.quantity_after,
                    "ledgerDocumentUri": c.ledger_document_uri,
                    "item": self._lazy_item(c.item_id),
                    "location": self._lazy_location(c.location_id),
                }
                for c in changes
            ],
        }

    def _lazy_item(self, item_id: int) -> Callable[[Any], Node]:
        return lambda _i: self.item(self.state.items[item_id])

    def _lazy_location(self, location_id: int) -> Callable[[Any], Node]:
        return lambda _i: self.location(self.state.locations[location_id])

    def m_inventory_set_quantities(self, info: GraphQLResolveInfo, input: Node) -> Node:
        def failed(message: str) -> Node:
            err = UserError(["input"], message, "IDEMPOTENCY_KEY_PARAMETER_MISMATCH")
            return {"inventoryAdjustmentGroup": None, "userErrors": _user_errors([err])}

        return self._idempotent(
            info, {"input": input}, lambda: self._set_quantities(info, input), failed
        )

    def _set_quantities(self, info: GraphQLResolveInfo, inp: Node) -> Node:
        ctx: RequestContext = info.context
        quantities: list[Node] = inp["quantities"]
        self._check_size(quantities, "quantities")
        name = inp["name"]
        errors: list[UserError] = []
        if name not in ("available", "on_hand"):
            errors.append(
                UserError(
                    ["input", "name"],
                    "The quantity name must be either 'available' or 'on_hand'.",
                    "INVALID_NAME",
                )
            )
        if not inp.get("reason"):
            errors.append(UserError(["input", "reason"], "Reason is invalid", "INVALID_REASON"))
        entries: list[tuple[int, int, int]] = []
        seen: set[tuple[int, int]] = set()
        for i, q in enumerate(quantities):
            path = ["input", "quantities", str(i)]
            resolved = self._resolve_entry(q, path)
            if isinstance(resolved, UserError):
                errors.append(resolved)
                continue
            if resolved in seen:
                errors.append(
                    UserError(
                        path,
                        "The combination of inventoryItemId and locationId must be unique.",
                        "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR",
                    )
                )
                continue
            seen.add(resolved)
            qty = int(q["quantity"])
            if qty > QUANTITY_LIMIT:
                errors.append(
                    UserError(
                        [*path, "quantity"],
                        "The quantity can't be higher than 1,000,000,000.",
                        "INVALID_QUANTITY_TOO_HIGH",
                    )
                )
                continue
            if qty < -QUANTITY_LIMIT:
                errors.append(
                    UserError(
                        [*path, "quantity"],
                        "The quantity can't be lower than -1,000,000,000.",
                        "INVALID_QUANTITY_TOO_LOW",
                    )
                )
                continue
            level = self.state.levels[resolved]
            current = level.get(name) if name in QUANTITY_NAMES else 0
            cas_error = self._cas_check(ctx, inp, q, current, path)
            if cas_error is not None:
                errors.append(cas_error)
                continue
            entries.append((resolved[0], resolved[1], qty))
        if errors:
            # all-or-nothing: one bad entry and nothing is written
            return {"inventoryAdjustmentGroup": None, "userErrors": _user_errors(errors)}
        changes = self.state.apply_set(name, entries)
        return {
            "inventoryAdjustmentGroup": self._adjustment_group(
                inp["reason"], inp.get("referenceDocumentUri"), changes
            ),
            "userErrors": [],
        }

    @staticmethod
    def _cas_check(
        ctx: RequestContext, inp: Node, q: Node, current: int, path: list[str]
    ) -> UserError | None:
        if "changeFromQuantity" in q:
            # any value, explicit null included, overrides the legacy compare fields
            expected = q["changeFromQuantity"]
            if expected is not None and expected != current:
                return UserError(
                    [*path, "changeFromQuantity"],
                    f"The specified changeFromQuantity ({expected}) does not match the "
                    f"current quantity ({current}).",
                    "CHANGE_FROM_QUANTITY_STALE",
                )
            return None
        if ctx.strict:
            return UserError(
                [*path, "changeFromQuantity"],
                f"changeFromQuantity is required from API version {STRICT_FROM_VERSION}.",
                "CHANGE_FROM_QUANTITY_REQUIRED",
            )
        if inp.get("ignoreCompareQuantity"):
            return None
        if q.get("compareQuantity") is None:
            return UserError(
                [*path, "compareQuantity"],
                "The compareQuantity argument must be "
                "given to each quantity or ignored using ignoreCompareQuantity.",
                "COMPARE_QUANTITY_REQUIRED",
            )
        if q["compareQuantity"] != current:
            return UserError(
                [*path, "compareQuantity"],
                "The specified compare quantity does not match the current quantity.",
                "COMPARE_QUANTITY_STALE",
            )
        return None

    def m_inventory_adjust_quantities(self, info: GraphQLResolveInfo, input: Node) -> Node:
        def failed(message: str) -> Node:
            err = UserError(["input"], message, "IDEMPOTENCY_KEY_PARAMETER_MISMATCH")
            return {"inventoryAdjustmentGroup": None, "userErrors": _user_errors([err])}

        return self._idempotent(
            info, {"input": input}, lambda: self._adjust_quantities(input), failed
        )

    def _adjust_quantities(self, inp: Node) -> Node:
        changes_in: list[Node] = inp["changes"]
        self._check_size(changes_in, "changes")
        name = inp["name"]
        errors: list[UserError] = []
        if name not in QUANTITY_NAMES or name in ("committed", "on_hand"):
            errors.append(
                UserError(
                    ["input", "name"],
                    f"The quantity name {name!r} is not valid.",
                    "INVALID_QUANTITY_NAME",
                )
            )
        entries: list[tuple[int, int, int, str | None]] = []
        for i, c in enumerate(changes_in):
            path = ["input", "changes", str(i)]
            resolved = self._resolve_entry(c, path)
            if isinstance(resolved, UserError):
                errors.append(resolved)
                continue
            ledger = c.get("ledgerDocumentUri")
            if name != "available" and not ledger:
                errors.append(
                    UserError(
                        [*path, "ledgerDocumentUri"],
                        "A ledger document URI is required for this quantity name.",
                        "INVALID_LEDGER_DOCUMENT",
                    )
                )
                continue
            expected = c.get("changeFromQuantity")
            if expected is not None and name in QUANTITY_NAMES:
                current = self.state.levels[resolved].get(name)
                if expected != current:
                    errors.append(
                        UserError(
                            [*path, "changeFromQuantity"],
                            "The specified changeFromQuantity does not match the current quantity.",
                            "CHANGE_FROM_QUANTITY_STALE",
                        )
                    )
                    continue
            entries.append((resolved[0], resolved[1], int(c["delta"]), ledger))
        if errors:
            return {"inventoryAdjustmentGroup": None, "userErrors": _user_errors(errors)}
        changes = self.state.apply_adjust(name, entries)
        return {
            "inventoryAdjustmentGroup": self._adjustment_group(
                inp["reason"], inp.get("referenceDocumentUri"), changes
            ),
            "userErrors": [],
        }

    def m_inventory_activate(
        self,
        _info: GraphQLResolveInfo,
        inventoryItemId: str,
        locationId: str,
        available: int | None = None,
        **_: Any,
    ) -> Node:
        item_id = parse_gid(inventoryItemId, "InventoryItem")
        loc_id = parse_gid(locationId, "Location")
        if item_id is None or item_id not in self.state.items:
            err = UserError(["inventoryItemId"], "Inventory item does not exist")
            return {"inventoryLevel": None, "userErrors": _user_errors([err])}
        if loc_id is None or loc_id not in self.state.locations:
            err = UserError(["locationId"], "Location does not exist")
            return {"inventoryLevel": None, "userErrors": _user_errors([err])}
        level = self.state.activate(item_id, loc_id, available or 0)
        return {"inventoryLevel": self.level(level), "userErrors": []}

    # -- orders -----------------------------------------------------------------------------

    def m_prepared_for_pickup(self, _info: GraphQLResolveInfo, input: Node) -> Node:
        errors: list[UserError] = []
        for i, entry in enumerate(input["lineItemsByFulfillmentOrder"]):
            fo_id = parse_gid(entry["fulfillmentOrderId"], "FulfillmentOrder")
            try:
                if fo_id is None:
                    raise SimError("invalid fulfillment order id")
                self.state.prepare_for_pickup(fo_id)
            except SimError as exc:
                errors.append(
                    UserError(
                        ["input", "lineItemsByFulfillmentOrder", str(i)],
                        str(exc),
                        "FULFILLMENT_ORDER_INVALID",
                    )
                )
        return {"userErrors": _user_errors(errors)}

    def m_fulfillment_create(
        self, _info: GraphQLResolveInfo, fulfillment: Node, message: str | None = None
    ) -> Node:
        st = self.state
        groups = fulfillment["lineItemsByFulfillmentOrder"]
        fos = [
            st.fulfillment_orders.get(parse_gid(g["fulfillmentOrderId"], "FulfillmentOrder") or -1)
            for g in groups
        ]
        if not groups or any(fo is None for fo in fos):
            err = UserError(["fulfillment"], "Fulfillment order does not exist.")
            return {"fulfillment": None, "userErrors": _user_errors([err])}
        real = [fo for fo in fos if fo is not None]
        if len({(fo.order_id, fo.location_id) for fo in real}) > 1:
            err = UserError(
                ["fulfillment"],
                "All fulfillment orders must belong to the same "
                "order and be assigned to the same location.",
            )
            return {"fulfillment": None, "userErrors": _user_errors([err])}
        tracking: Node = fulfillment.get("trackingInfo") or {}
        numbers = _one_and_many(tracking.get("number"), tracking.get("numbers"))
        urls = _one_and_many(tracking.get("url"), tracking.get("urls"))
        created: Fulfillment | None = None
        try:
            for g, fo in zip(groups, real, strict=True):
                lines = g.get("fulfillmentOrderLineItems")
                pairs = None
                if lines is not None:
                    pairs = [
                        (parse_gid(x["id"], "FulfillmentOrderLineItem") or -1, int(x["quantity"]))
                        for x in lines
                    ]
                created = st.fulfil(
                    fo.id,
                    pairs,
                    tracking_numbers=numbers,
                    tracking_urls=urls,
                    tracking_company=tracking.get("company") or None,
                    notify_customer=bool(fulfillment.get("notifyCustomer")),
                )
        except SimError as exc:
            err = UserError(["fulfillment"], str(exc))
            return {"fulfillment": None, "userErrors": _user_errors([err])}
        assert created is not None
        return {"fulfillment": self.fulfillment(created), "userErrors": []}

    def m_fulfillment_cancel(self, _info: GraphQLResolveInfo, id: str) -> Node:
        try:
            f = self.state.cancel_fulfillment(parse_gid(id, "Fulfillment") or -1)
        except SimError as exc:
            return {"fulfillment": None, "userErrors": _user_errors([UserError(["id"], str(exc))])}
        return {"fulfillment": self.fulfillment(f), "userErrors": []}

    def m_fulfillment_order_move(
        self,
        _info: GraphQLResolveInfo,
        id: str,
        newLocationId: str,
        fulfillmentOrderLineItems: list[Node] | None = None,
    ) -> Node:
        empty: Node = {
            "movedFulfillmentOrder": None,
            "originalFulfillmentOrder": None,
            "remainingFulfillmentOrder": None,
        }
        if fulfillmentOrderLineItems:
            err = UserError(["fulfillmentOrderLineItems"], "moving some lines is not simulated")
            return empty | {"userErrors": _user_errors([err])}
        try:
            original, moved = self.state.move_fulfillment_order(
                parse_gid(id, "FulfillmentOrder") or -1,
                parse_gid(newLocationId, "Location") or -1,
            )
        except SimError as exc:
            return empty | {"userErrors": _user_errors([UserError(["id"], str(exc))])}
        return {
            "movedFulfillmentOrder": self.fulfillment_order(moved),
            "originalFulfillmentOrder": self.fulfillment_order(original),
            "remainingFulfillmentOrder": None,
            "userErrors": [],
        }

    def m_order_capture(self, _info: GraphQLResolveInfo, input: Node) -> Node:
        order_id = parse_gid(input["id"], "Order")
        parent_id = parse_gid(input["parentTransactionId"], "OrderTransaction")
        try:
            if order_id is None or parent_id is None:
                raise SimError("invalid order or transaction id")
            capture = self.state.capture(
                order_id, parent_id, Decimal(str(input["amount"])), input.get("currency")
            )
        except (SimError, ArithmeticError) as exc:
            err = UserError(["input"], str(exc))
            return {"transaction": None, "userErrors": _user_errors([err])}
        order = self.state.orders[order_id]
        return {"transaction": self.transaction(capture, order), "userErrors": []}

    def m_order_mark_as_paid(self, _info: GraphQLResolveInfo, input: Node) -> Node:
        order_id = parse_gid(input["id"], "Order")
        try:
            self.state.mark_as_paid(order_id if order_id is not None else -1)
        except SimError as exc:
            return {"order": None, "userErrors": _user_errors([UserError(["id"], str(exc))])}
        assert order_id is not None
        return {"order": self.order(self.state.orders[order_id]), "userErrors": []}

    def m_order_cancel(
        self,
        _info: GraphQLResolveInfo,
        orderId: str,
        refund: bool,
        restock: bool,
        reason: str,
        notifyCustomer: bool | None = None,
        staffNote: str | None = None,
    ) -> Node:
        """Shopify cancels in a job; here the job is done before the answer. The simulator
        has no staff permissions, so NO_REFUND_PERMISSION never comes."""
        order = self.state.orders.get(parse_gid(orderId, "Order") or -1)
        error: UserError | None = None
        if order is None:
            error = UserError(["orderId"], "Order does not exist", "NOT_FOUND")
        elif order.cancelled_at:
            error = UserError(["orderId"], "Order has already been cancelled", "INVALID")
        elif any(self.state.fulfillments[f].status == "success" for f in order.fulfillment_ids):
            # fulfilled units are with the customer: their fulfilments are cancelled first
            error = UserError(
                ["orderId"], "Cannot cancel an order that has fulfillments", "INVALID"
            )
        if error is not None:
            return {
                "job": None,
                "orderCancelUserErrors": [error.as_dict()],
                "userErrors": _user_errors([UserError(error.field, error.message)]),
            }
        assert order is not None
        self.state.cancel_order(
            order.id,
            reason=reason.lower(),
            restock=restock,
            refund=refund,
            staff_note=staffNote,
            notify_customer=bool(notifyCustomer),
        )
        return {
            "job": {
                "__typename": "Job",
                "id": gid("Job", self.state.next_id()),
                "done": True,
                "query": self.query_root,
            },
            "orderCancelUserErrors": [],
            "userErrors": [],
        }

    def m_refund_create(self, info: GraphQLResolveInfo, input: Node) -> Node:
        def failed(message: str) -> Node:
            err = UserError(["input"], f"IDEMPOTENCY_KEY_PARAMETER_MISMATCH: {message}")
            return {"refund": None, "order": None, "userErrors": _user_errors([err])}

        return self._idempotent(info, {"input": input}, lambda: self._refund(input), failed)

    def _refund(self, inp: Node) -> Node:
        order_id = parse_gid(inp["orderId"], "Order")
        if order_id is None or order_id not in self.state.orders:
            err = UserError(["input", "orderId"], "Order does not exist")
            return {"refund": None, "order": None, "userErrors": _user_errors([err])}
        lines: list[tuple[int, int, str, int | None]] = []
        for x in inp.get("refundLineItems") or []:
            lines.append(
                (
                    parse_gid(x["lineItemId"], "LineItem") or -1,
                    int(x["quantity"]),
                    str(x.get("restockType") or "NO_RESTOCK"),
                    parse_gid(x.get("locationId"), "Location"),
                )
            )
        # what goes back is what the transactions say: a refund without them pays nothing
        money = sum(
            (Decimal(str(t.get("amount") or 0)) for t in inp.get("transactions") or []),
            Decimal("0.00"),
        )
        if money > self.state.refundable(self.state.orders[order_id]):
            err = UserError(["input", "transactions"], "Refund amount exceeds refundable amount")
            return {"refund": None, "order": None, "userErrors": _user_errors([err])}
        try:
            r = self.state.refund(order_id, lines, note=inp.get("note"), money=money)
        except SimError as exc:
            err = UserError(["input", "refundLineItems"], str(exc))
            return {"refund": None, "order": None, "userErrors": _user_errors([err])}
        return {
            "refund": self.refund(r),
            "order": self.order(self.state.orders[order_id]),
            "userErrors": [],
        }

    # -- returns ----------------------------------------------------------------------------

    def m_return_create(self, _info: GraphQLResolveInfo, returnInput: Node) -> Node:
        """A return the merchant makes (OPEN at once, no customer request to approve).
        Exchange lines and return shipping fees are not simulated and refused if given."""
        lines: list[Node] = returnInput["returnLineItems"]
        self._check_size(lines, "returnLineItems")
        if returnInput.get("exchangeLineItems") or returnInput.get("returnShippingFee"):
            err = UserError(
                ["returnInput"], "Exchanges and return shipping fees are not simulated", "INVALID"
            )
            return {"return": None, "userErrors": _user_errors([err])}
        requests = [
            ReturnRequest(
                parse_gid(x["fulfillmentLineItemId"], "FulfillmentLineItem") or -1,
                int(x["quantity"]),
                str(x["returnReason"]),
                x.get("returnReasonNote"),
            )
            for x in lines
        ]
        try:
            ret = self.state.create_return(
                parse_gid(returnInput["orderId"], "Order") or -1, requests
            )
        except Refused as exc:
            return {"return": None, "userErrors": _refused(exc, "returnInput")}
        return {"return": self.return_(ret), "userErrors": []}

    def m_reverse_fulfillment_order_dispose(
        self, _info: GraphQLResolveInfo, dispositionInputs: list[Node]
    ) -> Node:
        self._check_size(dispositionInputs, "dispositionInputs")
        requests = [
            DisposeRequest(
                parse_gid(x["reverseFulfillmentOrderLineItemId"], "ReverseFulfillmentOrderLineItem")
                or -1,
                int(x["quantity"]),
                str(x["dispositionType"]),
                # an id that is not a location's stays wrong (-1) rather than absent
                None
                if x.get("locationId") is None
                else parse_gid(x["locationId"], "Location") or -1,
            )
            for x in dispositionInputs
        ]
        try:
            lines = self.state.dispose(requests)
        except Refused as exc:
            return {
                "reverseFulfillmentOrderLineItems": None,
                "userErrors": _refused(exc, "dispositionInputs"),
            }
        return {
            "reverseFulfillmentOrderLineItems": [self.rfo_line(line) for line in lines],
            "userErrors": [],
        }

    def m_return_refund(self, _info: GraphQLResolveInfo, returnRefundInput: Node) -> Node:
        """Refund a return's lines. ``notifyCustomer`` is accepted and not kept: the
        simulator sends no customer email. Shipping and duty refunds are not simulated."""
        inp = returnRefundInput
        if inp.get("refundShipping") or inp.get("refundDuties"):
            err = UserError(
                ["returnRefundInput"], "Shipping and duty refunds are not simulated", "INVALID"
            )
            return {"refund": None, "userErrors": _user_errors([err])}
        lines = [
            (parse_gid(x["returnLineItemId"], "ReturnLineItem") or -1, int(x["quantity"]))
            for x in inp["returnRefundLineItems"]
        ]
        payments: list[RefundPayment] = []
        for i, x in enumerate(inp.get("orderTransactions") or []):
            money: Node = x["transactionAmount"]
            try:
                amount = Decimal(str(money["amount"]))
            except ArithmeticError:
                err = UserError(
                    ["returnRefundInput", "orderTransactions", str(i), "transactionAmount"],
                    f"Invalid amount {money['amount']!r}",
                    "INVALID",
                )
                return {"refund": None, "userErrors": _user_errors([err])}
            payments.append(
                RefundPayment(
                    parse_gid(x["parentId"], "OrderTransaction") or -1,
                    amount,
                    str(money["currencyCode"]),
                )
            )
        try:
            r = self.state.refund_return(
                parse_gid(inp["returnId"], "Return") or -1, lines, payments
            )
        except Refused as exc:
            return {"refund": None, "userErrors": _refused(exc, "returnRefundInput")}
        return {"refund": self.refund(r), "userErrors": []}

    def m_return_close(self, _info: GraphQLResolveInfo, id: str) -> Node:
        try:
            ret = self.state.close_return(parse_gid(id, "Return") or -1)
        except Refused as exc:
            return {"return": None, "userErrors": _refused(exc, None)}
        return {"return": self.return_(ret), "userErrors": []}

    def m_return_approve_request(self, _info: GraphQLResolveInfo, input: Node) -> Node:
        try:
            ret = self.state.approve_return(parse_gid(input["id"], "Return") or -1)
        except Refused as exc:
            return {"return": None, "userErrors": _refused(exc, None)}
        return {"return": self.return_(ret), "userErrors": []}

    # -- customers --------------------------------------------------------------------------

    @staticmethod
    def _customer_fields(inp: Node) -> dict[str, Any]:
        mapping = {
            "email": "email",
            "firstName": "first_name",
            "lastName": "last_name",
            "phone": "phone",
            "note": "note",
            "tags": "tags",
        }
        return {mapping[k]: v for k, v in inp.items() if k in mapping}

    def _apply_customer_metafields(self, customer_id: int, inp: Node) -> None:
        for mf in inp.get("metafields") or []:
            self.state.set_metafield(
                customer_id,
                mf.get("namespace") or "custom",
                mf.get("key") or "",
                str(mf.get("value") or ""),
                mf.get("type") or "single_line_text_field",
            )

    def m_customer_create(self, _info: GraphQLResolveInfo, input: Node) -> Node:
        fields = self._customer_fields(input)
        email = fields.pop("email", None)
        if not email and not fields.get("phone") and not fields.get("last_name"):
            err = UserError(["input"], "A name, phone number, or email address must be present")
            return {"customer": None, "userErrors": _user_errors([err])}
        try:
            c = self.state.create_customer(email, **fields)
        except SimError as exc:
            return {"customer": None, "userErrors": _user_errors([UserError(["email"], str(exc))])}
        self._apply_customer_metafields(c.id, input)
        return {"customer": self.customer(c), "userErrors": []}

    def m_customer_update(self, _info: GraphQLResolveInfo, input: Node) -> Node:
        customer_id = parse_gid(input.get("id"), "Customer")
        if customer_id is None or customer_id not in self.state.customers:
            err = UserError(["id"], "Customer does not exist")
            return {"customer": None, "userErrors": _user_errors([err])}
        try:
            c = self.state.update_customer(customer_id, **self._customer_fields(input))
        except SimError as exc:
            return {"customer": None, "userErrors": _user_errors([UserError(["email"], str(exc))])}
        self._apply_customer_metafields(c.id, input)
        return {"customer": self.customer(c), "userErrors": []}

    def m_tags_add(self, _info: GraphQLResolveInfo, id: str, tags: list[str]) -> Node:
        customer_id = parse_gid(id, "Customer")
        product_id = parse_gid(id, "Product")
        if customer_id is not None and customer_id in self.state.customers:
            c = self.state.add_tags(customer_id, tags)
            return {"node": self.customer(c), "userErrors": []}
        if product_id is not None and product_id in self.state.products:
            p = self.state.products[product_id]
            merged = list(dict.fromkeys([*p.tags, *tags]))
            self.state.update_product(product_id, tags=merged)
            return {"node": self.product(p), "userErrors": []}
        return {"node": None, "userErrors": _user_errors([UserError(["id"], "Not found")])}

    def m_metafields_set(self, _info: GraphQLResolveInfo, metafields: list[Node]) -> Node:
        self._check_size(metafields, "metafields")
        out: list[Node] = []
        errors: list[UserError] = []
        for i, mf in enumerate(metafields):
            customer_id = parse_gid(mf["ownerId"], "Customer")
            if customer_id is None or customer_id not in self.state.customers:
                errors.append(
                    UserError(
                        ["metafields", str(i), "ownerId"], "Owner does not exist.", "INVALID_VALUE"
                    )
                )
                continue
            m = self.state.set_metafield(
                customer_id,
                mf.get("namespace") or "custom",
                mf["key"],
                mf["value"],
                mf.get("type") or "single_line_text_field",
            )
            out.append(self.metafield(m))
        return {"metafields": out if not errors else None, "userErrors": _user_errors(errors)}

    # -- products ---------------------------------------------------------------------------

    @staticmethod
    def _product_fields(inp: Node) -> dict[str, Any]:
        mapping = {
            "title": "title",
            "handle": "handle",
            "vendor": "vendor",
            "productType": "product_type",
            "tags": "tags",
            "status": "status",
        }
        return {mapping[k]: v for k, v in inp.items() if k in mapping and v is not None}

    def m_product_create(
        self, _info: GraphQLResolveInfo, product: Node | None = None, **_: Any
    ) -> Node:
        fields = self._product_fields(product or {})
        title = fields.pop("title", None)
        if not title:
            err = UserError(["title"], "Title can't be blank")
            return {"product": None, "shop": self.q_shop(_info), "userErrors": _user_errors([err])}
        fields.pop("handle", None)
        p = self.state.add_product(title, [{"sku": ""}], notify=True, **fields)
        return {"product": self.product(p), "shop": self.q_shop(_info), "userErrors": []}

    def m_product_update(
        self, _info: GraphQLResolveInfo, product: Node | None = None, **_: Any
    ) -> Node:
        inp = product or {}
        product_id = parse_gid(inp.get("id"), "Product")
        if product_id is None or product_id not in self.state.products:
            err = UserError(["id"], "Product does not exist")
            return {"product": None, "userErrors": _user_errors([err])}
        p = self.state.update_product(product_id, **self._product_fields(inp))
        return {"product": self.product(p), "userErrors": []}

    # -- bulk operations --------------------------------------------------------------------

    def m_bulk_operation_run_query(self, info: GraphQLResolveInfo, query: str) -> Node:
        running = [op for op in self.bulk_operations.values() if op.status == "RUNNING"]
        for op in running:
            self._maybe_finish(op)
        if any(op.status == "RUNNING" for op in running):
            err = UserError(
                ["query"],
                "A bulk query operation for this app and shop is already in progress.",
                "OPERATION_IN_PROGRESS",
            )
            return {"bulkOperation": None, "userErrors": _user_errors([err])}
        prepared = prepare_document(query)
        if not prepared.ok:
            msg = "; ".join(str(e["message"]) for e in prepared.errors)
            err = UserError(["query"], f"Invalid bulk query: {msg}", "INVALID")
            return {"bulkOperation": None, "userErrors": _user_errors([err])}
        op = BulkOperation(
            id=self.state.next_id(),
            query=query,
            ready_at=self.clock.monotonic() + self.bulk_delay_seconds,
        )
        self.bulk_operations[op.id] = op
        self._maybe_finish(op, context=info.context)
        return {"bulkOperation": self.bulk_operation(op), "userErrors": []}

    def _maybe_finish(self, op: BulkOperation, context: Any = None) -> None:
        if op.status != "RUNNING" or self.clock.monotonic() < op.ready_at:
            return
        op_node, fragments = operation_of(op.query)
        assert op_node is not None
        result = executor.execute(
            admin_schema(),
            op_node,
            fragments,
            self.query_root,
            {},
            context or RequestContext("2026-04"),
        )
        if result.errors or not isinstance(result.data, dict):
            op.status, op.error_code = "FAILED", "INTERNAL_SERVER_ERROR"
            return
        lines: list[Node] = []
        roots = 0
        for value in result.data.values():
            for node in _connection_nodes(value):
                roots += 1
                _flatten(node, None, lines)
        op.jsonl = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
        op.object_count, op.root_object_count = len(lines), roots
        op.status, op.completed_at = "COMPLETED", now_iso()

    # -- webhooks ---------------------------------------------------------------------------

    def m_webhook_subscription_create(
        self, _info: GraphQLResolveInfo, topic: str, webhookSubscription: Node
    ) -> Node:
        url = webhookSubscription.get("callbackUrl")
        if not url:
            err = UserError(["webhookSubscription", "callbackUrl"], "Address can't be blank")
            return {"webhookSubscription": None, "userErrors": _user_errors([err])}
        sub = self.subscribe(topic_wire_name(topic), str(url))
        return {"webhookSubscription": self.webhook_subscription(sub), "userErrors": []}

    def subscribe(self, wire_topic: str, url: str) -> WebhookSubscription:
        for sub in self.state.subscriptions.values():
            if sub.topic == wire_topic and sub.callback_url == url:
                return sub
        sub = WebhookSubscription(id=self.state.next_id(), topic=wire_topic, callback_url=url)
        self.state.subscriptions[sub.id] = sub
        return sub


def _one_and_many(one: str | None, many: list[str] | None) -> list[str]:
    """``number`` with ``numbers`` (or ``url`` with ``urls``): Shopify takes either and does
    not say how both combine; here the single one comes first and each value counts once."""
    return list(dict.fromkeys(v for v in [one, *(many or [])] if v))


def _directive_args(info: Any, name: str) -> dict[str, Any] | None:
    """Arguments of a directive on the current field (literals or variables)."""
    for d in info.field_nodes[0].directives or ():
        if d.name.value == name:
            out: dict[str, Any] = {}
            for arg in d.arguments or ():
                v = arg.value
                if isinstance(v, VariableNode):
                    out[arg.name.value] = info.variable_values.get(v.name.value)
                else:
                    out[arg.name.value] = graphql.value_from_ast_untyped(v)
            return out
    return None


def _connection_nodes(value: Any) -> list[Node]:
    if not isinstance(value, dict):
        return []
    if isinstance(value.get("nodes"), list):
        return [n for n in value["nodes"] if isinstance(n, dict)]
    if isinstance(value.get("edges"), list):
        return [e["node"] for e in value["edges"] if isinstance(e, dict) and "node" in e]
    return []


def _flatten(node: Node, parent_id: str | None, out: list[Node]) -> None:
    """Bulk JSONL: a node per line, nested connection nodes on their own lines with
    ``__parentId``, parents before children."""
    line: Node = {}
    children: list[Node] = []
    for key, value in node.items():
        nested = _connection_nodes(value) if isinstance(value, dict) else []
        if nested or (isinstance(value, dict) and ("edges" in value or "nodes" in value)):
            children.extend(nested)
        else:
            line[key] = value
    if parent_id is not None:
        line["__parentId"] = parent_id
    out.append(line)
    for child in children:
        _flatten(child, str(node.get("id")), out)
