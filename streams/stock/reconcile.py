"""Snapshot reconciliation: every position compared from both platforms' full exports.

Events can be missed (a webhook dropped for good, an outage longer than a retry window); a
snapshot cannot. Each variance is reported with what the worker knows of it, and with --heal
it is fed to the worker as a snapshot observation, so the worker's own drift rules mend it by
each location's policy (heal writes, alert only reports).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from urllib.parse import quote

import httpx
from aiokafka import AIOKafkaProducer

from tillsync.connectors.shopify.client import ShopifyClient, ShopifyConfig
from tillsync.connectors.sitoo.client import SitooClient, SitooConfig
from tillsync.schemas.events import ObservedSource, ShopifyObserved
from tillsync.schemas.locations import LocationMap
from tillsync.schemas.money import whole_units
from tillsync.schemas.settings import Settings
from tillsync.streams import topics
from tillsync.streams.skus import SkuIndex
from tillsync.streams.stock import sku_feed
from tillsync.streams.stock.readings import ExportStamp

EXPORT_STAMP = ExportStamp()

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Variance:
    sku: str
    location: str
    location_id: int
    inventory_item_id: int
    sitoo_available: int
    buffer: int
    expected: int  # sitoo available less the buffer; the worker also subtracts pending
    shopify: int
    pending: int | None  # from the worker, when it answers
    note: str


SitooAvailable = dict[tuple[str, int], int]  # (SKU, Shopify location) -> Sitoo's available
SKUS_PER_READ = 50  # SKUs asked of Sitoo in one listing when variances are checked again
MOVED_DURING_EXPORT = "Sitoo changed during the export: left to the worker's events"


def compare(
    shop: dict[tuple[str, int], tuple[int, int]], sitoo: SitooAvailable, locations: LocationMap
) -> list[Variance]:
    """Every level whose Shopify value differs from Sitoo's available less the buffer."""
    variances: list[Variance] = []
    for (sku, loc_id), (available, item_id) in sorted(shop.items()):
        loc = locations.by_shopify(loc_id)
        assert loc is not None
        have = sitoo.get((sku, loc_id), 0)
        expected = max(0, have - loc.buffer_for(sku))
        if available == expected:
            continue
        variances.append(
            Variance(
                sku,
                loc.name,
                loc_id,
                item_id,
                have,
                loc.buffer_for(sku),
                expected,
                available,
                None,
                "",
            )
        )
    return variances


def held_still(variances: list[Variance], after: SitooAvailable) -> list[Variance]:
    """The variances with a note where Sitoo's value read after the export differs from the
    one read before it: Shopify was read somewhere in between, so such a level cannot be
    compared (and its change reaches the worker as a ledger event anyway)."""
    return [
        v
        if after.get((v.sku, v.location_id), 0) == v.sitoo_available
        else replace(v, note=MOVED_DURING_EXPORT)
        for v in variances
    ]


async def _read_sitoo(sitoo: SitooClient, locations: LocationMap, echo: Echo) -> SitooAvailable:
    available: SitooAvailable = {}
    for n, store in enumerate(locations.locations, start=1):

        def progress(done: int, total: int, name: str = store.name, n: int = n) -> None:
            echo(f"\rreading Sitoo stock {n}/{len(locations.locations)} {name}: {done}/{total}")

        async for item in sitoo.iter_warehouse_items(
            store.sitoo_warehouse_id, page_size=1000, progress=progress
        ):
            available[(item.sku, store.shopify_location_id)] = whole_units(
                item.decimaltotal - item.decimalreserved
            )
    echo("")
    return available


async def _read_sitoo_again(
    sitoo: SitooClient, locations: LocationMap, variances: list[Variance]
) -> SitooAvailable:
    """Sitoo's available now for the variances' SKUs only."""
    skus_at: dict[int, list[str]] = {}
    for v in variances:
        skus_at.setdefault(v.location_id, []).append(v.sku)
    available: SitooAvailable = {}
    for loc_id, skus in skus_at.items():
        store = locations.by_shopify(loc_id)
        assert store is not None
        for i in range(0, len(skus), SKUS_PER_READ):
            chunk = skus[i : i + SKUS_PER_READ]
            for item in await sitoo.warehouse_items_by_sku(store.sitoo_warehouse_id, chunk):
                available[(item.sku, loc_id)] = whole_units(
                    item.decimaltotal - item.decimalreserved
                )
    return available


async def reconcile_stock(
    settings: Settings,
    locations: LocationMap,
    *,
    heal: bool,
    echo: Echo,
    worker_url: str | None = None,
    clock: Callable[[], float] = time.time,
    stamps: ExportStamp = EXPORT_STAMP,
) -> list[Variance]:
    shopify = ShopifyClient(ShopifyConfig.from_settings(settings))
    sitoo = SitooClient(SitooConfig.from_settings(settings))
    try:
        # Sitoo before and after Shopify's export: a level is compared only where Sitoo held
        # still throughout, whenever during the export Shopify's value was read
        before = await _read_sitoo(sitoo, locations, echo)
        echo("exporting Shopify inventory (bulk operation)...")
        asked_at = clock()
        snap = await shopify.inventory_snapshot()
        index = SkuIndex()
        for finding in index.replace_shopify(snap.skus):
            echo(sku_feed.sku_exception(finding, clock()).message)
        shop = {
            (level.sku, level.location_id): (
                int(level.quantities.get("available", 0)),
                level.inventory_item_id,
            )
            for level in snap.levels
            if locations.by_shopify(level.location_id) is not None
            and index.item_by_sku.get(level.sku) == level.inventory_item_id
        }
        echo(f"  {len(shop)} levels at {len(locations.locations)} mapped locations")
        variances = compare(shop, before, locations)
        if variances:
            variances = held_still(variances, await _read_sitoo_again(sitoo, locations, variances))
        if worker_url:
            variances = await _explain(variances, worker_url, settings.state_auth_headers)
        healable = [v for v in variances if v.note != MOVED_DURING_EXPORT]
        if heal and healable:
            await _feed(settings, healable, stamps.of(asked_at, snap.started_at))
            echo(f"sent {len(healable)} snapshot observations to the worker to heal by policy")
        return variances
    finally:
        await shopify.aclose()
        await sitoo.aclose()


async def _explain(
    variances: list[Variance], worker_url: str, headers: dict[str, str]
) -> list[Variance]:
    out = []
    async with httpx.AsyncClient(timeout=10, headers=headers) as http:
        for v in variances:
            if v.note == MOVED_DURING_EXPORT:
                out.append(v)
                continue
            try:
                body = (await http.get(stock_url(worker_url, v.sku))).json()
            except (httpx.HTTPError, ValueError):
                out.append(v)
                continue
            pos = next(
                (p for p in body.get("positions", []) if p["shopify_location_id"] == v.location_id),
                None,
            )
            if pos is None:
                out.append(v)
                continue
            pending = int(pos.get("pending") or 0)
            explained = v.expected - pending == v.shopify
            note = (
                f"explained by {pending} pending online units"
                if explained
                else ("write in flight" if pos.get("in_flight") else "unexplained")
            )
            out.append(replace(v, pending=pending, note=note))
    return out


def stock_url(worker_url: str, sku: str) -> str:
    """The worker's view of one SKU: the SKU is one path segment, '/' and all."""
    return f"{worker_url}/state/stock/{quote(sku, safe='')}"


def observations(variances: list[Variance], stamp: float) -> list[ShopifyObserved]:
    """What the worker is told of each variance: Shopify's value as the export read it,
    stamped with the export's start (``readings``), not with the time it is sent."""
    return [
        ShopifyObserved(
            sku=v.sku,
            location_id=v.location_id,
            inventory_item_id=v.inventory_item_id,
            available=v.shopify,
            updated_at=stamp,
            source=ObservedSource.RECONCILE,
        )
        for v in variances
    ]


async def _feed(settings: Settings, variances: list[Variance], stamp: float) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        name = topics.STOCK_EVENTS.name(settings.app_id)
        for ev in observations(variances, stamp):
            await producer.send(name, key=ev.sku.encode(), value=ev.model_dump_json().encode())
        await producer.flush()
    finally:
        await producer.stop()


def run(
    settings: Settings, locations: LocationMap, heal: bool, echo: Echo, worker_url: str | None
) -> list[Variance]:
    return asyncio.run(
        reconcile_stock(settings, locations, heal=heal, echo=echo, worker_url=worker_url)
    )
