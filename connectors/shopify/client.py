"""The async Shopify Admin GraphQL client tillsync uses.

One ``execute()`` does pacing and retries for every call:

* paces from ``extensions.cost.throttleStatus``: it remembers how many points the bucket had
  and its restore rate, and before a call whose expected cost exceeds what should be available
  now, sleeps the deficit / restore rate;
* ``THROTTLED`` (HTTP 200, ``errors[].extensions.code``) waits for the bucket and asks again,
  without using up an attempt until ``max_throttled_seconds`` have passed;
* everything else follows the shared ``RetryPolicy`` (``connectors/retry.py``): 429 honours
  ``Retry-After``, 5xx and transport errors back off with jitter, and after ``attempts`` tries
  it raises ``ShopifyError`` with the last outcome as its ``reason``.

Typed helpers on top return small dataclasses; callers never touch raw GraphQL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from tillsync.connectors.outcomes import CallHook, CallStats, Outcome, WaitReason, outcome_of
from tillsync.connectors.retry import GaveUp, Retry, RetryPolicy, call_with_retries
from tillsync.connectors.shopify import documents as docs
from tillsync.connectors.shopify.budget import MAX_WAIT, CostBudget, Priority
from tillsync.connectors.shopify.cancel_lines import cancel_input, read_order_suggested_refund
from tillsync.connectors.shopify.fulfilment_state import (
    FulfilmentLine,
    FulfilmentStateReader,
    OrderFulfilmentState,
)
from tillsync.connectors.shopify.ids import gid, gid_tail
from tillsync.connectors.shopify.payment import Authorisation, OrderPayment, read_payment
from tillsync.connectors.shopify.pickup import PickupDetails, Tracking, read_pickup
from tillsync.connectors.shopify.returns import (
    CustomerOrders,
    DisposalIn,
    OrderReturns,
    ReturnLineIn,
    ShopifyReturn,
    SuggestedRefund,
    SuggestedTransaction,
    dispose_input,
    parse_return,
    read_order_returns,
    read_orders_by_email,
    read_suggested_refund,
    refund_input,
    return_input,
)
from tillsync.connectors.shopify.returns_documents import (
    RETURN_APPROVE_REQUEST,
    RETURN_CLOSE,
    RETURN_CREATE,
    RETURN_REFUND,
    REVERSE_FULFILLMENT_ORDER_DISPOSE,
)
from tillsync.connectors.shopify.stock_documents import LEVEL_AVAILABLE
from tillsync.schemas.settings import Settings

log = logging.getLogger(__name__)

PLATFORM = "shopify"
JSON = dict[str, Any]
# bulkOperationRunQuery's userErrors code while another bulk query of the app runs
BULK_IN_PROGRESS = "OPERATION_IN_PROGRESS"
# added to a THROTTLED wait: the bucket's figure is a snapshot, and it refills continuously
THROTTLE_MARGIN = 0.05


class ShopifyError(Exception):
    """A call that failed for good. ``reason`` is a short machine-readable cause: an
    ``Outcome`` for a failed call, or a helper's own (``bulk_failed``, ...)."""

    def __init__(
        self, reason: str, message: str, *, errors: list[JSON] | None = None, attempts: int = 0
    ) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.errors = errors or []
        self.attempts = attempts


@dataclass(frozen=True)
class ShopifyConfig:
    graphql_url: str
    access_token: str = field(repr=False)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # THROTTLED is Shopify pacing us, not a failure: many callers sharing one bucket can each be
    # turned away several times in a burst. Only a bucket that never refills for this long
    # makes each further THROTTLED use up an attempt.
    max_throttled_seconds: float = 300.0
    timeout: float = 30.0
    budget_max_wait: float = MAX_WAIT  # see CostBudget

    @classmethod
    def from_settings(cls, settings: Settings) -> ShopifyConfig:
        settings.require("shopify_access_token")
        assert settings.shopify_access_token is not None
        return cls(
            graphql_url=settings.shopify_graphql_url,
            access_token=settings.shopify_access_token.get_secret_value(),
            budget_max_wait=settings.shopify_budget_max_wait,
        )


@dataclass(frozen=True)
class SnapshotLevel:
    """One inventory level of a bulk export, with numeric ids."""

    sku: str
    inventory_item_id: int
    location_id: int
    quantities: dict[str, int]


@dataclass(frozen=True)
class InventorySnapshot:
    """Every inventory item's SKU and every level, from one bulk export."""

    skus: dict[int, str]
    levels: list[SnapshotLevel]
    # Shopify's createdAt of the bulk operation (epoch seconds, to the second): every level was
    # read at or after it. None when Shopify did not say.
    started_at: float | None = None


@dataclass(frozen=True)
class BulkExport:
    lines: list[JSON]
    started_at: float | None = None


def _epoch(stamp: str | None) -> float | None:
    return datetime.fromisoformat(stamp).timestamp() if stamp else None


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


def _user_errors(raw: list[JSON] | None) -> list[UserErrorInfo]:
    return [
        UserErrorInfo(
            message=str(e.get("message", "")),
            code=e.get("code"),
            field=tuple(str(f) for f in (e.get("field") or [])),
        )
        for e in raw or []
    ]


# on_cost(operation, requested, actual): the points one answered call asked for and spent, so
# that a deployment can see which of its documents spends the shop's bucket
CostHook = Callable[[str, float, float], None]
_OPERATION = re.compile(r"^\s*(?:query|mutation)\s+(\w+)", re.MULTILINE)


def operation_name(document: str) -> str:
    """The document's operation name (``OrderHolds``), or ``anonymous``."""
    found = _OPERATION.search(document)
    return found.group(1) if found else "anonymous"


def _throttled(errors: list[JSON]) -> bool:
    return any(
        isinstance(e, dict) and (e.get("extensions") or {}).get("code") == "THROTTLED"
        for e in errors
    )


class ShopifyClient:
    """Async client over ``httpx.AsyncClient``; use as ``async with ShopifyClient(config)``."""

    def __init__(
        self,
        config: ShopifyConfig,
        *,
        on_call: CallHook | None = None,
        on_cost: CostHook | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        monotonic: Callable[[], float] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.on_call = on_call
        self.on_cost = on_cost
        self._operations: dict[str, str] = {}
        self.stats = CallStats()
        # injectable so tests can drive pacing with the simulator's manual clock
        self._sleep = sleep or asyncio.sleep
        self._now = monotonic or time.monotonic
        self._rng = rng or random.Random()
        self._expected_cost: dict[str, float] = {}
        self._prepaid: dict[str, int] = {}  # document -> calls whose points were waited for
        # one bucket per shop, shared by every caller of this client by priority
        self.budget = CostBudget(
            clock=self._now, sleep=self._sleep, max_wait=config.budget_max_wait
        )
        self._http = httpx.AsyncClient(
            timeout=config.timeout,
            transport=transport,
            headers={
                "X-Shopify-Access-Token": config.access_token,
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

    # -- the one request path ---------------------------------------------------------------

    async def execute(
        self,
        document: str,
        variables: JSON | None = None,
        *,
        priority: Priority = Priority.BACKGROUND,
    ) -> JSON:
        """Run a document; returns ``data``. Raises ShopifyError when it cannot succeed.

        ``priority`` says who goes first when the cost bucket cannot pay for every caller at
        once (``CostBudget``): an order's state before stock writes before read-backs."""
        body = json.dumps({"query": document, "variables": variables or {}}).encode()
        began = self._now()

        async def attempt(n: int) -> JSON:
            return await self._try(document, body, began, n, priority)

        try:
            return await call_with_retries(
                self.config.retry,
                attempt,
                sleep=self._sleep,
                clock=self._now,
                rng=self._rng,
                on_retry=self.stats.retried,
            )
        except GaveUp as gave_up:
            raise ShopifyError(
                gave_up.last.outcome, str(gave_up), attempts=gave_up.attempts
            ) from gave_up

    async def _try(
        self, document: str, body: bytes, began: float, attempt: int, priority: Priority
    ) -> JSON:
        """One attempt: THROTTLED answers are asked again here, costing no attempt while the
        call is inside ``max_throttled_seconds``."""
        while True:
            await self._pace(document, priority)
            started = time.monotonic()
            try:
                resp = await self._http.post(self.config.graphql_url, content=body)
            except httpx.TransportError as exc:
                self._record(Outcome.TRANSPORT_ERROR, started)
                raise Retry(Outcome.TRANSPORT_ERROR, f"{type(exc).__name__}: {exc}") from exc
            status = resp.status_code
            outcome = outcome_of(status)
            if outcome is Outcome.RATE_LIMITED:
                self._record(outcome, started)
                wait = self.config.retry.server_wait(
                    resp.headers.get("Retry-After"), attempt, self._rng
                )
                raise Retry(outcome, "HTTP 429", wait=wait)
            if outcome is Outcome.SERVER_ERROR:
                self._record(outcome, started)
                raise Retry(outcome, f"HTTP {status}")
            if outcome is Outcome.UNAUTHORIZED:
                self._record(outcome, started)
                raise ShopifyError(
                    outcome, f"HTTP {status}: check the access token", attempts=attempt
                )
            if status != 200:
                self._record(Outcome.CLIENT_ERROR, started)
                raise ShopifyError(
                    Outcome.CLIENT_ERROR, f"HTTP {status}: {resp.text[:200]}", attempts=attempt
                )
            payload = resp.json()
            cost = self._observe_cost(document, payload)
            errors: list[JSON] = payload.get("errors") or []
            if _throttled(errors):
                self._record(Outcome.THROTTLED, started)
                await self._wait(WaitReason.THROTTLED, self._throttle_wait(cost, attempt))
                if self._now() - began < self.config.max_throttled_seconds:
                    continue
                # already waited: the retry that uses up the attempt goes at once
                raise Retry(Outcome.THROTTLED, "THROTTLED", wait=0.0)
            if errors:
                self._record(Outcome.GRAPHQL_ERROR, started)
                msg = "; ".join(str(e.get("message")) for e in errors if isinstance(e, dict))
                raise ShopifyError(
                    Outcome.GRAPHQL_ERROR, msg or str(errors), errors=errors, attempts=attempt
                )
            self._record(Outcome.OK, started)
            data = payload.get("data")
            return data if isinstance(data, dict) else {}

    def _record(self, outcome: Outcome, started: float) -> None:
        self.stats.answered(outcome)
        if self.on_call is not None:
            self.on_call(PLATFORM, outcome, time.monotonic() - started)

    def _observe_cost(self, document: str, payload: JSON) -> JSON:
        cost = ((payload.get("extensions") or {}).get("cost")) or {}
        ts = cost.get("throttleStatus") or {}
        self.budget.observe(ts)
        requested = cost.get("requestedQueryCost")
        if isinstance(requested, int | float):
            self._expected_cost[document] = float(requested)
        actual = cost.get("actualQueryCost")
        if self.on_cost is not None and isinstance(requested, int | float):
            # a THROTTLED answer spent nothing: Shopify gives no actual cost then
            spent = float(actual) if isinstance(actual, int | float) else 0.0
            self.on_cost(self._operation(document), float(requested), spent)
        return dict(cost)

    def _operation(self, document: str) -> str:
        name = self._operations.get(document)
        if name is None:
            name = self._operations[document] = operation_name(document)
        return name

    async def prepay(self, document: str, priority: Priority) -> None:
        """Wait for the points of one call of ``document`` now, so that the caller decides what
        the call carries when its turn comes (the stock writes take every level that waited
        meanwhile into one call); that call then waits for nothing more."""
        await self._pace(document, priority)
        self._prepaid[document] = self._prepaid.get(document, 0) + 1

    async def _pace(self, document: str, priority: Priority) -> None:
        if self._prepaid.get(document):
            self._prepaid[document] -= 1
            return
        # what the document cost last time; a first call waits only for those queued before it
        waited = await self.budget.acquire(self._expected_cost.get(document), priority)
        if waited > 0:
            self.stats.wait(WaitReason.PACING, waited)

    def _throttle_wait(self, cost: JSON, attempt: int) -> float:
        ts = cost.get("throttleStatus") or {}
        requested = cost.get("requestedQueryCost")
        rate = ts.get("restoreRate")
        available = ts.get("currentlyAvailable")
        if isinstance(requested, int | float) and rate and available is not None:
            deficit = max(0.0, (float(requested) - float(available)) / float(rate))
            return deficit + THROTTLE_MARGIN
        return self.config.retry.backoff(attempt, self._rng)

    async def _wait(self, reason: WaitReason, seconds: float) -> None:
        if seconds <= 0:
            return
        self.stats.wait(reason, seconds)
        await self._sleep(seconds)

    async def _mutate(
        self, document: str, variables: JSON, root: str, priority: Priority = Priority.BACKGROUND
    ) -> tuple[JSON, list[UserErrorInfo]]:
        """Run a mutation: its payload (``data[root]``) and the userErrors in it. What a user
        error means (a stale entry, a busy bulk query) is the caller's to decide."""
        payload = (await self.execute(document, variables, priority=priority))[root]
        return payload, _user_errors(payload.get("userErrors"))

    # -- typed helpers ----------------------------------------------------------------------

    async def set_quantities_turn(self) -> None:
        """Wait for the points of the next ``set_quantities`` (see ``prepay``)."""
        await self.prepay(docs.INVENTORY_SET_QUANTITIES, Priority.STOCK_WRITE)

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
        payload, errors = await self._mutate(
            docs.INVENTORY_SET_QUANTITIES,
            variables,
            "inventorySetQuantities",
            priority=Priority.STOCK_WRITE,
        )
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
            _epoch(created),
        )

    async def bulk_inventory_export(
        self, *, poll_interval: float = 1.0, timeout: float = 3600.0
    ) -> BulkExport:
        """Snapshot every inventory level via a bulk query: the parsed JSONL lines (items, and
        levels with ``__parentId``) and the operation's createdAt."""
        deadline = time.monotonic() + timeout
        while True:
            run, errors = await self._mutate(
                docs.BULK_OPERATION_RUN_QUERY,
                {"query": docs.BULK_INVENTORY_EXPORT_QUERY},
                "bulkOperationRunQuery",
            )
            if not errors:
                break
            busy = all(e.code == BULK_IN_PROGRESS for e in errors)
            if not busy or time.monotonic() > deadline:
                raise ShopifyError("bulk_rejected", "; ".join(e.message for e in errors))
            # Shopify runs one bulk query per app and shop: another worker starting, or a
            # reconcile, has one running; ours starts when it is done
            await self._sleep(poll_interval)
        op_id = run["bulkOperation"]["id"]
        started_at = _epoch(run["bulkOperation"].get("createdAt"))
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
            return BulkExport([], started_at)  # Shopify gives no file when nothing matched
        async with httpx.AsyncClient(timeout=300.0) as plain:  # signed URL: no token
            resp = await plain.get(op["url"])
            resp.raise_for_status()
        lines = [json.loads(line) for line in resp.text.splitlines() if line.strip()]
        return BulkExport(lines, started_at)

    async def inventory_snapshot(self) -> InventorySnapshot:
        """Every inventory item's SKU and every level, from one bulk export: the JSONL puts
        items first and their levels after them, linked by ``__parentId``."""
        skus: dict[int, str] = {}
        levels: list[SnapshotLevel] = []
        export = await self.bulk_inventory_export()
        for line in export.lines:
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
        return InventorySnapshot(skus, levels, export.started_at)

    async def order_fulfilment_state(
        self, order_id: int, known: Mapping[int, tuple[FulfilmentLine, ...]] | None = None
    ) -> OrderFulfilmentState | None:
        """Every fulfilment order and fulfilment of an order, every page of each; ``None``
        when Shopify has no such order. ``known``: the lines of fulfilments known already,
        not read again. Raises ShopifyError as ``execute`` does."""
        return await FulfilmentStateReader(self._order_state).read(order_id, known)

    async def order_of_fulfilment_order(self, fulfilment_order_id: int) -> int | None:
        """The order a fulfilment order belongs to; ``None`` when Shopify has no such one."""
        return await FulfilmentStateReader(self._order_state).order_of(fulfilment_order_id)

    async def available(self, item_id: int, location_id: int) -> int | None:
        """Shopify's `available` for one item at one location; None when it is not stocked
        there. Raises ShopifyError as ``execute`` does."""
        data = await self.execute(
            LEVEL_AVAILABLE,
            {"item": gid("InventoryItem", item_id), "location": gid("Location", location_id)},
            priority=Priority.READ_BACK,
        )
        level = (data.get("inventoryItem") or {}).get("inventoryLevel") or {}
        for q in level.get("quantities", []):
            if q["name"] == "available":
                return int(q["quantity"])
        return None

    async def pickup(self, fulfilment_order_id: int) -> PickupDetails | None:
        """A pickup fulfilment order with what its Sitoo order needs; ``None`` when Shopify
        has no such one. Raises ShopifyError as ``execute`` does."""
        return await read_pickup(self._order_state, fulfilment_order_id)

    async def prepared_for_pickup(self, fulfilment_order_id: int) -> list[UserErrorInfo]:
        """Mark a pickup fulfilment order ready (``fulfillmentOrderLineItemsPreparedForPickup``):
        Shopify emails the customer at every call, so the caller calls it once. Returns the
        userErrors (a fulfilment order no longer open, say)."""
        variables = {
            "input": {
                "lineItemsByFulfillmentOrder": [
                    {"fulfillmentOrderId": gid("FulfillmentOrder", fulfilment_order_id)}
                ]
            }
        }
        _, errors = await self._mutate(
            docs.FULFILLMENT_ORDER_PREPARED_FOR_PICKUP,
            variables,
            "fulfillmentOrderLineItemsPreparedForPickup",
            Priority.ORDER_STATE,
        )
        return errors

    async def fulfil(
        self,
        fulfilment_order_id: int,
        lines: Mapping[int, int],
        *,
        notify: bool = False,
        tracking: Tracking | None = None,
    ) -> tuple[int | None, list[UserErrorInfo]]:
        """Fulfil these units (fulfilment order line id -> quantity) of one fulfilment order
        (``fulfillmentCreate``), with the parcel's tracking if it was shipped: the new
        fulfilment's id, or None with the userErrors. Not idempotent in Shopify: the caller
        fulfils only what is still owed."""
        fulfillment: dict[str, Any] = {}
        if tracking is not None:
            info: dict[str, str] = {"number": tracking.number}
            if tracking.company:
                info["company"] = tracking.company
            fulfillment["trackingInfo"] = info
        variables = {
            "fulfillment": {
                **fulfillment,
                "notifyCustomer": notify,
                "lineItemsByFulfillmentOrder": [
                    {
                        "fulfillmentOrderId": gid("FulfillmentOrder", fulfilment_order_id),
                        "fulfillmentOrderLineItems": [
                            {"id": gid("FulfillmentOrderLineItem", line), "quantity": n}
                            for line, n in sorted(lines.items())
                        ],
                    }
                ],
            }
        }
        payload, errors = await self._mutate(
            docs.FULFILLMENT_CREATE, variables, "fulfillmentCreate", Priority.ORDER_STATE
        )
        made = payload.get("fulfillment") or {}
        return (gid_tail(made["id"]) if made.get("id") else None), errors

    async def payment(self, order_id: int) -> OrderPayment | None:
        """An order's fulfilment orders' states and its card authorisations, with what each
        still holds; ``None`` when Shopify has no such order."""
        return await read_payment(self._order_state, order_id)

    async def capture(
        self, order_id: int, authorisation: Authorisation
    ) -> tuple[int | None, list[UserErrorInfo]]:
        """Capture what ``authorisation`` still holds (``orderCapture``, the final capture):
        the capture's transaction id, or None with the userErrors. Not idempotent in Shopify:
        the caller captures only what its read says is left, and a repeat is refused."""
        variables = {
            "input": {
                "id": gid("Order", order_id),
                "parentTransactionId": gid("OrderTransaction", authorisation.transaction_id),
                "amount": str(authorisation.left),
                "currency": authorisation.currency or None,
                "finalCapture": True,
            }
        }
        payload, errors = await self._mutate(
            docs.ORDER_CAPTURE, variables, "orderCapture", Priority.ORDER_STATE
        )
        made = payload.get("transaction") or {}
        return (gid_tail(made["id"]) if made.get("id") else None), errors

    async def mark_as_paid(self, order_id: int) -> list[UserErrorInfo]:
        """Mark an order paid (``orderMarkAsPaid``): what its checkout left to pay was paid
        another way, at the till. Not idempotent in Shopify: a paid order is refused, so the
        caller reads the order first."""
        _, errors = await self._mutate(
            docs.ORDER_MARK_AS_PAID,
            {"input": {"id": gid("Order", order_id)}},
            "orderMarkAsPaid",
            Priority.ORDER_STATE,
        )
        return errors

    async def suggested_order_refund(
        self, order_id: int, lines: Mapping[int, int]
    ) -> SuggestedRefund | None:
        """What Shopify would pay back for ``lines`` (line item id -> units), and from which
        payments."""
        return await read_order_suggested_refund(self._order_state, order_id, lines)

    async def cancel_lines(
        self,
        order_id: int,
        lines: Mapping[int, int],
        location_id: int,
        transactions: Sequence[SuggestedTransaction],
        currency: str,
        *,
        note: str,
        idempotency_key: str,
    ) -> tuple[int | None, list[UserErrorInfo]]:
        """Refund units still open on the order with ``restockType: CANCEL`` at
        ``location_id`` (``refundCreate``), paying ``transactions`` back: the refund's id, or
        None with the userErrors."""
        payload, errors = await self._mutate(
            docs.REFUND_CREATE,
            {
                "key": idempotency_key,
                "input": cancel_input(order_id, lines, location_id, transactions, currency, note),
            },
            "refundCreate",
            Priority.ORDER_STATE,
        )
        refund = payload.get("refund") or {}
        return (gid_tail(refund["id"]) if refund.get("id") else None), errors

    async def cancel_order(
        self,
        order_id: int,
        *,
        reason: str,
        staff_note: str,
        refund: bool = True,
        restock: bool = True,
        notify: bool = True,
    ) -> list[UserErrorInfo]:
        """Cancel a whole order (``orderCancel``), refunding what was paid and restocking its
        units by default. Shopify refuses an order cancelled before, which makes a repeat
        harmless; the caller reads the order first."""
        variables = {
            "orderId": gid("Order", order_id),
            "refund": refund,
            "restock": restock,
            "reason": reason,
            "notifyCustomer": notify,
            "staffNote": staff_note,
        }
        payload = (await self.execute(docs.ORDER_CANCEL, variables, priority=Priority.ORDER_STATE))[
            "orderCancel"
        ]
        return _user_errors(payload.get("orderCancelUserErrors"))

    # -- store returns: the 2025-01 chain, one method per step (``returns.py``) ----------------

    async def order_returns(self, order_id: int) -> OrderReturns | None:
        """An order's fulfilment line items, returns and money; ``None`` when Shopify has no
        such order."""
        return await read_order_returns(self._order_state, order_id)

    async def orders_by_email(self, email: str) -> CustomerOrders:
        """The newest orders placed with ``email`` and the SKUs on them (a blind return's
        candidates)."""
        return await read_orders_by_email(self._order_state, email)

    async def create_return(
        self, order_id: int, lines: Sequence[ReturnLineIn]
    ) -> tuple[ShopifyReturn | None, list[UserErrorInfo]]:
        """Open a return of ``lines`` (``returnCreate``): the return made, or None with the
        userErrors. Not idempotent in Shopify: the caller reads the order's returns first and
        marks each line's note with its own key."""
        payload, errors = await self._mutate(
            RETURN_CREATE,
            {"returnInput": return_input(order_id, lines)},
            "returnCreate",
            Priority.ORDER_STATE,
        )
        made = payload.get("return")
        return (parse_return(made) if made else None), errors

    async def dispose(self, disposals: Sequence[DisposalIn]) -> list[UserErrorInfo]:
        """Restock returned units at a location, or not (``reverseFulfillmentOrderDispose``).
        Shopify refuses more than is left to dispose, which makes a repeat harmless."""
        _, errors = await self._mutate(
            REVERSE_FULFILLMENT_ORDER_DISPOSE,
            {"dispositionInputs": dispose_input(disposals)},
            "reverseFulfillmentOrderDispose",
            Priority.ORDER_STATE,
        )
        return errors

    async def suggested_refund(
        self, return_id: int, lines: Mapping[int, int]
    ) -> SuggestedRefund | None:
        return await read_suggested_refund(self._order_state, return_id, lines)

    async def refund_return(
        self,
        return_id: int,
        lines: Mapping[int, int],
        transactions: Sequence[SuggestedTransaction],
        currency: str,
    ) -> tuple[int | None, list[UserErrorInfo]]:
        """Refund a return's lines (``returnRefund``), with money only from ``transactions``.
        Shopify refuses a line refunded already, which makes a repeat harmless."""
        payload, errors = await self._mutate(
            RETURN_REFUND,
            {"returnRefundInput": refund_input(return_id, lines, transactions, currency)},
            "returnRefund",
            Priority.ORDER_STATE,
        )
        made = payload.get("refund") or {}
        return (gid_tail(made["id"]) if made.get("id") else None), errors

    async def approve_return(
        self, return_id: int
    ) -> tuple[ShopifyReturn | None, list[UserErrorInfo]]:
        """Approve a return the customer requested online (``returnApproveRequest``): the
        return, OPEN, or None with the userErrors. The customer is not emailed: they are at
        the till."""
        payload, errors = await self._mutate(
            RETURN_APPROVE_REQUEST,
            {"input": {"id": gid("Return", return_id), "notifyCustomer": False}},
            "returnApproveRequest",
            Priority.ORDER_STATE,
        )
        made = payload.get("return")
        return (parse_return(made) if made else None), errors

    async def close_return(self, return_id: int) -> list[UserErrorInfo]:
        _, errors = await self._mutate(
            RETURN_CLOSE, {"id": gid("Return", return_id)}, "returnClose", Priority.ORDER_STATE
        )
        return errors

    async def _order_state(self, document: str, variables: JSON) -> JSON:
        # what an order holds is read before anything else waiting for the bucket: stock
        # written without it would sell held units again
        return await self.execute(document, variables, priority=Priority.ORDER_STATE)
