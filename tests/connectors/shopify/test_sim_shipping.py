"""Ship-from-store on the simulator: a shipped order's address is its fulfilment order's
destination (a pickup has none), and fulfillmentCreate keeps the tracking it is given, reads
it back and sends it in the fulfilment webhooks."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tillsync.schemas.shopify import Fulfillment, Order
from tillsync_sim.shopify import ShopifySimulator
from tillsync_sim.shopify.model import ShippingAddress
from tillsync_sim.shopify.state import made_up_address

from .conftest import GQL, Receiver, ids, wait_for

DESTINATION = """
query Destination($id: ID!) {
  fulfillmentOrder(id: $id) {
    deliveryMethod { methodType }
    destination {
      id firstName lastName company address1 address2 city zip province countryCode phone email
    }
  }
}
"""

SHIPPING_ADDRESS = """
query ShippingAddress($id: ID!) {
  order(id: $id) {
    shippingAddress { firstName lastName address1 address2 city zip countryCodeV2 phone }
  }
}
"""

CREATE = """
mutation Ship($fulfillment: FulfillmentInput!) {
  fulfillmentCreate(fulfillment: $fulfillment) {
    fulfillment { id status trackingInfo(first: 10) { company number url } }
    userErrors { field message }
  }
}
"""

READ = """
query Read($id: ID!) {
  fulfillment(id: $id) { id trackingInfo(first: 1) { company number url } }
}
"""

URL = "https://tracking.example/"


def _store(sim: ShopifySimulator) -> int:
    return next(loc.id for loc in sim.state.locations.values() if loc.name == "Store Stockholm")


async def _destination(gql: GQL, fo_id: int) -> dict[str, Any]:
    answer = await gql(DESTINATION, {"id": f"gid://shopify/FulfillmentOrder/{fo_id}"})
    assert "errors" not in answer, answer
    fo: dict[str, Any] = answer["data"]["fulfillmentOrder"]
    return fo


async def _create(gql: GQL, fo_id: int, **fields: Any) -> dict[str, Any]:
    group = {"fulfillmentOrderId": f"gid://shopify/FulfillmentOrder/{fo_id}"}
    answer = await gql(CREATE, {"fulfillment": {"lineItemsByFulfillmentOrder": [group], **fields}})
    assert "errors" not in answer, answer
    made: dict[str, Any] = answer["data"]["fulfillmentCreate"]
    assert made["userErrors"] == []
    fulfillment: dict[str, Any] = made["fulfillment"]
    return fulfillment


def _bodies(receiver: Receiver, topic: str) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in receiver.of(topic)]


async def test_a_shipping_order_has_a_destination_and_a_pickup_has_none(
    sim: ShopifySimulator, gql: GQL, receiver: Receiver
) -> None:
    sim.subscribe_all(receiver.url, ("orders/create",))
    st = sim.state
    shipped = st.place_order([("SHIRT-S", 1)], location_id=_store(sim), email="ship@example.com")
    pickup = st.place_order([("SHIRT-S", 1)], location_id=_store(sim), delivery="PICK_UP")
    address = made_up_address(shipped.number)
    assert shipped.shipping_address == address and pickup.shipping_address is None
    assert (address.address1, address.city, address.zip, address.country_code) == (
        f"Testgatan {shipped.number % 100 + 1}",
        "Stockholm",
        "11122",
        "SE",
    )

    [fo_id] = shipped.fulfillment_order_ids
    fo = await _destination(gql, fo_id)
    assert fo["deliveryMethod"]["methodType"] == "SHIPPING"
    dest = fo["destination"]
    assert dest == {
        "id": f"gid://shopify/FulfillmentOrderDestination/{fo_id}",
        "firstName": address.first_name,
        "lastName": address.last_name,
        "company": None,
        "address1": address.address1,
        "address2": None,
        "city": "Stockholm",
        "zip": "11122",
        "province": None,
        "countryCode": "SE",
        "phone": address.phone,
        "email": "ship@example.com",
    }
    assert (await _destination(gql, fo_id))["destination"]["id"] == dest["id"]  # stable
    answer = await gql(SHIPPING_ADDRESS, {"id": f"gid://shopify/Order/{shipped.id}"})
    assert answer["data"]["order"]["shippingAddress"]["address1"] == address.address1

    [pickup_fo] = pickup.fulfillment_order_ids
    fo = await _destination(gql, pickup_fo)
    assert fo["deliveryMethod"]["methodType"] == "PICK_UP"
    assert fo["destination"] is None
    answer = await gql(SHIPPING_ADDRESS, {"id": f"gid://shopify/Order/{pickup.id}"})
    assert answer["data"]["order"]["shippingAddress"] is None

    # the order webhook carries the address the way tillsync's model reads it
    await wait_for(lambda: len(receiver.of("orders/create")) == 2, what="orders/create x2")
    bodies = {b["id"]: Order.model_validate(b) for b in _bodies(receiver, "orders/create")}
    shipped_to = bodies[shipped.id].shipping_address
    assert shipped_to is not None
    assert (shipped_to.address1, shipped_to.zip, shipped_to.country_code) == (
        address.address1,
        "11122",
        "SE",
    )
    assert bodies[pickup.id].shipping_address is None


def test_the_made_up_address_follows_the_order_number() -> None:
    assert made_up_address(1001) == made_up_address(1001)
    assert made_up_address(1001).address1 != made_up_address(1002).address1
    assert made_up_address(1001).phone != made_up_address(1002).phone


async def test_the_control_api_places_an_order_with_a_given_address(
    sim: ShopifySimulator, gql: GQL, http: httpx.AsyncClient
) -> None:
    loc = ids(sim)["locations"]["Store Stockholm"]
    given = {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "address1": "Exempelvägen 3",
        "address2": "lgh 1101",
        "city": "Göteborg",
        "zip": "41101",
        "country_code": "SE",
        "phone": "+46701740650",
    }
    r = await http.post(
        f"{sim.base_url}/_sim/orders",
        json={"lines": [{"sku": "SHIRT-S"}], "location_id": loc, "shipping_address": given},
    )
    assert r.status_code == 200, r.text
    order = r.json()
    assert order["shipping_address"]["address2"] == "lgh 1101"
    assert sim.state.orders[order["id"]].shipping_address == ShippingAddress(**given)
    fo_id = int(order["fulfillment_orders"][0]["id"].rsplit("/", 1)[1])
    dest = (await _destination(gql, fo_id))["destination"]
    assert (dest["firstName"], dest["address2"], dest["city"], dest["zip"]) == (
        "Ada",
        "lgh 1101",
        "Göteborg",
        "41101",
    )

    # a pickup is collected: an address with it is refused, and a malformed one is a 400
    pickup = await http.post(
        f"{sim.base_url}/_sim/orders",
        json={
            "lines": [{"sku": "SHIRT-S"}],
            "location_id": loc,
            "delivery": "PICK_UP",
            "shipping_address": given,
        },
    )
    assert pickup.status_code == 422 and "pickup" in pickup.json()["error"]
    bad = await http.post(
        f"{sim.base_url}/_sim/orders",
        json={
            "lines": [{"sku": "SHIRT-S"}],
            "location_id": loc,
            "shipping_address": {**given, "country_code": "Sweden"},
        },
    )
    assert bad.status_code == 400


async def test_fulfillment_create_keeps_the_tracking_and_sends_it(
    sim: ShopifySimulator, gql: GQL, receiver: Receiver
) -> None:
    sim.subscribe_all(receiver.url, ("fulfillments/create", "fulfillments/update"))
    order = sim.state.place_order([("SHIRT-S", 2)], location_id=_store(sim))
    [fo_id] = order.fulfillment_order_ids
    made = await _create(
        gql,
        fo_id,
        trackingInfo={"number": "PN123SE", "company": "PostNord", "url": URL + "PN123SE"},
        notifyCustomer=True,
    )
    expected = [{"company": "PostNord", "number": "PN123SE", "url": URL + "PN123SE"}]
    assert made["trackingInfo"] == expected
    f_id = int(made["id"].rsplit("/", 1)[1])
    record = sim.state.fulfillments[f_id]
    assert record.tracking_numbers == ["PN123SE"]
    assert record.tracking_urls == [URL + "PN123SE"]
    assert (record.tracking_company, record.notified) == ("PostNord", True)
    read = await gql(READ, {"id": made["id"]})
    assert read["data"]["fulfillment"]["trackingInfo"] == expected

    await wait_for(lambda: bool(receiver.of("fulfillments/create")), what="fulfillments/create")
    [body] = _bodies(receiver, "fulfillments/create")
    assert body["id"] == f_id
    assert body["tracking_number"] == "PN123SE" and body["tracking_numbers"] == ["PN123SE"]
    assert body["tracking_company"] == "PostNord"
    assert body["tracking_url"] == URL + "PN123SE" and body["tracking_urls"] == [URL + "PN123SE"]
    assert body["notify_customer"] is True
    assert Fulfillment.model_validate(body).tracking_number == "PN123SE"

    # a cancelled fulfilment's update still names its shipment
    sim.state.cancel_fulfillment(f_id)
    await wait_for(lambda: bool(receiver.of("fulfillments/update")), what="fulfillments/update")
    [update] = _bodies(receiver, "fulfillments/update")
    assert (update["status"], update["tracking_number"]) == ("cancelled", "PN123SE")


async def test_several_tracking_numbers_pair_with_their_urls(
    sim: ShopifySimulator, gql: GQL
) -> None:
    order = sim.state.place_order([("SHIRT-S", 2)], location_id=_store(sim))
    [fo_id] = order.fulfillment_order_ids
    made = await _create(
        gql,
        fo_id,
        trackingInfo={
            "number": "A1",
            "numbers": ["A1", "B2"],
            "urls": [URL + "A1"],
            "company": "DHL",
        },
    )
    assert made["trackingInfo"] == [
        {"company": "DHL", "number": "A1", "url": URL + "A1"},
        {"company": "DHL", "number": "B2", "url": None},
    ]
    record = sim.state.fulfillments[int(made["id"].rsplit("/", 1)[1])]
    assert (record.tracking_numbers, record.notified) == (["A1", "B2"], False)


async def test_a_fulfilment_without_tracking_is_as_before(
    sim: ShopifySimulator, gql: GQL, receiver: Receiver
) -> None:
    sim.subscribe_all(receiver.url, ("fulfillments/create",))
    order = sim.state.place_order([("SHIRT-S", 1)], location_id=_store(sim), delivery="PICK_UP")
    [fo_id] = order.fulfillment_order_ids
    made = await _create(gql, fo_id)
    assert made["status"] == "SUCCESS" and made["trackingInfo"] == []
    await wait_for(lambda: bool(receiver.of("fulfillments/create")), what="fulfillments/create")
    [body] = _bodies(receiver, "fulfillments/create")
    assert body["tracking_number"] is None and body["tracking_numbers"] == []
    assert body["tracking_company"] is None and body["tracking_urls"] == []
    assert body["notify_customer"] is False
    # the merchant-side fulfil (no tracking) still works
    again = sim.state.place_order([("SHIRT-S", 1)], location_id=_store(sim))
    f = sim.state.fulfil(again.fulfillment_order_ids[0])
    assert (f.tracking_numbers, f.tracking_company, f.notified) == ([], None, False)
