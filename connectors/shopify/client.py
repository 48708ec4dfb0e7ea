"""The async Shopify Admin GraphQL client tillsync uses.

One ``execute()`` does pacing and retries for every call:

* paces from ``extensions.cost.throttleStatus``: it remembers how many points the bucket had
  and its restore rate, and before a call whose expected cost exceeds what should be available
  now, sleeps the deficit / restore rate;
* ``THROTTLED`` (HTTP 200, ``errors[].extensions.code``) waits for the bucket and retries,
  without using up an attempt until ``max_throttled_seconds`` have passed;
* 429 honours ``Retry-After``; 5xx and transport errors back off exponentially with jitter;
* after ``max_attempts`` it raises ``ShopifyError`` with a ``reason``.

Typed helpers on top return small dataclasses; callers never touch raw GraphQL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from tillsync.connectors.shopify import documents as docs
from tillsync.connectors.shopify.ids import gid_tail
from tillsync.schemas.settings import Settings

log = logging.getLogger(__name__)

JSON = dict[str, Any]
# on_call(platform, outcome, seconds): outcome is ok, throttled, rate_limited, server_error,
# transport_error, graphql_error or unauthorized
CallHook = Callable[[str, str, float], None]
# bulkOperationRunQuery's userErrors code while another bulk query of the app runs
BULK_IN_PROGRESS = "OPERATION_IN_PROGRESS"


class ShopifyError(Exception):
    """A call that failed for good. ``reason`` is a short machine-readable cause."""

    def __init__(
        self, reason: str, message: str, *, errors: list[JSON] | None = None, attempts: int = 0
    ) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.errors = errors or []
        self.attempts = attempts


@dataclass
class ClientStats:
    calls: int = 0
    errors: int = 0
    throttled_retries: int = 0
    rate_limited_retries: int = 0
    server_error_retries: int = 0
    transport_error_retries: int = 0
    throttle_wait_seconds: float = 0.0
    cost_spent: float = 0.0


@dataclass
class _Bucket:
    """What the last response said about the cost bucket, and when."""

    maximum: float | None = None
    available: float | None = None
    restore_rate: float | None = None
    at: float = 0.0

    def expected_available(self, now: float) -> float | None:
        if self.available is None or self.restore_rate is None:
            return None
        refill = (now - self.at) * self.restore_rate
        cap = self.maximum if self.maximum is not None else float("inf")
        return min(cap, self.available + refill)


@dataclass(frozen=True)
class LocationInfo:
    id: str
    name: str
    is_active: bool
    fulfills_online_orders: bool


@dataclass(frozen=True)
class VariantRef:
    sku: str
    variant_id: str
    inventory_item_id: str
    product_id: str | None = None


@dataclass(frozen=True)
class InventoryLevelInfo:
    inventory_item_id: str
    location_id: str
    quantities: dict[str, int]
    updated_at: str | None = None


@dataclass(frozen=True)
class SnapshotLevel:
    """One inventory level of a bulk export, with numeric ids."""

    sku: str
    inventory_item_id: int
    location_id: int
    quantities: dict[str, int]


@dataclass(frozen=True)
class SetQuantityEntry:
    inventory_item_id: str
    location_id: str
    quantity: int
    change_from: int | None  # None = skip the compare-and-swap check


@dataclass(frozen=True)
class UserErrorInfo:
    message: str
    code: str | None = None
    field: tuple[str, ...] = ()

    @property
    def entry_index(self) -> int | None:
        """Index of the input entry the error names (``input.quantities.<i>...``)."""
        for part in self.field[2:3]:
            if part.isdigit():
                return int(part)
        return None


@dataclass(frozen=True)
class EntryResult:
    entry: SetQuantityEntry
    ok: bool
    quantity_after: int | None = None
    error: UserErrorInfo | None = None


@dataclass(frozen=True)
class SetQuantitiesResult:
    entries: list[EntryResult]
    user_errors: list[UserErrorInfo]
    group_id: str | None
    # the adjustment group's createdAt: when Shopify applied the write, by the clock (and to
    # the second) that stamps its webhooks' updated_at
    created_at: float | None = None

    @property
    def ok(self) -> bool:
        return not self.user_errors

    @property
    def stale(self) -> list[EntryResult]:
        return [e for e in self.entries if e.error and e.error.code == "CHANGE_FROM_QUANTITY_STALE"]


@dataclass(frozen=True)
class AdjustChange:
    inventory_item_id: str
    location_id: str
    delta: int
    ledger_document_uri: str | None = None


@dataclass(frozen=True)
class MutationResult:
    ok: bool
    user_errors: list[UserErrorInfo]
    data: JSON = field(default_factory=dict)


def _user_errors(raw: list[JSON] | None) -> list[UserErrorInfo]:
    return [
        UserErrorInfo(
            message=str(e.get("message", "")),
            code=e.get("code"),
            field=tuple(str(f) for f in (e.get("field") or [])),
        )
        for e in raw or []
    ]


class ShopifyClient:
    """Async client over ``httpx.AsyncClient``; use as ``async with ShopifyClient(s) as c``."""

    def __init__(
        self,
        settings: Settings,
        *,
        max_attempts: int = 8,
        timeout: float = 30.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        max_retry_after: float = 60.0,
        max_throttled_seconds: float = 300.0,
        on_call: CallHook | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Any] | None = None,
        monotonic: Callable[[], float] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        settings.require("shopify_access_token")
        assert settings.shopify_access_token is not None
        self.url = settings.shopify_graphql_url
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_retry_after = max_retry_after
        self.max_throttled_seconds = max_throttled_seconds
        self.on_call = on_call
        self.stats = ClientStats()
        self._bucket = _Bucket()
        # injectable so tests can drive pacing with the simulator's manual clock
        self._sleep = sleep or asyncio.sleep
        self._now = monotonic or time.monotonic
        self._rng = rng or random.Random()
        self._expected_cost: dict[str, float] = {}
        self._http = httpx.AsyncClient(
            timeout=timeout,
            transport=transport,
            headers={
                "X-Shopify-Access-Token": settings.shopify_access_token.get_secret_value(),
                "Content-Type": "application/json",
                "User-Agent": "tillsync",
            },
        )

    async def __aenter__(self) -> ShopifyClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def throttle_status(self) -> dict[str, float | None]:
        b = self._bucket
        return {
            "maximumAvailable": b.maximum,
            "currentlyAvailable": b.available,
            "restoreRate": b.restore_rate,
        }

    # -- the one request path ---------------------------------------------------------------

    async def execute(self, document: str, variables: JSON | None = None) -> JSON:
        """Run a document; returns ``data``. Raises ShopifyError when it cannot succeed."""
        body = json.dumps({"query": document, "variables": variables or {}}).encode()
        last_reason, last_message = "unknown", ""
        began = self._now()
        attempt = 0
        while attempt < self.max_attempts:
            attempt += 1
            await self._pace(document)
            started = time.monotonic()
            try:
                resp = await self._http.post(self.url, content=body)
            except httpx.TransportError as exc:
                self._record("transport_error", started)
                last_reason, last_message = "transport_error", f"{type(exc).__name__}: {exc}"
                self.stats.transport_error_retries += 1
                await self._backoff(attempt)
                continue
            status = resp.status_code
            if status == 429:
                self._record("rate_limited", started)
                self.stats.rate_limited_retries += 1
                last_reason, last_message = "rate_limited", "HTTP 429"
                await self._wait(self._retry_after(resp, attempt))
                continue
            if status >= 500:
                self._record("server_error", started)
                self.stats.server_error_retries += 1
                last_reason, last_message = "server_error", f"HTTP {status}"
                await self._backoff(attempt)
                continue
            if status in (401, 403):
                self._record("unauthorized", started)
                raise ShopifyError(
                    "unauthorized", f"HTTP {status}: check the access token", attempts=attempt
                )
            if status != 200:
                self._record("http_error", started)
                raise ShopifyError(
                    "http_error", f"HTTP {status}: {resp.text[:200]}", attempts=attempt
                )
            payload = resp.json()
            cost = self._observe_cost(document, payload)
            errors: list[JSON] = payload.get("errors") or []
            codes = {(e.get("extensions") or {}).get("code") for e in errors if isinstance(e, dict)}
            if "THROTTLED" in codes:
                self._record("throttled", started)
                self.stats.throttled_retries += 1
                last_reason, last_message = "throttled", "THROTTLED"
                await self._wait(self._throttle_wait(cost, attempt))
                if self._now() - began < self.max_throttled_seconds:
                    # THROTTLED is Shopify pacing us, not a failure: many callers sharing one
                    # bucket can each be turned away several times in a burst. Only a bucket
                    # that never refills for this long gives up.
                    attempt -= 1
                continue
            if errors:
                self._record("graphql_error", started)
                msg = "; ".join(str(e.get("message")) for e in errors if isinstance(e, dict))
                raise ShopifyError(
                    "graphql_error", msg or str(errors), errors=errors, attempts=attempt
                )
            self._record("ok", started)
            data = payload.get("data")
            return data if isinstance(data, dict) else {}
        raise ShopifyError(
            last_reason,
            f"gave up after {attempt} attempts ({last_message})",
            attempts=attempt,
        )

    def _record(self, outcome: str, started: float) -> None:
        self.stats.calls += 1
        if outcome != "ok":
            self.stats.errors += 1
        if self.on_call is not None:
            self.on_call("shopify", outcome, time.monotonic() - started)

    def _observe_cost(self, document: str, payload: JSON) -> JSON:
        cost = ((payload.get("extensions") or {}).get("cost")) or {}
        ts = cost.get("throttleStatus") or {}
        if ts:
            self._bucket = _Bucket(
                maximum=float(ts.get("maximumAvailable") or 0) or None,
                available=float(ts.get("currentlyAvailable") or 0),
                restore_rate=float(ts.get("restoreRate") or 0) or None,
                at=self._now(),
            )
        requested = cost.get("requestedQueryCost")
        if isinstance(requested, int | float):
            self._expected_cost[document] = float(requested)
            if cost.get("actualQueryCost") is not None:
                self.stats.cost_spent += float(cost["actualQueryCost"])
        return dict(cost)

    async def _pace(self, document: str) -> None:
        expected = self._expected_cost.get(document)
        if expected is None:
            return
        now = self._now()
        available = self._bucket.expected_available(now)
        rate = self._bucket.restore_rate
        if available is None or not rate:
            return
        if expected > available:
            await self._wait((expected - available) / rate)
            now, available = self._now(), expected
        # Reserve the points locally until the answer brings the server's figure: concurrent
        # callers sharing this client then pace against each other instead of all seeing the
        # same stale "available" and bursting into THROTTLED together.
        self._bucket.available, self._bucket.at = max(0.0, available - expected), now

    def _throttle_wait(self, cost: JSON, attempt: int) -> float:
        ts = cost.get("throttleStatus") or {}
        requested = cost.get("requestedQueryCost")
        rate = ts.get("restoreRate")
        available = ts.get("currentlyAvailable")
        if isinstance(requested, int | float) and rate and available is not None:
            return max(0.0, (float(requested) - float(available)) / float(rate)) + 0.05
        return min(self.backoff_cap, 1.0 * attempt)

    def _retry_after(self, resp: httpx.Response, attempt: int) -> float:
        header = resp.headers.get("Retry-After")
        try:
            return min(self.max_retry_after, max(0.0, float(header))) if header else 1.0
        except ValueError:
            return min(self.backoff_cap, float(attempt))

    async def _backoff(self, attempt: int) -> None:
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        # full jitter: spreads retries of many workers after a shared outage
        await self._wait(self._rng.uniform(ceiling / 2, ceiling), throttle=False)

    async def _wait(self, seconds: float, *, throttle: bool = True) -> None:
        if seconds <= 0:
            return
        if throttle:
            self.stats.throttle_wait_seconds += seconds
        await self._sleep(seconds)

    # -- typed helpers ----------------------------------------------------------------------

    async def locations(self) -> list[LocationInfo]:
        out: list[LocationInfo] = []
        after: str | None = None
        while True:
            data = await self.execute(docs.SHOP_AND_LOCATIONS, {"first": 100, "after": after})
            page = data["locations"]
            out.extend(
                LocationInfo(n["id"], n["name"], n["isActive"], n["fulfillsOnlineOrders"])
                for n in page["nodes"]
            )
            if not page["pageInfo"]["hasNextPage"]:
                return out
            after = page["pageInfo"]["endCursor"]

    async def variants_by_skus(self, skus: Sequence[str], batch: int = 50) -> dict[str, VariantRef]:
        """SKU -> variant and inventory item; SKUs Shopify does not know are left out."""
        found: dict[str, VariantRef] = {}
        wanted = list(dict.fromkeys(s for s in skus if s))
        for i in range(0, len(wanted), batch):
            chunk = wanted[i : i + batch]
            query = " OR ".join(f'sku:"{s}"' for s in chunk)
            after: str | None = None
            while True:
                data = await self.execute(
                    docs.VARIANTS_BY_SKU, {"query": query, "first": batch, "after": after}
                )
                page = data["productVariants"]
                for n in page["nodes"]:
                    if n["sku"] in chunk:
                        found[n["sku"]] = VariantRef(
                            n["sku"],
                            n["id"],
                            n["inventoryItem"]["id"],
                            (n.get("product") or {}).get("id"),
                        )
                if not page["pageInfo"]["hasNextPage"]:
                    break
                after = page["pageInfo"]["endCursor"]
        return found

    async def inventory_levels(
        self, inventory_item_id: str, names: Sequence[str] = docs.QUANTITY_NAMES
    ) -> list[InventoryLevelInfo]:
        data = await self.execute(
            docs.INVENTORY_ITEM_LEVELS,
            {"id": inventory_item_id, "first": 50, "names": list(names)},
        )
        item = data.get("inventoryItem")
        if not item:
            return []
        return [
            InventoryLevelInfo(
                inventory_item_id=inventory_item_id,
                location_id=n["location"]["id"],
                quantities={q["name"]: q["quantity"] for q in n["quantities"]},
                updated_at=n.get("updatedAt"),
            )
            for n in item["inventoryLevels"]["nodes"]
        ]

    async def set_quantities(
        self,
        entries: Sequence[SetQuantityEntry | tuple[str, str, int, int | None]],
        *,
        reason: str,
        reference_uri: str | None,
        idempotency_key: str,
        name: str = "available",
    ) -> SetQuantitiesResult:
        """inventorySetQuantities under the 2026-04 rules (``changeFromQuantity`` on every
        entry, ``@idempotent``). Retry a timed-out call with the same key."""
        items = [e if isinstance(e, SetQuantityEntry) else SetQuantityEntry(*e) for e in entries]
        if not 0 < len(items) <= 250:
            raise ValueError("1 to 250 entries per call")
        variables = {
            "key": idempotency_key,
            "input": {
                "name": name,
                "reason": reason,
                "referenceDocumentUri": reference_uri,
                "quantities": [
                    {
                        "inventoryItemId": e.inventory_item_id,
                        "locationId": e.location_id,
                        "quantity": e.quantity,
                        "changeFromQuantity": e.change_from,
                    }
                    for e in items
                ],
            },
        }
        payload = (await self.execute(docs.INVENTORY_SET_QUANTITIES, variables))[
            "inventorySetQuantities"
        ]
        errors = _user_errors(payload.get("userErrors"))
        group = payload.get("inventoryAdjustmentGroup")
        after: dict[tuple[str, str], int] = {}
        for ch in (group or {}).get("changes") or []:
            if ch.get("name") == name:
                after[(ch["item"]["id"], ch["location"]["id"])] = ch["quantityAfterChange"]
        by_index = {e.entry_index: e for e in errors if e.entry_index is not None}
        general = [e for e in errors if e.entry_index is None]
        results = []
        for i, entry in enumerate(items):
            err = by_index.get(i) or (general[0] if general else None)
            results.append(
                EntryResult(
                    entry=entry,
                    ok=err is None and not errors,
                    quantity_after=after.get((entry.inventory_item_id, entry.location_id)),
                    error=err,
                )
            )
        created = (group or {}).get("createdAt")
        return SetQuantitiesResult(
            results,
            errors,
            (group or {}).get("id"),
            datetime.fromisoformat(created).timestamp() if created else None,
        )

    async def adjust_quantities(
        self,
        changes: Sequence[AdjustChange],
        *,
        reason: str,
        reference_uri: str | None,
        idempotency_key: str,
        name: str = "available",
    ) -> MutationResult:
        variables = {
            "key": idempotency_key,
            "input": {
                "name": name,
                "reason": reason,
                "referenceDocumentUri": reference_uri,
                "changes": [
                    {
                        "inventoryItemId": c.inventory_item_id,
                        "locationId": c.location_id,
                        "delta": c.delta,
                        "ledgerDocumentUri": c.ledger_document_uri,
                    }
                    for c in changes
                ],
            },
        }
        payload = (await self.execute(docs.INVENTORY_ADJUST_QUANTITIES, variables))[
            "inventoryAdjustQuantities"
        ]
        errors = _user_errors(payload.get("userErrors"))
        return MutationResult(not errors, errors, payload)

    async def activate(
        self, inventory_item_id: str, location_id: str, available: int | None = None
    ) -> MutationResult:
        payload = (
            await self.execute(
                docs.INVENTORY_ACTIVATE,
                {
                    "inventoryItemId": inventory_item_id,
                    "locationId": location_id,
                    "available": available,
                },
            )
        )["inventoryActivate"]
        errors = _user_errors(payload.get("userErrors"))
        return MutationResult(not errors, errors, payload)

    async def bulk_inventory_export(
        self, *, poll_interval: float = 1.0, timeout: float = 3600.0
    ) -> list[JSON]:
        """Snapshot every inventory level via a bulk query; returns the parsed JSONL lines
        (items, and levels with ``__parentId``)."""
        deadline = time.monotonic() + timeout
        while True:
            started = await self.execute(
                docs.BULK_OPERATION_RUN_QUERY, {"query": docs.BULK_INVENTORY_EXPORT_QUERY}
            )
            run = started["bulkOperationRunQuery"]
            errors = _user_errors(run.get("userErrors"))
            if not errors:
                break
            busy = all(e.code == BULK_IN_PROGRESS for e in errors)
            if not busy or time.monotonic() > deadline:
                raise ShopifyError("bulk_rejected", "; ".join(e.message for e in errors))
            # Shopify runs one bulk query per app and shop: another worker starting, or a
            # reconcile, has one running; ours starts when it is done
            await self._sleep(poll_interval)
        op_id = run["bulkOperation"]["id"]
        while True:
            op = (await self.execute(docs.BULK_OPERATION_BY_ID, {"id": op_id}))["node"]
            if op is None:
                raise ShopifyError("bulk_failed", f"bulk operation {op_id} is gone")
            if op["status"] == "COMPLETED":
                break
            if op["status"] in ("FAILED", "CANCELED", "EXPIRED"):
                raise ShopifyError("bulk_failed", f"{op['status']} {op.get('errorCode')}")
            if time.monotonic() > deadline:
                raise ShopifyError("bulk_timeout", f"bulk operation {op_id} still running")
            await self._sleep(poll_interval)
        if not op.get("url"):
            return []  # Shopify gives no file when nothing matched
        async with httpx.AsyncClient(timeout=300.0) as plain:  # signed URL: no token
            resp = await plain.get(op["url"])
            resp.raise_for_status()
        return [json.loads(line) for line in resp.text.splitlines() if line.strip()]

    async def inventory_snapshot(self) -> tuple[dict[int, str], list[SnapshotLevel]]:
        """Every inventory item's SKU and every level, from one bulk export: the JSONL puts
        items first and their levels after them, linked by ``__parentId``."""
        skus: dict[int, str] = {}
        levels: list[SnapshotLevel] = []
        for line in await self.bulk_inventory_export():
            if "__parentId" not in line:
                if line.get("sku"):
                    skus[gid_tail(line["id"])] = line["sku"]
                continue
            item = gid_tail(line["__parentId"])
            if item in skus:
                levels.append(
                    SnapshotLevel(
                        sku=skus[item],
                        inventory_item_id=item,
                        location_id=gid_tail(line["location"]["id"]),
                        quantities={q["name"]: q["quantity"] for q in line.get("quantities", [])},
                    )
                )
        return skus, levels

    async def order(self, order_id: str) -> JSON | None:
        data = await self.execute(docs.ORDER_WITH_FULFILLMENT_ORDERS, {"id": order_id})
        order = data.get("order")
        return order if isinstance(order, dict) else None

    async def prepared_for_pickup(self, fulfillment_order_ids: Sequence[str]) -> MutationResult:
        payload = (
            await self.execute(
                docs.FULFILLMENT_ORDER_PREPARED_FOR_PICKUP,
                {
                    "input": {
                        "lineItemsByFulfillmentOrder": [
                            {"fulfillmentOrderId": i} for i in fulfillment_order_ids
                        ]
                    }
                },
            )
        )["fulfillmentOrderLineItemsPreparedForPickup"]
        errors = _user_errors(payload.get("userErrors"))
        return MutationResult(not errors, errors, payload)

    async def create_fulfillment(
        self,
        fulfillment_order_id: str,
        lines: Sequence[tuple[str, int]] | None = None,
        *,
        notify_customer: bool = False,
    ) -> MutationResult:
        group: JSON = {"fulfillmentOrderId": fulfillment_order_id}
        if lines is not None:
            group["fulfillmentOrderLineItems"] = [{"id": i, "quantity": q} for i, q in lines]
        payload = (
            await self.execute(
                docs.FULFILLMENT_CREATE,
                {
                    "fulfillment": {
                        "lineItemsByFulfillmentOrder": [group],
                        "notifyCustomer": notify_customer,
                    }
                },
            )
        )["fulfillmentCreate"]
        errors = _user_errors(payload.get("userErrors"))
        return MutationResult(not errors, errors, payload)

    async def create_refund(
        self,
        order_id: str,
        lines: Sequence[tuple[str, int, str, str | None]],
        *,
        idempotency_key: str,
        note: str | None = None,
        notify: bool = False,
    ) -> MutationResult:
        """lines: (line item id, quantity, restock type RETURN/CANCEL/NO_RESTOCK, location)."""
        payload = (
            await self.execute(
                docs.REFUND_CREATE,
                {
                    "key": idempotency_key,
                    "input": {
                        "orderId": order_id,
                        "note": note,
                        "notify": notify,
                        "refundLineItems": [
                            {"lineItemId": li, "quantity": q, "restockType": rt, "locationId": loc}
                            for li, q, rt, loc in lines
                        ],
                    },
                },
            )
        )["refundCreate"]
        errors = _user_errors(payload.get("userErrors"))
        return MutationResult(not errors, errors, payload)

    async def customers_by_email(self, email: str) -> list[JSON]:
        data = await self.execute(docs.CUSTOMERS_BY_EMAIL, {"query": f'email:"{email}"'})
        return list(data["customers"]["nodes"])

    async def create_customer(self, customer: JSON) -> MutationResult:
        payload = (await self.execute(docs.CUSTOMER_CREATE, {"input": customer}))["customerCreate"]
        errors = _user_errors(payload.get("userErrors"))
        return MutationResult(not errors, errors, payload)

    async def update_customer(self, customer: JSON) -> MutationResult:
        payload = (await self.execute(docs.CUSTOMER_UPDATE, {"input": customer}))["customerUpdate"]
        errors = _user_errors(payload.get("userErrors"))
        return MutationResult(not errors, errors, payload)

    async def add_tags(self, resource_id: str, tags: Sequence[str]) -> MutationResult:
        payload = (await self.execute(docs.TAGS_ADD, {"id": resource_id, "tags": list(tags)}))[
            "tagsAdd"
        ]
        errors = _user_errors(payload.get("userErrors"))
        return MutationResult(not errors, errors, payload)

    async def set_metafields(self, metafields: Sequence[JSON]) -> MutationResult:
        payload = (await self.execute(docs.METAFIELDS_SET, {"metafields": list(metafields)}))[
            "metafieldsSet"
        ]
        errors = _user_errors(payload.get("userErrors"))
        return MutationResult(not errors, errors, payload)

    async def subscribe_webhook(self, topic: str, callback_url: str) -> MutationResult:
        """topic as the GraphQL enum, e.g. ORDERS_CREATE."""
        payload = (
            await self.execute(
                docs.WEBHOOK_SUBSCRIPTION_CREATE,
                {
                    "topic": topic,
                    "webhookSubscription": {"callbackUrl": callback_url, "format": "JSON"},
                },
            )
        )["webhookSubscriptionCreate"]
        errors = _user_errors(payload.get("userErrors"))
        return MutationResult(not errors, errors, payload)
