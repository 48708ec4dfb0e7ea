"""A refund staff make in Shopify that restocks units at a store reaches Sitoo as one Move In
per refund and store, sent from its webhook, once."""

from __future__ import annotations

import json

from tests.streams.stock.test_orders import LOC1, LOCATIONS, ORDER, World, fo, fulfilment, state
from tillsync.schemas.sitoo import WarehouseTransactionIn
from tillsync.streams.stock.order_reads import OrderRecord
from tillsync.streams.stock.refund_restocks import refund_move_ins


def refund_webhook(
    refund_id: int, *lines: tuple[str, int, str, int | None], returned: int | None = None
) -> bytes:
    """A refunds/create body: (SKU, units, restock type, location) per refund line."""
    return json.dumps(
        {
            "id": refund_id,
            "order_id": ORDER,
            "return": {"id": returned} if returned else None,
            "refund_line_items": [
                {
                    "id": n,
                    "quantity": q,
                    "restock_type": kind,
                    "location_id": loc,
                    "line_item": {"sku": sku},
                }
                for n, (sku, q, kind, loc) in enumerate(lines)
            ],
        }
    ).encode()


def test_only_restocks_at_a_mapped_store_outside_a_return_move_stock_in() -> None:
    body = refund_webhook(
        900,
        ("A", 2, "return", 11),
        ("A", 1, "legacy_restock", 11),
        ("B", 1, "no_restock", None),
        ("C", 1, "cancel", 11),
        ("D", 1, "return", 999),  # a location no store maps
    )
    [made] = refund_move_ins(body, ORDER, LOCATIONS, sent=())
    tx: WarehouseTransactionIn = made.move_in
    assert made.external_id == f"rf-900-{LOC1.sitoo_warehouse_id}" == tx.externalid
    assert [(i.sku, i.decimalquantity) for i in tx.items] == [("A", "3.000")]
    assert refund_move_ins(body, ORDER, LOCATIONS, sent=[made.external_id]) == []
    of_a_return = refund_webhook(901, ("A", 1, "return", 11), returned=5)
    assert refund_move_ins(of_a_return, ORDER, LOCATIONS, sent=()) == []
    assert refund_move_ins(b"not json", ORDER, LOCATIONS, sent=()) == []


async def test_a_restocking_refund_is_one_move_in_and_the_target_keeps_shopifys_units() -> None:
    w = World({("A", 11): 10})
    w.holds.refunds_to_sitoo = True
    await w.webhook(state(fo(1, 11, status="CLOSED"), fulfilment(7, 11, ("A", 2))), "orders/create")
    w.deliver()
    w.book()  # the fulfilment's Move Out
    body = refund_webhook(900, ("A", 1, "return", 11))
    for _ in range(2):  # a repeat, or a replay, sends it once
        await w.holds.take(OrderRecord(topic="refunds/create", key=str(ORDER).encode(), value=body))
    moved_in = [t for t in w.out.transactions if (t.externalid or "").startswith("rf-")]
    assert [t.externalid for t in moved_in] == [f"rf-900-{LOC1.sitoo_warehouse_id}"]
    w.deliver()
    w.book()
    assert w.target("A", 11) == 9  # 10, less the two shipped, plus the one restocked


async def test_restocking_refunds_stay_in_shopify_alone_with_the_setting_off() -> None:
    w = World({("A", 11): 10})
    body = refund_webhook(900, ("A", 1, "return", 11))
    await w.holds.take(OrderRecord(topic="refunds/create", key=str(ORDER).encode(), value=body))
    assert not [t for t in w.out.transactions if (t.externalid or "").startswith("rf-")]
