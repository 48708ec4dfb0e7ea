"""Pickups back from the store: Sitoo's ready, collect and reject reach Shopify once, on both
simulators over real HTTP (the Sitoo order made by the Sitoo orders sink, as in the worker)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import pytest

from tests.simulators.test_orders import SETTINGS
from tests.streams.stock.sink_fakes import Acks, event, until
from tests.streams.stock.test_sitoo_orders import FAST, Platforms, Recorded
from tillsync.connectors.shopify.client import ShopifyClient, ShopifyConfig
from tillsync.connectors.sitoo.client import SitooClient, SitooConfig
from tillsync.schemas.events import (
    ExceptionRecord,
    PickupAction,
    PickupCommand,
    PickupHandedOver,
    PickupInSitoo,
    SitooReserved,
)
from tillsync.schemas.locations import Location, LocationMap
from tillsync.schemas.sitoo import SitooEvent
from tillsync.streams.stock.pickup_handover import (
    ANSWERED,
    ASKED,
    CHECK,
    COLLECTED,
    PARCEL,
    READY,
    REJECTED,
    PickupHandover,
    PickupStep,
    step_of,
    step_of_record,
)
from tillsync.streams.stock.sitoo_orders import SitooOrdersSink
from tillsync_sim.scenario.network import Network, NetworkSpec, build
from tillsync_sim.shopify import ShopifySimulator
from tillsync_sim.sitoo import SitooSimulator


@dataclass
class Told:
    handed: list[PickupHandedOver] = field(default_factory=list)
    exceptions: list[ExceptionRecord] = field(default_factory=list)
    ready_told: list[PickupInSitoo] = field(default_factory=list)
    readings: list[SitooReserved] = field(default_factory=list)
    dead: list[str] = field(default_factory=list)

    async def handed_over(self, record: PickupHandedOver) -> None:
        self.handed.append(record)

    async def ready(self, answer: PickupInSitoo) -> None:
        self.ready_told.append(answer)

    async def reserved(self, readings: Sequence[SitooReserved]) -> None:
        self.readings.extend(readings)

    async def exception(self, record: ExceptionRecord) -> None:
        self.exceptions.append(record)

    async def dead_letter(
        self, value: bytes, reason: str, headers: Mapping[str, bytes] | None = None
    ) -> None:
        self.dead.append(reason)


@dataclass
class Shop:
    network: Network
    shopify: ShopifySimulator
    sitoo: SitooSimulator
    platforms: Platforms
    sink: SitooOrdersSink
    handover: PickupHandover
    told: Told
    steps: dict[str, int]


class HandoverPlatforms(Platforms):
    captures = 0  # orderCapture calls

    async def get_order(self, orderid: int):  # type: ignore[no-untyped-def]
        return await self.sitoo.get_order(orderid)

    async def order_deliveries(self, orderid: int):  # type: ignore[no-untyped-def]
        return await self.sitoo.order_deliveries(orderid)

    async def prepared_for_pickup(self, fulfilment_order_id: int):  # type: ignore[no-untyped-def]
        return await self.shopify.prepared_for_pickup(fulfilment_order_id)

    async def fulfil(  # type: ignore[no-untyped-def]
        self, fulfilment_order_id: int, lines: Mapping[int, int], *, notify=False, tracking=None
    ):
        return await self.shopify.fulfil(
            fulfilment_order_id, lines, notify=notify, tracking=tracking
        )

    async def payment(self, order_id: int):  # type: ignore[no-untyped-def]
        return await self.shopify.payment(order_id)

    async def capture(self, order_id: int, authorisation):  # type: ignore[no-untyped-def]
        self.captures += 1
        return await self.shopify.capture(order_id, authorisation)

    async def mark_as_paid(self, order_id: int):  # type: ignore[no-untyped-def]
        return await self.shopify.mark_as_paid(order_id)

    async def cancel_order(self, order_id: int, *, reason: str, staff_note: str):  # type: ignore[no-untyped-def]
        return await self.shopify.cancel_order(order_id, reason=reason, staff_note=staff_note)

    async def suggested_order_refund(self, order_id: int, lines: Mapping[int, int]):  # type: ignore[no-untyped-def]
        return await self.shopify.suggested_order_refund(order_id, lines)

    async def cancel_lines(self, order_id, lines, location_id, transactions, currency, **kw):  # type: ignore[no-untyped-def]
        return await self.shopify.cancel_lines(
            order_id, lines, location_id, transactions, currency, **kw
        )


@pytest.fixture
async def shop() -> AsyncIterator[Shop]:
    shopify = ShopifySimulator(SETTINGS)
    sitoo = SitooSimulator(SETTINGS, seed_spec=None)
    shopify_url = await shopify.start("127.0.0.1", 0)
    await sitoo.start("127.0.0.1", 0)
    network = build(shopify, sitoo, NetworkSpec(stores=2, skus=4, min_stock=10, max_stock=20))
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
    shopify_config = ShopifyConfig.from_settings(
        SETTINGS.model_copy(update={"shopify_url": shopify_url})
    )
    sitoo_config = SitooConfig.from_settings(
        sitoo.client_settings().model_copy(update={"sitoo_requests_per_second": 10_000.0})
    )

    async with (
        ShopifyClient(replace(shopify_config, retry=FAST)) as shopify_client,
        SitooClient(replace(sitoo_config, retry=FAST)) as sitoo_client,
    ):
        platforms = HandoverPlatforms(sitoo_client, shopify_client)
        sink = SitooOrdersSink(platforms, platforms, Recorded())
        told = Told()
        steps: dict[str, int] = {}
        handover = PickupHandover(platforms, platforms, told, locations, steps)
        try:
            yield Shop(network, shopify, sitoo, platforms, sink, handover, told, steps)
        finally:
            await shopify.stop()
            await sitoo.stop()


async def _in_sitoo(
    shop: Shop,
    *lines: tuple[int, int],
    authorised: bool = False,
    method: Literal["PICK_UP", "SHIPPING"] = "PICK_UP",
    financial_status: str | None = None,
) -> tuple[int, int, int]:
    """A pickup (or shipment) at the first store, made in Sitoo by the sink: (order, FO,
    Sitoo order)."""
    store = shop.network.stores[0]
    order = shop.shopify.state.place_order(
        [(shop.network.skus[i], n) for i, n in lines],
        location_id=store.shopify_location_id,
        delivery=method,
        financial_status=financial_status or ("authorized" if authorised else "paid"),
    )
    [fo] = order.fulfillment_order_ids
    ext = f"fo-{fo}-{store.shopify_location_id}"
    command = PickupCommand(
        action=PickupAction.EXPORT,
        externalid=ext,
        order_id=order.id,
        fulfilment_order_id=fo,
        location_id=store.shopify_location_id,
        warehouse_id=store.sitoo_warehouse_id,
        at=1.0,
        method=method,
    )
    await shop.sink.take(command.model_dump_json().encode())
    return order.id, fo, shop.sitoo.state.orders_by_externalid[ext]


def _step(sitoo_order: int, step: str, n: int = 1) -> bytes:
    """The record of one step, as the ``sitoo-pickup-events`` agent passes it on."""
    return (
        PickupStep(sitoo_order_id=sitoo_order, step=step, event_id=f"e-{n}")
        .model_dump_json()
        .encode()
    )


def test_only_a_pickups_steps_are_picked_out_of_the_events() -> None:
    def event(**data: object) -> SitooEvent:
        return SitooEvent(
            event_id="x", event_type="order", event_date=1, account_id=1, data=dict(data)
        )

    assert step_of(event(order_id=5, order_event_type="ready-for-pickup")).step == READY  # type: ignore[union-attr]
    assert step_of(event(order_id=5, order_event_type="pickup-rejected")).step == REJECTED  # type: ignore[union-attr]
    closed = event(order_id=5, order_event_type="update", order_state_changed="closed")
    assert step_of(closed).step == COLLECTED  # type: ignore[union-attr]
    # a till sale is an order born closed: no step, and no read of it
    assert step_of(event(order_id=5, order_event_type="add", order_state_changed="closed")) is None
    assert step_of(event(order_id=5, order_event_type="update")) is None
    # a delivery is a shipment's parcel only while ship-from-store goes through Sitoo: else
    # every till sale's delivery would be one more record for nothing
    delivery = SitooEvent(
        event_id="d", event_type="order-delivery", event_date=1, account_id=1, data={"order_id": 5}
    )
    assert step_of(delivery, parcels=True).step == PARCEL  # type: ignore[union-attr]
    assert step_of(delivery, parcels=False) is None


def test_a_raw_events_record_as_the_receiver_writes_it_gives_its_step() -> None:
    # one record per event, each as Sitoo sent it (``tillsync.streams.ingest.receivers``)
    raw = {
        "event_id": "ev-1",
        "event_type": "order",
        "event_date": 1_765_000_000,
        "account_id": 90001,
        "data": {"eshop_id": 1, "order_id": 77, "order_event_type": "ready-for-pickup"},
    }
    step = step_of_record(json.dumps(raw, separators=(",", ":")).encode())
    assert step is not None and (step.sitoo_order_id, step.step) == (77, READY)
    assert step_of_record(b"not json") is None
    assert step_of_record(b'[{"event_id": "a"}]') is None  # a batch is not one record


async def test_ready_in_sitoo_marks_shopify_prepared_once_whatever_repeats(shop: Shop) -> None:
    _, fo, made = await _in_sitoo(shop, (0, 1))
    shop.sitoo.state.ready_for_pickup(made)
    await shop.handover.take(_step(made, READY, 1))
    await shop.handover.take(_step(made, READY, 2))  # the event twice
    assert shop.shopify.state.fulfillment_orders[fo].ready_emails == 1
    assert shop.steps[f"ready:{made}"] == ANSWERED and shop.told.exceptions == []
    # the order's flow hears it once too: its "not ready in time" deadline ends there
    [ready] = shop.told.ready_told
    assert (ready.state.value, ready.sitoo_order_id, ready.fulfilment_order_id) == (
        "ready",
        made,
        fo,
    )


async def test_a_ready_asked_before_a_crash_is_not_asked_again_but_told(shop: Shop) -> None:
    _, fo, made = await _in_sitoo(shop, (0, 1))
    shop.sitoo.state.ready_for_pickup(made)
    shop.steps[f"ready:{made}"] = ASKED  # the worker died between the ask and its answer
    await shop.handover.take(_step(made, READY))
    assert shop.shopify.state.fulfillment_orders[fo].ready_emails == 0
    [exc] = shop.told.exceptions
    assert exc.type == "pickup_ready_unknown" and "check the order in Shopify" in exc.message


async def test_collected_in_sitoo_is_one_fulfilment_of_what_sitoo_handed_over(shop: Shop) -> None:
    order_id, fo, made = await _in_sitoo(shop, (0, 2), (1, 1))
    skus = shop.network.skus
    shop.sitoo.state.collect(made)
    await shop.handover.take(_step(made, COLLECTED, 1))
    await shop.handover.take(_step(made, COLLECTED, 2))  # told again: nothing more to fulfil
    state = shop.shopify.state
    [fulfilment] = [state.fulfillments[i] for i in state.orders[order_id].fulfillment_ids]
    items = {li.id: li.sku for li in state.orders[order_id].line_items}
    assert sorted((items[li], n) for li, n in fulfilment.lines) == [(skus[0], 2), (skus[1], 1)]
    assert state.fulfillment_orders[fo].status == "CLOSED"
    # the order's flow heard of the handover before Shopify did, each time alike
    assert [h.took for h in shop.told.handed] == [{skus[0]: 2, skus[1]: 1}] * 2
    assert shop.told.handed[0].location_id == shop.network.stores[0].shopify_location_id
    assert shop.told.handed[0].delivered_at > 0  # Sitoo's time of the sale
    # what the closed order let go, read after it: the positions need not wait for the
    # reservations agent (whose read of it a crash can lose)
    assert {(r.sku, r.reserved) for r in shop.told.readings} == {(skus[0], 0), (skus[1], 0)}


async def test_a_store_that_rejects_a_pickup_raises_it_once_for_e_commerce(shop: Shop) -> None:
    _, _, made = await _in_sitoo(shop, (2, 1))
    shop.sitoo.state.reject_pickup(made, "customer never came")
    await shop.handover.take(_step(made, REJECTED, 1))
    await shop.handover.take(_step(made, REJECTED, 2))
    [exc] = shop.told.exceptions
    assert exc.type == "pickup_rejected" and "customer never came" in exc.message
    assert exc.owner.value == "e-commerce"


async def test_a_sitoo_order_tillsync_did_not_make_is_left_alone(shop: Shop) -> None:
    store = shop.network.stores[0]
    sale = shop.sitoo.state.add_order(
        {
            "ordertypeid": 10,
            "warehouseid": store.sitoo_warehouse_id,
            "orderitems": [{"productname": "x", "sku": shop.network.skus[0], "quantity": 1}],
        }
    )
    shop.sitoo.state.collect(sale.orderid)
    await shop.handover.take(_step(sale.orderid, COLLECTED))
    assert shop.told.handed == [] and shop.told.exceptions == []


async def test_a_ready_in_a_shopify_outage_waits_and_is_asked_once_shopify_is_back(
    shop: Shop,
) -> None:
    """The agent's part returns at once; the step is acknowledged only once Shopify took it;
    a 503 says the mutation did not run, so the customer is told once, with no exception."""
    _, fo, made = await _in_sitoo(shop, (0, 1))
    shop.sitoo.state.ready_for_pickup(made)
    acks = Acks()
    shop.handover.ack = acks
    shop.shopify.set_faults(outage_seconds=1.0)
    record = event(_step(made, READY), offset=7)
    started = time.monotonic()
    await shop.handover.accept_events([record])
    assert time.monotonic() - started < 0.5 and acks.events == []
    writer = asyncio.create_task(shop.handover.run_writer())
    try:
        await until(lambda: acks.events == [record], "the step acknowledged", timeout=10.0)
    finally:
        writer.cancel()
    assert shop.handover.stats.retried >= 1
    assert shop.shopify.state.fulfillment_orders[fo].ready_emails == 1
    assert shop.steps[f"ready:{made}"] == ANSWERED and shop.told.exceptions == []
    assert len(shop.told.ready_told) == 1


async def test_a_step_that_is_not_one_is_dead_lettered_and_acknowledged(shop: Shop) -> None:
    acks = Acks()
    shop.handover.ack = acks
    record = event(b'{"step": "ready"}', offset=1, headers={"h": b"1"})
    await shop.handover.accept_events([record])
    assert acks.events == [record] and shop.told.dead[0].startswith("invalid")
    assert shop.handover.holding() == 0


async def test_a_check_finds_the_steps_whose_events_sitoo_lost(shop: Shop) -> None:
    """The order flow's sweep asks for a check of each open pickup in Sitoo: the steps whose
    events never came are read off the order itself, each still told once."""
    _, ready_fo, ready = await _in_sitoo(shop, (0, 1))
    order_id, _, collected = await _in_sitoo(shop, (1, 2))
    _, _, rejected = await _in_sitoo(shop, (2, 1))
    _, open_fo, still_open = await _in_sitoo(shop, (3, 1))
    shop.sitoo.state.ready_for_pickup(ready)
    shop.sitoo.state.collect(collected)
    shop.sitoo.state.reject_pickup(rejected, "wrong size")
    for n in (1, 2):  # the sweep comes again: nothing more
        for made in (ready, collected, rejected, still_open):
            await shop.handover.take(_step(made, CHECK, n))
    state = shop.shopify.state
    assert state.fulfillment_orders[ready_fo].ready_emails == 1
    assert state.fulfillment_orders[open_fo].ready_emails == 0
    [fulfilment] = [state.fulfillments[i] for i in state.orders[order_id].fulfillment_ids]
    assert sum(n for _, n in fulfilment.lines) == 2
    assert [e.type for e in shop.told.exceptions] == ["pickup_rejected"]
    assert [r.sitoo_order_id for r in shop.told.ready_told] == [ready]


async def test_a_ready_that_comes_after_its_collect_still_hands_the_pickup_over(
    shop: Shop,
) -> None:
    """One order's events come through different partitions of Sitoo's raw events: its ready
    may reach the handover after its collect, and supersede it while it waits."""
    order_id, fo, made = await _in_sitoo(shop, (0, 1))
    shop.sitoo.state.ready_for_pickup(made)
    shop.sitoo.state.collect(made)
    acks = Acks()
    shop.handover.ack = acks
    records = [event(_step(made, COLLECTED), offset=1), event(_step(made, READY), offset=2)]
    await shop.handover.accept_events(records)
    writer = asyncio.create_task(shop.handover.run_writer())
    try:
        await until(lambda: len(acks.events) == 2, "both steps acknowledged", timeout=10.0)
    finally:
        writer.cancel()
    state = shop.shopify.state
    assert state.fulfillment_orders[fo].status == "CLOSED"
    assert len(state.orders[order_id].fulfillment_ids) == 1 and len(shop.told.handed) == 1
    assert state.fulfillment_orders[fo].ready_emails == 0  # collected already: no email


async def test_a_pickup_only_authorised_at_checkout_is_captured_once_at_its_handover(
    shop: Shop,
) -> None:
    """flows.md (A): the card is charged when the goods are handed over, and only once however
    often the handover is told; a shop that was paid at checkout is charged nothing more."""
    order_id, _, made = await _in_sitoo(shop, (0, 2), (1, 1), authorised=True)
    paid_id, _, paid = await _in_sitoo(shop, (2, 1))
    order = shop.shopify.state.orders[order_id]
    assert order.financial_status == "authorized" and order.capturable() == order.total
    shop.sitoo.state.collect(made)
    shop.sitoo.state.collect(paid)
    for n in (1, 2):  # told twice: captured once
        await shop.handover.take(_step(made, COLLECTED, n))
        await shop.handover.take(_step(paid, COLLECTED, n))
    captures = [t for t in order.transactions if t.kind == "CAPTURE"]
    assert [t.amount for t in captures] == [order.total]
    assert order.financial_status == "paid" and order.capturable() == 0
    assert shop.platforms.captures == 1 and shop.told.exceptions == []
    assert [t.kind for t in shop.shopify.state.orders[paid_id].transactions] == ["SALE"]


async def test_a_capture_shopify_refuses_is_raised_once_for_finance(shop: Shop) -> None:
    order_id, _, made = await _in_sitoo(shop, (0, 1), authorised=True)
    [auth] = shop.shopify.state.orders[order_id].transactions
    auth.status = "PENDING"  # the gateway has not confirmed it: Shopify refuses to capture
    shop.sitoo.state.collect(made)
    # read as a successful one with its amount left: the payment read sees it succeed
    original = shop.platforms.payment

    async def as_if_successful(oid: int):  # type: ignore[no-untyped-def]
        auth.status = "SUCCESS"
        try:
            return await original(oid)
        finally:
            auth.status = "PENDING"

    shop.platforms.payment = as_if_successful  # type: ignore[method-assign]
    for n in (1, 2):
        await shop.handover.take(_step(made, COLLECTED, n))
    [exc] = shop.told.exceptions
    assert exc.type == "pickup_capture_refused" and exc.owner.value == "finance"
    assert "before the authorisation expires" in exc.message


async def test_each_parcel_of_a_shipment_is_one_fulfilment_with_its_tracking(shop: Shop) -> None:
    order_id, fo, made = await _in_sitoo(shop, (0, 2), (1, 1), method="SHIPPING")
    skus, state = shop.network.skus, shop.shopify.state
    data = shop.sitoo.state.orders[made].data
    assert data["delivery_address"] and "weborder-bopis" not in data["additionaldata"]
    watched = shop.sink.output.watched  # type: ignore[attr-defined]
    assert watched == [made]
    await shop.handover.take(_step(made, "watch"))
    items = {i["sku"]: int(i["orderitemid"]) for i in shop.sitoo.state.orders[made].product_items()}
    # the first parcel: told and fulfilled while the Sitoo order is still open
    shop.sitoo.state.ship(made, "TRK-1", "PostNord", {items[skus[0]]: 1})
    await shop.handover.take(_step(made, "parcel", 1))
    await shop.handover.take(_step(made, "parcel", 2))  # told twice: fulfilled once
    [first] = [state.fulfillments[i] for i in state.orders[order_id].fulfillment_ids]
    assert (first.tracking_numbers, first.tracking_company, first.notified) == (
        ["TRK-1"],
        "PostNord",
        True,
    )
    assert [(h.took, h.partial) for h in shop.told.handed] == [({skus[0]: 1}, True)] * 2
    assert set(shop.told.handed[0].delivered_at_by_sku) == {skus[0]}
    # the rest: the order closes, the second parcel is fulfilled, nothing more
    shop.sitoo.state.ship(made, "TRK-2", "PostNord")
    await shop.handover.take(_step(made, COLLECTED, 3))
    await shop.handover.take(_step(made, CHECK, 4))
    fulfilments = [state.fulfillments[i] for i in state.orders[order_id].fulfillment_ids]
    assert [f.tracking_numbers for f in fulfilments] == [["TRK-1"], ["TRK-2"]]
    assert state.fulfillment_orders[fo].status == "CLOSED"
    last = shop.told.handed[-1]
    assert (last.took, last.partial) == ({skus[0]: 2, skus[1]: 1}, False)
    assert f"watch:{made}" not in shop.steps  # closed: its parcels are all heard
    assert shop.told.exceptions == [] and shop.told.dead == []


async def test_a_parcel_of_an_order_not_watched_is_not_read(shop: Shop) -> None:
    # a till sale's delivery event: no such order is read (this one does not even exist)
    parcel = PickupStep(sitoo_order_id=987654, step=PARCEL, event_id="e-1")
    assert shop.handover.needs(parcel) == frozenset()  # waits on no breaker either
    await shop.handover.take(_step(987654, "parcel"))
    assert shop.told.handed == [] and shop.told.dead == [] and shop.told.exceptions == []


async def test_a_pickup_paid_in_store_is_marked_paid_once_at_its_handover(shop: Shop) -> None:
    order_id, fo, made = await _in_sitoo(shop, (0, 1), financial_status="pending")
    assert shop.sitoo.state.orders[made].data["paymentstateid"] == 0  # not paid yet
    shop.sitoo.state.collect(made, take_payment=True)
    await shop.handover.take(_step(made, COLLECTED, 1))
    await shop.handover.take(_step(made, COLLECTED, 2))
    order = shop.shopify.state.orders[order_id]
    assert shop.shopify.state.fulfillment_orders[fo].status == "CLOSED"
    assert order.financial_status == "paid"
    assert [t.kind for t in order.transactions] == ["SALE"]  # marked once
    assert shop.told.exceptions == []


async def test_a_pickup_paid_in_store_handed_over_unpaid_is_raised_for_finance(
    shop: Shop,
) -> None:
    order_id, _, made = await _in_sitoo(shop, (0, 1), financial_status="pending")
    shop.sitoo.state.collect(made)  # no payment taken at the till
    await shop.handover.take(_step(made, COLLECTED, 1))
    await shop.handover.take(_step(made, COLLECTED, 2))
    assert shop.shopify.state.orders[order_id].financial_status == "pending"
    [exc] = shop.told.exceptions
    assert (exc.type, exc.owner.value) == ("pickup_unpaid", "finance")


def _cancelling(shop: Shop) -> PickupHandover:
    """The handover with the first store's policy for a rejected pickup: cancel."""
    locations = LocationMap(
        locations=[
            loc.model_copy(
                update={"pickup": loc.pickup.model_copy(update={"on_rejected": "cancel"})}
            )
            for loc in shop.handover.locations.locations
        ]
    )
    return PickupHandover(shop.platforms, shop.platforms, shop.told, locations, shop.steps)


async def test_a_rejected_pickup_is_cancelled_refunded_and_restocked_by_policy(
    shop: Shop,
) -> None:
    order_id, fo, made = await _in_sitoo(shop, (0, 2))
    handover = _cancelling(shop)
    shop.sitoo.state.reject_pickup(made, "damaged")
    await handover.take(_step(made, REJECTED, 1))
    await handover.take(_step(made, REJECTED, 2))
    order = shop.shopify.state.orders[order_id]
    assert order.cancelled_at is not None and order.financial_status == "refunded"
    assert shop.shopify.state.fulfillment_orders[fo].status == "CANCELLED"
    [exc] = shop.told.exceptions
    assert exc.type == "pickup_rejected" and "cancelled, refunded and restocked" in exc.message


async def test_a_rejected_pickup_of_an_order_partly_fulfilled_is_left_to_a_person(
    shop: Shop,
) -> None:
    order_id, fo, made = await _in_sitoo(shop, (0, 2))
    [line] = shop.shopify.state.fulfillment_orders[fo].lines
    shop.shopify.state.fulfil(fo, [(line.id, 1)])  # one unit handed over in Shopify
    shop.sitoo.state.reject_pickup(made, "damaged")
    await _cancelling(shop).take(_step(made, REJECTED))
    assert shop.shopify.state.orders[order_id].cancelled_at is None
    [exc] = shop.told.exceptions
    assert "was not cancelled" in exc.message


def _rows(shop: Shop, made: int) -> dict[str, int]:
    """SKU -> the Sitoo order's row id."""
    return {
        str(i["sku"]): int(i["orderitemid"]) for i in shop.sitoo.state.orders[made].product_items()
    }


async def test_units_declined_at_the_counter_are_cancelled_and_refunded_by_policy(
    shop: Shop,
) -> None:
    """A return before pickup: the customer takes one line and leaves the other at the
    counter. At a store whose policy cancels, the declined line is refunded and restocked in
    Shopify (the cancel path), once, and the fulfilment order closes."""
    kept, declined = shop.network.skus[0], shop.network.skus[1]
    order_id, fo, made = await _in_sitoo(shop, (0, 2), (1, 1))
    st = shop.shopify.state
    store = shop.network.stores[0].shopify_location_id
    item = st.variant_by_sku(declined).inventory_item_id  # type: ignore[union-attr]
    before = st.levels[(item, store)].get("available")
    shop.sitoo.state.collect(made, lines={_rows(shop, made)[kept]: 2})
    handover = _cancelling(shop)
    await handover.take(_step(made, COLLECTED, 1))
    await handover.take(_step(made, COLLECTED, 2))  # told again: nothing more
    order = st.orders[order_id]
    price = next(li.price for li in order.line_items if li.sku == declined)
    assert st.fulfillment_orders[fo].status == "CLOSED"
    refunds = [st.refunds[r] for r in order.refund_ids]
    assert [(rl.line_item_id, rl.quantity, rl.restock_type) for r in refunds for rl in r.lines] == [
        (next(li.id for li in order.line_items if li.sku == declined), 1, "cancel")
    ]
    assert st.refunded(order) == price  # paid online: the declined unit's money goes back
    assert st.levels[(item, store)].get("available") == before + 1  # back on sale there
    assert shop.told.exceptions == []


async def test_units_declined_at_the_counter_stay_open_for_a_person_by_default(
    shop: Shop,
) -> None:
    kept = shop.network.skus[0]
    order_id, fo, made = await _in_sitoo(shop, (0, 2), (1, 1))
    shop.sitoo.state.collect(made, lines={_rows(shop, made)[kept]: 2})
    await shop.handover.take(_step(made, COLLECTED, 1))
    st = shop.shopify.state
    assert st.fulfillment_orders[fo].status == "IN_PROGRESS"  # the flow raises it later
    assert not st.orders[order_id].refund_ids


async def test_a_parcel_event_never_supersedes_the_collect_it_came_with(shop: Shop) -> None:
    """A pickup's collect delivers its rows in Sitoo: the delivery's event (a parcel, for a
    shipment) comes beside the collect's. Waiting together (Shopify down, say), the parcel
    must not take the collect's place: it is dropped unread for an order not watched (a
    lifecycle e2e run: pickups collected at the till never handed over)."""
    _, fo, made = await _in_sitoo(shop, (0, 1))
    shop.sitoo.state.collect(made)
    acks = Acks()
    shop.handover.ack = acks
    records = [
        event(_step(made, COLLECTED, 1), offset=1),
        event(_step(made, "parcel", 2), offset=2),
    ]
    await shop.handover.accept_events(records)
    writer = asyncio.create_task(shop.handover.run_writer())
    try:
        await until(lambda: len(acks.events) == 2, "both steps acknowledged", timeout=10.0)
    finally:
        writer.cancel()
    assert shop.shopify.state.fulfillment_orders[fo].status == "CLOSED"
    assert len(shop.told.handed) == 1
