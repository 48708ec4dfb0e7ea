"""A blind return (a Sitoo credit order linked to no original) and the online order it
returns.

Staff took goods back with no receipt (flows.md C: a shipped order Sitoo never had). The
online orders placed with the credit order's email are its candidates. One fits when it can
still return every returned SKU's units (fulfilled, not on a live return) and still holds the
credit order's value (received less refunded, within 0.01). Exactly one fit among all the
customer's orders: it is linked, and the return goes on as a linked one. None or several: the
return waits for ``tillsync returns link``, an exception owned by store operations naming the
candidates. An order already holding a return marked for the credit order is the link made
before (a repeat, a replay, a link by hand): it is taken whatever else fits.

``match`` is pure; ``search`` reads the candidates, for the writer and ``returns show`` alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from tillsync.connectors.shopify.returns import CustomerOrders, OrderReturns
from tillsync.schemas.sitoo import Order
from tillsync.streams.returns.plan import (
    TOLERANCE,
    CreditRow,
    credit_money,
    marker,
    plan_return,
    units_by_sku,
)


class CandidateReads(Protocol):
    async def orders_by_email(self, email: str) -> CustomerOrders: ...

    async def order_returns(self, order_id: int) -> OrderReturns | None: ...


def fits(rows: Sequence[CreditRow], value: Decimal, order: OrderReturns) -> bool:
    """``order`` can take the return of ``rows`` worth ``value``."""
    if order.cancelled or not rows:
        return False
    plan = plan_return(rows, order, None, "")
    return not plan.short and value <= order.received - order.refunded + TOLERANCE


@dataclass(frozen=True, slots=True)
class BlindMatch:
    """What the customer's orders say of one blind return."""

    linked: OrderReturns | None  # the order to return on: linked before, or the one fit
    fitting: tuple[OrderReturns, ...]  # every order that fits (the candidates to name)
    complete: bool  # every order placed with the email was read

    @property
    def names(self) -> str:
        return ", ".join(f"{o.name} ({o.order_id})" for o in self.fitting) or "none"


def match(
    rows: Sequence[CreditRow],
    value: Decimal,
    orders: Sequence[OrderReturns],
    mark: str,
    *,
    complete: bool,
) -> BlindMatch:
    """``orders``: the customer's orders read in full, ``mark`` the credit order's marker."""
    for order in orders:
        if order.marked(mark):
            return BlindMatch(order, (order,), complete)
    fitting = tuple(o for o in orders if fits(rows, value, o))
    one = fitting[0] if len(fitting) == 1 and complete else None
    return BlindMatch(one, fitting, complete)


async def search(shopify: CandidateReads, credit: Order, rows: Sequence[CreditRow]) -> BlindMatch:
    """The blind credit order's match among the orders placed with its email (none without
    one). Only an order holding every returned SKU is read in full."""
    email = (credit.email or "").strip()
    if not email:
        return BlindMatch(None, (), complete=True)
    customer = await shopify.orders_by_email(email)
    wanted = units_by_sku(rows)
    orders: list[OrderReturns] = []
    for candidate in customer.orders:
        if candidate.may_hold(wanted):
            state = await shopify.order_returns(candidate.order_id)
            if state is not None:
                orders.append(state)
    value = credit_money(credit).value
    return match(rows, value, orders, marker(credit.orderid), complete=not customer.truncated)
