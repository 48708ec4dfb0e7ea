"""OrderLife and Player on the simulators alone (no worker): every plan and shape is played,
the Move Outs owed are named, and an oversell is judged against Sitoo's free units."""

from __future__ import annotations

from collections import Counter

import pytest

from tillsync.schemas.settings import Settings
from tillsync.schemas.sitoo import TRANSACTION_MOVE_IN, TRANSACTION_MOVE_OUT
from tillsync_sim.scenario.driver import Driver, Mix
from tillsync_sim.scenario.network import Network, NetworkSpec, build
from tillsync_sim.scenario.orders import IN_STORE, PLANS, SHIPPED_IN_STORE, OrderLife, Player
from tillsync_sim.shopify import ShopifySimulator
from tillsync_sim.sitoo import SitooSimulator

SETTINGS = Settings(
    shopify_shop="tillsync-test.myshopify.com",
    shopify_access_token="shpat_test",
    shopify_app_secret="secret",
    sitoo_account_id=90001,
    sitoo_api_id="90001-1",
    sitoo_api_password="password",
)


@pytest.fixture
def shop() -> tuple[Network, ShopifySimulator, SitooSimulator]:
    # no webhook subscriptions and no Events SPI address: nothing is sent anywhere
    shopify = ShopifySimulator(SETTINGS)
    sitoo = SitooSimulator(SETTINGS, seed_spec=None)
    spec = NetworkSpec(stores=3, skus=40, min_stock=10, max_stock=30, seed=3)
    return build(shopify, sitoo, spec), shopify, sitoo


def _book(life: OrderLife, sitoo: SitooSimulator, network: Network) -> None:
    """Book the Move Outs and reversals owed, as tillsync's Sitoo sink would."""
    booked = {t.externalid for t in sitoo.state.transactions_from(1)}
    warehouse = {s.shopify_location_id: s.sitoo_warehouse_id for s in network.stores}
    for externalid in sorted(life.expected_move_outs - booked):
        pending = life._pending[externalid]
        reversal = pending.sign < 0
        sitoo.state.add_transaction(
            {
                "warehouseid": warehouse[pending.location_id],
                "transactiontype": TRANSACTION_MOVE_IN if reversal else TRANSACTION_MOVE_OUT,
                "externalid": externalid,
                "items": [
                    {"sku": sku, "decimalquantity": str(n if reversal else -n)}
                    for sku, n in pending.units.items()
                ],
            }
        )


def test_every_plan_and_shape_is_played_and_each_move_out_owed_is_named(
    shop: tuple[Network, ShopifySimulator, SitooSimulator],
) -> None:
    network, shopify, sitoo = shop
    no_online = Mix(online_order=0, fulfilment=0)
    driver = Driver(network, shopify, sitoo, mix=no_online, seed=1)
    life = OrderLife(network, shopify, sitoo, seed=2, target_open=20)
    player = Player(driver, life, online=0.5, seed=3)
    for n in range(6_000):
        player.step()
        if n % 50 == 0:
            _book(life, sitoo, network)  # so that fulfilments can be cancelled
    # the ship-from-store plans are played only with ``ship_from_store`` (tillsync's Sitoo
    # order of the shipment): the lifecycle e2e plays them
    shipped_in_store = {p for p, steps in PLANS.items() if set(steps) & SHIPPED_IN_STORE}
    assert set(life.placed) == set(PLANS) - shipped_in_store
    assert {"multi_line", "one_sku_on_two_lines", "quantity_above_one"} <= set(life.shapes)
    assert life.shapes["more_than_ten_lines"] > 0
    # the in-store steps, and the steps after them, wait for the Sitoo order tillsync makes
    # (none here): the race test and the lifecycle e2e play them
    in_store = IN_STORE | SHIPPED_IN_STORE
    steps = {step for plan in PLANS.values() if not set(plan) & in_store for step in plan}
    assert steps <= set(life.done), steps - set(life.done)
    assert player.done["till_sale_two_lines"] > 0 and player.done["till_return_second_line"] > 0
    assert player.done["till_sale"] > 0 and "online_order" not in player.done
    # a Move Out for each store fulfilment, a reversal for each one cancelled
    store_locations = {s.shopify_location_id for s in network.stores}
    fulfilments = [
        f for f in shopify.state.fulfillments.values() if f.location_id in store_locations
    ]
    want = {f"sf-{f.order_id}-{f.id}" for f in fulfilments}
    want |= {f"sf-{f.order_id}-{f.id}-r" for f in fulfilments if f.status == "cancelled"}
    assert life.expected_move_outs == want
    assert any(e.endswith("-r") for e in want)
    _book(life, sitoo, network)
    assert life.pending_move_outs == 0
    # with everything booked, free is Sitoo's available less Shopify's committed
    for store in network.stores:
        for sku in network.skus:
            item = sitoo.state.stock[store.sitoo_warehouse_id].get(sku)
            available = int(item.available) if item is not None else 0
            level = shopify.state.levels[
                (shopify.state.item_for(sku).id, store.shopify_location_id)
            ]
            assert life.free(store.shopify_location_id, sku) == available - level.get("committed")


def test_an_order_for_units_sitoo_no_longer_has_is_oversold_in_its_window(
    shop: tuple[Network, ShopifySimulator, SitooSimulator],
) -> None:
    network, shopify, sitoo = shop
    window = ["normal"]
    life = OrderLife(network, shopify, sitoo, seed=4, target_open=1, window=lambda: window[0])
    store, other = network.stores[0], network.stores[1]
    loc = store.shopify_location_id
    scarce, plenty = network.skus[0], network.skus[1]
    item = sitoo.state.stock[store.sitoo_warehouse_id][scarce]
    # the till sells all but one unit; nobody tells Shopify, which still shows them
    sitoo.state.till_sale(
        store.sitoo_store_id, [{"sku": scarce, "quantity": int(item.available) - 1}]
    )
    assert life.free(loc, scarce) == 1
    window[0] = "shopify_outage"
    # two lines of one SKU, three units: one was free, two were not
    life.place_lines("ship", loc, [(scarce, 2), (scarce, 1), (plenty, 1)])
    assert life.oversold == Counter({"shopify_outage": 2})
    [oversell] = life.oversells
    assert (oversell.sku, oversell.units, oversell.free) == (scarce, 3, 1)
    # the till sale a moment ago: the race no sync can win, told apart from a level left wrong
    assert 0 <= oversell.since_sitoo_change <= 2
    assert life.free(loc, scarce) == -2  # the committed units count against it now
    # shipped: until Sitoo books the Move Out, the units still count against the store
    window[0] = "normal"
    assert life.step() == "fulfil"  # the only order in flight, its only step
    assert life.free(loc, scarce) == -2 and life.pending_move_outs == 1
    _book(life, sitoo, network)
    assert life.free(loc, scarce) == -2 and life.pending_move_outs == 0
    # at another store nothing was sold: nothing oversold there
    life.place_lines("ship", other.shopify_location_id, [(scarce, 1)])
    assert life.oversold == Counter({"shopify_outage": 2})
