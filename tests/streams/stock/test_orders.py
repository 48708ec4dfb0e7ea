"""Online orders' pending units and Move Outs, from the routing answer to the position."""

from __future__ import annotations

import json
from typing import Any

from tillsync.schemas.events import PendingUnits
from tillsync.schemas.locations import Location, LocationMap
from tillsync.schemas.shopify import Order
from tillsync.streams.stock.ledger import read_transactions
from tillsync.streams.stock.orders import PendingLine, move_outs, pending_events, pending_lines_of
from tillsync.streams.stock.position import Position, step

LOC1 = Location(
    name="Store 1",
    shopify_location_id=11,
    sitoo_store_id=1,
    sitoo_warehouse_id=101,
    buffer=2,
    settle_seconds=2.0,
)
LOC2 = Location(
    name="Store 2",
    shopify_location_id=12,
    sitoo_store_id=2,
    sitoo_warehouse_id=102,
    buffer=1,
    settle_seconds=2.0,
)
LOCATIONS = LocationMap(locations=[LOC1, LOC2])


def fulfilment_order(location: int, *lines: tuple[str, int], pickup: bool = False) -> Any:
    return {
        "assignedLocation": {"location": {"id": f"gid://shopify/Location/{location}"}},
        "deliveryMethod": {"methodType": "PICK_UP" if pickup else "SHIPPING"},
        "lineItems": {"nodes": [{"sku": sku, "remainingQuantity": n} for sku, n in lines]},
    }


def routing(*fos: Any) -> dict[str, Any]:
    return {"order": {"id": "gid://shopify/Order/55", "fulfillmentOrders": {"nodes": list(fos)}}}


def order(*lines: tuple[str, int], fulfilled_at: int | None = None) -> Order:
    items = [
        {"id": n + 1, "sku": sku, "quantity": qty, "price": "10.00"}
        for n, (sku, qty) in enumerate(lines)
    ]
    body: dict[str, Any] = {"id": 55, "name": "#1055", "line_items": items}
    if fulfilled_at is not None:
        body["fulfillments"] = [
            {"id": 900, "order_id": 55, "status": "success", "location_id": fulfilled_at}
            | {"line_items": items}
        ]
    return Order.model_validate(body)


def test_the_lines_of_one_sku_at_one_location_hold_their_sum() -> None:
    answer = routing(
        fulfilment_order(11, ("A", 2), ("B", 1), ("A", 3)),
        fulfilment_order(11, ("A", 4)),  # split into two fulfilment orders at one store
        fulfilment_order(12, ("A", 1)),
        fulfilment_order(12, ("A", 6), pickup=True),  # click & collect: Sitoo's own order
        fulfilment_order(99, ("A", 7)),  # not a mapped store
    )
    assert sorted(pending_lines_of(answer, LOCATIONS), key=lambda ln: (ln.location_id, ln.sku)) == [
        PendingLine(location_id=11, sku="A", units=9),
        PendingLine(location_id=11, sku="B", units=1),
        PendingLine(location_id=12, sku="A", units=1),
    ]


def test_an_order_with_two_lines_of_a_sku_holds_both_and_its_move_out_settles_both() -> None:
    placed = order(("A", 2), ("A", 3), fulfilled_at=11)
    lines = pending_lines_of(routing(fulfilment_order(11, ("A", 2), ("A", 3))), LOCATIONS)
    pos = Position(sku="A", location_id=11, inventory_item_id=7)
    step(
        pos,
        read_transactions([ledger_record(30, ("A", "10.000", "20.000"))], 0.0).levels[0],
        LOC1,
        1.0,
    )
    holds = [ev for ev in pending_events(placed, lines, final=False, now=2.0)]
    for ev in holds:
        if isinstance(ev, PendingUnits):
            step(pos, ev, LOC1, 2.0)
    assert pos.pending_units == 5 and pos.target(LOC1.buffer) == 20 - 2 - 5

    # the store ships both lines: one Move Out, and Sitoo's ledger lists each of its items
    [move_out] = move_outs(placed, LOCATIONS)
    assert move_out.warehouseid == 101 and move_out.externalid == "sf-55-900"
    totals = iter(["18.000", "15.000"])
    record = ledger_record(
        31,
        *((item.sku, item.decimalquantity, next(totals)) for item in move_out.items),
        externalid=move_out.externalid,
    )
    for level in read_transactions([record], 3.0).levels:
        step(pos, level, LOC1, 3.0)
    assert pos.sitoo_total == 15 and pos.pending_units == 0
    assert pos.target(LOC1.buffer) == 15 - 2  # the same 13 as before the Move Out
    # and a late or replayed hold of the order is stale
    assert all(step(pos, ev, LOC1, 4.0).ignored for ev in holds if isinstance(ev, PendingUnits))


def ledger_record(tx_id: int, *items: tuple[str, str, str], externalid: str | None = None) -> bytes:
    return json.dumps(
        {
            "warehousetransactionid": tx_id,
            "warehouseid": 101,
            "transactiontype": 20,
            "datecreated": 1_700_000_000,
            "externalid": externalid,
            "items": [
                {"sku": sku, "decimalquantity": qty, "decimaltotal": total}
                for sku, qty, total in items
            ],
        }
    ).encode()
