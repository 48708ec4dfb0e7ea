"""The simulator's own JSON control API under /_sim: store actions, faults, state.

Not part of Sitoo: no auth, no rate limit, no faults, so a scenario driver can always act.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .app import _body, json_response
from .records import SimError
from .seed import SeedSpec, seed

if TYPE_CHECKING:
    from .server import SitooSimulator

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _id(request: web.Request, name: str) -> int:
    try:
        return int(request.match_info[name])
    except ValueError:
        raise SimError(400, f"{name} must be an integer") from None


async def _obj(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    body = await _body(request)
    if not isinstance(body, dict):
        raise SimError(400, "body must be a JSON object")
    return body


def _units(raw: Any) -> dict[int, int] | None:
    """``{"<orderitemid>": units}`` from a body (JSON keys are strings); None when absent."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise SimError(400, "lines must be an object of orderitemid: units")
    out: dict[int, int] = {}
    for key, units in raw.items():
        try:
            oid = int(key)
        except ValueError:
            raise SimError(400, f"lines: orderitemid {key!r} must be an integer") from None
        # bool is an int to Python, and "2" would be a silent cast: only JSON integers count
        if isinstance(units, bool) or not isinstance(units, int):
            raise SimError(400, f"lines: units of orderitemid {key} must be an integer")
        if oid in out:
            raise SimError(400, f"lines: orderitemid {oid} is given twice")
        out[oid] = units
    return out


class ControlApi:
    def __init__(self, sim: SitooSimulator) -> None:
        self.sim = sim
        self.s = sim.state

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/_sim/"):
            return await handler(request)
        try:
            return await handler(request)
        except SimError as err:
            return json_response(err.body(), err.statuscode)
        except (KeyError, TypeError, ValueError) as exc:
            return json_response({"statuscode": 400, "errortext": f"bad request: {exc}"}, 400)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/_sim/health", self.health),
            web.post("/_sim/seed", self.post_seed),
            web.post("/_sim/products", self.post_product),
            web.post("/_sim/stores", self.post_store),
            web.post("/_sim/stores/{storeid}/sale", self.sale),
            web.post("/_sim/stores/{storeid}/return", self.return_),
            web.post("/_sim/stores/{storeid}/blind-return", self.blind_return),
            web.post("/_sim/stores/{storeid}/z-report", self.z_report),
            web.post("/_sim/warehouses/{warehouseid}/delivery", self.delivery),
            web.post("/_sim/warehouses/{warehouseid}/stocktaking", self.stocktaking),
            web.post("/_sim/warehouses/{warehouseid}/move", self.move),
            web.post("/_sim/orders/{orderid}/ready-for-pickup", self.ready),
            web.post("/_sim/orders/{orderid}/collect", self.collect),
            web.post("/_sim/orders/{orderid}/ship", self.ship),
            web.post("/_sim/orders/{orderid}/reject-pickup", self.reject),
            web.post("/_sim/orders/{orderid}/cancel", self.cancel),
            web.get("/_sim/faults", self.get_faults),
            web.post("/_sim/faults", self.post_faults),
            web.delete("/_sim/faults", self.delete_faults),
            web.get("/_sim/state/stock", self.stock),
            web.get("/_sim/events", self.events),
        ]

    async def health(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "ok": True,
                "account_id": self.s.account_id,
                "api_calls": self.sim.guard.calls,
                "throttled": self.sim.guard.throttled,
                # lets a benchmark tell the simulator's own cost from its client's
                "cpu_seconds": time.process_time(),
            }
        )

    async def post_seed(self, request: web.Request) -> web.Response:
        body = await _obj(request)
        seed(self.s, SeedSpec(**body))
        return json_response({"stores": len(self.s.stores), "products": len(self.s.products)})

    async def post_product(self, request: web.Request) -> web.Response:
        product = self.s.add_product(await _obj(request))
        return json_response(product.wire())

    async def post_store(self, request: web.Request) -> web.Response:
        body = await _obj(request)
        store = self.s.add_store(
            str(body["name"]), body.get("externalid"), city=str(body.get("city", ""))
        )
        return json_response({**store.wire(), "warehouseid": store.warehouseid})

    async def sale(self, request: web.Request) -> web.Response:
        body = await _obj(request)
        order = self.s.till_sale(
            _id(request, "storeid"),
            list(body["lines"]),
            email=str(body.get("email", "")),
            payment=str(body.get("payment", "Card")),
        )
        return json_response(order.wire())

    async def blind_return(self, request: web.Request) -> web.Response:
        body = await _obj(request)
        order = self.s.blind_return(
            _id(request, "storeid"),
            list(body.get("lines") or []),
            email=str(body.get("email", "")),
            reasoncode=str(body.get("reasoncode", "")),
            comment=str(body.get("comment", "")),
            payment=str(body.get("payment", "card")),
        )
        return json_response(order.wire())

    async def return_(self, request: web.Request) -> web.Response:
        body = await _obj(request)
        order = self.s.till_return(
            _id(request, "storeid"),
            int(body["orderid"]),
            body.get("lines"),
            reasoncode=str(body.get("reasoncode", "")),
            comment=str(body.get("comment", "")),
            payment=str(body.get("payment", "card")),
            exchange=body.get("exchange"),
        )
        return json_response(order.wire())

    async def z_report(self, request: web.Request) -> web.Response:
        return json_response(self.s.close_day(_id(request, "storeid")).data)

    async def delivery(self, request: web.Request) -> web.Response:
        body = await _obj(request)
        tx = self.s.receive_delivery(
            _id(request, "warehouseid"), list(body["lines"]), externalid=body.get("externalid")
        )
        return json_response(tx.wire())

    async def stocktaking(self, request: web.Request) -> web.Response:
        body = await _obj(request)
        tx = self.s.stocktaking(_id(request, "warehouseid"), dict(body["counts"]))
        return json_response(tx.wire() if tx else None)

    async def move(self, request: web.Request) -> web.Response:
        """A manual Move In (+) or Move Out (-) by store staff."""
        body = await _obj(request)
        wid, qty = _id(request, "warehouseid"), int(body["quantity"])
        sku = str(body["sku"])
        txid = self.s.move_in(wid, sku, qty) if qty > 0 else self.s.move_out(wid, sku, qty)
        return json_response(self.s.transactions_by_id[txid].wire())

    async def ready(self, request: web.Request) -> web.Response:
        self.s.ready_for_pickup(_id(request, "orderid"))
        return json_response(self.s.order(_id(request, "orderid")).wire())

    async def collect(self, request: web.Request) -> web.Response:
        """The customer collects: ``{"take_payment"?: true}`` when it is paid at the till,
        ``{"lines"?: {orderitemid: units}}`` when only those units are taken (the rest is
        never delivered)."""
        body = await _obj(request)
        take = body.get("take_payment", False)
        if not isinstance(take, bool):
            raise SimError(400, "take_payment must be a boolean")
        lines = _units(body.get("lines"))
        self.s.collect(_id(request, "orderid"), take_payment=take, lines=lines)
        return json_response(self.s.order(_id(request, "orderid")).wire())

    async def ship(self, request: web.Request) -> web.Response:
        """Staff ship the order: ``{"tracking", "carrier"?, "lines"?: {orderitemid: qty}}``."""
        body = await _obj(request)
        tracking = body.get("tracking")
        if not isinstance(tracking, str):
            raise SimError(400, "tracking is required (a string)")
        raw = body.get("lines")
        if raw is not None and not isinstance(raw, dict):
            raise SimError(400, "lines must be an object of orderitemid: quantity")
        deliveryid = self.s.ship(
            _id(request, "orderid"),
            tracking,
            str(body.get("carrier") or ""),
            {int(oid): int(q) for oid, q in raw.items()} if raw is not None else None,
        )
        return json_response({"orderdeliveryid": deliveryid})

    async def reject(self, request: web.Request) -> web.Response:
        body = await _obj(request)
        self.s.reject_pickup(
            _id(request, "orderid"),
            str(body.get("reason", "")),
            cancel=bool(body.get("cancel", False)),
        )
        return json_response(self.s.order(_id(request, "orderid")).wire())

    async def cancel(self, request: web.Request) -> web.Response:
        self.s.update_order(_id(request, "orderid"), {"orderstateid": 20})
        return json_response(self.s.order(_id(request, "orderid")).wire())

    async def get_faults(self, request: web.Request) -> web.Response:
        return json_response(self.sim.faults.describe())

    async def post_faults(self, request: web.Request) -> web.Response:
        self.sim.set_faults(**(await _obj(request)))
        return json_response(self.sim.faults.describe())

    async def delete_faults(self, request: web.Request) -> web.Response:
        self.sim.set_faults(reset=True)
        return json_response(self.sim.faults.describe())

    async def stock(self, request: web.Request) -> web.Response:
        wid = request.query.get("warehouseid")
        return json_response(self.s.stock_snapshot(int(wid) if wid else None))

    async def events(self, request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", "100"))
        history = list(self.sim.events.history)[-limit:] if limit else []
        return json_response({**self.sim.events.describe(), "recent": history})
