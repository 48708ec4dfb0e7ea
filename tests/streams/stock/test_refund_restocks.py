"""A refund staff make in Shopify reaches Sitoo from its webhook, once: the units it restocks at
a store as one Move In per refund and store, and, for an order a Sitoo till handed over, the
refund itself as one credit order against that Sitoo order."""

from __future__ import annotations

import json

from tests.streams.stock.test_orders import (
    LOC1,
    LOC2,
    LOCATIONS,
    ORDER,
    World,
    fo,
    fulfilment,
    state,
)
from tillsync.schemas.events import PickupHandedOver, PickupInSitoo
from tillsync.schemas.sitoo import WarehouseTransactionIn
from tillsync.streams.stock.order_reads import OrderRecord
from tillsync.streams.stock.order_topics import PICKUP_HANDED_OVER_TOPIC, PICKUP_IN_SITOO_TOPIC
from tillsync.streams.stock.pickups import PickupTrack
from tillsync.streams.stock.refund_restocks import refund_credits, refund_move_ins, refunds_told


def refund_webhook(
    refund_id: int,
    *lines: tuple[str, int, str, int | None],
    returned: int | None = None,
    paid: str | None = None,
    created_at: str = "2026-12-08T10:00:00Z",
) -> bytes:
    """A refunds/create body: (SKU, units, restock type, location) per refund line, each unit
    at 10.00; ``paid`` the money of its one refund transaction (none without)."""
    return json.dumps(
        {
            "id": refund_id,
            "order_id": ORDER,
            "created_at": created_at,
            "return": {"id": returned} if returned else None,
            "refund_line_items": [
                {
                    "id": n,
                    "line_item_id": 7000 + n,
                    "quantity": q,
                    "restock_type": kind,
                    "location_id": loc,
                    "subtotal": f"{10 * q}.00",
                    "total_tax": "0.00",
                    "line_item": {"id": 7000 + n, "sku": sku, "name": f"Item {sku}"},
                }
                for n, (sku, q, kind, loc) in enumerate(lines)
            ],
            "transactions": (
                [{"kind": "refund", "status": "success", "amount": paid, "currency": "SEK"}]
                if paid
                else []
            ),
        }
    ).encode()


def handed_over(fo_id: int, location: int, sitoo_order: int, **took: int) -> PickupTrack:
    return PickupTrack(
        fulfilment_order_id=fo_id,
        location_id=location,
        in_sitoo_at=1.0,
        sitoo_order_id=sitoo_order,
        handed_over=True,
        took=took,
    )


def test_only_restocks_at_a_mapped_store_outside_a_return_move_stock_in() -> None:
    body = refund_webhook(
        900,
        ("A", 2, "return", 11),
        ("A", 1, "legacy_restock", 11),
        ("B", 1, "no_restock", None),
        ("C", 1, "cancel", 11),
        ("D", 1, "return", 999),  # a location no store maps
    )
    [made] = refund_move_ins(json.loads(body), ORDER, LOCATIONS, sent=())
    tx: WarehouseTransactionIn = made.move_in
    assert made.external_id == f"rf-900-{LOC1.sitoo_warehouse_id}" == tx.externalid
    assert [(i.sku, i.decimalquantity) for i in tx.items] == [("A", "3.000")]
    assert refund_move_ins(json.loads(body), ORDER, LOCATIONS, sent=[made.external_id]) == []
    of_a_return = refund_webhook(901, ("A", 1, "return", 11), returned=5)
    assert refund_move_ins(json.loads(of_a_return), ORDER, LOCATIONS, sent=()) == []
    assert refunds_told("refunds/create", b"not json") == []
    assert refunds_told("orders/updated", b'{"refunds": "none"}') == []


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


def test_a_refund_of_an_order_handed_over_at_a_till_is_one_credit_order_against_it() -> None:
    """Its lines whose SKU that Sitoo order handed over, whether restocked or not, and the money
    Shopify paid back; once; none for a return's refund, nor for an order no till handed over."""
    body = refund_webhook(
        900,
        ("A", 2, "return", 11),
        ("B", 1, "no_restock", None),
        ("Z", 1, "no_restock", None),
        paid="25.00",
    )
    pickups = {"fo-1-11": handed_over(1, 11, 501, A=2, B=1)}
    [credit] = refund_credits(json.loads(body), ORDER, pickups, LOCATIONS, sent=(), now=5.0)
    assert (credit.externalid, credit.mirror_order_id, credit.warehouse_id) == (
        "rc-900-501",
        501,
        LOC1.sitoo_warehouse_id,
    )
    # Z was never in a Sitoo sale of this order: nothing to credit
    assert [(r.sku, r.units, r.gross) for r in credit.rows] == [
        ("A", 2, "20.00"),
        ("B", 1, "10.00"),
    ]
    assert (credit.refunded, credit.currency) == ("25.00", "SEK")
    assert (
        refund_credits(json.loads(body), ORDER, pickups, LOCATIONS, sent=["rc-900-501"], now=6.0)
        == []
    )
    of_a_return = refund_webhook(901, ("A", 1, "return", 11), returned=5, paid="10.00")
    assert (
        refund_credits(json.loads(of_a_return), ORDER, pickups, LOCATIONS, sent=(), now=5.0) == []
    )
    not_yet = {"fo-1-11": handed_over(1, 11, 501, A=2).model_copy(update={"handed_over": False})}
    assert refund_credits(json.loads(body), ORDER, not_yet, LOCATIONS, sent=(), now=5.0) == []


def test_a_refund_of_an_order_picked_up_at_two_stores_credits_each_its_own_lines() -> None:
    body = refund_webhook(902, ("A", 1, "no_restock", None), ("B", 1, "return", 12), paid="15.00")
    pickups = {
        "fo-1-11": handed_over(1, 11, 501, A=1),
        "fo-2-12": handed_over(2, 12, 502, B=1),
    }
    first, second = refund_credits(json.loads(body), ORDER, pickups, LOCATIONS, sent=(), now=5.0)
    assert [
        (c.mirror_order_id, c.warehouse_id, [r.sku for r in c.rows]) for c in (first, second)
    ] == [
        (501, LOC1.sitoo_warehouse_id, ["A"]),
        (502, LOC2.sitoo_warehouse_id, ["B"]),
    ]
    # the money in turn, each up to its lines' value, the last the rest: 15.00 in all
    assert (first.refunded, second.refunded) == ("10.00", "5.00")


async def hand_over(w: World, sitoo_order: int, **took: int) -> None:
    """Sitoo makes the pickup of fulfilment order 1 at location 11, and the till hands it over:
    both answers reach the order flow."""
    answer = PickupInSitoo(
        externalid="fo-1-11",
        order_id=ORDER,
        fulfilment_order_id=1,
        sitoo_order_id=sitoo_order,
        at=w.now,
    )
    handed = PickupHandedOver(
        externalid="fo-1-11",
        order_id=ORDER,
        fulfilment_order_id=1,
        location_id=11,
        took=took,
        at=w.now,
        delivered_at=w.now,
    )
    for topic, record in ((PICKUP_IN_SITOO_TOPIC, answer), (PICKUP_HANDED_OVER_TOPIC, handed)):
        value = record.model_dump_json().encode()
        await w.holds.take(OrderRecord(topic=topic, key=str(ORDER).encode(), value=value))


async def test_the_order_flow_asks_for_a_refunds_credit_order_once() -> None:
    w = World({("A", 11): 10})
    w.holds.refunds_to_sitoo = True
    await w.webhook(state(fo(1, 11, ("A", 2), method="PICK_UP")), "orders/create")
    await hand_over(w, sitoo_order=501, A=2)
    body = refund_webhook(900, ("A", 1, "no_restock", None), paid="10.00")
    for _ in range(2):  # a repeat, or a replay, asks once
        await w.holds.take(OrderRecord(topic="refunds/create", key=str(ORDER).encode(), value=body))
    assert [(c.externalid, c.refunded) for c in w.out.credits] == [("rc-900-501", "10.00")]


def test_units_cancelled_before_they_were_handed_over_are_no_credit_in_sitoo() -> None:
    """A ``cancel`` line (units declined at the counter, or refunded before the pickup) was never
    in a Sitoo sale, even where the same Sitoo order handed over other units of its SKU: its
    units and its money stay out of the credit order."""
    pickups = {"fo-1-11": handed_over(1, 11, 501, A=1, B=1)}
    declined = refund_webhook(903, ("A", 1, "cancel", 11), paid="10.00")
    assert refund_credits(json.loads(declined), ORDER, pickups, LOCATIONS, sent=(), now=5.0) == []
    both = refund_webhook(904, ("A", 1, "cancel", 11), ("B", 1, "no_restock", None), paid="20.00")
    [credit] = refund_credits(json.loads(both), ORDER, pickups, LOCATIONS, sent=(), now=5.0)
    assert [(r.sku, r.units) for r in credit.rows] == [("B", 1)]
    assert credit.refunded == "10.00"


async def test_a_refund_whose_own_webhook_never_came_reaches_sitoo_from_the_orders() -> None:
    """Shopify's order webhooks carry the order's refunds: an ``orders/updated`` after a refund
    whose ``refunds/create`` was lost (or came before the handover was known) books its Move In
    and its credit order, once however often the order is told of again."""
    w = World({("A", 11): 10})
    w.holds.refunds_to_sitoo = True
    await w.webhook(state(fo(1, 11, ("A", 2), method="PICK_UP")), "orders/create")
    refund = json.loads(refund_webhook(905, ("A", 1, "return", 11), paid="10.00"))
    early = json.dumps({"id": ORDER, "refunds": [refund]}).encode()
    # before the handover is known: the Move In only (the units are back at the store either
    # way), no credit order yet (nothing sold in Sitoo to credit)
    await w.holds.take(OrderRecord(topic="orders/updated", key=str(ORDER).encode(), value=early))
    assert [tx.externalid for tx in w.out.transactions] == [
        "rf-905-" + str(LOC1.sitoo_warehouse_id)
    ]
    assert w.out.credits == []
    await hand_over(w, sitoo_order=501, A=2)
    for _ in range(2):
        await w.holds.take(
            OrderRecord(topic="orders/updated", key=str(ORDER).encode(), value=early)
        )
    assert [(c.externalid, c.refunded) for c in w.out.credits] == [("rc-905-501", "10.00")]
    assert len([tx for tx in w.out.transactions if tx.externalid.startswith("rf-")]) == 1
    # a refund made before the worker knew the order is not its to book (Sitoo had it then)
    old = json.loads(
        refund_webhook(906, ("A", 1, "return", 11), paid="10.00", created_at="1970-01-01T00:00:10Z")
    )
    history = json.dumps({"id": ORDER, "refunds": [refund, old]}).encode()
    await w.holds.take(OrderRecord(topic="orders/updated", key=str(ORDER).encode(), value=history))
    assert not [tx for tx in w.out.transactions if "906" in (tx.externalid or "")]
    assert [c.externalid for c in w.out.credits] == ["rc-905-501"]
