"""Ship-from-store through Sitoo, the pure decisions: which fulfilment orders become Sitoo
orders by delivery method, a shipment's deadlines at the store, and what each shipped parcel
owes Shopify with its tracking."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from pydantic import ValidationError

from tillsync.connectors.shopify.fulfilment_state import (
    FulfilmentOrderLine,
    FulfilmentOrderState,
    OrderFulfilmentState,
)
from tillsync.connectors.shopify.pickup import Destination, PickupDetails, PickupLine, Tracking
from tillsync.schemas.events import PickupAction
from tillsync.schemas.locations import Location, LocationMap
from tillsync.schemas.settings import Settings
from tillsync.schemas.sitoo import (
    ORDER_CLOSED,
    Order,
    OrderDelivery,
    OrderDeliveryItem,
    OrderItem,
)
from tillsync.streams.stock import pickups
from tillsync.streams.stock.pickup_handover import shipments_owed

A, B = 11, 12  # Shopify locations of two stores
LOCATIONS = LocationMap(
    locations=[
        Location(name="A", shopify_location_id=A, sitoo_store_id=1, sitoo_warehouse_id=101),
        Location(name="B", shopify_location_id=B, sitoo_store_id=2, sitoo_warehouse_id=102),
    ]
)
BOTH = frozenset({pickups.PICK_UP, pickups.SHIPPING})


def _fo(fo: int, location: int, method: str, *lines: tuple[str, int]) -> FulfilmentOrderState:
    return FulfilmentOrderState(
        id=fo,
        status="OPEN",
        location_id=location,
        method=method,
        lines=tuple(
            FulfilmentOrderLine(id=fo * 10 + n, sku=sku, remaining=q)
            for n, (sku, q) in enumerate(lines)
        ),
    )


def _state(*fos: FulfilmentOrderState) -> OrderFulfilmentState:
    return OrderFulfilmentState(order_id=7, fulfilment_orders=fos, fulfilments=())


def test_a_shipment_is_a_sitoo_order_only_when_ship_from_store_is_on() -> None:
    state = _state(_fo(1, A, "PICK_UP", ("S-1", 1)), _fo(2, A, "SHIPPING", ("S-2", 2)))
    commands, _ = pickups.plan(7, state, LOCATIONS, {}, 100.0)
    assert [(c.fulfilment_order_id, c.method) for c in commands] == [(1, "PICK_UP")]
    commands, tracks = pickups.plan(7, state, LOCATIONS, {}, 100.0, BOTH)
    assert sorted((c.fulfilment_order_id, c.method, c.warehouse_id) for c in commands) == [
        (1, "PICK_UP", 101),
        (2, "SHIPPING", 101),
    ]
    assert tracks["fo-2-11"].method == "SHIPPING"


def test_one_order_over_two_stores_is_one_sitoo_order_per_store() -> None:
    state = _state(_fo(1, A, "SHIPPING", ("S-1", 1)), _fo(2, B, "SHIPPING", ("S-1", 1)))
    commands, _ = pickups.plan(7, state, LOCATIONS, {}, 100.0, BOTH)
    assert sorted((c.externalid, c.warehouse_id) for c in commands) == [
        ("fo-1-11", 101),
        ("fo-2-12", 102),
    ]


def test_a_shipment_fulfilled_in_shopify_cancels_its_sitoo_order() -> None:
    open_ = _state(_fo(2, A, "SHIPPING", ("S-2", 2)))
    _, tracks = pickups.plan(7, open_, LOCATIONS, {}, 100.0, BOTH)
    done = _state(_fo(2, A, "SHIPPING", ("S-2", 0)))
    commands, tracks = pickups.plan(7, done, LOCATIONS, tracks, 200.0, BOTH)
    assert [(c.action, c.method) for c in commands] == [(PickupAction.CANCEL, "SHIPPING")]
    assert tracks["fo-2-11"].cancelled


def test_a_shipment_is_late_if_not_shipped_never_for_ready_or_collect() -> None:
    state = _state(_fo(2, A, "SHIPPING", ("S-2", 2)))
    _, tracks = pickups.plan(7, state, LOCATIONS, {}, 0.0, BOTH)
    tracks = {k: t.model_copy(update={"in_sitoo_at": 10.0}) for k, t in tracks.items()}
    # three days on: a pickup would be "not ready" by now; a shipment is "not shipped"
    told, tracks = pickups.overdue(state, LOCATIONS, tracks, 3 * 86400.0, BOTH)
    assert [(t.type, t.owner.value, t.raised) for t in told] == [
        ("shipment_not_shipped", "store-ops", True)
    ]
    again, _ = pickups.overdue(state, LOCATIONS, tracks, 3 * 86400.0 + 60, BOTH)
    assert again == []  # raised once
    shipped = {
        k: t.model_copy(update={"handed_over": True, "handed_over_at": 3 * 86400.0})
        for k, t in tracks.items()
    }
    cleared, _ = pickups.overdue(
        _state(_fo(2, A, "SHIPPING", ("S-2", 0))), LOCATIONS, shipped, 3 * 86400.0 + 120, BOTH
    )
    assert [(t.type, t.raised) for t in cleared] == [("shipment_not_shipped", False)]


def test_ship_from_store_needs_the_pickup_writers() -> None:
    with pytest.raises(ValidationError, match="needs pickups_to_sitoo"):
        Settings(pickups_to_sitoo=False, ship_from_store_to_sitoo=True)
    assert Settings(ship_from_store_to_sitoo=True).sitoo_order_methods == BOTH
    assert Settings().sitoo_order_methods == frozenset({"PICK_UP"})


def _details(*lines: tuple[int, int, int]) -> PickupDetails:
    """Fulfilment order lines (id, total, remaining)."""
    return PickupDetails(
        fulfilment_order_id=2,
        status="OPEN",
        method="SHIPPING",
        location_id=A,
        order_id=7,
        order_name="#1001",
        email=None,
        financial_status="PAID",
        currency="SEK",
        lines=tuple(
            PickupLine(
                fulfilment_order_line_id=line,
                line_item_id=line + 1000,
                sku=f"S-{line}",
                name="item",
                remaining=remaining,
                total=total,
                unit_price=Decimal("10"),
            )
            for line, total, remaining in lines
        ),
    )


def _shipped(*parcels: tuple[str, str, dict[int, int]]) -> tuple[Order, list[OrderDelivery]]:
    """A Sitoo order of web lines 21 and 22, and its deliveries (tracking, carrier, web line ->
    units)."""
    order = Order(
        orderid=5,
        orderstateid=ORDER_CLOSED,
        orderitems=[
            OrderItem(
                orderitemid=web + 100,
                sku=f"S-{web}",
                quantity=3,
                additionaldata={"web-itemid": str(web)},
            )
            for web in (21, 22)
        ],
    )
    deliveries = [
        OrderDelivery(
            warehouseid=101,
            orderdeliveryid=n + 1,
            orderdeliveryref=tracking,
            pluginname=carrier,
            datedelivery=1000 + n,
            orderdeliveryitems=[
                OrderDeliveryItem(orderitemid=web + 100, quantity=q) for web, q in units.items()
            ],
        )
        for n, (tracking, carrier, units) in enumerate(parcels)
    ]
    return order, deliveries


def test_each_parcel_is_one_fulfilment_with_its_tracking_and_a_repeat_owes_nothing() -> None:
    order, deliveries = _shipped(("TRK-1", "PostNord", {21: 2}), ("TRK-2", "", {21: 1, 22: 3}))
    owed = shipments_owed(_details((21, 3, 3), (22, 3, 3)), order, deliveries)
    assert owed == [
        ({21: 2}, Tracking("TRK-1", "PostNord")),
        ({21: 1, 22: 3}, Tracking("TRK-2", "")),
    ]
    # the first parcel told before (Shopify fulfilled 2 of line 21): only the second is owed
    owed = shipments_owed(_details((21, 3, 1), (22, 3, 3)), order, deliveries)
    assert owed == [({21: 1, 22: 3}, Tracking("TRK-2", ""))]
    assert shipments_owed(_details((21, 3, 0), (22, 3, 0)), order, deliveries) == []


def test_a_parcel_without_a_reference_is_fulfilled_without_tracking() -> None:
    order, deliveries = _shipped(("", "", {22: 1}))
    assert shipments_owed(_details((21, 3, 3), (22, 3, 3)), order, deliveries) == [({22: 1}, None)]


def test_what_sitoo_took_is_timed_per_sku_and_never_shrinks() -> None:
    # the parcels of a shipment leave apart: a position's ledger has the sale of a SKU once it
    # is as new as that SKU's own parcel, not the order's last one (a lifecycle e2e run: a
    # unit held for good, as no later change of that SKU came)
    track = pickups.PickupTrack(fulfilment_order_id=2, location_id=A, method="SHIPPING")
    track = track.took_more({"S-1": 1}, {"S-1": 100.0})
    track = track.took_more({"S-1": 1, "S-2": 2}, {"S-1": 100.0, "S-2": 200.0})
    track = track.took_more({"S-1": 1}, {"S-1": 100.0})  # an older word, told late
    assert track.took == {"S-1": 1, "S-2": 2}
    assert pickups.taken_by_sitoo({"fo-2-11": track}) == {
        ("S-1", A): (1, 100.0),
        ("S-2", A): (2, 200.0),
    }


def test_a_sitoo_order_whose_fulfilment_order_changed_is_updated_once() -> None:
    before = _state(_fo(2, A, "PICK_UP", ("S-1", 3), ("S-2", 1)))
    _, tracks = pickups.plan(7, before, LOCATIONS, {}, 0.0, BOTH)
    confirmed = {"20": 3, "21": 1}
    tracks = {
        k: t.model_copy(update={"in_sitoo_at": 1.0, "lines": confirmed}) for k, t in tracks.items()
    }
    assert pickups.plan(7, before, LOCATIONS, tracks, 2.0, BOTH)[0] == []  # as made
    edited = _state(_fo(2, A, "PICK_UP", ("S-1", 1), ("S-2", 1)))
    commands, tracks = pickups.plan(7, edited, LOCATIONS, tracks, 3.0, BOTH)
    assert [(c.action, c.externalid) for c in commands] == [(PickupAction.UPDATE, "fo-2-11")]
    assert pickups.plan(7, edited, LOCATIONS, tracks, 4.0, BOTH)[0] == []  # asked once
    # handed over: its rest is the handover's to tell, never an update
    handed = {k: t.model_copy(update={"handed_over": True}) for k, t in tracks.items()}
    again = _state(_fo(2, A, "PICK_UP", ("S-1", 0), ("S-2", 1)))
    assert pickups.plan(7, again, LOCATIONS, handed, 5.0, BOTH)[0] == []


def test_a_move_out_waits_for_sitoo_only_while_its_rows_may_hold_the_units() -> None:
    # a shipment partly fulfilled in Shopify: until Sitoo confirms its rows shrank, the unit
    # Shopify fulfilled may be Sitoo's to hand over; after, it was the shop's own
    track = pickups.PickupTrack(
        fulfilment_order_id=2, location_id=A, method="SHIPPING", in_sitoo_at=1.0
    )
    partly = _state(_fo(2, A, "SHIPPING", ("S-1", 1), ("S-2", 1)))
    made = {"fo-2-11": track.model_copy(update={"lines": {"20": 3, "21": 1}})}
    assert pickups.awaiting_sitoo(made, partly) == {A}
    assert pickups.awaiting_sitoo(made) == {A}  # no state (a webhook's): wait, as before
    updated = {"fo-2-11": track.model_copy(update={"lines": {"20": 1, "21": 1}})}
    assert pickups.awaiting_sitoo(updated, partly) == set()
    taken = {"fo-2-11": updated["fo-2-11"].took_more({"S-1": 1}, {"S-1": 5.0})}
    assert pickups.awaiting_sitoo(taken, partly) == {A}  # Sitoo delivered: its word decides


def test_a_destination_never_shows_its_personal_data() -> None:
    to = Destination("Ann", "Lind", "Testgatan 1", "", "Stockholm", "11122", "", "SE", "+46701")
    shown = f"{to!r} {to} {replace(_details((21, 1, 1)), destination=to)!r}"
    assert not any(part in shown for part in ("Ann", "Lind", "Testgatan", "+46701"))
