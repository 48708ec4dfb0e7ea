"""The async Sitoo REST v2 client tillsync uses.

Pacing: a token bucket at ``settings.sitoo_requests_per_second`` and a bound on requests in
flight. Answers: 429 waits for Retry-After (any method: the call was not processed); 5xx and
transport failures back off with jitter and are retried for reads and PUTs (idempotent). POSTs
are not blindly retried, because a lost answer may hide a created record: the create helpers
below look the record up by its natural key (``externalid``, SKU, email) before each attempt.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from tillsync.schemas.settings import Settings
from tillsync.schemas.sitoo import (
    ORDER_CANCELLED,
    ORDER_CLOSED,
    BatchResult,
    CashRegister,
    Order,
    OrderDelivery,
    OrderIn,
    OrderLogItem,
    Product,
    ProductVariants,
    Site,
    Store,
    User,
    UserIn,
    Warehouse,
    WarehouseItem,
    WarehouseTransaction,
    WarehouseTransactionIn,
    ZReport,
)

from .ratelimit import TokenBucket

log = logging.getLogger(__name__)

PLATFORM = "sitoo"
MAX_TRANSACTION_BATCH = 1000  # batchAddWarehouseTransactions accepts at most 1000 items
SKUS_PER_REQUEST = 100  # keeps comma-separated sku filters well inside URL limits
POS_ZREPORTS_PATH = "/pos-z-reports.json"  # documented as /pos-z-reports; suffix assumed
POS_ZREPORTS_MAX = 500


class OnCall(Protocol):
    def __call__(self, *, platform: str, outcome: str, seconds: float) -> None: ...


class OnWait(Protocol):
    def __call__(self, *, platform: str, reason: str, seconds: float) -> None: ...


Progress = Callable[[int, int], None]  # (items fetched so far, totalcount)


class SitooError(Exception):
    """A non-2xx answer (or, with statuscode 0, no answer at all)."""

    def __init__(
        self, statuscode: int, errortext: str, *, method: str = "", path: str = ""
    ) -> None:
        super().__init__(f"Sitoo {method} {path}: {statuscode} {errortext}".replace("  ", " "))
        self.statuscode = statuscode
        self.errortext = errortext
        self.method = method
        self.path = path

    @property
    def retryable(self) -> bool:
        return self.statuscode in (0, 429) or self.statuscode >= 500


@dataclass
class SitooStats:
    """Counters for the prometheus wiring: calls by outcome and seconds spent waiting."""

    calls: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    throttled: int = 0
    throttle_wait_seconds: float = 0.0
    rate_wait_seconds: float = 0.0
    backoff_seconds: float = 0.0

    @property
    def errors(self) -> int:
        return sum(n for outcome, n in self.calls.items() if outcome != "ok")


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds, from either delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class SitooClient:
    def __init__(
        self,
        settings: Settings,
        *,
        max_concurrency: int = 4,
        max_retries: int = 5,
        max_throttle_waits: int = 20,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        timeout: float = 30.0,
        page_size: int = 100,
        on_call: OnCall | None = None,
        on_wait: OnWait | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        settings.require("sitoo_account_id", "sitoo_api_id", "sitoo_api_password")
        assert settings.sitoo_api_id is not None and settings.sitoo_api_password is not None
        self.site_id = settings.sitoo_site_id
        self.page_size = page_size
        self.max_retries = max_retries
        self.max_throttle_waits = max_throttle_waits
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.stats = SitooStats()
        self._on_call = on_call
        self._on_wait = on_wait
        self._sleep = sleep
        self._rng = random.Random()
        self._bucket = TokenBucket(settings.sitoo_requests_per_second)
        self._inflight = asyncio.Semaphore(max_concurrency)
        self._http = httpx.AsyncClient(
            base_url=settings.sitoo_account_url,
            auth=httpx.BasicAuth(
                settings.sitoo_api_id, settings.sitoo_api_password.get_secret_value()
            ),
            headers={"Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )

    async def __aenter__(self) -> SitooClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def _site(self) -> str:
        return f"/sites/{self.site_id}"

    # -- transport --------------------------------------------------------------------------

    def _record(self, outcome: str, seconds: float) -> None:
        self.stats.calls[outcome] += 1
        if self._on_call is not None:
            self._on_call(platform=PLATFORM, outcome=outcome, seconds=seconds)

    async def _wait(self, reason: str, seconds: float) -> None:
        if reason == "retry_after":
            self.stats.throttle_wait_seconds += seconds
        elif reason == "backoff":
            self.stats.backoff_seconds += seconds
        if self._on_wait is not None:
            self._on_wait(platform=PLATFORM, reason=reason, seconds=seconds)
        await self._sleep(seconds)

    def _backoff(self, attempt: int) -> float:
        # full jitter: spreads retries of many workers instead of synchronising them
        return self._rng.uniform(0, min(self.backoff_cap, self.backoff_base * 2**attempt))

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        retry: bool | None = None,
    ) -> Any:
        """One API call with pacing and retries; returns the decoded JSON body.

        ``retry`` (default: True except for POST) allows retrying 5xx/transport failures.
        """
        method = method.upper()
        retry = method != "POST" if retry is None else retry
        attempt = throttles = 0
        while True:
            waited = await self._bucket.acquire()
            if waited:
                self.stats.rate_wait_seconds += waited
                if self._on_wait is not None:
                    self._on_wait(platform=PLATFORM, reason="rate_limit", seconds=waited)
            async with self._inflight:
                started = time.monotonic()
                try:
                    resp = await self._http.request(method, path, params=params, json=json)
                except httpx.TransportError as exc:
                    self._record("transport_error", time.monotonic() - started)
                    err = SitooError(0, f"{type(exc).__name__}: {exc}", method=method, path=path)
                    resp = None
                else:
                    elapsed = time.monotonic() - started
            if resp is None:
                if not retry or attempt >= self.max_retries:
                    raise err
            elif resp.status_code == 429:
                self._record("throttled", elapsed)
                self.stats.throttled += 1
                throttles += 1
                if throttles > self.max_throttle_waits:
                    raise self._error(resp, method, path)
                delay = retry_after_seconds(resp.headers.get("Retry-After"))
                await self._wait(
                    "retry_after", delay if delay is not None else self._backoff(throttles)
                )
                continue
            elif resp.status_code >= 500:
                self._record("server_error", elapsed)
                if not retry or attempt >= self.max_retries:
                    raise self._error(resp, method, path)
            elif resp.status_code >= 400:
                self._record("client_error", elapsed)
                raise self._error(resp, method, path)
            else:
                self._record("ok", elapsed)
                return resp.json() if resp.content else None
            self.stats.retries += 1
            await self._wait("backoff", self._backoff(attempt))
            attempt += 1

    @staticmethod
    def _error(resp: httpx.Response, method: str, path: str) -> SitooError:
        text = resp.reason_phrase
        try:
            body = resp.json()
            if isinstance(body, dict) and "errortext" in body:
                text = str(body["errortext"])
        except ValueError:
            pass
        log.warning("sitoo %s %s -> %d %s", method, path, resp.status_code, text)
        return SitooError(resp.status_code, text, method=method, path=path)

    async def paginate(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        page_size: int | None = None,
        progress: Progress | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every item of a ``{totalcount, items}`` listing, fetched ``start``/``num`` at a time."""
        num = page_size or self.page_size
        start = 0
        while True:
            body = await self.request(
                "GET", path, params={**(params or {}), "start": start, "num": num}
            )
            items = body["items"]
            total = int(body["totalcount"])
            for item in items:
                yield item
            start += len(items)
            if progress is not None:
                progress(start, total)
            if not items or start >= total:
                return

    # -- sites, stores, warehouses ----------------------------------------------------------

    async def get_sites(self) -> list[Site]:
        return [Site.model_validate(i) async for i in self.paginate("/sites.json")]

    async def iter_stores(self, *, progress: Progress | None = None) -> AsyncIterator[Store]:
        async for item in self.paginate(f"{self._site}/stores.json", progress=progress):
            yield Store.model_validate(item)

    async def list_stores(self) -> list[Store]:
        return [s async for s in self.iter_stores()]

    async def get_store(self, storeid: int) -> Store:
        return Store.model_validate(
            await self.request("GET", f"{self._site}/stores/{storeid}.json")
        )

    async def list_warehouses(self) -> list[Warehouse]:
        return [
            Warehouse.model_validate(i)
            async for i in self.paginate(f"{self._site}/warehouses.json")
        ]

    async def get_warehouse(self, warehouseid: int) -> Warehouse:
        body = await self.request("GET", f"{self._site}/warehouses/{warehouseid}.json")
        return Warehouse.model_validate(body)

    # -- stock ------------------------------------------------------------------------------

    async def iter_warehouse_items(
        self,
        warehouseid: int,
        *,
        modified_from: int | None = None,
        page_size: int | None = None,
        progress: Progress | None = None,
    ) -> AsyncIterator[WarehouseItem]:
        params: dict[str, Any] = {}
        if modified_from is not None:
            params["datelastmodifiedfrom"] = modified_from
        path = f"{self._site}/warehouses/{warehouseid}/warehouseitems.json"
        async for item in self.paginate(path, params, page_size=page_size, progress=progress):
            yield WarehouseItem.model_validate(item)

    async def get_warehouse_items(
        self, warehouseid: int, skus: Iterable[str]
    ) -> dict[str, WarehouseItem]:
        """Stock rows for the given SKUs (SKUs with no row are absent from the result)."""
        out: dict[str, WarehouseItem] = {}
        path = f"{self._site}/warehouses/{warehouseid}/warehouseitems.json"
        wanted = list(dict.fromkeys(skus))
        for i in range(0, len(wanted), SKUS_PER_REQUEST):
            chunk = wanted[i : i + SKUS_PER_REQUEST]
            async for item in self.paginate(path, {"sku": ",".join(chunk)}):
                row = WarehouseItem.model_validate(item)
                out[row.sku] = row
        return out

    async def iter_warehouse_transactions(
        self,
        since_id: int = 1,
        *,
        warehouseid: int | None = None,
        page_size: int | None = None,
        progress: Progress | None = None,
    ) -> AsyncIterator[WarehouseTransaction]:
        """The ledger from ``since_id`` (inclusive) upwards, in id order.

        Pages advance the ``warehousetransactionidfrom`` cursor rather than ``start``: new
        transactions arriving while we read cannot shift the pages.
        """
        cursor = since_id
        fetched = 0
        path = f"{self._site}/warehousetransactions.json"
        num = page_size or self.page_size
        while True:
            params: dict[str, Any] = {
                "warehousetransactionidfrom": cursor,
                "sort": "warehousetransactionid",
                "start": 0,
                "num": num,
            }
            if warehouseid is not None:
                params["warehouseid"] = warehouseid
            body = await self.request("GET", path, params=params)
            items = body["items"]
            for item in items:
                tx = WarehouseTransaction.model_validate(item)
                cursor = max(cursor, tx.warehousetransactionid + 1)
                yield tx
            fetched += len(items)
            if progress is not None:
                progress(fetched, fetched + int(body["totalcount"]) - len(items))
            if len(items) < num:
                return

    async def add_warehouse_transactions(
        self, transactions: Sequence[WarehouseTransactionIn]
    ) -> list[BatchResult]:
        """Batch POST, at most 1000 per request; one BatchResult per transaction, in order.

        Transactions with an ``externalid`` are safe to retry: after a failed attempt, those
        already in the ledger (found by ``externalid`` among recent ones) are not sent again.
        """
        results: list[BatchResult] = []
        path = f"{self._site}/warehousetransactions.json"
        for i in range(0, len(transactions), MAX_TRANSACTION_BATCH):
            chunk = list(transactions[i : i + MAX_TRANSACTION_BATCH])
            results.extend(await self._post_transactions(path, chunk))
        return results

    async def _post_transactions(
        self, path: str, chunk: list[WarehouseTransactionIn]
    ) -> list[BatchResult]:
        started = int(time.time()) - 60
        done: dict[str, BatchResult] = {}
        attempt = 0
        while True:
            todo = [t for t in chunk if not (t.externalid and t.externalid in done)]
            body = [t.model_dump(exclude_none=True) for t in todo]
            try:
                answer = await self.request("POST", path, json=body) if todo else []
            except SitooError as exc:
                keyed = all(t.externalid for t in chunk)
                if not exc.retryable or not keyed or attempt >= self.max_retries:
                    raise
                self.stats.retries += 1
                await self._wait("backoff", self._backoff(attempt))
                attempt += 1
                done.update(await self._transactions_by_externalid(started, chunk))
                continue
            answers = (
                answer if isinstance(answer, list) else [{"statuscode": 200, "return": answer}]
            )
            fresh = iter(BatchResult.model_validate(a) for a in answers)
            return [
                done[t.externalid] if t.externalid and t.externalid in done else next(fresh)
                for t in chunk
            ]

    async def find_transactions_by_externalid(
        self, since: int, externalids: Iterable[str]
    ) -> dict[str, int]:
        """externalid -> warehousetransactionid among transactions created since ``since``
        (Unix seconds): the ledger has no externalid filter, so this scans by date."""
        found = await self._transactions_by_externalid(
            since,
            [
                WarehouseTransactionIn(warehouseid=0, transactiontype=0, items=[], externalid=e)
                for e in externalids
            ],
        )
        return {k: int(v.return_ or 0) for k, v in found.items()}

    async def _transactions_by_externalid(
        self, since: int, chunk: list[WarehouseTransactionIn]
    ) -> dict[str, BatchResult]:
        wanted = {t.externalid for t in chunk if t.externalid}
        found: dict[str, BatchResult] = {}
        path = f"{self._site}/warehousetransactions.json"
        async for item in self.paginate(path, {"datecreatedfrom": since}):
            ext = item.get("externalid")
            if ext in wanted:
                found[ext] = BatchResult(statuscode=200, return_=item["warehousetransactionid"])
        return found

    # -- products ---------------------------------------------------------------------------

    async def iter_products(
        self,
        *,
        modified_since: int | None = None,
        include_inactive: bool = False,
        progress: Progress | None = None,
    ) -> AsyncIterator[Product]:
        params: dict[str, Any] = {"includeinactive": "true" if include_inactive else "false"}
        if modified_since is not None:
            params["datelastmodified"] = modified_since
        async for item in self.paginate(f"{self._site}/products.json", params, progress=progress):
            yield Product.model_validate(item)

    async def get_products_by_sku(self, skus: Iterable[str]) -> dict[str, Product]:
        out: dict[str, Product] = {}
        wanted = list(dict.fromkeys(skus))
        for i in range(0, len(wanted), SKUS_PER_REQUEST):
            params = {"sku": ",".join(wanted[i : i + SKUS_PER_REQUEST]), "includeinactive": "true"}
            async for item in self.paginate(f"{self._site}/products.json", params):
                product = Product.model_validate(item)
                out[product.sku] = product
        return out

    async def get_product(self, productid: int) -> Product:
        body = await self.request("GET", f"{self._site}/products/{productid}.json")
        return Product.model_validate(body)

    async def get_product_variants(self, productid: int) -> ProductVariants:
        body = await self.request("GET", f"{self._site}/products/{productid}/productvariants.json")
        return ProductVariants.model_validate(body)

    async def create_products(self, products: Sequence[dict[str, Any]]) -> dict[str, int]:
        """Create products (each needs ``sku``) unless the SKU exists; returns sku -> productid.

        Looking the SKUs up first makes a retried call harmless.
        """
        for attempt in range(self.max_retries + 1):
            existing = await self.get_products_by_sku(p["sku"] for p in products)
            out = {sku: p.productid for sku, p in existing.items() if p.productid is not None}
            todo = [p for p in products if p["sku"] not in out]
            if not todo:
                return out
            try:
                answer = await self.request("POST", f"{self._site}/products.json", json=todo)
            except SitooError as exc:
                if not exc.retryable or attempt >= self.max_retries:
                    raise
                await self._wait("backoff", self._backoff(attempt))
                continue
            for product, result in zip(todo, answer, strict=True):
                res = BatchResult.model_validate(result)
                if not res.ok:
                    raise SitooError(
                        res.statuscode,
                        res.errortext or "batch item failed",
                        method="POST",
                        path="products.json",
                    )
                out[product["sku"]] = int(res.return_)
            return out
        raise AssertionError("unreachable")

    async def update_products(self, products: Sequence[dict[str, Any]]) -> list[BatchResult]:
        """Batch update; every item carries its ``productid``."""
        answer = await self.request("PUT", f"{self._site}/products.json", json=list(products))
        return [BatchResult.model_validate(a) for a in answer]

    async def upsert_products(self, products: Sequence[dict[str, Any]]) -> dict[str, int]:
        """Create missing SKUs and update the rest; returns sku -> productid."""
        existing = await self.get_products_by_sku(p["sku"] for p in products)
        updates = [
            {**p, "productid": existing[p["sku"]].productid}
            for p in products
            if p["sku"] in existing
        ]
        if updates:
            for res in await self.update_products(updates):
                if not res.ok:
                    raise SitooError(
                        res.statuscode,
                        res.errortext or "batch item failed",
                        method="PUT",
                        path="products.json",
                    )
        created = await self.create_products([p for p in products if p["sku"] not in existing])
        out = {sku: p.productid for sku, p in existing.items() if p.productid is not None}
        return {**out, **created}

    # -- orders -----------------------------------------------------------------------------

    async def iter_orders(
        self,
        *,
        externalid: str | Sequence[str] | None = None,
        creditorderid: int | None = None,
        orderidfrom: int | None = None,
        orderstate: int | Sequence[int] | None = None,
        warehouseid: int | None = None,
        progress: Progress | None = None,
    ) -> AsyncIterator[Order]:
        """Account-wide orders (``GET /orders.json``), filtered, in orderid order."""

        def joined(v: Any) -> str:
            return v if isinstance(v, str) else ",".join(str(x) for x in v)

        params: dict[str, Any] = {"sort": "orderid"}
        if externalid is not None:
            params["externalid"] = joined(externalid)
        if creditorderid is not None:
            params["creditorderid"] = creditorderid
        if orderidfrom is not None:
            params["orderidfrom"] = orderidfrom
        if orderstate is not None:
            params["orderstate"] = joined(
                [orderstate] if isinstance(orderstate, int) else orderstate
            )
        if warehouseid is not None:
            params["warehouseid"] = warehouseid
        async for item in self.paginate("/orders.json", params, progress=progress):
            yield Order.model_validate(item)

    async def find_order_by_externalid(self, externalid: str) -> Order | None:
        async for order in self.iter_orders(externalid=externalid):
            return order
        return None

    async def get_returns_of(self, orderid: int) -> list[Order]:
        return [o async for o in self.iter_orders(creditorderid=orderid)]

    async def get_order(self, orderid: int) -> Order:
        body = await self.request("GET", f"{self._site}/orders/{orderid}.json")
        return Order.model_validate(body)

    async def create_order(self, order: OrderIn) -> int:
        """POST an order; with an ``externalid`` it is created at most once (lookup first)."""
        body = order.model_dump(exclude_none=True)
        path = f"{self._site}/orders.json"
        if order.externalid is None:
            return int(await self.request("POST", path, json=body))
        for attempt in range(self.max_retries + 1):
            found = await self.find_order_by_externalid(order.externalid)
            if found is not None:
                return found.orderid
            try:
                return int(await self.request("POST", path, json=body))
            except SitooError as exc:
                if not exc.retryable or attempt >= self.max_retries:
                    raise
                await self._wait("backoff", self._backoff(attempt))
        raise AssertionError("unreachable")

    async def update_order(self, orderid: int, fields: dict[str, Any]) -> None:
        await self.request("PUT", f"{self._site}/orders/{orderid}.json", json=fields)

    async def close_order(self, orderid: int) -> None:
        await self.update_order(orderid, {"orderstateid": ORDER_CLOSED})

    async def cancel_order(self, orderid: int) -> None:
        await self.update_order(orderid, {"orderstateid": ORDER_CANCELLED})

    async def get_order_deliveries(self, orderid: int) -> list[OrderDelivery]:
        path = f"{self._site}/orders/{orderid}/orderdeliveries.json"
        return [OrderDelivery.model_validate(i) async for i in self.paginate(path)]

    async def add_order_delivery(
        self,
        orderid: int,
        warehouseid: int,
        items: Sequence[tuple[int, int]],
        *,
        ref: str | None = None,
    ) -> int:
        """Deliver ``(orderitemid, quantity)`` rows from a warehouse; returns orderdeliveryid."""
        body: dict[str, Any] = {
            "warehouseid": warehouseid,
            "orderdeliveryitems": [{"orderitemid": o, "quantity": q} for o, q in items],
        }
        if ref:
            body["orderdeliveryref"] = ref
        path = f"{self._site}/orders/{orderid}/orderdeliveries.json"
        return int(await self.request("POST", path, json=body))

    async def get_order_log_items(self, orderid: int) -> list[OrderLogItem]:
        path = f"{self._site}/orders/{orderid}/orderlogitems.json"
        return [OrderLogItem.model_validate(i) async for i in self.paginate(path)]

    async def add_order_log_item(
        self, orderid: int, orderlogtypeid: int, strvalue: str | None = None
    ) -> None:
        """Only 900 (ReadyForPickup) and 910 (PickupRejected) may be posted."""
        body: dict[str, Any] = {"orderlogtypeid": orderlogtypeid}
        if strvalue is not None:
            body["strvalue"] = strvalue
        path = f"{self._site}/orders/{orderid}/orderlogitems.json"
        await self.request("POST", path, json=body, retry=False)

    # -- users (customers) ------------------------------------------------------------------

    async def find_users_by_email(self, email_address: str) -> list[User]:
        path = f"{self._site}/users.json"
        return [User.model_validate(i) async for i in self.paginate(path, {"email": email_address})]

    async def iter_users(self, *, progress: Progress | None = None) -> AsyncIterator[User]:
        async for item in self.paginate(f"{self._site}/users.json", progress=progress):
            yield User.model_validate(item)

    async def create_user(self, user: UserIn) -> str:
        """Create a customer unless one with that email exists; returns its userid."""
        path = f"{self._site}/users.json"
        for attempt in range(self.max_retries + 1):
            found = await self.find_users_by_email(user.email)
            if found and found[0].userid:
                return found[0].userid
            try:
                answer = await self.request("POST", path, json=[user.model_dump(exclude_none=True)])
            except SitooError as exc:
                if not exc.retryable or attempt >= self.max_retries:
                    raise
                await self._wait("backoff", self._backoff(attempt))
                continue
            res = BatchResult.model_validate(
                answer[0] if isinstance(answer, list) else {"statuscode": 200, "return": answer}
            )
            if not res.ok:
                raise SitooError(
                    res.statuscode, res.errortext or "user not created", method="POST", path=path
                )
            return str(res.return_)
        raise AssertionError("unreachable")

    async def update_user(self, userid: str, fields: dict[str, Any]) -> None:
        await self.request("PUT", f"{self._site}/users/{userid}.json", json=fields)

    # -- Z-reports --------------------------------------------------------------------------

    async def list_cash_registers(self) -> list[CashRegister]:
        return [
            CashRegister.model_validate(i)
            async for i in self.paginate(f"{self._site}/cashregisters.json")
        ]

    async def iter_register_zreports(
        self, registerid: str, *, created_from: int | None = None
    ) -> AsyncIterator[ZReport]:
        params = {} if created_from is None else {"datecreatedfrom": created_from}
        path = f"{self._site}/cashregisters/{registerid}/zreports.json"
        async for item in self.paginate(path, params):
            yield ZReport.model_validate(item)

    async def iter_pos_zreports(
        self,
        *,
        added_from: int | None = None,
        added_to: int | None = None,
        store_id: str | None = None,
    ) -> AsyncIterator[ZReport]:
        """``/pos-z-reports``: a bare array of at most 500, paged by the last ``dateadded``."""
        seen: set[int] = set()
        cursor = added_from
        while True:
            params: dict[str, Any] = {"eshopid": self.site_id}
            if cursor is not None:
                params["dateaddedfrom"] = cursor
            if added_to is not None:
                params["dateaddedto"] = added_to
            if store_id is not None:
                params["store_id"] = store_id
            body = await self.request("GET", POS_ZREPORTS_PATH, params=params)
            fresh = [ZReport.model_validate(z) for z in body if z["zreportid"] not in seen]
            for report in fresh:
                seen.add(report.zreportid)
                yield report
            if len(body) < POS_ZREPORTS_MAX or not fresh:
                return
            cursor = max(r.dateadded or 0 for r in fresh)
