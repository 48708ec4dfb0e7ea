"""The Move Out clock: fulfilment in Shopify to Move Out in Sitoo, as both simulators show."""

from __future__ import annotations

from tests.connectors.shopify.conftest import make_settings as shopify_settings
from tests.connectors.sitoo.conftest import make_settings as sitoo_settings
from tillsync_sim.scenario.driver import expected_available, moving_out
from tillsync_sim.scenario.move_out_latency import MoveOutClock
from tillsync_sim.scenario.network import NetworkSpec, build
from tillsync_sim.shopify import ManualClock, ShopifySimulator
from tillsync_sim.sitoo import SitooSimulator

MOVE_OUT = 2  # Sitoo's transactiontype for a Move Out


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_each_store_fulfilment_is_timed_to_its_move_out_and_the_rest_wait() -> None:
    shopify = ShopifySimulator(shopify_settings(), clock=ManualClock())
    sitoo = SitooSimulator(sitoo_settings(), seed_spec=None)
    network = build(shopify, sitoo, NetworkSpec(stores=2, skus=3, min_stock=5, max_stock=5))
    store = network.stores[0]
    ticks = Ticks()
    clock = MoveOutClock(network, shopify, sitoo, clock=ticks)
    st = shopify.state
    first = st.place_order([(network.skus[0], 1)], location_id=store.shopify_location_id)
    second = st.place_order([(network.skus[1], 1)], location_id=store.shopify_location_id)
    f1 = st.fulfil(first.fulfillment_order_ids[0])
    f2 = st.fulfil(second.fulfillment_order_ids[0])
    clock.look()

    ticks.now += 1.5
    for externalid in (f"sf-{first.id}-{f1.id}", f"sf-{first.id}-{f1.id}-r"):
        sitoo.state.add_transaction(
            {
                "warehouseid": store.sitoo_warehouse_id,
                "transactiontype": MOVE_OUT,
                "externalid": externalid,
                "items": [{"sku": network.skus[0], "decimalquantity": "-1.000"}],
            }
        )
    clock.look()

    assert clock.latencies() == [1.5]  # the reversal is not a Move Out of its own
    assert clock.waiting() == 1 and f2.id not in clock.moved_at
    assert "1 of 2 store fulfilments" in clock.line()


def test_units_of_fulfilments_not_yet_moved_out_are_gone_from_the_in_flight_target() -> None:
    shopify = ShopifySimulator(shopify_settings(), clock=ManualClock())
    sitoo = SitooSimulator(sitoo_settings(), seed_spec=None)
    spec = NetworkSpec(stores=1, skus=2, min_stock=5, max_stock=5, buffer=0)
    network = build(shopify, sitoo, spec)
    store = network.stores[0]
    loc = store.shopify_location_id
    a, b = network.skus
    st = shopify.state
    first = st.place_order([(a, 2)], location_id=loc)
    second = st.place_order([(b, 1)], location_id=loc)
    f1 = st.fulfil(first.fulfillment_order_ids[0])
    st.fulfil(second.fulfillment_order_ids[0])
    sitoo.state.add_transaction(
        {
            "warehouseid": store.sitoo_warehouse_id,
            "transactiontype": MOVE_OUT,
            "externalid": f"sf-{first.id}-{f1.id}",
            "items": [{"sku": a, "decimalquantity": "-2.000"}],
        }
    )

    assert moving_out(network, shopify, sitoo) == {(b, loc): 1}
    settled = expected_available(network, shopify, sitoo)
    moving = expected_available(network, shopify, sitoo, in_flight=True)
    assert settled == {(a, loc): 3, (b, loc): 5}  # Sitoo still counts b's unit
    assert moving == {(a, loc): 3, (b, loc): 4}
