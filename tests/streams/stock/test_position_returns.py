"""A return at a till that Shopify restocks too is one change in Shopify, not two: the
position holds the units Sitoo booked back until the returns flow says whether Shopify
restocks them itself, in every order of arrival, and never for ever."""

from __future__ import annotations

from tillsync.schemas.events import DriftCheck, RestockState, ReturnRestock, SitooLevel
from tillsync.streams.stock.position import (
    RESTOCK_EXPECT_SECONDS,
    RETURN_GRACE,
    Position,
    step,
)

from .test_position import LOC, observed, ok, synced


def returned(total: int, version: int, delivery: int = 500, delta: int = 1) -> SitooLevel:
    """Sitoo's ledger: a return at the till booked back (its delivery named)."""
    return SitooLevel(
        sku="SKU",
        warehouse_id=101,
        total=total,
        version=version,
        event_time=100.0,
        delta=delta,
        return_delivery_id=delivery,
    )


def told(state: RestockState, at: float, delivery: int = 500) -> ReturnRestock:
    return ReturnRestock(sku="SKU", location_id=11, delivery_id=delivery, state=state, at=at)


def never_above_sitoo(pos: Position) -> None:
    assert pos.observed is not None and pos.sitoo_available is not None
    assert pos.observed <= pos.sitoo_available - LOC.buffer


def test_units_back_wait_for_shopifys_own_restock_and_are_offered_once() -> None:
    pos = synced(10)  # Shopify 8: 10 less the buffer of 2
    out = step(pos, returned(11, 2), LOC, 4.0)  # the return's own transaction
    assert not out.commands  # held: Shopify may restock it itself
    assert out.check_at == 4.0 + RETURN_GRACE
    out = step(pos, told(RestockState.EXPECTED, 5.0), LOC, 5.0)
    assert not out.commands
    step(pos, observed(9, 6.0), LOC, 6.0)  # Shopify's restock
    never_above_sitoo(pos)
    out = step(pos, told(RestockState.DONE, 6.1), LOC, 6.1)
    assert not out.commands and not out.drift and pos.drift_since is None
    assert pos.target(LOC.buffer) == 9 == pos.observed


def test_a_return_shopify_does_not_restock_reaches_shopify_through_the_stock_flow() -> None:
    pos = synced(10)
    step(pos, returned(11, 2), LOC, 4.0)
    out = step(pos, told(RestockState.RELEASED, 5.0), LOC, 5.0)
    assert [c.target for c in out.commands] == [9]


def test_told_before_the_ledger_the_units_are_not_held_once_shopify_has_them() -> None:
    pos = synced(10)
    step(pos, told(RestockState.EXPECTED, 4.0), LOC, 4.0)
    step(pos, observed(9, 5.0), LOC, 5.0)  # Shopify's restock, before Sitoo's ledger
    step(pos, told(RestockState.DONE, 5.1), LOC, 5.1)
    out = step(pos, returned(11, 2), LOC, 6.0)
    assert not out.commands and pos.target(LOC.buffer) == 9 == pos.observed


def test_a_return_never_told_of_is_released_after_the_grace() -> None:
    pos = synced(10)
    step(pos, returned(11, 2), LOC, 4.0)
    out = step(
        pos, DriftCheck(sku="SKU", location_id=11, at=4.0 + RETURN_GRACE), LOC, 4.0 + RETURN_GRACE
    )
    assert [c.target for c in out.commands] == [9]
    assert out.check_at is None or out.check_at > 4.0 + RETURN_GRACE


def test_expected_again_after_the_grace_holds_the_units_back_again() -> None:
    pos = synced(10)
    step(pos, returned(11, 2), LOC, 4.0)
    late = 4.0 + RETURN_GRACE
    step(pos, DriftCheck(sku="SKU", location_id=11, at=late), LOC, late)
    step(pos, ok(pos, 9, late + 0.1), LOC, late + 0.1)
    out = step(pos, told(RestockState.EXPECTED, late + 1), LOC, late + 1)
    assert [c.target for c in out.commands] == [8]  # Shopify's own restock will add it


def test_an_announced_restock_never_confirmed_stops_holding_units_back() -> None:
    pos = synced(10)
    step(pos, returned(11, 2), LOC, 4.0)
    out = step(pos, told(RestockState.EXPECTED, 5.0), LOC, 5.0)
    assert out.check_at == 5.0 + RESTOCK_EXPECT_SECONDS
    later = 5.0 + RESTOCK_EXPECT_SECONDS
    out = step(pos, DriftCheck(sku="SKU", location_id=11, at=later), LOC, later)
    assert [c.target for c in out.commands] == [9]


def test_repeats_and_replays_change_nothing() -> None:
    pos = synced(10)
    step(pos, returned(11, 2), LOC, 4.0)
    step(pos, told(RestockState.EXPECTED, 5.0), LOC, 5.0)
    step(pos, observed(9, 6.0), LOC, 6.0)
    step(pos, told(RestockState.DONE, 6.1), LOC, 6.1)
    for again in (told(RestockState.EXPECTED, 5.0), told(RestockState.DONE, 6.1)):
        out = step(pos, again, LOC, 7.0)
        assert out.ignored and not out.commands
    out = step(pos, returned(11, 2), LOC, 7.5)  # the ledger's transaction replayed
    assert out.ignored and pos.pending_units == 0
