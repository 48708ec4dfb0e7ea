"""A Shopify refund that restocks units at a store reaches Sitoo: one Move In per refund and
store (``refunds_to_sitoo``).

Staff refunding an online order in Shopify's admin may restock its units at a store location
(``restock_type`` RETURN, or LEGACY_RESTOCK of older refunds). Shopify's level has them back at
once; Sitoo, the master of store stock, has not, and without a Move In the stock flow would take
them out of Shopify again (a drift heal to Sitoo's level). The refund's webhook tells all a
Move In needs (SKU, units, location), so it is sent from the webhook itself, as a fulfilment's
Move Out is: a Shopify outage does not hold Sitoo's stock up. Its externalid names the refund
and the store's warehouse (``rf-<refund>-<warehouse>``), and the order's track remembers it
sent, so a repeat or a replay books it once.

Left to their own flows: a refund of a return (its restock is the return's disposition; a
store return's is the returns flow's), a CANCEL restock (units never left, already in the held
units), and a restock at a location no store maps.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass

from tillsync.schemas.locations import LocationMap
from tillsync.schemas.sitoo import WarehouseTransactionIn, WarehouseTransactionItemIn
from tillsync.streams.stock.held_units import MOVE_IN

RESTOCKS = frozenset({"return", "legacy_restock"})


def refund_external_id(refund_id: int, warehouse_id: int) -> str:
    return f"rf-{refund_id}-{warehouse_id}"


@dataclass(frozen=True, slots=True)
class RefundMoveIn:
    external_id: str
    move_in: WarehouseTransactionIn


def refund_move_ins(
    body: bytes, order_id: int, locations: LocationMap, sent: Collection[str]
) -> list[RefundMoveIn]:
    """The Move Ins a ``refunds/create`` body tells of and not in ``sent`` yet; none for a body
    of another shape or order (the read of the order tells the rest)."""
    try:
        doc = json.loads(body)
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
