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
from dataclasses import dataclass

import httpx
from aiokafka import AIOKafkaProducer

from tillsync.connectors.shopify.client import ShopifyClient, ShopifyConfig
from tillsync.connectors.sitoo.client import SitooClient, SitooConfig
from tillsync.schemas.events import ObservedSource, ShopifyObserved
from tillsync.schemas.locations import LocationMap
from tillsync.schemas.money import whole_units
from tillsync.schemas.settings import Settings
from tillsync.streams import topics

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


async def reconcile_stock(
    settings: Settings,
    locations: LocationMap,
    *,
    heal: bool,
    echo: Echo,
    worker_url: str | None = None,
) -> list[Variance]:
    shopify = ShopifyClient(ShopifyConfig.from_settings(settings))
    sitoo = SitooClient(SitooConfig.from_settings(settings))
    try:
        echo("exporting Shopify inventory (bulk operation)...")
        _, levels = await shopify.inventory_snapshot()
        shop = {
            (level.sku, level.location_id): (
                int(level.quantities.get("available", 0)),
                level.inventory_item_id,
            )
            for level in levels
            if locations.by_shopify(level.location_id) is not None
        }
        echo(f"  {len(shop)} levels at {len(locations.locations)} mapped locations")
        sitoo_avail: dict[tuple[str, int], int] = {}
        for n, store in enumerate(locations.locations, start=1):

            def progress(done: int, total: int, name: str = store.name, n: int = n) -> None:
                echo(f"\rreading Sitoo stock {n}/{len(locations.locations)} {name}: {done}/{total}")

            async for item in sitoo.iter_warehouse_items(
                store.sitoo_warehouse_id, page_size=1000, progress=progress
            ):
                sitoo_avail[(item.sku, store.shopify_location_id)] = whole_units(
                    item.decimaltotal - item.decimalreserved
                )
        echo("")
        variances: list[Variance] = []
        for (sku, loc_id), (available, item_id) in sorted(shop.items()):
            loc = locations.by_shopify(loc_id)
            assert loc is not None
            have = sitoo_avail.get((sku, loc_id), 0)
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
        if worker_url:
            variances = await _explain(variances, worker_url, settings.state_auth_headers)
        if heal and variances:
            await _feed(settings, variances)
            echo(f"sent {len(variances)} snapshot observations to the worker to heal by policy")
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
            try:
                body = (await http.get(f"{worker_url}/state/stock/{v.sku}")).json()
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
            out.append(Variance(**{**v.__dict__, "pending": pending, "note": note}))
    return out


async def _feed(settings: Settings, variances: list[Variance]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        name = topics.STOCK_EVENTS.name(settings.app_id)
        now = time.time()
        for v in variances:
            ev = ShopifyObserved(
                sku=v.sku,
                location_id=v.location_id,
                inventory_item_id=v.inventory_item_id,
                available=v.shopify,
                updated_at=now,
                source=ObservedSource.RECONCILE,
            )
            await producer.send(name, key=v.sku.encode(), value=ev.model_dump_json().encode())
        await producer.flush()
    finally:
        await producer.stop()


def run(
    settings: Settings, locations: LocationMap, heal: bool, echo: Echo, worker_url: str | None
) -> list[Variance]:
    return asyncio.run(
        reconcile_stock(settings, locations, heal=heal, echo=echo, worker_url=worker_url)
    )
