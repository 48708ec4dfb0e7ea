"""What a store return owes Shopify, worked out from both platforms' state. Pure: no I/O.

A Sitoo credit order (a return at the till) of an order tillsync made in Sitoo becomes one
Shopify return. Each of its rows names the SKU, the units and Sitoo's reason; the return's
lines are the order's fulfilment line items of that SKU still returnable, those fulfilled at
the original's store first. Every line's note carries the credit order's marker, which is how a
later run (a repeat, a replay, an answer lost) finds the return made and never makes a second.

Money follows flows.md C: the credit order's value ``V`` less what the till paid back ``P``
is what Shopify still owes the customer. Nothing owed: the lines are refunded with no money
("refunded outside Shopify"); something owed: Shopify refunds it from the order's payments,
once Shopify's suggested refund for the lines agrees with ``V``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from tillsync.connectors.shopify.returns import (
    RESTOCKED,
    DisposalIn,
    OrderReturns,
    ReturnLineIn,
    ShopifyReturn,
    SuggestedTransaction,
)
from tillsync.schemas.returns import ReasonRule, ReturnReason, reason_of
from tillsync.schemas.sitoo import Order, OrderDelivery, OrderItem

TOLERANCE = Decimal("0.01")  # tax-included rounding across a credit order's rows
ZERO = Decimal("0.00")


MARKED = "[tillsync:"


def marker(credit_order_id: int) -> str:
    """The key of one credit order's Shopify return, in each of its lines' notes. Bracketed,
    so that c12's is not found inside c123's."""
    return f"{MARKED}c{credit_order_id}]"


def asked_online(
    state: OrderReturns,
    rows: Sequence[CreditRow],
    taken: Callable[[int], bool],
    statuses: Collection[str] = ("REQUESTED", "OPEN"),
) -> ShopifyReturn | None:
    """A return of the order the customer asked for online (no line marked by tillsync), in
    one of ``statuses``, holding exactly the credit order's units per SKU and not ``taken``
    by another credit order: the goods came to a till instead of the post, so it is that
    return that is carried out, not a second one (flows.md C)."""
    want = units_by_sku(rows)
    for ret in state.returns:
        if (
            ret.status in statuses
            and not any(MARKED in line.note for line in ret.lines)
            and returned_by_sku([ret]) == want
            and not taken(ret.id)
        ):
            return ret
    return None


@dataclass(frozen=True, slots=True)
class CreditRow:
    """A returned row of a credit order: units of a SKU back in a Sitoo warehouse."""

    sku: str
    units: int
    reason: ReturnReason
    warehouse_id: int | None


def credit_rows(credit: Order, reasons: Mapping[str, ReasonRule]) -> list[CreditRow]:
    extra = credit.additionaldata
    order_code = str(extra.get("refundreasoncode-reasoncode") or "")
    comment = str(extra.get("refundreasoncode-comment") or "")
    rows: list[CreditRow] = []
    for item in credit.orderitems:
        if item.quantity >= 0 or not item.sku:
            continue
        code = str(item.additionaldata.get("reasoncode-return") or order_code)
        wid = item.additionaldata.get("return-warehouseid") or credit.warehouseid
        rows.append(
            CreditRow(
                sku=item.sku,
                units=-item.quantity,
                reason=reason_of(code, comment, dict(reasons)),
                warehouse_id=int(wid) if wid is not None else None,
            )
        )
    return rows


@dataclass(frozen=True, slots=True)
class ReturnPlan:
    lines: list[ReturnLineIn]
    short: dict[str, int]  # SKU -> units Shopify has nothing left to return for


def plan_return(
    rows: Sequence[CreditRow], state: OrderReturns, at_location: int | None, mark: str
) -> ReturnPlan:
    """The return's lines: each row's units from the SKU's fulfilment line items still
    returnable, those fulfilled at ``at_location`` (the original's store) first, then oldest."""
    left = state.returnable()
    by_sku: dict[str, list[int]] = defaultdict(list)
    for f in sorted(state.fulfilment_lines, key=lambda f: (f.location_id != at_location, f.id)):
        by_sku[f.sku].append(f.id)
    taken: dict[tuple[int, str, str], int] = {}
    short: Counter[str] = Counter()
    for row in rows:
        need = row.units
        for fid in by_sku.get(row.sku, []):
            take = min(need, left.get(fid, 0))
            if take <= 0:
                continue
            key = (fid, row.reason.shopify.value, f"{row.reason.note} {mark}")
            taken[key] = taken.get(key, 0) + take
            left[fid] -= take
            need -= take
            if need == 0:
                break
        if need:
            short[row.sku] += need
    lines = [ReturnLineIn(fid, n, reason, note) for (fid, reason, note), n in taken.items()]
    return ReturnPlan(lines=lines, short=dict(short))


def units_by_sku(rows: Iterable[CreditRow]) -> Counter[str]:
    out: Counter[str] = Counter()
    for row in rows:
        out[row.sku] += row.units
    return out


def returned_by_sku(returns: Iterable[ShopifyReturn]) -> Counter[str]:
    out: Counter[str] = Counter()
    for r in returns:
        for line in r.lines:
            out[line.sku] += line.quantity
    return out


@dataclass(frozen=True, slots=True)
class Fate:
    """What becomes of a returned line's units: restocked at a Shopify location, or not."""

    sku: str
    restock_at: int | None


def fates(
    ret: ShopifyReturn, rows: Sequence[CreditRow], location_of: Mapping[int, int]
) -> dict[int, Fate]:
    """Fulfilment line item id -> its fate. Restocked where Sitoo took the units back when
    that warehouse is a mapped store and the row's reason says resellable; otherwise not
    (damaged, or a warehouse Shopify has no location for)."""
    out: dict[int, Fate] = {}
    for line in ret.lines:
        same = [r for r in rows if r.sku == line.sku]
        # the row the line was made of; a return the customer asked for online has their
        # reason and note, so there the SKU's row
        row = next(
            (
                r
                for r in same
                if r.reason.shopify.value == line.reason and r.reason.note in line.note
            ),
            same[0] if same else None,
        )
        where = None
        if row is not None and row.reason.resellable and row.warehouse_id is not None:
            where = location_of.get(row.warehouse_id)
        out[line.fulfilment_line_id] = Fate(line.sku, where)
    return out


def disposals(ret: ShopifyReturn, fate: Mapping[int, Fate]) -> list[DisposalIn]:
    """What is left to dispose of the return, each line as its fate says."""
    out: list[DisposalIn] = []
    for d in ret.disposals:
        if d.undisposed <= 0:
            continue
        f = fate.get(d.fulfilment_line_id)
        out.append(DisposalIn(d.id, d.undisposed, f.restock_at if f is not None else None))
    return out


def within_room(
    plan: Sequence[DisposalIn],
    ret: ShopifyReturn,
    fate: Mapping[int, Fate],
    room: Mapping[tuple[str, int], int],
) -> list[DisposalIn]:
    """``plan`` restocking no more units of a SKU at a location than ``room`` there; the rest
    of each line is disposed of as not restocked.

    Shopify's restock adds to what it shows, while the stock flow sets what it shows from
    Sitoo: the two agree only while Shopify shows Sitoo's units less the buffer. At a store
    below its buffer (or below zero: sold past its stock) Shopify shows 0, not less, and a
    restock of every returned unit would show more than Sitoo's target (a run of the returns
    e2e: Sitoo at -1, four returns of one SKU, Shopify at 5 for a target of 3)."""
    by_line = {d.id: d.fulfilment_line_id for d in ret.disposals}
    left = dict(room)
    out: list[DisposalIn] = []
    for d in plan:
        f = fate.get(by_line.get(d.disposal_line_id, 0))
        if d.restock_at is None or f is None:
            out.append(d)
            continue
        key = (f.sku, d.restock_at)
        restock = min(d.quantity, max(0, left.get(key, 0)))
        left[key] = left.get(key, 0) - restock
        if restock:
            out.append(DisposalIn(d.disposal_line_id, restock, d.restock_at))
        if d.quantity > restock:
            out.append(DisposalIn(d.disposal_line_id, d.quantity - restock, None))
    return out


@dataclass(frozen=True, slots=True)
class RestockUnits:
    sku: str
    location_id: int
    units: int


def planned_restocks(
    plan: Sequence[DisposalIn], ret: ShopifyReturn, fate: Mapping[int, Fate]
) -> list[RestockUnits]:
    """The units ``plan`` restocks, per SKU and location (before the call)."""
    by_line = {d.id: d.fulfilment_line_id for d in ret.disposals}
    out: Counter[tuple[str, int]] = Counter()
    for d in plan:
        f = fate.get(by_line.get(d.disposal_line_id, 0))
        if d.restock_at is not None and f is not None:
            out[(f.sku, d.restock_at)] += d.quantity
    return [RestockUnits(sku, loc, n) for (sku, loc), n in out.items()]


def restocked(ret: ShopifyReturn) -> list[RestockUnits]:
    """The units Shopify shows restocked by the return, per SKU and location (after)."""
    sku_of = {line.fulfilment_line_id: line.sku for line in ret.lines}
    out: Counter[tuple[str, int]] = Counter()
    for d in ret.disposals:
        for disp in d.dispositions:
            if disp.type == RESTOCKED and disp.location_id is not None:
                out[(sku_of.get(d.fulfilment_line_id, ""), disp.location_id)] += disp.quantity
    return [RestockUnits(sku, loc, n) for (sku, loc), n in out.items() if sku]


@dataclass(frozen=True, slots=True)
class Returned:
    """Units of a SKU one delivery of a credit order brought back to a mapped store."""

    delivery_id: int
    location_id: int
    sku: str
    units: int


def returned_units(
    credit: Order, deliveries: Sequence[OrderDelivery], location_of: Mapping[int, int]
) -> list[Returned]:
    """Per delivery and SKU, what the credit order's deliveries booked back at stores Shopify
    has a location for (the units the positions there hold until told)."""
    sku_of = {
        i.orderitemid: i.sku for i in credit.orderitems if i.orderitemid is not None and i.sku
    }
    out: Counter[tuple[int, int, str]] = Counter()
    for d in deliveries:
        loc = location_of.get(d.warehouseid)
        if d.orderdeliveryid is None or d.datecancelled or loc is None:
            continue
        for item in d.orderdeliveryitems:
            sku = sku_of.get(item.orderitemid)
            if sku and item.quantity < 0:
                out[(d.orderdeliveryid, loc, sku)] -= item.quantity
    return [Returned(odid, loc, sku, n) for (odid, loc, sku), n in out.items()]


@dataclass(frozen=True, slots=True)
class CreditMoney:
    """A credit order's money: what the returned goods are worth in Sitoo, what the customer
    took for them instead (goods on the same receipt, or another order paid with a virtual
    payment: an exchange), and what the till paid back in money (negative: the customer paid
    in, for dearer goods)."""

    value: Decimal
    paid_at_till: Decimal
    exchanged: Decimal = ZERO

    @property
    def owed_in_shopify(self) -> Decimal:
        return max(ZERO, self.value - self.exchanged - self.paid_at_till)

    @property
    def settled_by_exchange(self) -> Decimal:
        return min(self.value, max(ZERO, self.exchanged))

    @property
    def paid_back_at_till(self) -> Decimal:
        return max(ZERO, min(self.value - self.settled_by_exchange, self.paid_at_till))


def _gross(item: OrderItem) -> Decimal:
    return Decimal(item.moneyitemtotal_net or 0) + Decimal(item.moneyitemtotal_vat or 0)


def credit_money(credit: Order) -> CreditMoney:
    """The order's total nets the returned rows against goods taken on the same receipt, so
    the returned goods are worth the total less those (flows.md C: exchanges)."""
    taken = sum((_gross(i) for i in credit.orderitems if i.sku and i.quantity > 0), ZERO)
    if credit.moneytotal_gross_all is not None:
        total = -Decimal(credit.moneytotal_gross_all)
    else:
        total = -sum((_gross(i) for i in credit.orderitems), ZERO)
    virtual = -sum((Decimal(p.moneyamount) for p in credit.payments if p.virtual), ZERO)
    money = -sum((Decimal(p.moneyamount) for p in credit.payments if not p.virtual), ZERO)
    return CreditMoney(value=total + taken, paid_at_till=money, exchanged=taken + virtual)


def cut_to(
    transactions: Sequence[SuggestedTransaction], amount: Decimal
) -> list[SuggestedTransaction]:
    """Shopify's suggested split of a refund, taken in its order up to ``amount``."""
    out: list[SuggestedTransaction] = []
    left = amount
    for t in transactions:
        take = min(left, t.amount)
        if take <= 0:
            break
        out.append(SuggestedTransaction(t.parent_id, take, t.gateway))
        left -= take
    return out
