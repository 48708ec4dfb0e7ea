"""The async Sitoo REST v2 client tillsync uses.

Pacing: a token bucket at ``SitooConfig.requests_per_second`` and a bound on requests in flight.
Answers: a 429 waits for its Retry-After and asks again (any method: Sitoo did not process the
call), at most ``max_rate_limited`` times a call, costing no attempt. Everything else follows the
shared ``RetryPolicy`` (``connectors/retry.py``): 5xx and transport failures back off with jitter
and are retried for reads and PUTs (idempotent). POSTs are not blindly retried, because a lost
answer may hide a created record: ``add_warehouse_transactions`` looks its transactions up by
``externalid`` before each further attempt.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import httpx

from tillsync.connectors.outcomes import CallHook, CallStats, Outcome, WaitReason, outcome_of
from tillsync.connectors.retry import GaveUp, Retry, RetryPolicy, call_with_retries
from tillsync.schemas.settings import Settings
from tillsync.schemas.sitoo import (
    BatchResult,
    Order,
    OrderDelivery,
    OrderIn,
    OrderItemIn,
    Product,
    WarehouseItem,
    WarehouseTransactionIn,
)

from .ratelimit import TokenBucket

log = logging.getLogger(__name__)
T = TypeVar("T")

PLATFORM = "sitoo"
MAX_TRANSACTION_BATCH = 1000  # batchAddWarehouseTransactions accepts at most 1000 items
# a transaction whose answer was lost is looked for among those created since the batch began,
# less this much for the two clocks' disagreement
LOOKUP_SLACK_SECONDS = 60
# five retries after the first try
SITOO_RETRY = RetryPolicy(attempts=6)

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
    def outcome(self) -> Outcome:
        return Outcome.TRANSPORT_ERROR if self.statuscode == 0 else outcome_of(self.statuscode)

    @property
    def retryable(self) -> bool:
        return self.outcome in (
            Outcome.TRANSPORT_ERROR,
            Outcome.RATE_LIMITED,
            Outcome.SERVER_ERROR,
        )


@dataclass(frozen=True)
class SitooConfig:
    account_url: str  # .../v2/accounts/{account id}
    api_id: str
    api_password: str = field(repr=False)
    site_id: int = 1
    requests_per_second: float = 10.0
    max_concurrency: int = 4
    retry: RetryPolicy = SITOO_RETRY
    max_rate_limited: int = 20  # 429 waits one call may take before it fails
    timeout: float = 30.0
    page_size: int = 100

    @classmethod
    def from_settings(cls, settings: Settings) -> SitooConfig:
        settings.require("sitoo_account_id", "sitoo_api_id", "sitoo_api_password")
        assert settings.sitoo_api_id is not None and settings.sitoo_api_password is not None
        return cls(
            account_url=settings.sitoo_account_url,
            api_id=settings.sitoo_api_id,
            api_password=settings.sitoo_api_password.get_secret_value(),
            site_id=settings.sitoo_site_id,
            requests_per_second=settings.sitoo_requests_per_second,
        )


@dataclass
class _Call:
    """What one ``request()`` has been through across its attempts."""

    rate_limited: int = 0


def _given_up(gave_up: GaveUp) -> SitooError:
    error = gave_up.last.error
    assert isinstance(error, SitooError)  # every Retry this client raises carries one
    return error


class SitooClient:
    def __init__(
        self,
        config: SitooConfig,
        *,
        on_call: CallHook | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.site_id = config.site_id
        self.stats = CallStats()
        self._on_call = on_call
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._bucket = TokenBucket(config.requests_per_second)
        self._inflight = asyncio.Semaphore(config.max_concurrency)
        self._http = httpx.AsyncClient(
            base_url=config.account_url,
            auth=httpx.BasicAuth(config.api_id, config.api_password),
            headers={"Accept": "application/json"},
            timeout=config.timeout,
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

    def _record(self, outcome: Outcome, seconds: float) -> None:
        self.stats.answered(outcome)
        if self._on_call is not None:
            self._on_call(PLATFORM, outcome, seconds)

    async def _wait(self, reason: WaitReason, seconds: float) -> None:
        self.stats.wait(reason, seconds)
        await self._sleep(seconds)

    async def _with_retries(self, policy: RetryPolicy, attempt: Callable[[int], Awaitable[T]]) -> T:
        return await call_with_retries(
            policy, attempt, sleep=self._sleep, rng=self._rng, on_retry=self.stats.retried
        )

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
        policy = self.config.retry if retry else replace(self.config.retry, attempts=1)
        call = _Call()

        async def attempt(_: int) -> Any:
            return await self._try(call, method, path, params, json)

        try:
            return await self._with_retries(policy, attempt)
        except GaveUp as gave_up:
            error = _given_up(gave_up)
        except SitooError as exc:
            error = exc
        log.warning("sitoo %s %s -> %d %s", method, path, error.statuscode, error.errortext)
        raise error

    async def _try(
        self, call: _Call, method: str, path: str, params: dict[str, Any] | None, body: Any
    ) -> Any:
        """One attempt; 429s are waited out here, within the call's ``max_rate_limited``."""
        while True:
            waited = await self._bucket.acquire()
            if waited:
                self.stats.wait(WaitReason.PACING, waited)
            async with self._inflight:
                started = time.monotonic()
                try:
                    resp = await self._http.request(method, path, params=params, json=body)
                except httpx.TransportError as exc:
                    self._record(Outcome.TRANSPORT_ERROR, time.monotonic() - started)
                    error = SitooError(0, f"{type(exc).__name__}: {exc}", method=method, path=path)
                    raise Retry(Outcome.TRANSPORT_ERROR, str(error), error=error) from exc
                elapsed = time.monotonic() - started
            outcome = outcome_of(resp.status_code)
            self._record(outcome, elapsed)
            if outcome is Outcome.OK:
                return resp.json() if resp.content else None
            error = self._error(resp, method, path)
            if outcome is Outcome.RATE_LIMITED:
                call.rate_limited += 1
                if call.rate_limited > self.config.max_rate_limited:
                    raise error
                wait = self.config.retry.server_wait(
                    resp.headers.get("Retry-After"), call.rate_limited, self._rng
                )
                await self._wait(WaitReason.RETRY_AFTER, wait)
                continue
            if outcome is Outcome.SERVER_ERROR:
                raise Retry(outcome, str(error), error=error)
            raise error

    @staticmethod
    def _error(resp: httpx.Response, method: str, path: str) -> SitooError:
        text = resp.reason_phrase
        try:
            body = resp.json()
            if isinstance(body, dict) and "errortext" in body:
                text = str(body["errortext"])
        except ValueError:
            pass
        return SitooError(resp.status_code, text, method=method, path=path)

    async def _paginate(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        page_size: int | None = None,
        progress: Progress | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every item of a ``{totalcount, items}`` listing, fetched ``start``/``num`` at a time."""
        num = page_size or self.config.page_size
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
        async for item in self._paginate(path, params, page_size=page_size, progress=progress):
            yield WarehouseItem.model_validate(item)

    async def warehouse_items_by_sku(
        self, warehouseid: int, skus: Sequence[str]
    ) -> list[WarehouseItem]:
        """The warehouse items of these SKUs (one ``sku=a,b,...`` listing). Sitoo keeps no
        row for a SKU that never had stock there: such a SKU is absent from the answer."""
        if not skus:
            return []
        path = f"{self._site}/warehouses/{warehouseid}/warehouseitems.json"
        params = {"sku": ",".join(skus)}
        return [
            WarehouseItem.model_validate(item)
            async for item in self._paginate(path, params, page_size=max(len(skus), 1))
        ]

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
        since = int(time.time()) - LOOKUP_SLACK_SECONDS
        done: dict[str, BatchResult] = {}
        keyed = all(t.externalid for t in chunk)

        async def attempt(n: int) -> list[BatchResult]:
            if n > 1:
                # the failed attempt may have been written before its answer was lost
                done.update(await self._transactions_by_externalid(since, chunk))
            todo = [t for t in chunk if not (t.externalid and t.externalid in done)]
            body = [t.model_dump(exclude_none=True) for t in todo]
            try:
                answer = await self.request("POST", path, json=body) if todo else []
            except SitooError as exc:
                if exc.retryable and keyed:
                    raise Retry(exc.outcome, str(exc), error=exc) from exc
                raise
            answers = (
                answer if isinstance(answer, list) else [{"statuscode": 200, "return": answer}]
            )
            fresh = iter(BatchResult.model_validate(a) for a in answers)
            return [
                done[t.externalid] if t.externalid and t.externalid in done else next(fresh)
                for t in chunk
            ]

        try:
            return await self._with_retries(self.config.retry, attempt)
        except GaveUp as gave_up:
            raise _given_up(gave_up) from gave_up

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
        async for item in self._paginate(path, {"datecreatedfrom": since}):
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
        path = f"{self._site}/products.json"
        async for item in self._paginate(path, params, progress=progress):
            yield Product.model_validate(item)

    # -- orders -----------------------------------------------------------------------------

    async def orders_by_externalid(self, externalids: Sequence[str]) -> list[Order]:
        """The orders with these externalids (getAllOrders, ``externalid=a,b``): how a write
        of an order is made once, looked up before it is made."""
        body = await self.request(
            "GET", "/orders.json", params={"externalid": ",".join(externalids)}
        )
        items = body.get("items", []) if isinstance(body, dict) else []
        return [Order.model_validate(item) for item in items]

    async def add_order(self, order: OrderIn) -> int:
        """Make one order (addOrder); its new orderid. A POST is not retried: an answer lost
        may have made it, so the caller looks its externalid up before trying again."""
        answer = await self.request(
            "POST", f"{self._site}/orders.json", json=order.model_dump(exclude_none=True)
        )
        return int(answer)

    async def set_order_state(self, orderid: int, orderstateid: int) -> None:
        """Move an open order to another state (updateOrder): cancel (20) lets go of what it
        reserves. Sitoo refuses to change an order no longer open."""
        await self.request(
            "PUT", f"{self._site}/orders/{orderid}.json", json={"orderstateid": orderstateid}
        )

    async def set_order_items(self, orderid: int, items: Sequence[OrderItemIn]) -> None:
        """Replace an open, undelivered order's rows (updateOrder): its reservation follows.
        Sitoo refuses rows of an order delivered from or no longer open."""
        await self.request(
            "PUT",
            f"{self._site}/orders/{orderid}.json",
            json={"orderitems": [i.model_dump(exclude_none=True) for i in items]},
        )

    async def order_deliveries(self, orderid: int) -> list[OrderDelivery]:
        """What an order has delivered, delivery by delivery (getOrderDeliveries)."""
        path = f"{self._site}/orders/{orderid}/orderdeliveries.json"
        return [OrderDelivery.model_validate(d) async for d in self._paginate(path, {})]

    async def get_order(self, orderid: int) -> Order:
        """One order with its rows (getOrder): what an Events SPI ``order`` event names."""
        body = await self.request("GET", f"{self._site}/orders/{orderid}.json")
        return Order.model_validate(body)
