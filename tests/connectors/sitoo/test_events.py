"""Events SPI push: envelope, batches of at most 10 in order, blocking, retries, duplicates."""

from __future__ import annotations

import asyncio
import base64

from tillsync.schemas.sitoo import SitooEventBatch

from .conftest import ACCOUNT, Receiver, StartSim, make_settings, wait_for

FAST = {"event_retry_delays": (0.01,)}


async def test_batches_are_at_most_ten_in_order_one_at_a_time(
    start_sim: StartSim, receiver: Receiver
) -> None:
    sim = await start_sim(events_url=receiver.url, **FAST)
    receiver.gate = asyncio.Event()
    for _ in range(25):
        sim.state.move_in(1, "SKU-0001", 1)
    await wait_for(lambda: receiver.in_flight == 1)
    receiver.gate.set()
    assert await sim.events.wait_idle(5)
    assert receiver.max_in_flight == 1
    assert all(1 <= len(b) <= 10 for b in receiver.batches)
    assert len(receiver.batches) >= 3
    sent = [e["event_id"] for e in receiver.events]
    assert sent == [e["event_id"] for e in sim.events.history]  # same order, no gaps
    for batch in receiver.batches:
        parsed = SitooEventBatch.parse_body(batch)
        assert {e.event_type for e in parsed.events} == {"warehouse-transaction"}
        assert all(e.account_id == ACCOUNT for e in parsed.events)
    ids = [e["data"]["warehouse_transaction_id"] for e in receiver.events]
    assert ids == sorted(ids)


async def test_delivery_blocks_until_2xx_and_retries(
    start_sim: StartSim, receiver: Receiver
) -> None:
    sim = await start_sim(events_url=receiver.url, **FAST)
    receiver.answers = [503, 429, 504]
    sim.state.move_in(1, "SKU-0001", 1)
    await wait_for(lambda: len(receiver.auth_headers) == 1)
    for _ in range(3):
        sim.state.move_in(1, "SKU-0002", 1)  # emitted while the first batch is failing
    assert await sim.events.wait_idle(5)
    first = sim.events.history[0]["event_id"]
    assert [e["event_id"] for e in receiver.batches[0]] == [first]
    assert len(receiver.auth_headers) == 4 + len(receiver.batches) - 1
    assert sim.events.stats.retries == 3
    assert [e["event_id"] for e in receiver.events] == [e["event_id"] for e in sim.events.history]


async def test_other_status_drops_the_batch(start_sim: StartSim, receiver: Receiver) -> None:
    sim = await start_sim(events_url=receiver.url, **FAST)
    receiver.answers = [400]
    sim.state.move_in(1, "SKU-0001", 1)
    assert await sim.events.wait_idle(5)
    sim.state.move_in(1, "SKU-0001", 1)
    assert await sim.events.wait_idle(5)
    assert sim.events.stats.dropped_events == 1
    assert [e["event_id"] for e in receiver.events] == [sim.events.history[1]["event_id"]]


async def test_no_answer_within_window_is_retried(start_sim: StartSim, receiver: Receiver) -> None:
    sim = await start_sim(events_url=receiver.url, event_answer_timeout=0.2, **FAST)
    receiver.gate = asyncio.Event()
    sim.state.move_in(1, "SKU-0001", 1)
    await wait_for(lambda: sim.events.stats.retries >= 1)
    receiver.gate.set()
    assert await sim.events.wait_idle(5)
    assert receiver.events[0]["event_id"] == sim.events.history[0]["event_id"]


async def test_duplicates_fault_and_basic_auth(start_sim: StartSim, receiver: Receiver) -> None:
    settings = make_settings(sitoo_events_username="hook", sitoo_events_password="s3cret")
    sim = await start_sim(settings, events_url=receiver.url, **FAST)
    sim.set_faults(event_duplicate_rate=1.0)
    sim.state.move_in(1, "SKU-0001", 1)
    assert await sim.events.wait_idle(5)
    await wait_for(lambda: len(receiver.batches) == 2)
    assert receiver.batches[0] == receiver.batches[1]
    expected = "Basic " + base64.b64encode(b"hook:s3cret").decode()
    assert set(receiver.auth_headers) == {expected}


async def test_store_flows_emit_documented_events(start_sim: StartSim, receiver: Receiver) -> None:
    sim = await start_sim(events_url=receiver.url, **FAST)
    state = sim.state
    sale = state.till_sale(1, [{"sku": "SKU-0001", "quantity": 1}])
    web = state.add_order(
        {
            "ordertypeid": 10,
            "externalid": "W1",
            "warehouseid": 1,
            "orderitems": [{"productname": "P", "sku": "SKU-0002", "quantity": 1}],
        }
    )
    state.ready_for_pickup(web.orderid)
    state.collect(web.orderid)
    other = state.add_order(
        {
            "ordertypeid": 10,
            "externalid": "W2",
            "warehouseid": 1,
            "orderitems": [{"productname": "P", "sku": "SKU-0002", "quantity": 1}],
        }
    )
    state.reject_pickup(other.orderid, "not found", cancel=True)
    assert await sim.events.wait_idle(5)
    seen = [
        (
            e["event_type"],
            e["data"].get("order_id"),
            e["data"].get("order_event_type"),
            e["data"].get("order_state_changed"),
        )
        for e in receiver.events
        if e["event_type"] == "order"
    ]
    assert seen == [
        ("order", sale.orderid, "add", "closed"),
        ("order", web.orderid, "add", "open"),
        ("order", web.orderid, "ready-for-pickup", None),
        ("order", web.orderid, "update", "closed"),
        ("order", other.orderid, "add", "open"),
        ("order", other.orderid, "pickup-rejected", None),
        ("order", other.orderid, "update", "cancelled"),
    ]
    types = [e["event_type"] for e in receiver.events]
    assert types.count("warehouse-transaction") == 2  # the sale and the collection
    assert types.count("order-delivery") == 2
