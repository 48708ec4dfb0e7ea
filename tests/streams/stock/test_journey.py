"""An online order's journey (``tillsync orders show``): both simulators over real HTTP and a
stand-in worker with the worker's own route, an order fulfilled in two parts, one fulfilment
cancelled after its Move Out was booked."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from aiohttp import web
from click.testing import CliRunner
from pydantic import SecretStr

from tests.simulators.test_orders import SETTINGS
from tillsync.cli import main
from tillsync.schemas.locations import Location, LocationMap
from tillsync.schemas.settings import Settings
from tillsync.streams.stock import journey as j
from tillsync_sim.scenario.network import Network, NetworkSpec, build
from tillsync_sim.shopify import ShopifySimulator
from tillsync_sim.sitoo import SitooSimulator

TOKEN = "st-journey"


@dataclass
class Shop:
    network: Network
    shopify: ShopifySimulator
    sitoo: SitooSimulator
    settings: Settings
    locations: LocationMap
    worker: str
    tracks: dict[int, dict[str, object]]


@pytest.fixture
async def shop() -> AsyncIterator[Shop]:
    async with running_shop() as running:
        yield running


@contextlib.asynccontextmanager
async def running_shop() -> AsyncIterator[Shop]:
    shopify = ShopifySimulator(SETTINGS)
    sitoo = SitooSimulator(SETTINGS, seed_spec=None)
    shopify_url = await shopify.start("127.0.0.1", 0)
    sitoo_url = await sitoo.start("127.0.0.1", 0)
    network = build(shopify, sitoo, NetworkSpec(stores=2, skus=6, min_stock=10, max_stock=20))
    tracks: dict[int, dict[str, object]] = {}

    async def order(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"error": "unauthorized"}, status=401)
        track = tracks.get(int(request.match_info["order_id"]))
        if track is None:
            return web.json_response({"error": "no such order"}, status=404)
        return web.json_response({"order_id": request.match_info["order_id"], **track})

    app = web.Application()
    app.router.add_get("/state/orders/{order_id}", order)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[-1][1]
    settings = SETTINGS.model_copy(
        update={
            "shopify_url": shopify_url,
            "sitoo_base_url": sitoo_url,
            "sitoo_requests_per_second": 1000.0,
            "state_token": SecretStr(TOKEN),
        }
    )
    locations = LocationMap(
        locations=[
            Location(
                name=s.name,
                shopify_location_id=s.shopify_location_id,
                sitoo_store_id=n + 1,
                sitoo_warehouse_id=s.sitoo_warehouse_id,
            )
            for n, s in enumerate(network.stores)
        ]
    )
    try:
        yield Shop(network, shopify, sitoo, settings, locations, f"http://127.0.0.1:{port}", tracks)
    finally:
        await runner.cleanup()
        await shopify.stop()
        await sitoo.stop()


def _move_out(shop: Shop, externalid: str, sku: str, units: int) -> None:
    warehouse = shop.network.stores[0].sitoo_warehouse_id
    shop.sitoo.state.add_transaction(
        {
            "warehouseid": warehouse,
            "transactiontype": 20,
            "externalid": externalid,
            "items": [{"sku": sku, "decimalquantity": f"{-units}.000"}],
        }
    )


async def _journey(shop: Shop, order_id: int, workers: list[str] | None = None) -> j.Journey:
    return await j.order_journey(
        shop.settings,
        shop.locations,
        order_id,
        workers=workers if workers is not None else [shop.worker],
        since=int(time.time()) - 3600,
        echo=lambda _: None,
    )


async def test_the_journey_tells_what_sitoo_owes_and_has_of_each_fulfilment(shop: Shop) -> None:
    state = shop.shopify.state
    store = shop.network.stores[0]
    loc = store.shopify_location_id
    a, b = shop.network.skus[0], shop.network.skus[1]
    order = state.place_order([(a, 2), (b, 1)], location_id=loc)
    [fo] = [state.fulfillment_orders[i] for i in order.fulfillment_order_ids]
    line_a = next(ln for ln in fo.lines if ln.sku == a)
    first = state.fulfil(fo.id, [(line_a.id, 1)])  # part of the order goes
    _move_out(shop, f"sf-{order.id}-{first.id}", a, 1)  # ... and Sitoo books its Move Out
    second = state.fulfil(fo.id, [(line_a.id, 1)])
    state.cancel_fulfillment(first.id)  # cancelled after its Move Out was booked
    shop.tracks[order.id] = {"version": 3, "held_at": [[b, loc]], "moved_out": [first.id]}

    journey = await _journey(shop, order.id)

    assert journey.shopify is not None and journey.track is not None
    # what the worker should hold is derived from Shopify now: the cancelled unit of `a` is
    # committed again and `b` still open; the second fulfilment holds `a` until its Move Out
    held = {
        (h.sku, h.location_id): (h.open, dict(h.fulfilled)) for h in journey.should_hold.values()
    }
    assert held == {(a, loc): (1, {second.id: 1}), (b, loc): (1, {})}
    by_ext = {bk.external_id: bk for bk in journey.bookings}
    assert set(by_ext) == {
        f"sf-{order.id}-{first.id}",
        f"sf-{order.id}-{first.id}-r",
        f"sf-{order.id}-{second.id}",
    }
    assert by_ext[f"sf-{order.id}-{first.id}"].verdict == "booked"
    assert by_ext[f"sf-{order.id}-{first.id}-r"].verdict == "OWED, not in Sitoo"
    assert by_ext[f"sf-{order.id}-{second.id}"].verdict == "OWED, not in Sitoo"
    assert j.problems(journey) == [
        f"sf-{order.id}-{first.id}-r is owed but not in Sitoo",
        f"sf-{order.id}-{second.id} is owed but not in Sitoo",
    ]
    text = "\n".join(j.describe(journey, shop.locations))
    assert f"fulfilment {first.id} CANCELLED from {store.name} ({loc})" in text
    assert f"worker {shop.worker}: version 3, holds at {b}@{loc}" in text
    assert f"Move Outs sent for [{first.id}]" in text

    # Sitoo books what is owed: nothing wrong any more
    _move_out(shop, f"sf-{order.id}-{second.id}", a, 1)
    _move_out(shop, f"sf-{order.id}-{first.id}-r", a, -1)
    journey = await _journey(shop, order.id)
    assert j.problems(journey) == []
    assert {bk.verdict for bk in journey.bookings} == {"booked"}


async def test_an_order_no_worker_knows_and_one_shopify_does_not_have(shop: Shop) -> None:
    order = shop.shopify.state.place_order(
        [(shop.network.skus[2], 1)], location_id=shop.network.stores[1].shopify_location_id
    )
    journey = await _journey(shop, order.id)
    assert journey.track is None and journey.bookings == ()
    text = "\n".join(j.describe(journey, shop.locations))
    assert "no worker named knows this order" in text
    assert "nothing owed: no fulfilment from a mapped store" in text

    missing = await _journey(shop, 987654321)
    assert missing.shopify is None and "    no such order" in j.describe(missing, shop.locations)


async def test_a_worker_that_wants_its_state_token_is_named(shop: Shop) -> None:
    order = shop.shopify.state.place_order(
        [(shop.network.skus[0], 1)], location_id=shop.network.stores[0].shopify_location_id
    )
    shop.settings = shop.settings.model_copy(update={"state_token": None})
    with pytest.raises(PermissionError, match="TILLSYNC_STATE_TOKEN"):
        await _journey(shop, order.id)


def test_orders_show_prints_the_journey_and_exits_1_while_a_move_out_is_owed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command as an operator runs it: settings from the environment, the location map
    from its file, the simulators and the stand-in worker in a thread of their own."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    serving = running_shop()
    running = asyncio.run_coroutine_threadsafe(serving.__aenter__(), loop).result(30)
    try:
        state = running.shopify.state
        loc = running.network.stores[0].shopify_location_id
        order = state.place_order([(running.network.skus[0], 1)], location_id=loc)
        fulfilled = state.fulfil(order.fulfillment_order_ids[0])
        for name in list(os.environ):
            if name.startswith("TILLSYNC_"):
                monkeypatch.delenv(name)
        where = tmp_path / "locations.yaml"
        where.write_text(yaml.safe_dump(running.locations.model_dump(mode="json")))
        s = running.settings
        for name, value in {
            "SHOPIFY_SHOP": s.shopify_shop,
            "SHOPIFY_URL": s.shopify_url,
            "SHOPIFY_ACCESS_TOKEN": "shpat_test",
            "SHOPIFY_APP_SECRET": "secret",
            "SITOO_BASE_URL": s.sitoo_base_url,
            "SITOO_ACCOUNT_ID": str(s.sitoo_account_id),
            "SITOO_API_ID": s.sitoo_api_id,
            "SITOO_API_PASSWORD": "password",
            "STATE_TOKEN": TOKEN,
            "LOCATIONS_FILE": str(where),
        }.items():
            monkeypatch.setenv(f"TILLSYNC_{name}", str(value))

        result = CliRunner().invoke(
            main, ["orders", "show", str(order.id), "--worker", running.worker]
        )
        assert result.exit_code == 1, result.output
        assert f"fulfilment {fulfilled.id} SUCCESS" in result.output
        assert f"PROBLEM: sf-{order.id}-{fulfilled.id} is owed but not in Sitoo" in result.output

        _move_out(running, f"sf-{order.id}-{fulfilled.id}", running.network.skus[0], 1)
        result = CliRunner().invoke(
            main, ["orders", "show", str(order.id), "--worker", running.worker]
        )
        assert result.exit_code == 0, result.output
        assert "booked (transaction" in result.output and "PROBLEM" not in result.output
    finally:
        asyncio.run_coroutine_threadsafe(serving.__aexit__(None, None, None), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


async def test_the_journey_tells_each_pickup_against_its_sitoo_order(shop: Shop) -> None:
    store = shop.network.stores[0]
    loc0 = store.shopify_location_id
    off = shop.shopify.state.place_order(
        [(shop.network.skus[2], 1)], location_id=loc0, delivery="PICK_UP"
    )
    # click & collect through Sitoo off: no Sitoo order is owed of a pickup
    shop.settings = shop.settings.model_copy(update={"pickups_to_sitoo": False})
    journey = await _journey(shop, off.id)
    assert journey.pickups == () and j.problems(journey) == []
    shop.settings = shop.settings.model_copy(update={"pickups_to_sitoo": True})
    loc = store.shopify_location_id
    sku = shop.network.skus[3]
    order = shop.shopify.state.place_order([(sku, 1)], location_id=loc, delivery="PICK_UP")
    [fo] = order.fulfillment_order_ids
    ext = f"fo-{fo}-{loc}"
    journey = await _journey(shop, order.id)
    [pickup] = journey.pickups
    assert (pickup.externalid, pickup.verdict) == (ext, "OWED, not in Sitoo")
    assert j.problems(journey) == [f"pickup {ext}: OWED, not in Sitoo"]

    made = shop.sitoo.state.add_order(
        {
            "ordertypeid": 10,
            "externalid": ext,
            "warehouseid": store.sitoo_warehouse_id,
            "additionaldata": {"weborder-bopis": "true"},
            "orderitems": [{"productname": "x", "sku": sku, "quantity": 1}],
        }
    )
    journey = await _journey(shop, order.id)
    assert [p.verdict for p in journey.pickups] == ["open"] and j.problems(journey) == []
    text = "\n".join(j.describe(journey, shop.locations))
    assert f"pickup {ext}: order {made.orderid}, open" in text

    shop.shopify.state.cancel_order(order.id)  # Shopify no longer commits it: Sitoo should not
    journey = await _journey(shop, order.id)
    assert j.problems(journey) == [f"pickup {ext}: OPEN in Sitoo, not wanted"]
