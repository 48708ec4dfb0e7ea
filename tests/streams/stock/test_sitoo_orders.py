"""The Sitoo orders sink on both simulators over real HTTP: a pickup made in Sitoo once,
whatever repeats; Sitoo down longer than the client's retries; a command Sitoo refuses; a
cancel; a record that is not a command."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

import pytest

from tests.simulators.test_orders import SETTINGS
from tests.streams.stock.sink_fakes import Acks, event, until
from tillsync.connectors.breaker import BreakerPolicy, CircuitBreaker
from tillsync.connectors.outcomes import Outcome
from tillsync.connectors.retry import RetryPolicy
from tillsync.connectors.shopify.client import ShopifyClient, ShopifyConfig
from tillsync.connectors.shopify.pickup import PickupDetails
from tillsync.connectors.sitoo.client import SitooClient, SitooConfig, SitooError
from tillsync.schemas.events import (
    ExceptionRecord,
    PickupAction,
    PickupCommand,
    PickupInSitoo,
    SitooReserved,
)
from tillsync.schemas.sitoo import (
    ORDER_CANCELLED,
    ORDER_OPEN,
    Order,
    OrderDelivery,
    OrderIn,
    OrderItemIn,
    WarehouseItem,
)
from tillsync.streams.stock.command_writer import Breakers
from tillsync.streams.stock.sitoo_orders import SitooOrdersSink
from tillsync_sim.scenario.network import Network, NetworkSpec, build
from tillsync_sim.shopify import ShopifySimulator
from tillsync_sim.sitoo import SitooSimulator

FAST = RetryPolicy(attempts=2, base=0.01, cap=0.02)


@dataclass
class Recorded:
    answers: list[PickupInSitoo] = field(default_factory=list)
    readings: list[SitooReserved] = field(default_factory=list)
    dead: list[tuple[bytes, str, Mapping[str, bytes] | None]] = field(default_factory=list)
    exceptions: list[ExceptionRecord] = field(default_factory=list)
    watched: list[int] = field(default_factory=list)  # shipments whose parcels are to be heard

    async def in_sitoo(self, answer: PickupInSitoo) -> None:
        self.answers.append(answer)

    async def reserved(self, readings: Sequence[SitooReserved]) -> None:
        self.readings.extend(readings)

    async def dead_letter(
        self, value: bytes, reason: str, headers: Mapping[str, bytes] | None = None
    ) -> None:
        self.dead.append((value, reason, headers))

    async def exception(self, record: ExceptionRecord) -> None:
        self.exceptions.append(record)

    async def watch(self, sitoo_order_id: int) -> None:
        self.watched.append(sitoo_order_id)


@dataclass
class Platforms:
    sitoo: SitooClient
    shopify: ShopifyClient
    posts: int = 0
    lose_next_answer: bool = False  # the next order is made, and its answer lost

    async def orders_by_externalid(self, externalids: Sequence[str]) -> list[Order]:
        return await self.sitoo.orders_by_externalid(externalids)

    async def add_order(self, order: OrderIn) -> int:
        self.posts += 1
        made = await self.sitoo.add_order(order)
        if self.lose_next_answer:
            self.lose_next_answer = False
            raise SitooError(0, "ReadTimeout: the answer never came", method="POST", path="/")
        return made

    async def set_order_state(self, orderid: int, orderstateid: int) -> None:
        await self.sitoo.set_order_state(orderid, orderstateid)

    async def set_order_items(self, orderid: int, items: Sequence[OrderItemIn]) -> None:
        await self.sitoo.set_order_items(orderid, items)

    async def order_deliveries(self, orderid: int) -> list[OrderDelivery]:
        return await self.sitoo.order_deliveries(orderid)

    async def warehouse_items_by_sku(
        self, warehouse_id: int, skus: Sequence[str]
    ) -> list[WarehouseItem]:
        return await self.sitoo.warehouse_items_by_sku(warehouse_id, list(skus))

    async def pickup(self, fulfilment_order_id: int) -> PickupDetails | None:
        return await self.shopify.pickup(fulfilment_order_id)


@dataclass
class Shop:
    network: Network
    shopify: ShopifySimulator
    sitoo: SitooSimulator
    platforms: Platforms
    out: Recorded
    sink: SitooOrdersSink


@pytest.fixture
async def shop() -> AsyncIterator[Shop]:
    shopify = ShopifySimulator(SETTINGS)
    sitoo = SitooSimulator(SETTINGS, seed_spec=None)
    shopify_url = await shopify.start("127.0.0.1", 0)
    await sitoo.start("127.0.0.1", 0)
    network = build(shopify, sitoo, NetworkSpec(stores=2, skus=4, min_stock=10, max_stock=20))
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
        platforms = Platforms(sitoo_client, shopify_client)
        out = Recorded()
        policy = BreakerPolicy(threshold=100, open_for=0.01)
        breakers = Breakers(CircuitBreaker("sitoo", policy), CircuitBreaker("shopify", policy))
        sink = SitooOrdersSink(platforms, platforms, out, breakers=breakers)
        try:
            yield Shop(network, shopify, sitoo, platforms, out, sink)
        finally:
            await shopify.stop()
            await sitoo.stop()


def _pickup(
    shop: Shop, *lines: tuple[int, int], authorised: bool = False
) -> tuple[int, int, PickupCommand]:
    """A pickup order at the first store; its export command as the order flow sends it."""
    store = shop.network.stores[0]
    order = shop.shopify.state.place_order(
        [(shop.network.skus[i], n) for i, n in lines],
        location_id=store.shopify_location_id,
        delivery="PICK_UP",
        financial_status="authorized" if authorised else "paid",
    )
    [fo] = order.fulfillment_order_ids
    command = PickupCommand(
        action=PickupAction.EXPORT,
        externalid=f"fo-{fo}-{store.shopify_location_id}",
        order_id=order.id,
        fulfilment_order_id=fo,
        location_id=store.shopify_location_id,
        warehouse_id=store.sitoo_warehouse_id,
        at=1.0,
    )
    return order.id, fo, command


def _open_orders(shop: Shop, externalid: str) -> list[int]:
    found = shop.sitoo.state.orders_by_externalid.get(externalid)
    return [found] if found is not None else []


async def test_a_pickup_is_made_once_with_its_lines_and_markers_whatever_repeats(
    shop: Shop,
) -> None:
    order_id, fo, export = _pickup(shop, (0, 2), (1, 1))
    raw = export.model_dump_json().encode()
    await shop.sink.take(raw)
    await shop.sink.take(raw)  # a replay
    [made] = _open_orders(shop, export.externalid)
    data = shop.sitoo.state.orders[made].data
    assert (data["orderstateid"], data["warehouseid"]) == (ORDER_OPEN, export.warehouse_id)
    assert data["paymentstateid"] == 20 and data["customerref"].startswith("#")
    assert data["additionaldata"] == {
        "weborder": "true",
        "weborder-bopis": "true",
        "shopify-order-id": str(order_id),
        "shopify-fo-id": str(fo),
        "shopify-delivery-method": "PICK_UP",
    }
    assert not data["delivery_address"]  # Sitoo would take it for ship-from-store
    fo_lines = {ln.sku: ln.id for ln in shop.shopify.state.fulfillment_orders[fo].lines}
    skus = shop.network.skus
    assert [
        (i["sku"], int(i["quantity"]), i["additionaldata"]["web-itemid"])
        for i in data["orderitems"]
    ] == [(skus[0], 2, str(fo_lines[skus[0]])), (skus[1], 1, str(fo_lines[skus[1]]))]
    assert shop.platforms.posts == 1
    # both answers name the one order; the readings, taken after it was made, hold its units
    assert {a.sitoo_order_id for a in shop.out.answers} == {made}
    item = shop.sitoo.state.stock[export.warehouse_id][skus[0]]
    assert int(item.reserved) == 2
    assert shop.out.readings[0].reserved == 2 and shop.out.readings[0].sku == skus[0]
    first, second = shop.out.readings[:2], shop.out.readings[2:]
    assert len(second) == 2
    assert all(r.observed_at >= shop.out.answers[0].at for r in first)
    assert all(r.observed_at >= shop.out.answers[1].at for r in second)


async def test_an_answer_lost_after_the_order_was_made_does_not_make_a_second(
    shop: Shop,
) -> None:
    _, _, export = _pickup(shop, (2, 1))
    shop.platforms.lose_next_answer = True
    await shop.sink.take(export.model_dump_json().encode())
    assert len(_open_orders(shop, export.externalid)) == 1
    assert shop.platforms.posts == 1 and shop.sink.stats.retried == 1 and not shop.out.dead
    [answer] = shop.out.answers
    assert answer.sitoo_order_id == _open_orders(shop, export.externalid)[0]


async def test_sitoo_down_longer_than_the_retries_keeps_the_command_never_dead_letters(
    shop: Shop,
) -> None:
    _, _, export = _pickup(shop, (0, 1))
    shop.sitoo.set_faults(outage_for_s=0.5)
    await shop.sink.take(export.model_dump_json().encode())
    assert shop.sink.stats.retried >= 1  # tried again, as long as it took
    assert len(_open_orders(shop, export.externalid)) == 1
    assert not shop.out.dead and not shop.out.exceptions and len(shop.out.answers) == 1


async def test_a_command_sitoo_refuses_is_dead_lettered_with_its_headers_and_owned(
    shop: Shop,
) -> None:
    _, _, export = _pickup(shop, (0, 1))
    wrong = export.model_copy(update={"warehouse_id": 999_999})  # no such warehouse
    headers = {"tillsync-received-at": b"1"}
    await shop.sink.take(wrong.model_dump_json().encode(), headers)
    [(_, reason, kept)] = shop.out.dead
    assert "refused" in reason and kept == headers
    [exc] = shop.out.exceptions
    assert exc.type == "pickup_not_in_sitoo" and exc.key == export.externalid
    # the order's flow hears there is no Sitoo order to wait for
    [answer] = shop.out.answers
    assert answer.state.value == "absent" and shop.sink.stats.retried == 0

    await shop.sink.take(b'{"action": "export"}')  # not a command at all
    assert len(shop.out.dead) == 2 and shop.out.dead[1][1].startswith("invalid")


async def test_a_cancel_lets_the_reservation_go_once(shop: Shop) -> None:
    _, _, export = _pickup(shop, (3, 2))
    await shop.sink.take(export.model_dump_json().encode())
    cancel = export.model_copy(update={"action": PickupAction.CANCEL})
    await shop.sink.take(cancel.model_dump_json().encode())
    await shop.sink.take(cancel.model_dump_json().encode())  # a replay: nothing open
    [made] = _open_orders(shop, export.externalid)
    assert shop.sitoo.state.orders[made].data["orderstateid"] == ORDER_CANCELLED
    sku = shop.network.skus[3]
    assert int(shop.sitoo.state.stock[export.warehouse_id][sku].reserved) == 0
    assert shop.out.readings[-1].reserved == 0
    # an export replayed after its cancel makes nothing again
    await shop.sink.take(export.model_dump_json().encode())
    assert shop.platforms.posts == 1


async def test_a_pickup_no_longer_open_at_its_store_is_not_sent(shop: Shop) -> None:
    _, fo, export = _pickup(shop, (1, 1))
    shop.shopify.state.fulfil(fo)  # handed over in Shopify before the sink got to it
    await shop.sink.take(export.model_dump_json().encode())
    assert _open_orders(shop, export.externalid) == [] and shop.out.answers == []


async def test_the_agent_never_waits_on_sitoo_and_acks_a_record_once_carried_out(
    shop: Shop,
) -> None:
    """Faust's conductor stalls every agent while one agent's queue is full: the agent's part
    returns at once however long Sitoo is down; each record is acknowledged only once its
    command is carried out, and a repeat of a waiting command is acknowledged unrun."""
    first, second = _pickup(shop, (0, 1))[2], _pickup(shop, (1, 2))[2]
    acks = Acks()
    shop.sink.ack = acks
    shop.sitoo.set_faults(outage_for_s=1.0)
    records = [
        event(first.model_dump_json().encode(), offset=1),
        event(second.model_dump_json().encode(), offset=2),
        event(first.model_dump_json().encode(), offset=3),  # asked again while it waits
    ]
    started = time.monotonic()
    await shop.sink.accept_events(records)
    assert time.monotonic() - started < 0.5  # taken, not carried out: Sitoo is still down
    assert acks.events == [records[0]] and shop.platforms.posts == 0  # the older ask of first
    writer = asyncio.create_task(shop.sink.run_writer())
    try:
        await until(lambda: len(acks.events) == 3, "every record acknowledged", timeout=10.0)
    finally:
        writer.cancel()
    assert shop.sink.stats.retried >= 1 and not shop.out.dead
    assert len(_open_orders(shop, first.externalid)) == 1
    assert len(_open_orders(shop, second.externalid)) == 1
    assert shop.platforms.posts == 2 and shop.sink.holding() == 0


async def test_an_export_its_cancel_overtook_while_sitoo_was_down_is_never_made(
    shop: Shop,
) -> None:
    """One pickup's commands share a key: the cancel supersedes the export still waiting, and
    answers that Sitoo has no order (the order's flow then writes the Move Out itself)."""
    _, _, export = _pickup(shop, (0, 1))
    cancel = export.model_copy(update={"action": PickupAction.CANCEL})
    acks = Acks()
    shop.sink.ack = acks
    shop.sitoo.set_faults(outage_for_s=0.5)
    records = [
        event(export.model_dump_json().encode(), offset=1),
        event(cancel.model_dump_json().encode(), offset=2),
    ]
    await shop.sink.accept_events(records)
    assert acks.events == [records[0]]  # superseded: the cancel keeps the offset behind both
    writer = asyncio.create_task(shop.sink.run_writer())
    try:
        await until(lambda: len(acks.events) == 2, "the cancel carried out", timeout=10.0)
    finally:
        writer.cancel()
    assert _open_orders(shop, export.externalid) == [] and shop.platforms.posts == 0
    [answer] = shop.out.answers
    assert answer.state.value == "absent"


async def test_an_export_tells_when_an_only_authorised_cards_authorisation_lapses(
    shop: Shop,
) -> None:
    """The order's flow raises a pickup not collected before its card authorisation lapses:
    the export's answer says when that is (Shopify: 7 days), and a paid one says nothing."""
    _, _, authorised = _pickup(shop, (0, 1), authorised=True)
    _, _, paid = _pickup(shop, (1, 1))
    await shop.sink.take(authorised.model_dump_json().encode())
    await shop.sink.take(paid.model_dump_json().encode())
    first, second = shop.out.answers
    assert abs(first.authorised_until - (time.time() + 7 * 86400)) < 120
    assert second.authorised_until == 0.0
    made = shop.sitoo.state.orders[_open_orders(shop, authorised.externalid)[0]].data
    assert made["paymentstateid"] == 15  # only authorised, in Sitoo's terms


async def test_a_cancel_is_carried_out_while_shopifys_breaker_is_open(shop: Shop) -> None:
    """A cancel only calls Sitoo: Shopify's outage must not keep a Sitoo reservation holding
    units from sale (an export, which reads Shopify, waits)."""
    _, _, export = _pickup(shop, (3, 2))
    await shop.sink.take(export.model_dump_json().encode())
    shut = Breakers(
        CircuitBreaker("sitoo", BreakerPolicy(threshold=100, open_for=0.01)),
        CircuitBreaker("shopify", BreakerPolicy(threshold=1, open_for=3600.0, max_open=3600.0)),
    )
    shut.shopify.failed(Outcome.SERVER_ERROR)  # Shopify down: its breaker open for an hour
    shop.sink.breakers = shut
    acks = Acks()
    shop.sink.ack = acks
    cancel = export.model_copy(update={"action": PickupAction.CANCEL})
    _, _, other = _pickup(shop, (1, 1))
    records = [
        event(cancel.model_dump_json().encode(), offset=1),
        event(other.model_dump_json().encode(), offset=2),
    ]
    await shop.sink.accept_events(records)
    writer = asyncio.create_task(shop.sink.run_writer())
    try:
        await until(lambda: acks.events == [records[0]], "the cancel carried out", timeout=5.0)
    finally:
        writer.cancel()
    [made] = _open_orders(shop, export.externalid)
    assert shop.sitoo.state.orders[made].data["orderstateid"] == ORDER_CANCELLED
    assert _open_orders(shop, other.externalid) == []  # the export waits for Shopify


async def test_an_order_edited_after_its_export_brings_its_sitoo_rows_up_to_date(
    shop: Shop,
) -> None:
    """A line refunded with restock (as an edit that takes units off): the Sitoo order's rows
    and its reservation follow, once; the flow hears the rows Sitoo holds now."""
    order_id, fo, export = _pickup(shop, (0, 3), (1, 1))
    await shop.sink.take(export.model_dump_json().encode())
    [made] = _open_orders(shop, export.externalid)
    skus = shop.network.skus
    line = next(li for li in shop.shopify.state.orders[order_id].line_items if li.sku == skus[0])
    shop.shopify.state.refund(order_id, [(line.id, 2, "cancel", export.location_id)])
    update = export.model_copy(update={"action": PickupAction.UPDATE})
    await shop.sink.take(update.model_dump_json().encode())
    await shop.sink.take(update.model_dump_json().encode())  # asked twice: rows already so
    rows = {i["sku"]: int(i["quantity"]) for i in shop.sitoo.state.orders[made].product_items()}
    assert rows == {skus[0]: 1, skus[1]: 1}
    assert int(shop.sitoo.state.stock[export.warehouse_id][skus[0]].reserved) == 1
    fo_lines = {ln.sku: str(ln.id) for ln in shop.shopify.state.fulfillment_orders[fo].lines}
    assert shop.out.answers[-1].lines == {fo_lines[skus[0]]: 1, fo_lines[skus[1]]: 1}
    assert shop.out.answers[0].lines == {fo_lines[skus[0]]: 3, fo_lines[skus[1]]: 1}
