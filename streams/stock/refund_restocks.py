"""A Shopify refund reaches Sitoo (``refunds_to_sitoo``): its restocked units as one Move In per
refund and store, and, for an order a Sitoo till handed over, its money and lines as one closed
credit order against that Sitoo order.

Staff refunding an online order in Shopify's admin may restock its units at a store location
(``restock_type`` RETURN, or LEGACY_RESTOCK of older refunds). Shopify's level has them back at
once; Sitoo, the master of store stock, has not, and without a Move In the stock flow would take
them out of Shopify again (a drift heal to Sitoo's level). The refund's webhook tells all a
Move In needs (SKU, units, location), so it is sent from the webhook itself, as a fulfilment's
Move Out is: a Shopify outage does not hold Sitoo's stock up. Its externalid names the refund
and the store's warehouse (``rf-<refund>-<warehouse>``), and the order's track remembers it
sent, so a repeat or a replay books it once.

The credit order (``RefundCredit``, carried out by ``tillsync.streams.returns.refund_credits``)
is Sitoo's record of the money, for its order reports: staff refunding a picked-up order in
Shopify's admin would otherwise leave Sitoo's sale standing. It holds the refunded lines whose
SKU that Sitoo order handed over, as negative rows at its warehouse, and a negative "Shopify"
payment of what Shopify paid back. It moves no stock (no delivery): the Move In above is the one
stock change, so a refund restocked at another store than the pickup's, or not restocked, is
booked as it happened. Its externalid ``rc-<refund>-<Sitoo order>`` names the one refund and
order: looked up before it is made, and remembered by the order's track.

Left to their own flows: a refund of a return (its restock is the return's disposition; a
store return's is the returns flow's, which made the refund itself), a CANCEL restock (units
never left, already in the held units), a restock at a location no store maps, and the lines of
an order no Sitoo till handed over (shipped, or picked up before tillsync ran): Sitoo has no
sale of them to credit.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from tillsync.schemas.events import RefundCredit, RefundCreditRow
from tillsync.schemas.locations import LocationMap
from tillsync.schemas.money import format_money, money
from tillsync.schemas.sitoo import WarehouseTransactionIn, WarehouseTransactionItemIn
from tillsync.streams.stock.held_units import MOVE_IN
from tillsync.streams.stock.order_topics import ORDER_TOPICS, REFUNDS_CREATE
from tillsync.streams.stock.pickups import PickupTrack

CREDIT_PREFIX = "rc-"  # a credit order tillsync made of a Shopify refund: never a till's return

RESTOCKS = frozenset({"return", "legacy_restock"})
CANCEL = "cancel"


def refund_external_id(refund_id: int, warehouse_id: int) -> str:
    return f"rf-{refund_id}-{warehouse_id}"


@dataclass(frozen=True, slots=True)
class RefundMoveIn:
    external_id: str
    move_in: WarehouseTransactionIn


def refunds_told(topic: str, body: bytes) -> list[Mapping[str, Any]]:
    """The refunds a webhook tells of, each in the shape of a ``refunds/create`` body: that
    body itself, or the ``refunds`` an order webhook carries (every refund of the order, so an
    ``orders/updated`` after a refund whose own webhook was lost brings it all the same). None
    for a body of another shape."""
    try:
        doc = json.loads(body)
    except ValueError:
        return []
    if not isinstance(doc, dict):
        return []
    if topic == REFUNDS_CREATE:
        return [doc]
    if topic in ORDER_TOPICS:
        refunds = doc.get("refunds")
        return [r for r in refunds if isinstance(r, dict)] if isinstance(refunds, list) else []
    return []


def made_since(doc: Mapping[str, Any], since: float) -> bool:
    """Whether a refund was made at ``since`` (epoch seconds, 0: never known) or later, by its
    ``created_at``; a refund with no readable time is not."""
    try:
        made = datetime.fromisoformat(str(doc["created_at"])).timestamp()
    except (KeyError, ValueError, TypeError):
        return False
    return since > 0 and made >= since


def refund_move_ins(
    doc: Mapping[str, Any], order_id: int, locations: LocationMap, sent: Collection[str]
) -> list[RefundMoveIn]:
    """The Move Ins a refund (``refunds_told``) tells of and not in ``sent`` yet; none for a
    refund of another shape or order (the read of the order tells the rest)."""
    try:
        if int(doc["order_id"]) != order_id or doc.get("return"):
            return []
        refund_id = int(doc["id"])
        units: Counter[tuple[int, str]] = Counter()
        for line in doc.get("refund_line_items") or []:
            if str(line.get("restock_type") or "").lower() not in RESTOCKS:
                continue
            loc = locations.by_shopify(int(line.get("location_id") or 0))
            sku = str((line.get("line_item") or {}).get("sku") or "")
            if loc is not None and sku:
                units[(loc.sitoo_warehouse_id, sku)] += int(line["quantity"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return []
    out: list[RefundMoveIn] = []
    for warehouse in sorted({w for w, _ in units}):
        ext = refund_external_id(refund_id, warehouse)
        items = [
            WarehouseTransactionItemIn(sku=sku, decimalquantity=f"{n}.000")
            for (w, sku), n in sorted(units.items())
            if w == warehouse and n > 0
        ]
        if ext in sent or not items:
            continue
        tx = WarehouseTransactionIn(
            warehouseid=warehouse,
            transactiontype=MOVE_IN,
            items=items,
            description=f"Shopify refund {refund_id} of order {order_id} restocked at the store",
            externalid=ext,
        )
        out.append(RefundMoveIn(ext, tx))
    return out


def credit_external_id(refund_id: int, sitoo_order_id: int) -> str:
    return f"{CREDIT_PREFIX}{refund_id}-{sitoo_order_id}"


def refund_credits(
    doc: Mapping[str, Any],
    order_id: int,
    pickups: Mapping[str, PickupTrack],
    locations: LocationMap,
    sent: Collection[str],
    now: float,
) -> list[RefundCredit]:
    """The credit orders a refund (``refunds_told``) asks of Sitoo and not in ``sent`` yet: one
    per Sitoo order that handed over a refunded line's SKU (the first such order of a SKU).
    The refund's money goes to them in turn, each up to its rows' value, the last the rest.
    Units cancelled before they were fulfilled (``restock_type`` cancel: declined at the
    counter, refunded before the pickup) were in no Sitoo sale: neither they nor their money
    are credited. A refund told before the handover is known credits nothing yet; the order's
    next webhook tells it again."""
    try:
        if int(doc["order_id"]) != order_id or doc.get("return"):
            return []
        refund_id = int(doc["id"])
        told = doc.get("refund_line_items") or []
        lines = [_credit_row(line) for line in told if not _cancelled(line)]
        cancelled = sum(
            (money(line.get("subtotal")) for line in told if _cancelled(line)), Decimal(0)
        )
        refunded = sum(
            (
                money(t.get("amount"))
                for t in doc.get("transactions") or []
                if str(t.get("kind")).lower() == "refund"
                and str(t.get("status")).lower() == "success"
            ),
            Decimal("0.00"),
        )
        currencies = [str(t.get("currency") or "") for t in doc.get("transactions") or []]
        currency = next((c for c in currencies if c), "")
    except (ValueError, KeyError, TypeError, AttributeError):
        return []
    mirrors = sorted(
        (t for t in pickups.values() if t.handed_over and t.sitoo_order_id and t.took),
        key=lambda t: t.sitoo_order_id,
    )
    rows: dict[int, list[RefundCreditRow]] = {}
    for row in lines:
        if row is None:
            continue
        mirror = next((t for t in mirrors if t.took.get(row.sku, 0) > 0), None)
        if mirror is not None:
            rows.setdefault(mirror.sitoo_order_id, []).append(row)
    out: list[RefundCredit] = []
    left = max(Decimal("0.00"), refunded - cancelled)
    for n, t in enumerate(m for m in mirrors if m.sitoo_order_id in rows):
        mine = rows[t.sitoo_order_id]
        value = sum((money(r.gross) for r in mine), Decimal("0.00"))
        paid = left if n == len(rows) - 1 else min(left, value)
        left -= paid
        ext = credit_external_id(refund_id, t.sitoo_order_id)
        loc = locations.by_shopify(t.location_id)
        if ext in sent or loc is None:
            continue
        out.append(
            RefundCredit(
                refund_id=refund_id,
                order_id=order_id,
                externalid=ext,
                mirror_order_id=t.sitoo_order_id,
                warehouse_id=loc.sitoo_warehouse_id,
                rows=mine,
                refunded=format_money(paid),
                currency=currency,
                at=now,
            )
        )
    return out


def _cancelled(line: Mapping[str, Any]) -> bool:
    return str(line.get("restock_type") or "").lower() == CANCEL


def _credit_row(line: Mapping[str, Any]) -> RefundCreditRow | None:
    item = line.get("line_item") or {}
    sku = str(item.get("sku") or "")
    units = int(line.get("quantity") or 0)
    if not sku or units <= 0:
        return None
    # ``subtotal`` is what the line refunds: with tax in a tax-included shop, before tax in one
    # that adds it (whose tax the payment row carries, exactly, with the rest of the money)
    return RefundCreditRow(
        sku=sku,
        name=str(item.get("name") or item.get("title") or sku),
        units=units,
        gross=format_money(money(line.get("subtotal"))),
        line_item_id=int(line.get("line_item_id") or item.get("id") or 0),
    )
