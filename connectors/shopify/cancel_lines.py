"""Units of an order cancelled before they left the store: a customer declined them at the
counter (a partial pickup), so they are refunded with ``restockType: CANCEL`` at the pickup's
location (Shopify puts them back from committed into available, and the fulfilment order
closes once nothing is left on it), the money as Shopify suggests for those lines.

``refundCreate`` is ``@idempotent``: the caller's key names the one cancel (the closed Sitoo
order whose declined units these are), and the caller reads what is still open first, so a
repeat after the key has expired finds nothing left to cancel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tillsync.connectors.shopify.documents import ORDER_SUGGESTED_REFUND
from tillsync.connectors.shopify.ids import gid
from tillsync.connectors.shopify.returns import (
    Execute,
    SuggestedRefund,
    SuggestedTransaction,
    parse_suggested_refund,
)

JSON = dict[str, Any]


def _lines(lines: Mapping[int, int]) -> list[JSON]:
    return [{"lineItemId": gid("LineItem", k), "quantity": q} for k, q in lines.items()]


async def read_order_suggested_refund(
    execute: Execute, order_id: int, lines: Mapping[int, int]
) -> SuggestedRefund | None:
    """What Shopify suggests refunding for ``lines`` (line item id -> units) of an order;
    ``None`` when it has no such order."""
    found = (
        await execute(
            ORDER_SUGGESTED_REFUND, {"id": gid("Order", order_id), "lines": _lines(lines)}
        )
    ).get("order")
    if not found:
        return None
    return parse_suggested_refund(
        found.get("suggestedRefund") or {}, "amountSet", "maximumRefundableSet"
    )


def cancel_input(
    order_id: int,
    lines: Mapping[int, int],
    location_id: int,
    transactions: Sequence[SuggestedTransaction],
    currency: str,
    note: str,
) -> JSON:
    return {
        "orderId": gid("Order", order_id),
        "note": note,
        "notify": True,
        "currency": currency or None,
        "refundLineItems": [
            {**line, "restockType": "CANCEL", "locationId": gid("Location", location_id)}
            for line in _lines(lines)
        ],
        "transactions": [
            {
                "orderId": gid("Order", order_id),
                "parentId": gid("OrderTransaction", t.parent_id),
                "amount": str(t.amount),
                "gateway": t.gateway,
                "kind": "REFUND",
            }
            for t in transactions
        ],
    }
