"""An order's payment as the handover of a pickup needs it: whether every fulfilment order has
ended, what each card authorisation still holds, whether checkout took no money (pay in store),
and whether the order is cancelled or partly fulfilled (``ORDER_PAYMENT``).

A shop that only authorises at checkout captures when the goods are handed over (flows.md, A):
the capture is the authorisation's amount less its successful captures, so a capture told twice
(a replay, an answer lost) finds nothing left and is not made again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tillsync.connectors.shopify.documents import ORDER_PAYMENT
from tillsync.connectors.shopify.ids import gid, gid_tail

JSON = dict[str, Any]
Execute = Callable[[str, JSON], Awaitable[JSON]]
ENDED = frozenset({"CLOSED", "CANCELLED"})


@dataclass(frozen=True, slots=True)
class Authorisation:
    transaction_id: int
    amount: Decimal
    captured: Decimal
    currency: str
    expires_at: str | None  # ISO 8601, as Shopify gives it

    @property
    def left(self) -> Decimal:
        return max(Decimal("0.00"), self.amount - self.captured)


@dataclass(frozen=True, slots=True)
class OrderPayment:
    order_id: int
    financial_status: str  # AUTHORIZED, PARTIALLY_PAID, PAID, ...
    currency: str
    open_fulfilment_orders: int  # not closed nor cancelled
    authorisations: tuple[Authorisation, ...]
    open_fulfilment_order_ids: frozenset[int] = frozenset()
    fulfilled: bool = False  # some of it was fulfilled (a fulfilment not cancelled)
    cancelled: bool = False

    @property
    def unpaid(self) -> bool:
        """Checkout took no money: paid at the till, or not at all (pay in store)."""
        return self.financial_status == "PENDING"

    def only_open(self, fulfilment_order_id: int) -> bool:
        """This fulfilment order is all that is left of the order: nothing fulfilled, no other
        fulfilment order open. Cancelling the whole order then cancels only it."""
        return (
            not self.cancelled
            and not self.fulfilled
            and self.open_fulfilment_order_ids == {fulfilment_order_id}
        )

    def to_capture(self) -> list[Authorisation]:
        """What the handover captures: every authorisation with something left, once no
        fulfilment order of the order is still open (the last handover captures)."""
        if self.open_fulfilment_orders:
            return []
        return [a for a in self.authorisations if a.left > 0]


def _money(node: JSON | None) -> tuple[Decimal, str]:
    shop = (node or {}).get("shopMoney") or {}
    return Decimal(str(shop.get("amount") or "0")), str(shop.get("currencyCode") or "")


async def read_payment(execute: Execute, order_id: int) -> OrderPayment | None:
    data = await execute(ORDER_PAYMENT, {"id": gid("Order", order_id)})
    order = data.get("order")
    if order is None:
        return None
    transactions = [t for t in order.get("transactions") or [] if t.get("status") == "SUCCESS"]
    captured: dict[str, Decimal] = {}
    for t in transactions:
        parent = (t.get("parentTransaction") or {}).get("id")
        if t.get("kind") == "CAPTURE" and parent:
            captured[parent] = captured.get(parent, Decimal("0.00")) + _money(t["amountSet"])[0]
    authorisations = []
    for t in transactions:
        if t.get("kind") != "AUTHORIZATION":
            continue
        amount, currency = _money(t["amountSet"])
        authorisations.append(
            Authorisation(
                transaction_id=gid_tail(t["id"]),
                amount=amount,
                captured=captured.get(t["id"], Decimal("0.00")),
                currency=currency,
                expires_at=t.get("authorizationExpiresAt"),
            )
        )
    fos = ((order.get("fulfillmentOrders") or {}).get("nodes")) or []
    open_ids = frozenset(gid_tail(fo["id"]) for fo in fos if fo.get("status") not in ENDED)
    return OrderPayment(
        order_id=order_id,
        financial_status=str(order.get("displayFinancialStatus") or "").upper(),
        currency=str(order.get("currencyCode") or ""),
        open_fulfilment_orders=len(open_ids),
        authorisations=tuple(authorisations),
        open_fulfilment_order_ids=open_ids,
        fulfilled=any(
            str(f.get("status") or "").upper() not in ("CANCELLED", "ERROR", "FAILURE")
            for f in order.get("fulfillments") or []
        ),
        cancelled=bool(order.get("cancelledAt")),
    )
