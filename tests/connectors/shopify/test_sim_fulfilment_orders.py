"""The simulator's fulfilment-order moves and fulfilment cancels, over GraphQL: stock moves
as Shopify's does, the webhooks go out, and the order reads back as it now is."""

from __future__ import annotations

from typing import Any

from tillsync.connectors.shopify.client import ShopifyClient
from tillsync_sim.shopify import ShopifySimulator

from .conftest import GQL

MOVE = """
mutation Move($id: ID!, $to: ID!) {
  fulfillmentOrderMove(id: $id, newLocationId: $to) {
    movedFulfillmentOrder { id status assignedLocation { location { id } } }
    originalFulfillmentOrder { id status }
    userErrors { field message }
  }
}
"""

CANCEL = """
mutation Cancel($id: ID!) {
  fulfillmentCancel(id: $id) { fulfillment { id status } userErrors { field message } }
}
"""


def _stores(sim: ShopifySimulator) -> tuple[int, int]:
    by_name = {loc.name: loc.id for loc in sim.state.locations.values()}
    return by_name["Store Stockholm"], by_name["Warehouse"]


def _level(sim: ShopifySimulator, sku: str, location: int) -> dict[str, Any]:
    st = sim.state
    return dict(st.levels[(st.item_for(sku).id, location)].quantities)


async def test_a_fulfilment_order_moves_whole_with_its_committed_units(
    sim: ShopifySimulator, gql: GQL
) -> None:
    store, warehouse = _stores(sim)
    published: list[str] = []
    publish = sim.state.publish

    def recording(topic: str, body: dict[str, Any]) -> None:
        published.append(topic)
        publish(topic, body)

    sim.state.publish = recording
    order = sim.state.place_order([("SHIRT-S", 2)], location_id=store)
    [fo] = order.fulfillment_order_ids
    answer = await gql(
        MOVE,
        {"id": f"gid://shopify/FulfillmentOrder/{fo}", "to": f"gid://shopify/Location/{warehouse}"},
    )
    moved = answer["data"]["fulfillmentOrderMove"]
    assert moved["userErrors"] == []
    assert moved["movedFulfillmentOrder"]["id"] == f"gid://shopify/FulfillmentOrder/{fo}"
    assert moved["movedFulfillmentOrder"]["assignedLocation"]["location"]["id"].endswith(
        f"/{warehouse}"
    )
    assert _level(sim, "SHIRT-S", store)["committed"] == 0
    assert _level(sim, "SHIRT-S", store)["available"] == 10
    assert _level(sim, "SHIRT-S", warehouse)["committed"] == 2
    assert _level(sim, "SHIRT-S", warehouse)["available"] == 48
    assert "fulfillment_orders/moved" in published


async def test_a_partly_fulfilled_order_moves_its_rest_to_a_new_fulfilment_order(
    sim: ShopifySimulator, client: ShopifyClient
) -> None:
    store, warehouse = _stores(sim)
    st = sim.state
    order = st.place_order([("SHIRT-S", 3)], location_id=store)
    [fo] = order.fulfillment_order_ids
    [line] = st.fulfillment_orders[fo].lines
    st.fulfil(fo, [(line.id, 1)])
    original, moved = st.move_fulfillment_order(fo, warehouse)
    assert original.id == fo and original.status == "CLOSED" and moved.id != fo
    assert [(ln.total, ln.remaining) for ln in moved.lines] == [(2, 2)]
    state = await client.order_fulfilment_state(order.id)
    assert state is not None
    assert {
        (f.location_id, f.status, sum(ln.remaining for ln in f.lines))
        for f in state.fulfilment_orders
    } == {(store, "CLOSED", 0), (warehouse, "OPEN", 2)}
    assert [(f.location_id, f.lines[0].quantity) for f in state.fulfilments] == [(store, 1)]


async def test_a_cancelled_fulfilment_commits_its_units_again(
    sim: ShopifySimulator, gql: GQL, client: ShopifyClient
) -> None:
    store, _ = _stores(sim)
    st = sim.state
    order = st.place_order([("SHIRT-S", 2)], location_id=store)
    [fo] = order.fulfillment_order_ids
    f = st.fulfil(fo)
    assert _level(sim, "SHIRT-S", store)["committed"] == 0
    answer = await gql(CANCEL, {"id": f"gid://shopify/Fulfillment/{f.id}"})
    assert answer["data"]["fulfillmentCancel"]["fulfillment"]["status"] == "CANCELLED"
    level = _level(sim, "SHIRT-S", store)
    assert (level["available"], level["committed"]) == (8, 2)
    state = await client.order_fulfilment_state(order.id)
    assert state is not None
    assert [fo_.status for fo_ in state.fulfilment_orders] == ["OPEN"]
    assert [(x.id, x.status) for x in state.fulfilments] == [(f.id, "CANCELLED")]
    again = await gql(CANCEL, {"id": f"gid://shopify/Fulfillment/{f.id}"})
    assert again["data"]["fulfillmentCancel"]["userErrors"]
