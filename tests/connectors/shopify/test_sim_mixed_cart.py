"""A mixed cart on the simulator: one online order split over fulfilment orders, some lines
picked up at one store and others shipped from another, as Shopify splits it. Each part
commits stock at its own location, and every reader (GraphQL, webhooks, tillsync's client,
the control API) sees one order with several fulfilment orders."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from tillsync.connectors.shopify.client import ShopifyClient
from tillsync.schemas.shopify import Order as OrderWebhook
from tillsync_sim.shopify import ShopifySimulator
from tillsync_sim.shopify.model import Order, ShippingAddress
from tillsync_sim.shopify.state import CartPart, SimError, made_up_address

from .conftest import GQL, Receiver, ids, wait_for
from .test_sim_fulfilment_orders import _level, _stores
from .test_sim_shipping import _bodies

MIXED = """
query Mixed($id: ID!) {
  order(id: $id) {
    shippingAddress { address1 city }
    lineItems(first: 10) { nodes { id sku quantity } }
    fulfillmentOrders(first: 10) {
      nodes {
        id status
        deliveryMethod { methodType }
        assignedLocation { name location { id } }
        destination { address1 }
        lineItems(first: 10) {
          nodes { sku totalQuantity remainingQuantity lineItem { id } }
        }
      }
    }
  }
}
"""


def _place(sim: ShopifySimulator, **fields: Any) -> Order:
    """Two lines picked up at the store, one shipped from the warehouse: SHIRT-S in both
    parts, so each location's committed units can be told apart."""
    store, warehouse = _stores(sim)
    return sim.state.place_mixed_order(
        [
            CartPart((("SHIRT-S", 2), ("SHIRT-M", 1)), store, "PICK_UP"),
            CartPart((("SHIRT-S", 3),), warehouse, "SHIPPING"),
        ],
        **fields,
    )


def _levels(sim: ShopifySimulator) -> dict[tuple[str, int], tuple[int, int]]:
    st = sim.state
    return {
        (st.items[item].sku, loc): (lv.get("available"), lv.get("committed"))
        for (item, loc), lv in st.levels.items()
    }


def _tail(value: str) -> int:
    return int(value.rsplit("/", 1)[1])


async def test_graphql_reads_one_order_with_a_fulfilment_order_per_part(
    sim: ShopifySimulator, gql: GQL
) -> None:
    store, warehouse = _stores(sim)
    order = _place(sim)
    answer = await gql(MIXED, {"id": f"gid://shopify/Order/{order.id}"})
    assert "errors" not in answer, answer
    read = answer["data"]["order"]
    address = made_up_address(order.number)
    assert read["shippingAddress"] == {"address1": address.address1, "city": address.city}
    items = read["lineItems"]["nodes"]
    assert [(li["sku"], li["quantity"]) for li in items] == [
        ("SHIRT-S", 2),
        ("SHIRT-M", 1),
        ("SHIRT-S", 3),
    ]

    pickup, shipped = read["fulfillmentOrders"]["nodes"]
    assert (pickup["deliveryMethod"]["methodType"], shipped["deliveryMethod"]["methodType"]) == (
        "PICK_UP",
        "SHIPPING",
    )
    assert _tail(pickup["assignedLocation"]["location"]["id"]) == store
    assert pickup["assignedLocation"]["name"] == "Store Stockholm"
    assert _tail(shipped["assignedLocation"]["location"]["id"]) == warehouse
    assert {pickup["status"], shipped["status"]} == {"OPEN"}
    # the address is where the shipped part goes; the picked-up part goes nowhere
    assert pickup["destination"] is None
    assert shipped["destination"] == {"address1": address.address1}

    def lines(fo: dict[str, Any]) -> list[tuple[str, int, int]]:
        return [
            (ln["sku"], ln["totalQuantity"], ln["remainingQuantity"])
            for ln in fo["lineItems"]["nodes"]
        ]

    assert lines(pickup) == [("SHIRT-S", 2, 2), ("SHIRT-M", 1, 1)]
    assert lines(shipped) == [("SHIRT-S", 3, 3)]
    # every line item is on exactly one fulfilment order
    on_fos = [ln["lineItem"]["id"] for fo in (pickup, shipped) for ln in fo["lineItems"]["nodes"]]
    assert on_fos == [li["id"] for li in items]


async def test_each_part_commits_its_own_skus_at_its_own_location(sim: ShopifySimulator) -> None:
    store, warehouse = _stores(sim)
    before = _levels(sim)
    _place(sim)
    after = _levels(sim)
    moved = {key: (a - before[key][0], c - before[key][1]) for key, (a, c) in after.items()}
    assert {key: delta for key, delta in moved.items() if delta != (0, 0)} == {
        ("SHIRT-S", store): (-2, 2),
        ("SHIRT-M", store): (-1, 1),
        ("SHIRT-S", warehouse): (-3, 3),
    }
    assert _level(sim, "SHIRT-S", warehouse)["committed"] == 3
    assert _level(sim, "SOCKS-1", warehouse)["committed"] == 0


async def test_one_order_webhook_names_every_line(
    sim: ShopifySimulator, receiver: Receiver
) -> None:
    store, warehouse = _stores(sim)
    sim.subscribe_all(receiver.url)
    order = _place(sim, email="mixed@example.com")
    counts = {
        "customers/create": 1,
        "orders/create": 1,
        "orders/paid": 1,
        "inventory_levels/update": 3,  # one per level touched
    }
    await wait_for(
        lambda: all(len(receiver.of(t)) >= n for t, n in counts.items()), what=str(counts)
    )
    assert {t: len(receiver.of(t)) for t in counts} == counts
    [raw] = _bodies(receiver, "orders/create")
    body = OrderWebhook.model_validate(raw)
    assert body.id == order.id and body.email == "mixed@example.com"
    assert [(li.id, li.sku, li.quantity) for li in body.line_items] == [
        (li.id, li.sku, li.quantity) for li in order.line_items
    ]
    assert body.total_price == Decimal("2994.00")  # 6 x 499.00
    assert body.shipping_address is not None
    assert body.shipping_address.address1 == made_up_address(order.number).address1
    # a shipping line per delivery method: the pickup is named after its store
    assert [(s.code, s.title) for s in body.shipping_lines] == [
        ("Pickup", "Store Stockholm"),
        ("Standard", "Standard"),
    ]
    levels = {
        (b["inventory_item_id"], b["location_id"])
        for b in _bodies(receiver, "inventory_levels/update")
    }
    st = sim.state
    assert levels == {
        (st.item_for("SHIRT-S").id, store),
        (st.item_for("SHIRT-M").id, store),
        (st.item_for("SHIRT-S").id, warehouse),
    }


async def test_the_client_reads_both_fulfilment_orders(
    sim: ShopifySimulator, client: ShopifyClient
) -> None:
    store, warehouse = _stores(sim)
    order = _place(sim)
    state = await client.order_fulfilment_state(order.id)
    assert state is not None and state.order_id == order.id
    assert [fo.id for fo in state.fulfilment_orders] == order.fulfillment_order_ids
    assert [
        (fo.method, fo.location_id, fo.status, [(ln.sku, ln.remaining) for ln in fo.lines])
        for fo in state.fulfilment_orders
    ] == [
        ("PICK_UP", store, "OPEN", [("SHIRT-S", 2), ("SHIRT-M", 1)]),
        ("SHIPPING", warehouse, "OPEN", [("SHIRT-S", 3)]),
    ]
    assert state.fulfilments == ()


async def test_fulfilling_one_part_leaves_the_other_committed(
    sim: ShopifySimulator, client: ShopifyClient
) -> None:
    store, warehouse = _stores(sim)
    st = sim.state
    order = _place(sim)
    pickup_fo, shipped_fo = order.fulfillment_order_ids
    st.fulfil(shipped_fo)
    assert order.fulfillment_status == "partial"
    assert _level(sim, "SHIRT-S", warehouse)["committed"] == 0
    assert _level(sim, "SHIRT-S", store)["committed"] == 2
    state = await client.order_fulfilment_state(order.id)
    assert state is not None
    assert [(fo.method, fo.status) for fo in state.fulfilment_orders] == [
        ("PICK_UP", "OPEN"),
        ("SHIPPING", "CLOSED"),
    ]
    assert [(f.location_id, [ln.quantity for ln in f.lines]) for f in state.fulfilments] == [
        (warehouse, [3])
    ]
    # cancelling releases what is left, at the store it was committed at
    st.cancel_order(order.id)
    for sku, available in (("SHIRT-S", 10), ("SHIRT-M", 4)):
        level = _level(sim, sku, store)
        assert (level["available"], level["committed"]) == (available, 0), sku
    assert _level(sim, "SHIRT-S", warehouse)["available"] == 47  # shipped: gone
    assert st.fulfillment_orders[pickup_fo].status == "CANCELLED"


async def test_a_refused_mixed_order_changes_nothing(sim: ShopifySimulator) -> None:
    store, warehouse = _stores(sim)
    st = sim.state
    published: list[str] = []
    st.publish = lambda topic, _body: published.append(topic)
    before = (
        st.inventory_snapshot(),
        dict(st.customers),
        dict(st.orders),
        dict(st.fulfillment_orders),
    )
    pickup = CartPart((("SHIRT-S", 1),), store, "PICK_UP")
    given = ShippingAddress("Ada", "Lovelace", "Exempelvägen 3", "Göteborg", "41101", "SE")
    refused: list[tuple[list[CartPart], dict[str, Any], str]] = [
        ([], {}, "at least one cart part"),
        ([pickup, CartPart((), warehouse)], {}, "no lines"),
        ([pickup, CartPart((("SHIRT-M", 1),), warehouse)], {}, "not stocked at location"),
        ([pickup, CartPart((("NOPE", 1),), warehouse)], {}, "unknown SKU"),
        ([pickup, CartPart((("SHIRT-S", 1),), warehouse, "DRONE")], {}, "unknown delivery"),
        ([pickup, CartPart((("SHIRT-S", 1),), 999)], {}, "no location"),
        (
            [pickup, CartPart((("SHIRT-S", 1),), warehouse, "pickup")],
            {"shipping_address": given},
            "pickup order has no shipping address",
        ),
    ]
    for parts, fields, message in refused:
        with pytest.raises(SimError, match=message):
            st.place_mixed_order(parts, email="refused@example.com", **fields)
        after = (
            st.inventory_snapshot(),
            dict(st.customers),
            dict(st.orders),
            dict(st.fulfillment_orders),
        )
        assert after == before, message
    assert published == []

    # the first order placed after them is still #1001; an address given to an order with a
    # shipped part is kept
    order = st.place_mixed_order(
        [pickup, CartPart((("SHIRT-S", 1),), warehouse)], shipping_address=given
    )
    assert order.number == 1001 and order.shipping_address == given


async def test_the_control_api_places_a_mixed_order(
    sim: ShopifySimulator, http: httpx.AsyncClient
) -> None:
    store, warehouse = _stores(sim)
    known = ids(sim)["locations"]
    url = f"{sim.base_url}/_sim/orders"
    parts = [
        {
            "lines": [["SHIRT-S", 2], ["SHIRT-M", 1]],
            "location_id": known["Store Stockholm"],
            "delivery": "PICK_UP",
        },
        {"lines": [["SHIRT-S", 3]], "location_id": warehouse},  # SHIPPING by default
    ]
    r = await http.post(url, json={"parts": parts, "email": "http@example.com"})
    assert r.status_code == 200, r.text
    placed = r.json()
    assert placed["email"] == "http@example.com" and placed["shipping_address"] is not None
    assert [li["sku"] for li in placed["line_items"]] == ["SHIRT-S", "SHIRT-M", "SHIRT-S"]
    assert [
        (
            fo["method_type"],
            fo["location_id"],
            [(ln["sku"], ln["remaining"]) for ln in fo["line_items"]],
        )
        for fo in placed["fulfillment_orders"]
    ] == [
        ("PICK_UP", known["Store Stockholm"], [("SHIRT-S", 2), ("SHIRT-M", 1)]),
        ("SHIPPING", known["Warehouse"], [("SHIRT-S", 3)]),
    ]
    assert _level(sim, "SHIRT-S", warehouse)["committed"] == 3

    # the one-location body still works
    r = await http.post(url, json={"lines": [{"sku": "SHIRT-S"}], "location_id": store})
    assert r.status_code == 200, r.text
    assert [fo["method_type"] for fo in r.json()["fulfillment_orders"]] == ["SHIPPING"]

    orders = len(sim.state.orders)
    malformed: list[dict[str, Any]] = [
        {"parts": []},
        {"parts": [{"lines": [], "location_id": store}]},
        {"parts": [{"lines": [["SHIRT-S", 0]], "location_id": store}]},
        {"parts": [{"lines": [{"sku": "SHIRT-S"}], "location_id": store}]},
        {"parts": [{"lines": [["SHIRT-S", 1]]}]},
        {"parts": parts, "lines": [{"sku": "SHIRT-S"}], "location_id": store},
    ]
    for bad in malformed:
        r = await http.post(url, json=bad)
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["error"], bad
    # well-formed but not placeable: the simulator's reason, as for a one-location order
    r = await http.post(
        url, json={"parts": [parts[0], {"lines": [["SHIRT-M", 1]], "location_id": warehouse}]}
    )
    assert r.status_code == 422 and "not stocked" in r.json()["error"]
    r = await http.post(
        url,
        json={
            "parts": [parts[0]],
            "shipping_address": {
                "first_name": "Ada",
                "last_name": "Lovelace",
                "address1": "Exempelvägen 3",
                "city": "Göteborg",
                "zip": "41101",
            },
        },
    )
    assert r.status_code == 422 and "pickup" in r.json()["error"]
    assert len(sim.state.orders) == orders
