"""An order's returns as the store-returns flow reads and writes them (``returns_documents``).

``OrderReturns`` is one read of everything a store return is planned from: the order's
fulfilment line items (what can be returned, and where it was fulfilled), its returns with
their lines and reverse fulfilment order lines (what was returned, disposed and refunded), and
the money received and refunded. Every run of the flow reads it again; nothing here is kept.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tillsync.connectors.shopify.ids import gid, gid_tail
from tillsync.connectors.shopify.returns_documents import (
    ORDER_RETURNS,
    ORDERS_BY_EMAIL,
    RETURN_SUGGESTED_REFUND,
)

JSON = dict[str, Any]
Execute = Callable[[str, JSON], Awaitable[JSON]]
ZERO = Decimal("0.00")
RESTOCKED = "RESTOCKED"
NOT_RESTOCKED = "NOT_RESTOCKED"
ENDED_RETURNS = frozenset({"CANCELED", "DECLINED"})


@dataclass(frozen=True, slots=True)
class FulfilmentLine:
    """A fulfilment line item: units of one order line that left one location."""

    id: int
    fulfilment_id: int
    location_id: int | None
    line_item_id: int
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Disposition:
    type: str  # RESTOCKED, NOT_RESTOCKED, PROCESSING_REQUIRED, MISSING
    quantity: int
    location_id: int | None


@dataclass(frozen=True, slots=True)
class ReturnedLine:
    id: int
    fulfilment_line_id: int
    sku: str
    quantity: int
    refundable: int  # not refunded yet
    reason: str
    note: str


@dataclass(frozen=True, slots=True)
class DisposalLine:
    """A reverse fulfilment order line: the returned units of one fulfilment line item, and
    what became of them."""

    id: int
    fulfilment_line_id: int
    total: int
    dispositions: tuple[Disposition, ...]

    @property
    def undisposed(self) -> int:
        return self.total - sum(d.quantity for d in self.dispositions)


@dataclass(frozen=True, slots=True)
class ShopifyReturn:
    id: int
    status: str  # OPEN, CLOSED, REQUESTED, DECLINED, CANCELED
    lines: tuple[ReturnedLine, ...]
    disposals: tuple[DisposalLine, ...]
    truncated: bool = False  # more lines than one read holds

    def notes_name(self, marker: str) -> bool:
        return any(marker in line.note for line in self.lines)

    @property
    def undisposed(self) -> int:
        return sum(d.undisposed for d in self.disposals)

    @property
    def refundable(self) -> int:
        return sum(line.refundable for line in self.lines)


@dataclass(frozen=True, slots=True)
class OrderReturns:
    order_id: int
    name: str
    currency: str
    cancelled: bool
    received: Decimal
    refunded: Decimal
    fulfilment_lines: tuple[FulfilmentLine, ...]
    returns: tuple[ShopifyReturn, ...]
    truncated: bool = False  # more returns, or lines of one, than one read holds

    def marked(self, marker: str) -> list[ShopifyReturn]:
        """The returns whose lines carry ``marker`` in their notes (not cancelled)."""
        return [r for r in self.returns if r.status not in ENDED_RETURNS and r.notes_name(marker)]

    def returnable(self) -> dict[int, int]:
        """Fulfilment line item id -> units not on a live return yet."""
        left = {f.id: f.quantity for f in self.fulfilment_lines}
        for r in self.returns:
            if r.status in ENDED_RETURNS:
                continue
            for line in r.lines:
                if line.fulfilment_line_id in left:
                    left[line.fulfilment_line_id] -= line.quantity
        return left


@dataclass(frozen=True, slots=True)
class SuggestedTransaction:
    parent_id: int
    amount: Decimal
    gateway: str


@dataclass(frozen=True, slots=True)
class SuggestedRefund:
    amount: Decimal
    maximum: Decimal
    currency: str
    transactions: tuple[SuggestedTransaction, ...]


def _money(node: JSON | None) -> tuple[Decimal, str]:
    shop = (node or {}).get("shopMoney") or {}
    return Decimal(str(shop.get("amount") or "0")), str(shop.get("currencyCode") or "")


def _nodes(conn: JSON | None) -> list[JSON]:
    return list((conn or {}).get("nodes") or [])


def _location(node: JSON | None) -> int | None:
    return gid_tail(node["id"]) if node and node.get("id") else None


def _more(conn: JSON | None) -> bool:
    return bool(((conn or {}).get("pageInfo") or {}).get("hasNextPage"))


def parse_return(r: JSON, sku_of: Mapping[int, str] | None = None) -> ShopifyReturn:
    """One return node (``RETURN_FIELDS``); ``sku_of`` names a line's SKU when its line item
    does not."""
    returned = []
    for node in _nodes(r.get("returnLineItems")):
        fli = node.get("fulfillmentLineItem") or {}
        fid = gid_tail(fli["id"]) if fli.get("id") else 0
        item = fli.get("lineItem") or {}
        returned.append(
            ReturnedLine(
                id=gid_tail(node["id"]),
                fulfilment_line_id=fid,
                sku=str(item.get("sku") or (sku_of or {}).get(fid, "")),
                quantity=int(node.get("quantity") or 0),
                refundable=int(node.get("refundableQuantity") or 0),
                reason=str(node.get("returnReason") or ""),
                note=str(node.get("returnReasonNote") or ""),
            )
        )
    disposals = []
    more = _more(r.get("returnLineItems"))
    for rfo in _nodes(r.get("reverseFulfillmentOrders")):
        more = more or _more(rfo.get("lineItems"))
        for node in _nodes(rfo.get("lineItems")):
            fli = node.get("fulfillmentLineItem") or {}
            disposals.append(
                DisposalLine(
                    id=gid_tail(node["id"]),
                    fulfilment_line_id=gid_tail(fli["id"]) if fli.get("id") else 0,
                    total=int(node.get("totalQuantity") or 0),
                    dispositions=tuple(
                        Disposition(
                            type=str(d.get("type") or ""),
                            quantity=int(d.get("quantity") or 0),
                            location_id=_location(d.get("location")),
                        )
                        for d in node.get("dispositions") or []
                    ),
                )
            )
    return ShopifyReturn(
        id=gid_tail(r["id"]),
        status=str(r.get("status") or ""),
        lines=tuple(returned),
        disposals=tuple(disposals),
        truncated=more,
    )


def parse_order_returns(order: JSON) -> OrderReturns:
    lines: list[FulfilmentLine] = []
    for f in order.get("fulfillments") or []:
        loc = _location(f.get("location"))
        for node in _nodes(f.get("fulfillmentLineItems")):
            item = node.get("lineItem") or {}
            lines.append(
                FulfilmentLine(
                    id=gid_tail(node["id"]),
                    fulfilment_id=gid_tail(f["id"]),
                    location_id=loc,
                    line_item_id=gid_tail(item["id"]),
                    sku=str(item.get("sku") or ""),
                    quantity=int(node.get("quantity") or 0),
                )
            )
    sku_of = {f.id: f.sku for f in lines}
    returns = [parse_return(r, sku_of) for r in _nodes(order.get("returns"))]
    more = bool(((order.get("returns") or {}).get("pageInfo") or {}).get("hasNextPage"))
    received, currency = _money(order.get("totalReceivedSet"))
    refunded, _ = _money(order.get("totalRefundedSet"))
    return OrderReturns(
        order_id=gid_tail(order["id"]),
        name=str(order.get("name") or ""),
        currency=str(order.get("currencyCode") or currency),
        cancelled=bool(order.get("cancelledAt")),
        received=received,
        refunded=refunded,
        fulfilment_lines=tuple(lines),
        returns=tuple(returns),
        truncated=more or any(r.truncated for r in returns),
    )


async def read_order_returns(execute: Execute, order_id: int) -> OrderReturns | None:
    """The order's returns as Shopify has them now; ``None`` when it has no such order."""
    data = await execute(ORDER_RETURNS, {"id": gid("Order", order_id)})
    order = data.get("order")
    return parse_order_returns(order) if order else None


@dataclass(frozen=True, slots=True)
class OrderSkus:
    """One of a customer's orders, as a blind return's candidate: the SKUs on its lines."""

    order_id: int
    name: str
    cancelled: bool
    skus: frozenset[str]
    more_lines: bool  # more lines than one read holds: it may have any SKU

    def may_hold(self, skus: Iterable[str]) -> bool:
        return not self.cancelled and (self.more_lines or set(skus) <= self.skus)


@dataclass(frozen=True, slots=True)
class CustomerOrders:
    orders: tuple[OrderSkus, ...]  # newest first
    truncated: bool  # the customer has more orders than one read holds


def email_query(email: str) -> str:
    """Shopify's search for one email; quotes and backslashes would end the phrase early."""
    return 'email:"' + email.replace("\\", "").replace('"', "") + '"'


async def read_orders_by_email(execute: Execute, email: str) -> CustomerOrders:
    """The newest orders placed with ``email``, and whether there are more."""
    data = await execute(ORDERS_BY_EMAIL, {"query": email_query(email)})
    conn = data.get("orders") or {}
    found = []
    for node in _nodes(conn):
        lines = node.get("lineItems")
        found.append(
            OrderSkus(
                order_id=gid_tail(node["id"]),
                name=str(node.get("name") or ""),
                cancelled=bool(node.get("cancelledAt")),
                skus=frozenset(str(n.get("sku") or "") for n in _nodes(lines)),
                more_lines=_more(lines),
            )
        )
    return CustomerOrders(orders=tuple(found), truncated=_more(conn))


async def read_suggested_refund(
    execute: Execute, return_id: int, lines: Mapping[int, int]
) -> SuggestedRefund | None:
    """What Shopify suggests refunding for ``lines`` (return line id -> units) of a return,
    and from which payments; ``None`` when it has no such return."""
    variables = {
        "id": gid("Return", return_id),
        "lines": [
            {"returnLineItemId": gid("ReturnLineItem", k), "quantity": q} for k, q in lines.items()
        ],
    }
    found = (await execute(RETURN_SUGGESTED_REFUND, variables)).get("return")
    if not found:
        return None
    return parse_suggested_refund(found.get("suggestedRefund") or {})


def parse_suggested_refund(
    s: JSON, amount_field: str = "amount", maximum_field: str = "maximumRefundable"
) -> SuggestedRefund:
    """A ``SuggestedReturnRefund`` (MoneyBags ``amount``, ``maximumRefundable``) or an
    order's ``SuggestedRefund`` (``amountSet``, ``maximumRefundableSet``)."""
    amount, currency = _money(s.get(amount_field))
    maximum, _ = _money(s.get(maximum_field))
    return SuggestedRefund(
        amount=amount,
        maximum=maximum,
        currency=currency,
        transactions=tuple(
            SuggestedTransaction(
                parent_id=gid_tail(t["parentTransaction"]["id"]),
                amount=_money(t.get("amountSet"))[0],
                gateway=str(t.get("gateway") or ""),
            )
            for t in s.get("suggestedTransactions") or []
            if t.get("parentTransaction")
        ),
    )


@dataclass(frozen=True, slots=True)
class ReturnLineIn:
    fulfilment_line_id: int
    quantity: int
    reason: str  # a Shopify ReturnReason
    note: str


def return_input(order_id: int, lines: Sequence[ReturnLineIn]) -> JSON:
    return {
        "orderId": gid("Order", order_id),
        "returnLineItems": [
            {
                "fulfillmentLineItemId": gid("FulfillmentLineItem", line.fulfilment_line_id),
                "quantity": line.quantity,
                "returnReason": line.reason,
                "returnReasonNote": line.note,
            }
            for line in lines
        ],
    }


@dataclass(frozen=True, slots=True)
class DisposalIn:
    disposal_line_id: int
    quantity: int
    restock_at: int | None  # the location restocked at; None: not restocked


def dispose_input(disposals: Sequence[DisposalIn]) -> list[JSON]:
    return [
        {
            "reverseFulfillmentOrderLineItemId": gid(
                "ReverseFulfillmentOrderLineItem", d.disposal_line_id
            ),
            "quantity": d.quantity,
            "dispositionType": RESTOCKED if d.restock_at is not None else NOT_RESTOCKED,
            **({"locationId": gid("Location", d.restock_at)} if d.restock_at is not None else {}),
        }
        for d in disposals
    ]


def refund_input(
    return_id: int,
    lines: Mapping[int, int],
    transactions: Sequence[SuggestedTransaction],
    currency: str,
) -> JSON:
    """``returnRefund``'s input: the return's lines, and money only from ``transactions``
    (none: the lines are refunded, the money was paid back outside Shopify)."""
    return {
        "returnId": gid("Return", return_id),
        "returnRefundLineItems": [
            {"returnLineItemId": gid("ReturnLineItem", k), "quantity": q} for k, q in lines.items()
        ],
        "orderTransactions": [
            {
                "transactionAmount": {"amount": str(t.amount), "currencyCode": currency},
                "parentId": gid("OrderTransaction", t.parent_id),
            }
            for t in transactions
        ],
        "notifyCustomer": False,
    }
