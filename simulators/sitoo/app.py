"""REST v2 of the simulated account: paths, paging, errors and limits as Sitoo serves them."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from tillsync.connectors.sitoo.ratelimit import TokenBucket

from .faults import Faults
from .records import SimError
from .state import MAX_TRANSACTION_BATCH, SitooState

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
DEFAULT_NUM = 10  # Sitoo's default page size
ZREPORTS_MAX = 500  # /pos-z-reports answers at most 500, sorted by dateadded
_dumps = json.JSONEncoder(separators=(",", ":")).encode


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=_dumps(body).encode(),
        status=status,
        headers=headers,
        content_type="application/json",
    )


def error_response(err: SimError, headers: dict[str, str] | None = None) -> web.Response:
    return json_response(err.body(), err.statuscode, headers)


def _qint(request: web.Request, name: str, default: int | None = None) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SimError(400, f"{name} must be an integer") from None


def _qlist(request: web.Request, name: str) -> list[str] | None:
    values = request.query.getall(name, [])
    if not values:
        return None
    return [v for raw in values for v in raw.split(",") if v != ""]


def _qints(request: web.Request, name: str) -> set[int] | None:
    values = _qlist(request, name)
    if values is None:
        return None
    try:
        return {int(v) for v in values}
    except ValueError:
        raise SimError(400, f"{name} must be integers") from None


def _project(items: list[dict[str, Any]], fields: list[str] | None) -> list[dict[str, Any]]:
    if not fields:
        return items
    return [{k: i[k] for k in fields if k in i} for i in items]


def _paging(request: web.Request) -> tuple[int, int]:
    start = _qint(request, "start", 0) or 0
    num = _qint(request, "num", DEFAULT_NUM)
    if start < 0 or num is None or num < 0:
        raise SimError(400, "start and num must be non-negative")
    return start, num


def envelope(
    request: web.Request, items: Sequence[Any], wire: Callable[[Any], dict[str, Any]]
) -> dict[str, Any]:
    start, num = _paging(request)
    page = [wire(i) for i in items[start : start + num]]
    return {"totalcount": len(items), "items": _project(page, _qlist(request, "fields"))}


async def _body(request: web.Request) -> Any:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise SimError(400, "body is not valid JSON") from None


def _batch(body: Any, one: Callable[[Any], Any], *, limit: int | None = None) -> Any:
    """Arrays get a batch envelope of per-item results; a single object gets its result."""
    if not isinstance(body, list):
        return one(body)
    if limit is not None and len(body) > limit:
        raise SimError(400, f"at most {limit} items per request")
    out = []
    for item in body:
        try:
            out.append({"statuscode": 200, "return": one(item)})
        except SimError as err:
            # Sitoo's per-item error shape is not documented; return is kept an integer
            out.append({"statuscode": err.statuscode, "return": 0, "errortext": err.errortext})
    return out


class Guard:
    """Account, Basic auth, rate limit and faults, applied to every REST call."""

    def __init__(
        self,
        *,
        account_id: int,
        api_id: str,
        password: str,
        rate: float,
        faults: Faults,
        rng: random.Random,
    ) -> None:
        self.prefix = f"/v2/accounts/{account_id}/"
        token = base64.b64encode(f"{api_id}:{password}".encode()).decode()
        self.expected = f"Basic {token}"
        self.bucket = TokenBucket(rate)
        self.faults = faults
        self.rng = rng
        self.calls = 0
        self.throttled = 0

    def check(self, request: web.Request) -> None:
        if not request.path.startswith(self.prefix):
            raise SimError(401, "Unauthorized. Authorization failed for this account.")
        if request.headers.get("Authorization") != self.expected:
            raise SimError(401, "Unauthorized. Authorization failed.")

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/v2/"):
            return await handler(request)
        self.calls += 1
        now = time.monotonic()
        try:
            self.check(request)
            if self.faults.in_outage(now):
                raise SimError(503, "Service Unavailable.")
            if self.faults.throttled_for(now) > 0:
                self.throttled += 1
                return error_response(
                    SimError(429, "Too Many Requests."),
                    {"Retry-After": str(self.faults.retry_after(now))},
                )
            wait = self.bucket.try_acquire()
            if wait > 0:
                self.throttled += 1
                return error_response(
                    SimError(429, "Too Many Requests. Rate limit exceeded."),
                    {"Retry-After": str(max(1, int(wait + 0.999)))},
                )
            delay = self.faults.latency(self.rng)
            if delay:
                await asyncio.sleep(delay)
            if self.faults.error_rate and self.rng.random() < self.faults.error_rate:
                raise SimError(self.faults.error_status, "Internal Server Error.")
            return await handler(request)
        except SimError as err:
            return error_response(err)
        except web.HTTPNotFound:
            return error_response(SimError(404, "Resource not found. The url is invalid."))
        except web.HTTPMethodNotAllowed:
            return error_response(SimError(405, "Method not allowed."))
        except Exception:
            # a simulator bug must still answer like Sitoo, and be visible in the log
            log.exception("sitoo simulator: %s %s failed", request.method, request.path)
            return error_response(SimError(500, "Internal Server Error."))


class RestApi:
    """Handlers of the Sitoo paths (templates exactly as in the OpenAPI description)."""

    def __init__(self, state: SitooState) -> None:
        self.s = state

    def routes(self, prefix: str) -> list[web.RouteDef]:
        site = prefix + "/sites/{siteid:\\d+}"
        wh = site + "/warehouses/{warehouseid:\\d+}"
        order = site + "/orders/{orderid:\\d+}"
        return [
            web.get(prefix + "/sites.json", self.get_sites),
            web.get(site + ".json", self.get_site),
            web.get(site + "/stores.json", self.get_stores),
            web.get(site + "/stores/{storeid:\\d+}.json", self.get_store),
            web.get(site + "/warehouses.json", self.get_warehouses),
            web.get(wh + ".json", self.get_warehouse),
            web.get(wh + "/warehouseitems.json", self.get_warehouse_items),
            web.put(wh + "/warehouseitems.json", self.put_warehouse_items),
            web.get(wh + "/warehousetransactions.json", self.get_wh_transactions),
            web.get(wh + "/warehousetransactions/{txid:\\d+}.json", self.get_wh_transaction),
            web.get(site + "/warehousetransactions.json", self.get_transactions),
            web.post(site + "/warehousetransactions.json", self.post_transactions),
            web.get(site + "/products.json", self.get_products),
            web.post(site + "/products.json", self.post_products),
            web.put(site + "/products.json", self.put_products),
            web.get(site + "/products/{productid:\\d+}.json", self.get_product),
            web.put(site + "/products/{productid:\\d+}.json", self.put_product),
            web.get(site + "/products/{productid:\\d+}/productvariants.json", self.get_variants),
            web.put(site + "/products/{productid:\\d+}/productvariants.json", self.put_variants),
            web.get(prefix + "/orders.json", self.get_all_orders),
            web.get(site + "/orders.json", self.get_site_orders),
            web.post(site + "/orders.json", self.post_order),
            web.get(order + ".json", self.get_order),
            web.put(order + ".json", self.put_order),
            web.get(order + "/orderdeliveries.json", self.get_deliveries),
            web.post(order + "/orderdeliveries.json", self.post_delivery),
            web.get(order + "/orderlogitems.json", self.get_log_items),
            web.post(order + "/orderlogitems.json", self.post_log_item),
            web.get(site + "/users.json", self.get_users),
            web.post(site + "/users.json", self.post_users),
            web.put(site + "/users.json", self.put_users),
            web.get(site + "/users/{userid:[^/]+}.json", self.get_user),
            web.put(site + "/users/{userid:[^/]+}.json", self.put_user),
            web.get(site + "/cashregisters.json", self.get_registers),
            web.get(site + "/cashregisters/{registerid:[^/]+}.json", self.get_register),
            web.get(site + "/cashregisters/{registerid:[^/]+}/zreports.json", self.get_zreports),
            web.get(prefix + "/pos-z-reports.json", self.get_pos_zreports),
            web.get(prefix + "/pos-z-reports", self.get_pos_zreports),
        ]

    def _site(self, request: web.Request) -> None:
        if int(request.match_info["siteid"]) != self.s.eshop_id:
            raise SimError(404, f"site {request.match_info['siteid']} not found")

    # -- sites, stores, warehouses ----------------------------------------------------------

    def _site_wire(self) -> dict[str, Any]:
        return {
            "siteid": "{25D9C5B8-51FC-5751-7FBE-37368C7E4EF0}",
            "protocol": "https",
            "server": "store.mysitoo.com",
            "abspath": "/",
            "siteurl": "https://store.mysitoo.com/",
            "eshopid": self.s.eshop_id,
        }

    async def get_sites(self, request: web.Request) -> web.Response:
        return json_response(envelope(request, [self._site_wire()], dict))

    async def get_site(self, request: web.Request) -> web.Response:
        self._site(request)
        return json_response(self._site_wire())

    async def get_stores(self, request: web.Request) -> web.Response:
        self._site(request)
        return json_response(envelope(request, list(self.s.stores.values()), lambda r: r.wire()))

    async def get_store(self, request: web.Request) -> web.Response:
        self._site(request)
        return json_response(self.s.store(int(request.match_info["storeid"])).wire())

    async def get_warehouses(self, request: web.Request) -> web.Response:
        self._site(request)
        items = list(self.s.warehouses.values())
        return json_response(envelope(request, items, lambda r: r.wire()))

    async def get_warehouse(self, request: web.Request) -> web.Response:
        self._site(request)
        return json_response(self.s.warehouse(int(request.match_info["warehouseid"])).wire())

    async def get_warehouse_items(self, request: web.Request) -> web.Response:
        self._site(request)
        wid = int(request.match_info["warehouseid"])
        self.s.warehouse(wid)
        items = self.s.stock_list[wid]
        skus = _qlist(request, "sku")
        lo = _qint(request, "datelastmodifiedfrom")
        hi = _qint(request, "datelastmodifiedto")
        if skus is not None:
            by_sku = self.s.stock[wid]
            items = [by_sku[s] for s in skus if s in by_sku]
        if lo is not None or hi is not None:
            items = [
                i
                for i in items
                if (lo is None or i.datelastmodified >= lo)
                and (hi is None or i.datelastmodified < hi)
            ]
        if "fields" in request.query:
            return json_response(envelope(request, items, lambda i: i.wire))
        start, num = _paging(request)
        rows = ",".join(i.wire_json for i in items[start : start + num])
        body = f'{{"totalcount":{len(items)},"items":[{rows}]}}'
        return web.Response(body=body.encode(), content_type="application/json")

    async def put_warehouse_items(self, request: web.Request) -> web.Response:
        self._site(request)
        wid = int(request.match_info["warehouseid"])
        self.s.warehouse(wid)
        body = await _body(request)
        return json_response(_batch(body, lambda b: self.s.set_warehouse_item(wid, b)))

    def _filter_transactions(self, request: web.Request, wid: int | None) -> web.Response:
        first = _qint(request, "warehousetransactionidfrom")
        items = self.s.transactions_from(first) if first is not None else self.s.transactions
        last = _qint(request, "warehousetransactionidto")
        ids = _qints(request, "warehousetransactionid")
        lo = _qint(request, "datecreatedfrom")
        hi = _qint(request, "datecreatedto")
        ttype = _qint(request, "transactiontype")
        wid = wid if wid is not None else _qint(request, "warehouseid")
        if any(v is not None for v in (last, ids, lo, hi, ttype, wid)):
            items = [
                t
                for t in items
                if (last is None or t.warehousetransactionid < last)
                and (ids is None or t.warehousetransactionid in ids)
                and (lo is None or t.datecreated >= lo)
                and (hi is None or t.datecreated < hi)
                and (ttype is None or t.transactiontype == ttype)
                and (wid is None or t.warehouseid == wid)
            ]
        sort = request.query.get("sort", "-warehousetransactionid")
        if sort not in ("warehousetransactionid", "-warehousetransactionid"):
            raise SimError(400, "sort must be warehousetransactionid or -warehousetransactionid")
        if sort.startswith("-"):  # Sitoo's default order is descending
            items = items[::-1]
        return json_response(envelope(request, items, lambda t: t.wire()))

    async def get_transactions(self, request: web.Request) -> web.Response:
        self._site(request)
        return self._filter_transactions(request, None)

    async def get_wh_transactions(self, request: web.Request) -> web.Response:
        self._site(request)
        wid = int(request.match_info["warehouseid"])
        self.s.warehouse(wid)
        return self._filter_transactions(request, wid)

    async def get_wh_transaction(self, request: web.Request) -> web.Response:
        self._site(request)
        tx = self.s.transactions_by_id.get(int(request.match_info["txid"]))
        if tx is None or tx.warehouseid != int(request.match_info["warehouseid"]):
            raise SimError(404, "warehousetransaction not found")
        return json_response(tx.wire())

    async def post_transactions(self, request: web.Request) -> web.Response:
        self._site(request)
        body = await _body(request)
        return json_response(_batch(body, self.s.add_transaction, limit=MAX_TRANSACTION_BATCH))

    # -- products ---------------------------------------------------------------------------

    async def get_products(self, request: web.Request) -> web.Response:
        self._site(request)
        skus = _qlist(request, "sku")
        inactive = request.query.get("includeinactive", "false").lower() == "true"
        since = _qint(request, "datelastmodified")
        if skus is not None:
            items = [self.s.products_by_sku[s] for s in skus if s in self.s.products_by_sku]
        else:
            items = list(self.s.products.values())
        items = [
            p for p in items if (inactive or p.active) and (since is None or p.datemodified > since)
        ]
        return json_response(envelope(request, items, lambda p: p.wire()))

    async def post_products(self, request: web.Request) -> web.Response:
        self._site(request)
        body = await _body(request)
        return json_response(_batch(body, lambda b: self.s.add_product(b).productid))

    async def put_products(self, request: web.Request) -> web.Response:
        self._site(request)
        body = await _body(request)
        if not isinstance(body, list):
            raise SimError(400, "body must be an array of products with productid")

        def one(b: Any) -> bool:
            if not isinstance(b, dict) or "productid" not in b:
                raise SimError(400, "productid is required")
            self.s.update_product(int(b["productid"]), b)
            return True

        return json_response(_batch(body, one))

    async def get_product(self, request: web.Request) -> web.Response:
        self._site(request)
        product = self.s.product(int(request.match_info["productid"]))
        return json_response(_project([product.wire()], _qlist(request, "fields"))[0])

    async def put_product(self, request: web.Request) -> web.Response:
        self._site(request)
        body = await _body(request)
        if not isinstance(body, dict):
            raise SimError(400, "body must be a product object")
        self.s.update_product(int(request.match_info["productid"]), body)
        return json_response(True)

    async def get_variants(self, request: web.Request) -> web.Response:
        self._site(request)
        return json_response(self.s.variants(int(request.match_info["productid"])))

    async def put_variants(self, request: web.Request) -> web.Response:
        self._site(request)
        body = await _body(request)
        if not isinstance(body, dict):
            raise SimError(400, "body must be a productvariants object")
        self.s.set_variants(int(request.match_info["productid"]), body)
        return json_response(True)

    # -- orders -----------------------------------------------------------------------------

    def _orders(self, request: web.Request) -> web.Response:
        externalids = _qlist(request, "externalid")
        ids = _qints(request, "orderid")
        credit = _qint(request, "creditorderid")
        if externalids is not None:
            found = [self.s.orders_by_externalid.get(e) for e in externalids]
            pool = [self.s.orders[i] for i in sorted({f for f in found if f is not None})]
        elif credit is not None:
            pool = [self.s.orders[i] for i in self.s.returns_of.get(credit, [])]
        else:
            pool = list(self.s.orders.values())
        eshops = _qints(request, "eshopid")
        lo, hi = _qint(request, "orderidfrom"), _qint(request, "orderidto")
        dlo, dhi = _qint(request, "orderdatefrom"), _qint(request, "orderdateto")
        states = _qints(request, "orderstate")
        payments = _qints(request, "paymentstate")
        types = _qints(request, "ordertype")
        wid = _qint(request, "warehouseid")
        receipt = request.query.get("receiptid")
        email = request.query.get("email")

        def keep(o: Any) -> bool:
            d = o.data
            return (
                (ids is None or o.orderid in ids)
                and (credit is None or d.get("creditorderid") == credit)
                and (eshops is None or d["eshopid"] in eshops)
                and (lo is None or o.orderid >= lo)
                and (hi is None or o.orderid < hi)
                and (dlo is None or d["orderdate"] >= dlo)
                and (dhi is None or d["orderdate"] < dhi)
                and (states is None or d["orderstateid"] in states)
                and (payments is None or d["paymentstateid"] in payments)
                and (types is None or d["ordertypeid"] in types)
                and (wid is None or d.get("warehouseid") == wid)
                and (receipt is None or d["additionaldata"].get("pos-receiptid") == receipt)
                and (email is None or d.get("email") == email)
            )

        items = [o for o in pool if keep(o)]
        sort = request.query.get("sort", "orderid")
        if sort not in ("orderid", "-orderid"):
            raise SimError(400, "sort must be orderid or -orderid")
        if sort == "-orderid":
            items.reverse()
        return json_response(envelope(request, items, lambda o: o.wire()))

    async def get_all_orders(self, request: web.Request) -> web.Response:
        return self._orders(request)

    async def get_site_orders(self, request: web.Request) -> web.Response:
        self._site(request)
        return self._orders(request)

    async def post_order(self, request: web.Request) -> web.Response:
        self._site(request)
        body = await _body(request)
        return json_response(self.s.add_order(body).orderid)

    async def get_order(self, request: web.Request) -> web.Response:
        self._site(request)
        order = self.s.order(int(request.match_info["orderid"]))
        return json_response(_project([order.wire()], _qlist(request, "fields"))[0])

    async def put_order(self, request: web.Request) -> web.Response:
        self._site(request)
        body = await _body(request)
        self.s.update_order(int(request.match_info["orderid"]), body)
        return json_response(True)

    async def get_deliveries(self, request: web.Request) -> web.Response:
        self._site(request)
        order = self.s.order(int(request.match_info["orderid"]))
        return json_response(envelope(request, order.deliveries, lambda d: d.wire()))

    async def post_delivery(self, request: web.Request) -> web.Response:
        self._site(request)
        body = await _body(request)
        return json_response(self.s.add_delivery(int(request.match_info["orderid"]), body))

    async def get_log_items(self, request: web.Request) -> web.Response:
        self._site(request)
        order = self.s.order(int(request.match_info["orderid"]))
        return json_response(envelope(request, order.log, dict))

    async def post_log_item(self, request: web.Request) -> web.Response:
        self._site(request)
        body = await _body(request)
        self.s.add_log_item(int(request.match_info["orderid"]), body)
        return json_response(True)

    # -- users ------------------------------------------------------------------------------

    async def get_users(self, request: web.Request) -> web.Response:
        self._site(request)
        email = request.query.get("email")
        if email is not None:
            uid = self.s.users_by_email.get(email.strip().lower())
            users = [self.s.users[uid]] if uid else []
        else:
            users = list(self.s.users.values())
        for name in ("customernumber", "personalid", "mobile"):
            value = request.query.get(name)
            if value is not None:
                users = [u for u in users if u.data.get(name) == value]
        return json_response(envelope(request, users, lambda u: dict(u.data)))

    async def post_users(self, request: web.Request) -> web.Response:
        self._site(request)
        return json_response(_batch(await _body(request), self.s.add_user))

    async def put_users(self, request: web.Request) -> web.Response:
        self._site(request)
        body = await _body(request)
        if not isinstance(body, list):
            raise SimError(400, "body must be an array of users with userid")

        def one(b: Any) -> bool:
            if not isinstance(b, dict) or "userid" not in b:
                raise SimError(400, "userid is required")
            self.s.update_user(str(b["userid"]), b)
            return True

        return json_response(_batch(body, one))

    async def get_user(self, request: web.Request) -> web.Response:
        self._site(request)
        return json_response(dict(self.s.user(request.match_info["userid"]).data))

    async def put_user(self, request: web.Request) -> web.Response:
        self._site(request)
        self.s.update_user(request.match_info["userid"], await _body(request))
        return json_response(True)

    # -- cash registers and Z-reports -------------------------------------------------------

    async def get_registers(self, request: web.Request) -> web.Response:
        self._site(request)
        stores = list(self.s.stores.values())
        return json_response(envelope(request, stores, lambda s: s.register_wire()))

    async def get_register(self, request: web.Request) -> web.Response:
        self._site(request)
        for store in self.s.stores.values():
            if store.registerid == request.match_info["registerid"]:
                return json_response(store.register_wire())
        raise SimError(404, "cash register not found")

    async def get_zreports(self, request: web.Request) -> web.Response:
        self._site(request)
        rid = request.match_info["registerid"]
        lo, hi = _qint(request, "datecreatedfrom"), _qint(request, "datecreatedto")
        items = [
            z
            for z in self.s.zreports
            if z.data["registerid"] == rid
            and (lo is None or z.data["datecreated"] >= lo)
            and (hi is None or z.data["datecreated"] < hi)
        ]
        return json_response(envelope(request, items, lambda z: dict(z.data)))

    async def get_pos_zreports(self, request: web.Request) -> web.Response:
        # not in the OpenAPI description; shape from developer.sitoo.com: a bare array
        eshops = _qints(request, "eshopid")
        store = request.query.get("store_id")
        rid = request.query.get("registerid")
        lo, hi = _qint(request, "dateaddedfrom"), _qint(request, "dateaddedto")
        items = [
            dict(z.data)
            for z in self.s.zreports
            if (eshops is None or z.data["eshopid"] in eshops)
            and (store is None or z.data["store_id"] == store)
            and (rid is None or z.data["registerid"] == rid)
            and (lo is None or z.data["dateadded"] >= lo)
            and (hi is None or z.data["dateadded"] < hi)
        ]
        return json_response(items[:ZREPORTS_MAX])
