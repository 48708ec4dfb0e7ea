"""The orders agent's backlog (``OrderReads``): reads beside the agent, one per order at a
time, coalesced while they wait; records acknowledged once a read covers them. No Kafka."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import cast

import faust
import pytest

from tests.streams.stock.sink_fakes import Acks, until
from tests.streams.stock.test_orders import (
    LOCATIONS,
    ORDER,
    FakeShopify,
    Output,
    fo,
    fulfilment,
    fulfilment_webhook,
    state,
)
from tillsync.connectors.shopify.client import ShopifyError
from tillsync.connectors.shopify.fulfilment_state import FulfilmentLine, OrderFulfilmentState
from tillsync.streams.stock.order_reads import OrderReads
from tillsync.streams.stock.orders import Backoff, OrderHolds, OrderRecord, OrderTrack

OTHER = 66


class Event:
    """Stands for a Faust event: only acknowledged, and named in a table's partition."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __repr__(self) -> str:
        return f"Event({self.n})"


class GatedShopify(FakeShopify):
    """Reads of an order in ``held`` wait until the test opens its gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gates: dict[int, asyncio.Event] = {}
        self.read_orders: list[int] = []

    def hold(self, order_id: int) -> asyncio.Event:
        self.gates[order_id] = asyncio.Event()
        return self.gates[order_id]

    async def order_fulfilment_state(
        self, order_id: int, known: Mapping[int, tuple[FulfilmentLine, ...]] | None = None
    ) -> OrderFulfilmentState | None:
        self.read_orders.append(order_id)
        gate = self.gates.get(order_id)
        if gate is not None:
            await gate.wait()
        return await super().order_fulfilment_state(order_id, known)


@dataclass
class Harness:
    shopify: GatedShopify
    out: Output
    acks: Acks
    reads: OrderReads
    events: int = 0

    def record(
        self, order_id: int, topic: str = "orders/updated", body: bytes = b"{}"
    ) -> OrderRecord:
        self.events += 1
        return OrderRecord(
            topic=topic,
            key=str(order_id).encode(),
            value=body,
            event=cast(faust.EventT, Event(self.events)),
        )

    def acked(self) -> list[int]:
        return [cast(Event, e).n for e in self.acks.events]


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    shopify = GatedShopify()
    out = Output()
    acks = Acks()
    holds = OrderHolds({}, LOCATIONS, shopify, out)
    reads = OrderReads(holds, ack=acks, parallel=4)
    harness = Harness(shopify, out, acks, reads)
    writer = asyncio.create_task(reads.run_writer())
    try:
        yield harness
    finally:
        for gate in shopify.gates.values():
            gate.set()
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)


async def test_a_slow_read_holds_up_neither_a_later_move_out_nor_another_order(
    h: Harness,
) -> None:
    """In the agent, one order's read waiting on Shopify's budget held every later batch,
    and the Move Outs their fulfilment webhooks carry, behind it."""
    h.shopify.orders[OTHER] = state(fo(1, 11, ("A", 2)))
    h.shopify.orders[ORDER] = state(fo(2, 11, status="CLOSED"), fulfilment(9, 11, ("B", 1)))
    gate = h.shopify.hold(OTHER)
    await h.reads.accept([h.record(OTHER, "orders/create")])
    await until(lambda: OTHER in h.shopify.read_orders, "the first order's read to start")

    body = fulfilment_webhook(9, 11, ("B", 1), status="success")
    await h.reads.accept([h.record(ORDER, "fulfillments/create", body)])

    # the fulfilment's Move Out went at once, and its order was read meanwhile, once
    assert [t.externalid for t in h.out.transactions] == [f"sf-{ORDER}-9"]
    await until(lambda: 2 in h.acked(), "the fulfilled order's record to be acknowledged")
    assert 1 not in h.acked()  # the first is not acknowledged before its read is done
    assert len(h.out.transactions) == 1  # the read found the Move Out sent
    gate.set()
    await until(lambda: 1 in h.acked(), "the first order's record, once read")
    assert h.reads.holding() == 0


async def test_webhooks_of_an_order_waiting_for_its_read_are_read_once_for_all(
    h: Harness,
) -> None:
    h.shopify.orders[ORDER] = state(fo(1, 11, ("A", 2)))
    h.shopify.orders[OTHER] = state(fo(2, 11, ("B", 1)))
    gate = h.shopify.hold(ORDER)
    await h.reads.accept([h.record(ORDER)])
    await until(lambda: h.shopify.read_orders == [ORDER], "the read in flight")
    # more of its webhooks while it is read: one more read after it, for all of them
    for _ in range(5):
        await h.reads.accept([h.record(ORDER)])
    # the records a newer one supersedes are acknowledged at once: the newest keeps the
    # committed offset behind them all until its read is done
    assert h.acked() == [1, 2, 3, 4, 5]
    gate.set()
    await until(lambda: h.acked() == [1, 2, 3, 4, 5, 6], "the newest, once read after them")
    assert h.shopify.read_orders == [ORDER, ORDER]


async def test_a_record_that_changes_no_holding_is_acknowledged_at_once(h: Harness) -> None:
    await h.reads.accept([h.record(ORDER, "orders/paid")])
    assert h.acked() == [1] and h.reads.holding() == 0 and h.shopify.read_orders == []


async def test_a_release_forgets_the_waiting_orders_without_acknowledging_them(
    h: Harness,
) -> None:
    h.shopify.orders[ORDER] = state(fo(1, 11, ("A", 2)))
    h.shopify.hold(ORDER)
    await h.reads.accept([h.record(ORDER)])
    await until(lambda: h.shopify.read_orders == [ORDER], "the read in flight")

    h.reads.release()

    assert h.reads.holding() == 0 and h.acked() == []  # taken again from Kafka


async def test_a_surprise_in_a_read_puts_the_order_back_and_stops_the_readers(
    h: Harness,
) -> None:
    """A bug of ours (not an answer of Shopify's) must not lose the order nor leave readers
    running alone: the runner starts them again."""
    reads = OrderReads(OrderHolds({}, LOCATIONS, h.shopify, h.out), ack=h.acks, parallel=2)

    async def broken(group: list[OrderRecord]) -> None:
        raise RuntimeError("a bug")

    reads.holds.read = broken  # type: ignore[method-assign]
    await reads.accept([h.record(ORDER)])
    with pytest.raises(ExceptionGroup):
        await asyncio.wait_for(reads.run_writer(), 2.0)
    assert reads.holding() == 1 and reads.backlog.ready()  # to be read again
    assert h.acked() == []


async def test_readers_stop_when_cancelled_as_a_read_completes() -> None:
    """Python 3.11's wait_for loses a cancel that comes as its call completes: the readers
    went on, and a release waiting for them waited for ever."""
    shopify = GatedShopify()
    shopify.orders[ORDER] = state(fo(1, 11, ("A", 2)))
    gate = shopify.hold(ORDER)
    reads = OrderReads(OrderHolds({}, LOCATIONS, shopify, Output()), parallel=2)
    await reads.accept([OrderRecord(topic="orders/create", key=str(ORDER).encode(), value=b"{}")])
    writer = asyncio.create_task(reads.run_writer())
    await until(lambda: shopify.read_orders == [ORDER], "the read in flight")

    gate.set()
    writer.cancel()

    done, _ = await asyncio.wait([writer], timeout=2.0)
    assert writer in done and writer.cancelled()


async def test_a_fulfilment_order_that_cannot_be_traced_does_not_hold_a_reader() -> None:
    """A fulfilment-order webhook names no order: its order is looked up first. While Shopify
    cannot answer, that lookup is deferred with backoff like an order read; it held a reader
    for the whole outage, and with eight such webhooks every reader."""
    shopify = GatedShopify()
    shopify.orders[ORDER] = state(fo(1, 11, ("A", 2)))
    shopify.fulfilment_orders[77] = OTHER
    shopify.orders[OTHER] = state(fo(77, 11, ("B", 1)))
    down = [True]

    async def lookup(fulfilment_order_id: int) -> int | None:
        if down[0]:
            raise ShopifyError("server_error", "HTTP 503")
        return shopify.fulfilment_orders.get(fulfilment_order_id)

    shopify.order_of_fulfilment_order = lookup  # type: ignore[method-assign]
    out = Output()
    acks = Acks()
    holds = OrderHolds({}, LOCATIONS, shopify, out, backoff=Backoff(first=0.01, cap=0.05))
    reads = OrderReads(holds, ack=acks, parallel=1)
    moved = OrderRecord(
        topic="fulfillment_orders/moved",
        key=b"fulfillment_order/77",
        value=b"{}",
        event=cast(faust.EventT, Event(1)),
    )
    placed = OrderRecord(
        topic="orders/create",
        key=str(ORDER).encode(),
        value=b"{}",
        event=cast(faust.EventT, Event(2)),
    )
    writer = asyncio.create_task(reads.run_writer())
    try:
        await reads.accept([moved])
        await reads.accept([placed])
        # the one reader goes on to the next order while the lookup waits for its backoff
        await until(lambda: ORDER in shopify.read_orders, "the other order to be read")
        assert [cast(Event, e).n for e in acks.events] == [2]
        down[0] = False
        await until(lambda: out.again == [OTHER], "the lookup, once Shopify answers")
        await until(lambda: len(acks.events) == 2, "the webhook, once traced")
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
    assert reads.holding() == 0


async def test_a_webhook_move_out_during_a_read_of_its_order_is_kept_and_sent_once() -> None:
    """The agent sends a fulfilment webhook's Move Out while a reader may be reading the same
    order: neither may forget what the other sent (the track keeps both), and the fulfilment
    goes to Sitoo once."""
    shopify = GatedShopify()
    shopify.orders[ORDER] = state(fo(1, 11, status="CLOSED"), fulfilment(9, 11, ("A", 2)))
    gate = shopify.hold(ORDER)
    out = Output()
    tracks: dict[str, bytes] = {}
    reads = OrderReads(OrderHolds(tracks, LOCATIONS, shopify, out), parallel=1)
    writer = asyncio.create_task(reads.run_writer())
    try:
        await reads.accept(
            [OrderRecord(topic="orders/updated", key=str(ORDER).encode(), value=b"{}")]
        )
        await until(lambda: shopify.read_orders == [ORDER], "the read in flight")
        body = fulfilment_webhook(9, 11, ("A", 2), status="success")
        await reads.accept(
            [OrderRecord(topic="fulfillments/create", key=str(ORDER).encode(), value=body)]
        )
        assert [t.externalid for t in out.transactions] == [f"sf-{ORDER}-9"]
        gate.set()
        await until(lambda: reads.holding() == 0, "both reads done")
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
    assert [t.externalid for t in out.transactions] == [f"sf-{ORDER}-9"]
    assert OrderTrack.model_validate_json(tracks[str(ORDER)]).moved_out == [9]


async def test_deferred_lookups_go_as_soon_as_shopify_answers_again() -> None:
    """A fulfilment order's lookup deferred through an outage waited out its backoff (up to a
    minute) after Shopify was back; once a read is answered after reads failing in a row, it
    goes at once."""
    shopify = GatedShopify()
    shopify.fulfilment_orders[77] = OTHER
    shopify.orders[OTHER] = state(fo(77, 11, ("B", 1)))
    shopify.orders[ORDER] = state(fo(1, 11, ("A", 2)))
    down = [True]
    lookup = shopify.order_of_fulfilment_order
    read = shopify.order_fulfilment_state

    async def failing_lookup(fulfilment_order_id: int) -> int | None:
        if down[0]:
            raise ShopifyError("server_error", "HTTP 503")
        return await lookup(fulfilment_order_id)

    async def failing_read(
        order_id: int, known: Mapping[int, tuple[FulfilmentLine, ...]] | None = None
    ) -> OrderFulfilmentState | None:
        if down[0]:
            raise ShopifyError("server_error", "HTTP 503")
        return await read(order_id, known)

    shopify.order_of_fulfilment_order = failing_lookup  # type: ignore[method-assign]
    shopify.order_fulfilment_state = failing_read  # type: ignore[method-assign]
    out = Output()
    # a backoff far longer than the test: only "Shopify answers again" can release the lookup
    holds = OrderHolds({}, LOCATIONS, shopify, out, backoff=Backoff(first=600.0, cap=600.0))
    holds._sleep = lambda _: asyncio.sleep(0)  # type: ignore[method-assign]
    reads = OrderReads(holds, parallel=2)
    writer = asyncio.create_task(reads.run_writer())
    try:
        await reads.accept(
            [OrderRecord("fulfillment_orders/moved", b"fulfillment_order/77", b"{}")]
        )
        await reads.accept([OrderRecord("orders/create", str(ORDER).encode(), b"{}")])
        await until(lambda: holds.tracks.get(str(ORDER)) is not None, "the read to be deferred")
        assert out.again == []
        down[0] = False
        await reads.accept([OrderRecord("orders/updated", str(ORDER).encode(), b"{}")])
        await until(lambda: out.again == [OTHER], "the lookup, as soon as Shopify answers")
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
