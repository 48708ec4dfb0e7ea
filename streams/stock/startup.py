"""What a worker does before the stock flow runs: build the SKU index from both platforms and,
on the worker that owns the ledger, take the first snapshot of both sides.

The snapshot gives every position a starting point: Sitoo's warehouse items (versioned with the
newest ledger id read *before* them, so every later transaction is newer) and Shopify's levels
from a bulk export.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from tillsync.connectors.shopify.client import SnapshotLevel
from tillsync.schemas.events import ObservedSource, ShopifyObserved, SitooLevel, SitooReserved
from tillsync.schemas.locations import LocationMap
from tillsync.schemas.money import whole_units
from tillsync.streams.context import Context
from tillsync.streams.skus import SkuIndex
from tillsync.streams.stock import sku_feed
from tillsync.streams.stock.readings import ExportStamp

EXPORT_STAMP = ExportStamp()

log = logging.getLogger("tillsync.startup")


def snapshot_levels(
    levels: Iterable[SnapshotLevel], locations: LocationMap, skus: SkuIndex, stamp: float
) -> list[ShopifyObserved]:
    """The levels of a bulk export at mapped locations, each stamped `stamp` (the export's
    start: see ``readings``). A level of a SKU the index does not map to one item (claimed
    twice, or taken by a rename) is left out: no position may take that item."""
    return [
        ShopifyObserved(
            sku=level.sku,
            location_id=level.location_id,
            inventory_item_id=level.inventory_item_id,
            available=int(level.quantities.get("available", 0)),
            updated_at=stamp,
            source=ObservedSource.SNAPSHOT,
        )
        for level in levels
        if locations.by_shopify(level.location_id) is not None
        and skus.item_by_sku.get(level.sku) == level.inventory_item_id
    ]


async def build_index(
    ctx: Context, *, clock: Callable[[], float] = time.time, stamps: ExportStamp = EXPORT_STAMP
) -> list[ShopifyObserved]:
    """Fill the SKU index; return Shopify's current levels at mapped locations."""
    rt = ctx.runtime
    assert rt is not None
    asked_at = clock()
    snap = await rt.shopify.inventory_snapshot()
    findings = rt.skus.replace_shopify(snap.skus)
    await sku_feed.raise_findings(ctx, findings, clock())
    return snapshot_levels(snap.levels, rt.locations, rt.skus, stamps.of(asked_at, snap.started_at))


async def sitoo_snapshot(ctx: Context) -> tuple[int, list[SitooLevel | SitooReserved]]:
    """The newest ledger id, then every mapped warehouse's items."""
    rt = ctx.runtime
    assert rt is not None
    newest = 0
    body = await rt.sitoo.request(
        "GET",
        f"/sites/{rt.sitoo.site_id}/warehousetransactions.json",
        params={"sort": "-warehousetransactionid", "num": 1},
    )
    if body["items"]:
        newest = int(body["items"][0]["warehousetransactionid"])
    now = time.time()
    async for product in rt.sitoo.iter_products():
        rt.skus.add_sitoo(product.sku)
    events: list[SitooLevel | SitooReserved] = []
    for loc in rt.locations.locations:
        # a product with no warehouse item at a store has none there: Sitoo keeps no zero rows
        missing = set(rt.skus.sitoo_skus)
        async for item in rt.sitoo.iter_warehouse_items(loc.sitoo_warehouse_id, page_size=1000):
            rt.skus.add_sitoo(item.sku)
            missing.discard(item.sku)
            events.append(
                SitooLevel(
                    sku=item.sku,
                    warehouse_id=loc.sitoo_warehouse_id,
                    total=whole_units(item.decimaltotal),
                    version=newest,
                    event_time=now,
                )
            )
            events.append(
                SitooReserved(
                    sku=item.sku,
                    warehouse_id=loc.sitoo_warehouse_id,
                    reserved=whole_units(item.decimalreserved),
                    observed_at=now,
                )
            )
        events.extend(
            SitooLevel(
                sku=sku,
                warehouse_id=loc.sitoo_warehouse_id,
                total=0,
                version=newest,
                event_time=now,
            )
            for sku in sorted(missing)
        )
    return newest, events


def register(ctx: Context) -> None:
    app = ctx.app
    rt = ctx.runtime
    assert rt is not None

    @app.task
    async def start_stock_flow() -> None:
        began = time.monotonic()
        feed_from = await sku_feed.end_offset(ctx)
        observed = await build_index(ctx)
        newest, sitoo_events = await sitoo_snapshot(ctx)
        for platform, other, only in (
            ("Sitoo", "Shopify", rt.skus.only_in_sitoo()),
            ("Shopify", "Sitoo", rt.skus.only_in_shopify()),
        ):
            if only:
                log.warning(
                    "%d SKUs are in %s but not in %s, so not synced; the first: %s",
                    len(only),
                    platform,
                    other,
                    ", ".join(sorted(only)[:20]),
                )
        rt.snapshot = (newest, [*sitoo_events, *observed])
        rt.ready.set()
        log.info(
            "stock flow ready in %.1fs: %d SKUs in Shopify, %d in Sitoo, %d locations",
            time.monotonic() - began,
            len(rt.skus.item_by_sku),
            len(rt.skus.sitoo_skus),
            len(rt.locations.locations),
        )
        # what other workers learn from product webhooks from now on
        await sku_feed.follow(ctx, feed_from)
