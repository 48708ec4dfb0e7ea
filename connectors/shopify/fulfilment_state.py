"""An order's fulfilment state, read in full: every fulfilment order with every line, and
every fulfilment with every line, paging on wherever a page came back full.

This is what an order's held units are derived from (``tillsync.streams.stock.held_units``),
so a page left unread would be units left uncounted: each connection is followed to its end.
Every fulfilment is listed with its status and location at every read; its lines are read only
when the caller does not know them already (``known``, from its webhook or an earlier read): a
fulfilment's lines are fixed when it is made. The reader takes any ``execute`` (the client's,
or a test's fake); its answer is plain frozen dataclasses, or ``None`` when Shopify says there
is no such order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tillsync.connectors.shopify import stock_documents as docs
from tillsync.connectors.shopify.ids import gid, gid_tail

JSON = dict[str, Any]
Execute = Callable[[str, JSON], Awaitable[JSON]]


@dataclass(frozen=True, slots=True)
class FulfilmentOrderLine:
    id: int  # the fulfilment order line item
    sku: str  # "" for a line without one (a custom item, a gift card)
    remaining: int  # committed at the fulfilment order's location, not yet fulfilled


@dataclass(frozen=True, slots=True)
class FulfilmentOrderState:
    id: int
    status: str  # OPEN, IN_PROGRESS, SCHEDULED, ON_HOLD, INCOMPLETE, CLOSED, CANCELLED
    location_id: int | None  # the assigned location
    method: str  # SHIPPING, PICK_UP, LOCAL, ...
    lines: tuple[FulfilmentOrderLine, ...]


@dataclass(frozen=True, slots=True)
class FulfilmentLine:
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class FulfilmentState:
    id: int
    status: str  # SUCCESS, PENDING, OPEN, CANCELLED, ERROR, FAILURE
    location_id: int | None
    lines: tuple[FulfilmentLine, ...]


@dataclass(frozen=True, slots=True)
class OrderFulfilmentState:
    order_id: int
    fulfilment_orders: tuple[FulfilmentOrderState, ...]
    fulfilments: tuple[FulfilmentState, ...]


def _location(node: JSON | None) -> int | None:
    location = (node or {}).get("id")
    return gid_tail(location) if location else None


def _fo_lines(connection: JSON) -> list[FulfilmentOrderLine]:
    return [
        FulfilmentOrderLine(
            id=gid_tail(n["id"]), sku=n.get("sku") or "", remaining=int(n["remainingQuantity"])
        )
        for n in connection.get("nodes", [])
    ]


def _f_lines(connection: JSON) -> list[FulfilmentLine]:
    return [
        FulfilmentLine(sku=(n.get("lineItem") or {}).get("sku") or "", quantity=int(n["quantity"]))
        for n in connection.get("nodes", [])
    ]


def _next(connection: JSON) -> str | None:
    page = connection.get("pageInfo") or {}
    return page.get("endCursor") if page.get("hasNextPage") else None


class FulfilmentStateReader:
    """Reads one order's fulfilment state through ``execute``, page by page."""

    def __init__(self, execute: Execute) -> None:
        self._execute = execute

    async def read(
        self, order_id: int, known: Mapping[int, tuple[FulfilmentLine, ...]] | None = None
    ) -> OrderFulfilmentState | None:
        """``known``: the lines of fulfilments the caller knows already (by fulfilment id);
        only the others' lines are read."""
        order_gid = gid("Order", order_id)
        data = await self._execute(docs.ORDER_HOLDS, {"id": order_gid})
        order = data.get("order")
        if order is None:
            return None
        fos = [await self._fulfilment_order(n) for n in order["fulfillmentOrders"]["nodes"]]
        after = _next(order["fulfillmentOrders"])
        while after is not None:
            page = await self._execute(
                docs.ORDER_FULFILLMENT_ORDERS, {"id": order_gid, "after": after}
            )
            connection = (page.get("order") or {}).get("fulfillmentOrders") or {}
            fos.extend([await self._fulfilment_order(n) for n in connection.get("nodes", [])])
            after = _next(connection)
        listed = list(order.get("fulfillments") or [])
        fulfilments = await self._fulfilments(order_gid, listed, known or {})
        return OrderFulfilmentState(
            order_id=order_id, fulfilment_orders=tuple(fos), fulfilments=tuple(fulfilments)
        )

    async def order_of(self, fulfilment_order_id: int) -> int | None:
        """The order a fulfilment order belongs to; ``None`` when Shopify has no such one."""
        data = await self._execute(
            docs.FULFILLMENT_ORDER_ORDER, {"id": gid("FulfillmentOrder", fulfilment_order_id)}
        )
        order_id = (data.get("fulfillmentOrder") or {}).get("orderId")
        return gid_tail(order_id) if order_id else None

    async def _fulfilment_order(self, node: JSON) -> FulfilmentOrderState:
        lines = _fo_lines(node["lineItems"])
        after = _next(node["lineItems"])
        while after is not None:
            page = await self._execute(
                docs.FULFILLMENT_ORDER_LINES, {"id": node["id"], "after": after}
            )
            connection = (page.get("fulfillmentOrder") or {}).get("lineItems") or {}
            lines.extend(_fo_lines(connection))
            after = _next(connection)
        return FulfilmentOrderState(
            id=gid_tail(node["id"]),
            status=str(node.get("status") or "OPEN").upper(),
            location_id=_location((node.get("assignedLocation") or {}).get("location")),
            method=str((node.get("deliveryMethod") or {}).get("methodType") or "NONE").upper(),
            lines=tuple(lines),
        )

    async def _fulfilments(
        self, order_gid: str, listed: list[JSON], known: Mapping[int, tuple[FulfilmentLine, ...]]
    ) -> list[FulfilmentState]:
        nodes = listed
        if len(listed) >= docs.HOLDS_FULFILLMENTS:
            # a full list may have more, and it has no cursor: it is read again, wider
            for wide in docs.WIDE_FULFILLMENTS:
                page = await self._execute(
                    docs.ORDER_FULFILLMENTS, {"id": order_gid, "first": wide}
                )
                nodes = list((page.get("order") or {}).get("fulfillments") or [])
                if len(nodes) < wide:
                    break
        out: list[FulfilmentState] = []
        for node in nodes:
            fid = gid_tail(node["id"])
            lines = known.get(fid)
            out.append(
                FulfilmentState(
                    id=fid,
                    status=str(node.get("status") or "SUCCESS").upper(),
                    location_id=_location(node.get("location")),
                    lines=lines if lines is not None else await self._lines(node["id"]),
                )
            )
        return out

    async def _lines(self, fulfilment_gid: str) -> tuple[FulfilmentLine, ...]:
        lines: list[FulfilmentLine] = []
        first, after = docs.FIRST_FULFILLMENT_LINES, None
        while True:
            page = await self._execute(
                docs.FULFILLMENT_LINES, {"id": fulfilment_gid, "first": first, "after": after}
            )
            connection = (page.get("fulfillment") or {}).get("fulfillmentLineItems") or {}
            lines.extend(_f_lines(connection))
            after = _next(connection)
            if after is None:
                return tuple(lines)
            first = docs.PAGE_LINES
