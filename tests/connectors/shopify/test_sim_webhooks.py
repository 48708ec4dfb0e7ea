"""Webhooks: Shopify's headers, an HMAC checked independently, retries, faults."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import httpx

from tillsync.connectors.shopify.documents import ALL_DOCUMENTS
from tillsync.schemas.shopify import InventoryLevel, Order, Refund
from tillsync_sim.shopify import ShopifySimulator
from tillsync_sim.shopify.webhooks import ALL_TOPICS

from .conftest import GQL, SECRET, Receiver, ids, wait_for


def _store(sim: ShopifySimulator) -> int:
    return int(ids(sim)["locations"]["Store Stockholm"].rsplit("/", 1)[1])


async def test_headers_and_hmac(sim: ShopifySimulator, receiver: Receiver) -> None:
    sim.subscribe_all(receiver.url)
    order = sim.state.place_order(
        [("SHIRT-S", 1)], location_id=_store(sim), email="hmac@example.com"
    )
    await wait_for(lambda: "orders/create" in receiver.topics(), what="orders/create")
    [delivery] = receiver.of("orders/create")
    h = delivery.headers
    expected = base64.b64encode(
        hmac.new(SECRET.encode(), delivery.body, hashlib.sha256).digest()
    ).decode()
    assert hmac.compare_digest(h["X-Shopify-Hmac-Sha256"], expected)
    assert h["X-Shopify-Topic"] == "orders/create"
    assert h["X-Shopify-Shop-Domain"] == "tillsync-test.myshopify.com"
    assert h["X-Shopify-API-Version"] == "2026-04"
    assert h["Content-Type"] == "application/json"
    for name in ("X-Shopify-Webhook-Id", "X-Shopify-Event-Id", "X-Shopify-Triggered-At"):
        assert h[name]
    body = Order.model_validate(json.loads(delivery.body))
    assert body.id == order.id
    assert body.line_items[0].sku == "SHIRT-S"
    assert str(body.total_price) == "499.00"


async def test_order_fires_the_expected_topics(sim: ShopifySimulator, receiver: Receiver) -> None:
    sim.subscribe_all(receiver.url)
    sim.state.place_order([("SHIRT-S", 2)], location_id=_store(sim), email="new@example.com")
    wanted = {"orders/create", "orders/paid", "inventory_levels/update", "customers/create"}
    await wait_for(lambda: wanted <= set(receiver.topics()), what=str(wanted))
    [level] = receiver.of("inventory_levels/update")
    parsed = InventoryLevel.model_validate(json.loads(level.body))
    assert parsed.available == 8
    assert parsed.admin_graphql_api_id and "inventory_item_id=" in parsed.admin_graphql_api_id


async def test_control_api_actions_fire_webhooks(
    sim: ShopifySimulator, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    base = sim.base_url
    r = await http.post(f"{base}/_sim/webhooks/subscribe", json={"url": receiver.url})
    assert r.status_code == 200
    loc = ids(sim)["locations"]["Store Stockholm"]
    r = await http.post(
        f"{base}/_sim/orders",
        json={
            "lines": [{"sku": "SHIRT-S", "quantity": 2}],
            "location_id": loc,
            "delivery": "PICK_UP",
        },
    )
    assert r.status_code == 200, r.text
    order = r.json()
    assert order["fulfillment_orders"][0]["method_type"] == "PICK_UP"
    r = await http.post(f"{base}/_sim/orders/{order['id']}/fulfil", json={})
    assert r.status_code == 200, r.text
    r = await http.post(
        f"{base}/_sim/orders/{order['id']}/refund",
        json={
            "lines": [
                {"sku": "SHIRT-S", "quantity": 1, "restock_type": "RETURN", "location_id": loc}
            ]
        },
    )
    assert r.status_code == 200, r.text
    r = await http.post(
        f"{base}/_sim/inventory/edit", json={"sku": "SHIRT-M", "location_id": loc, "quantity": 9}
    )
    assert r.json()["available"] == 9
    wanted = {"orders/create", "orders/fulfilled", "refunds/create", "inventory_levels/update"}
    await wait_for(lambda: wanted <= set(receiver.topics()), what=str(wanted))
    refund = Refund.model_validate(json.loads(receiver.of("refunds/create")[0].body))
    assert refund.refund_line_items[0].restock_type == "return"
    inv = (await http.get(f"{base}/_sim/state/inventory")).json()
    shirt = next(r for r in inv if r["sku"] == "SHIRT-S" and r["location_id"] == loc)
    assert (shirt["available"], shirt["committed"], shirt["on_hand"]) == (9, 0, 9)
    # errors are 4xx with a reason, not crashes
    bad = await http.post(
        f"{base}/_sim/orders", json={"lines": [{"sku": "NOPE", "quantity": 1}], "location_id": loc}
    )
    assert bad.status_code == 422 and "NOPE" in bad.json()["error"]
    invalid = await http.post(f"{base}/_sim/orders", json={"lines": []})
    assert invalid.status_code == 400


async def test_retries_after_500(sim: ShopifySimulator, receiver: Receiver) -> None:
    receiver.fail_first = 2
    sim.subscribe_all(receiver.url, ("customers/create",))
    sim.state.create_customer("retry@example.com")
    # the simulator records the 200 once the answer is back, after the receiver saw the body
    await wait_for(
        lambda: bool(sim.webhooks.deliveries) and sim.webhooks.deliveries[0].delivered,
        what="delivery after retries",
    )
    assert receiver.calls == 3 and len(receiver.received) == 1
    [d] = sim.webhooks.deliveries
    assert d.statuses == [500, 500, 200]
    assert d.delivered and not d.gave_up


async def test_gives_up_after_8_retries(sim: ShopifySimulator, receiver: Receiver) -> None:
    receiver.fail_first = 100
    sim.webhooks.retry_base_seconds = 0.0005
    sim.subscribe_all(receiver.url, ("customers/create",))
    sim.state.create_customer("never@example.com")
    await wait_for(lambda: sim.webhooks.deliveries[0].gave_up, timeout=10, what="give up")
    assert receiver.calls == 9  # first attempt + 8 retries


async def test_duplicates_keep_the_webhook_id(sim: ShopifySimulator, receiver: Receiver) -> None:
    sim.set_faults(webhook_duplicate_rate=1.0)
    sim.subscribe_all(receiver.url, ("customers/create",))
    sim.state.create_customer("twice@example.com")
    await wait_for(lambda: len(receiver.received) == 2, what="two copies")
    a, b = receiver.received
    assert a.headers["X-Shopify-Webhook-Id"] == b.headers["X-Shopify-Webhook-Id"]
    assert a.body == b.body


async def test_reordering(sim: ShopifySimulator, receiver: Receiver) -> None:
    sim.set_faults(webhook_reorder_rate=1.0, webhook_reorder_window_ms=500)
    sim.subscribe_all(receiver.url, ("customers/create",))
    sim.state.create_customer("first@example.com")
    sim.set_faults(webhook_reorder_rate=0.0)
    sim.state.create_customer("second@example.com")
    await wait_for(lambda: len(receiver.received) == 2, what="both")
    emails = [json.loads(r.body)["email"] for r in receiver.received]
    assert emails == ["second@example.com", "first@example.com"]


async def test_a_lost_topic_never_arrives_and_the_others_do(
    sim: ShopifySimulator, receiver: Receiver
) -> None:
    sim.set_faults(webhook_lost_topics=["customers/create"])
    sim.subscribe_all(receiver.url, ("customers/create", "customers/update"))
    made = sim.state.create_customer("lost@example.com")
    sim.state.update_customer(made.id, first_name="Kept")
    await wait_for(lambda: len(receiver.received) == 1, what="the update")
    assert receiver.topics() == ["customers/update"]
    [lost] = [d for d in sim.webhooks.deliveries if d.topic == "customers/create"]
    assert lost.gave_up and not lost.delivered and lost.attempts == 0


async def test_subscription_through_graphql(
    sim: ShopifySimulator, gql: GQL, receiver: Receiver
) -> None:
    answer = await gql(
        ALL_DOCUMENTS["WEBHOOK_SUBSCRIPTION_CREATE"],
        {
            "topic": "INVENTORY_LEVELS_UPDATE",
            "webhookSubscription": {"callbackUrl": receiver.url, "format": "JSON"},
        },
    )
    sub = answer["data"]["webhookSubscriptionCreate"]["webhookSubscription"]
    assert sub["topic"] == "INVENTORY_LEVELS_UPDATE"
    assert sub["endpoint"]["__typename"] == "WebhookHttpEndpoint"
    sim.state.edit_inventory("SHIRT-S", _store(sim), quantity=1)
    await wait_for(lambda: len(receiver.received) == 1, what="inventory_levels/update")
    assert receiver.topics() == ["inventory_levels/update"]


def test_all_topics_listed() -> None:
    assert len(ALL_TOPICS) == 15
    assert {"fulfillments/create", "fulfillments/update", "fulfillment_orders/moved"} <= set(
        ALL_TOPICS
    )
    assert "fulfillment_orders/line_items_prepared_for_pickup" in ALL_TOPICS
