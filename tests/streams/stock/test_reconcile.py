"""Reconciliation's decisions: what is a variance, which can be compared at all, how the worker
is told of one, and where the worker is asked about a SKU."""

from __future__ import annotations

from tillsync.schemas.events import ObservedSource
from tillsync.schemas.locations import Location, LocationMap
from tillsync.streams.stock.reconcile import (
    MOVED_DURING_EXPORT,
    compare,
    held_still,
    observations,
    stock_url,
)

LOC = Location(
    name="Store 1",
    shopify_location_id=11,
    sitoo_store_id=1,
    sitoo_warehouse_id=101,
    buffer=1,
    settle_seconds=2.0,
)
LOCATIONS = LocationMap(locations=[LOC])


def test_a_level_that_differs_from_sitoo_less_the_buffer_is_a_variance() -> None:
    shop = {("A", 11): (4, 7), ("B", 11): (2, 8)}
    [v] = compare(shop, {("A", 11): 5, ("B", 11): 5}, LOCATIONS)
    assert (v.sku, v.shopify, v.expected, v.sitoo_available) == ("B", 2, 4, 5)


def test_a_variance_where_sitoo_moved_during_the_export_is_noted_not_compared() -> None:
    shop = {("A", 11): (2, 7), ("B", 11): (2, 8)}
    variances = compare(shop, {("A", 11): 5, ("B", 11): 5}, LOCATIONS)
    # a till sale of A while Shopify was exported: Shopify may have been read before or after it
    after = {("A", 11): 4, ("B", 11): 5}
    notes = {v.sku: v.note for v in held_still(variances, after)}
    assert notes == {"A": MOVED_DURING_EXPORT, "B": ""}


def test_the_worker_is_told_of_a_variance_stamped_with_the_exports_start() -> None:
    [v] = compare({("A", 11): (2, 7)}, {("A", 11): 5}, LOCATIONS)
    [seen] = observations([v], stamp=1_700_000_000.0)
    assert seen.updated_at == 1_700_000_000.0 and seen.source is ObservedSource.RECONCILE
    assert (seen.available, seen.inventory_item_id, seen.location_id) == (2, 7, 11)


def test_a_sku_with_a_slash_is_one_path_segment() -> None:
    assert stock_url("http://w:6066", "A/B 1") == "http://w:6066/state/stock/A%2FB%201"
