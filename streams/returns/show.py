"""``tillsync returns show CREDIT``: one return at a till as both platforms have it now, and
what the returns flow owes for it.

Reads the Sitoo credit order, the order it returns and, for an online order's, the Shopify
order's returns; for a blind return (no original), the orders placed with its email. Nothing
from the workers (the platforms are what is true). A problem is a return owed and missing, one
made twice, one whose units are not the till's, or a blind return linked to no order yet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from tillsync.connectors.shopify.client import ShopifyClient, ShopifyConfig
from tillsync.connectors.shopify.returns import OrderReturns, ShopifyReturn
from tillsync.connectors.sitoo.client import SitooClient, SitooConfig
from tillsync.schemas.returns import ReasonRule
from tillsync.schemas.settings import Settings
from tillsync.schemas.sitoo import Order
from tillsync.streams.returns import blind
from tillsync.streams.returns.plan import (
    CreditRow,
    asked_online,
    credit_money,
    credit_rows,
    marker,
    returned_by_sku,
    units_by_sku,
)
from tillsync.streams.stock.pickup_handover import pickup_ref

Echo = Callable[[str], None]


@dataclass(frozen=True)
class ReturnView:
    credit: Order
    original: Order | None
    shopify_order_id: int | None  # None: not an online order tillsync made in Sitoo
    shopify: OrderReturns | None
    # a blind return linked to no order yet: the orders of its email that fit
    candidates: tuple[OrderReturns, ...] = field(default=())

    @property
    def blind(self) -> bool:
        return self.credit.creditorderid is None


async def read_return(settings: Settings, credit_order_id: int, echo: Echo) -> ReturnView:
    async with (
        SitooClient(SitooConfig.from_settings(settings)) as sitoo,
        ShopifyClient(ShopifyConfig.from_settings(settings)) as shopify,
    ):
        return await read_return_with(sitoo, shopify, credit_order_id, echo)


async def read_return_with(
    sitoo: SitooClient, shopify: ShopifyClient, credit_order_id: int, echo: Echo
) -> ReturnView:
    echo(f"reading Sitoo order {credit_order_id}...")
    credit = await sitoo.get_order(credit_order_id)
    if credit.creditorderid is None:
        echo("a blind return: reading the Shopify orders placed with its email...")
        found = await blind.search(shopify, credit, credit_rows(credit, {}))
        linked = found.linked
        if linked is not None and linked.marked(marker(credit.orderid)):
            return ReturnView(credit, None, linked.order_id, linked)
        return ReturnView(credit, None, None, None, found.fitting)
    original = await sitoo.get_order(credit.creditorderid)
    ref = pickup_ref(original)
    if ref is None:
        return ReturnView(credit, original, None, None)
    echo(f"reading Shopify order {ref.order_id}'s returns...")
    return ReturnView(credit, original, ref.order_id, await shopify.order_returns(ref.order_id))


def describe(view: ReturnView, reasons: Mapping[str, ReasonRule]) -> Iterator[str]:
    c = view.credit
    rows = credit_rows(c, reasons)
    money = credit_money(c)
    yield f"Sitoo credit order {c.orderid} at warehouse {c.warehouseid}"
    for row in rows:
        yield (
            f"  {row.units} x {row.sku}: {row.reason.shopify.value}"
            f"{'' if row.reason.resellable else ' (not resellable)'}; {row.reason.note}"
        )
    yield (
        f"  worth {money.value}, paid back at the till {money.paid_back_at_till}, exchanged "
        f"for other goods {money.settled_by_exchange}"
    )
    if view.blind:
        yield "  a blind return (no receipt)"
        if view.shopify is None:
            names = ", ".join(f"{o.name} ({o.order_id})" for o in view.candidates) or "none"
            yield "  linked to no online order yet; orders placed with its email that could "
            yield f"  take it back: {names}"
            return
    elif view.original is None:
        return
    elif view.shopify_order_id is None:
        yield f"  returns Sitoo order {view.original.orderid}, a till sale: Sitoo's alone"
        return
    else:
        yield f"  returns Sitoo order {view.original.orderid} ({view.original.externalid})"
    if view.shopify is None:
        yield f"Shopify has no order {view.shopify_order_id}"
        return
    s = view.shopify
    yield f"Shopify order {s.name} ({s.order_id}): received {s.received}, refunded {s.refunded}"
    for ret in _ours(view, rows):
        yield from _return_lines(ret)
    yield (
        f"  Shopify owes the customer {money.owed_in_shopify} for it (the rest: the till, or "
        "goods taken in exchange)"
    )


def _ours(view: ReturnView, rows: Sequence[CreditRow]) -> list[ShopifyReturn]:
    """The credit order's returns: marked for it, or the one the customer asked for online
    with its units (the writer took that one: unmarked, it holds exactly these units)."""
    if view.shopify is None:
        return []
    marked = view.shopify.marked(marker(view.credit.orderid))
    online = asked_online(view.shopify, rows, lambda _: False, ("REQUESTED", "OPEN", "CLOSED"))
    return marked or ([online] if online is not None else [])


def _return_lines(ret: ShopifyReturn) -> Iterator[str]:
    yield f"  return {ret.id}: {ret.status}"
    for line in ret.lines:
        refunded = line.quantity - line.refundable
        yield f"    {line.quantity} x {line.sku}: {line.reason}, {refunded} refunded"
    for d in ret.disposals:
        for disp in d.dispositions:
            where = f" at location {disp.location_id}" if disp.location_id else ""
            yield f"    {disp.quantity} {disp.type.lower().replace('_', ' ')}{where}"
        if d.undisposed:
            yield f"    {d.undisposed} not disposed yet"


def problems(view: ReturnView, reasons: Mapping[str, ReasonRule]) -> list[str]:
    if view.blind and view.shopify is None:
        cid = view.credit.orderid
        return [
            f"blind return {cid} is linked to no online order yet: tillsync returns link "
            f"{cid} ORDER"
        ]
    if view.shopify_order_id is None or view.shopify is None:
        return []
    cid = view.credit.orderid
    rows = credit_rows(view.credit, reasons)
    ours = _ours(view, rows)
    if not ours:
        return [f"no Shopify return for credit order {cid} yet"]
    out: list[str] = []
    if len(ours) > 1:
        out.append(f"{len(ours)} Shopify returns are marked for credit order {cid}")
    if returned_by_sku(ours) != units_by_sku(rows):
        out.append(
            f"Shopify's return holds {dict(returned_by_sku(ours))}, the till returned "
            f"{dict(units_by_sku(rows))}"
        )
    if view.shopify.refunded > view.shopify.received:
        out.append(f"Shopify refunded {view.shopify.refunded}, more than it received")
    return out
