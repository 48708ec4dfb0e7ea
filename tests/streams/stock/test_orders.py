"""Held units of online orders, derived from each order's fulfilment state in Shopify, through
the orders agent's logic (``OrderHolds``, no Kafka) to the positions they change."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pytest
from pydantic import BaseModel

from tillsync.connectors.shopify.client import ShopifyError
from tillsync.connectors.shopify.fulfilment_state import (
    FulfilmentLine,
    FulfilmentOrderLine,
    FulfilmentOrderState,
    FulfilmentState,
    OrderFulfilmentState,
)
from tillsync.schemas.events import (
    ExceptionRecord,
    HeldUnits,
    OrderPlaced,
    PickupAction,
    PickupCommand,
    PickupHandedOver,
    PickupInSitoo,
    RefundCredit,
    SitooLevel,
    SitooPickupState,
    SitooReserved,
)
from tillsync.schemas.locations import Location, LocationMap
from tillsync.schemas.sitoo import WarehouseTransactionIn
from tillsync.streams.context import Context
from tillsync.streams.echoes import Echoes
from tillsync.streams.metrics import REGISTRY
from tillsync.streams.skus import SkuIndex
from tillsync.streams.stock import pickups
from tillsync.streams.stock.held_units import derive
from tillsync.streams.stock.order_topics import (
    DERIVE_TOPIC,
    PICKUP_HANDED_OVER_TOPIC,
    PICKUP_IN_SITOO_TOPIC,
    OrderKey,
    order_key_of,
)
from tillsync.streams.stock.orders import (
    Backoff,
    KafkaOrderOutput,
    OrderHolds,
    OrderRecord,
    OrderTrack,
)
from tillsync.streams.stock.position import Position, step
from tillsync.streams.stock.shopify_webhooks import RawWebhook, WebhookReader, WebhookRecords

LOC1 = Location(
    name="Store 1",
    shopify_location_id=11,
    sitoo_store_id=1,
    sitoo_warehouse_id=101,
    buffer=0,
    settle_seconds=2.0,
)
LOC2 = Location(
    name="Store 2",
    shopify_location_id=12,
    sitoo_store_id=2,
    sitoo_warehouse_id=102,
    buffer=0,
    settle_seconds=2.0,
)
LOCATIONS = LocationMap(locations=[LOC1, LOC2])
BY_ID = {LOC1.shopify_location_id: LOC1, LOC2.shopify_location_id: LOC2}
BY_WAREHOUSE = {LOC1.sitoo_warehouse_id: LOC1, LOC2.sitoo_warehouse_id: LOC2}
ORDER = 55


def fo(
    fo_id: int,
    location: int | None,
    *lines: tuple[str, int],
    status: str = "OPEN",
    method: str = "SHIPPING",
) -> FulfilmentOrderState:
    return FulfilmentOrderState(
        id=fo_id,
        status=status,
        location_id=location,
        method=method,
        lines=tuple(
            FulfilmentOrderLine(id=fo_id * 100 + n, sku=sku, remaining=units)
            for n, (sku, units) in enumerate(lines)
        ),
    )


def fulfilment(
    f_id: int, location: int, *lines: tuple[str, int], status: str = "SUCCESS"
) -> FulfilmentState:
    return FulfilmentState(
        id=f_id,
        status=status,
        location_id=location,
        lines=tuple(FulfilmentLine(sku=sku, quantity=n) for sku, n in lines),
    )


def state(*parts: FulfilmentOrderState | FulfilmentState) -> OrderFulfilmentState:
    return OrderFulfilmentState(
        order_id=ORDER,
        fulfilment_orders=tuple(p for p in parts if isinstance(p, FulfilmentOrderState)),
        fulfilments=tuple(p for p in parts if isinstance(p, FulfilmentState)),
    )


class FakeShopify:
    """Answers with the order state a test sets; fails as often as told first."""

    def __init__(self) -> None:
        self.orders: dict[int, OrderFulfilmentState] = {}
        self.fulfilment_orders: dict[int, int] = {}
        self.failures: list[Exception] = []
        self.malformed: set[int] = set()  # orders whose answer lacks a field
        self.reads = 0

    async def order_fulfilment_state(
        self, order_id: int, known: Mapping[int, tuple[FulfilmentLine, ...]] | None = None
    ) -> OrderFulfilmentState | None:
        self.reads += 1
        if self.failures:
            raise self.failures.pop(0)
        if order_id in self.malformed:
            raise KeyError("fulfillmentOrders")
        return self.orders.get(order_id)

    async def order_of_fulfilment_order(self, fulfilment_order_id: int) -> int | None:
        if self.failures:
            raise self.failures.pop(0)
        return self.fulfilment_orders.get(fulfilment_order_id)


@dataclass
class Output:
    """``OrderOutput`` that keeps what the orders agent sends."""

    records: list[HeldUnits] = field(default_factory=list)
    hints: list[OrderPlaced] = field(default_factory=list)
    transactions: list[WarehouseTransactionIn] = field(default_factory=list)
    again: list[int] = field(default_factory=list)
    dead: list[tuple[OrderRecord, str]] = field(default_factory=list)
    pickups: list[PickupCommand] = field(default_factory=list)
    exceptions: list[ExceptionRecord] = field(default_factory=list)
    checks: list[int] = field(default_factory=list)  # Sitoo orders to read for lost steps
    credits: list[RefundCredit] = field(default_factory=list)

    async def held(self, records: Sequence[HeldUnits | OrderPlaced]) -> None:
        for r in records:
            if isinstance(r, HeldUnits):
                self.records.append(r)
            else:
                self.hints.append(r)

    async def transaction(self, tx: WarehouseTransactionIn) -> None:
        self.transactions.append(tx)

    async def derive_again(self, order_id: int) -> None:
        self.again.append(order_id)

    async def pickup(self, command: PickupCommand) -> None:
        self.pickups.append(command)

    async def credit(self, credit: RefundCredit) -> None:
        self.credits.append(credit)

    async def check_pickup(self, sitoo_order_id: int) -> None:
        self.checks.append(sitoo_order_id)

    async def exception(self, record: ExceptionRecord) -> None:
        self.exceptions.append(record)

    async def dead_letter(self, record: OrderRecord, reason: str) -> None:
        self.dead.append((record, reason))


class World:
    """Shopify's order state (set by the test), the orders agent, Sitoo's stock at each store
    and the positions there: what a test changes, and what the target becomes."""

    def __init__(self, stock: dict[tuple[str, int], int]) -> None:
        self.shopify = FakeShopify()
        self.out = Output()
        self.now = 1_000.0
        self.slept: list[float] = []
        self.tracks: dict[str, bytes] = {}
        self.holds = OrderHolds(
            self.tracks,
            LOCATIONS,
            self.shopify,
            self.out,
            clock=lambda: self.now,
            sleep=self._sleep,
            in_sitoo=lambda sku: sku in self.sitoo_skus,
        )
        self.sitoo_skus = {"A", "B", "C", "D"}
        self.positions: dict[tuple[str, int], Position] = {}
        self.sitoo_version = 0
        self.sent = 0  # held records already applied
        self.booked = 0  # transactions already booked by Sitoo
        for (sku, loc), total in stock.items():
            pos = self.positions[(sku, loc)] = Position(
                sku=sku, location_id=loc, inventory_item_id=7
            )
            self.sitoo_version += 1
            step(pos, self._level(sku, loc, total, None, 0), BY_ID[loc], self.now)

    async def _sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def _level(self, sku: str, loc: int, total: int, ext: str | None, delta: int) -> SitooLevel:
        return SitooLevel(
            sku=sku,
            warehouse_id=BY_ID[loc].sitoo_warehouse_id,
            total=total,
            version=self.sitoo_version,
            event_time=self.now,
            external_id=ext,
            delta=delta,
        )

    async def webhook(
        self, order: OrderFulfilmentState | None, topic: str = "orders/updated"
    ) -> None:
        """Shopify's order is now `order`; a webhook of it reaches the orders agent, and the
        records it sends reach the positions."""
        self.now += 1.0
        if order is not None:
            self.shopify.orders[ORDER] = order
        record = OrderRecord(topic=topic, key=str(ORDER).encode(), value=b"{}")
        await self.holds.take(record)
        self.deliver()

    def deliver(self) -> None:
        for record in self.out.records[self.sent :]:
            self.apply(record)
        self.sent = len(self.out.records)

    def apply(self, record: HeldUnits) -> bool:
        pos = self.positions.get((record.sku, record.location_id))
        if pos is None:
            return False
        return not step(pos, record, BY_ID[record.location_id], self.now).ignored

    def book(self) -> None:
        """Sitoo writes the transactions sent so far; its ledger brings them back."""
        for tx in self.out.transactions[self.booked :]:
            loc = BY_WAREHOUSE[tx.warehouseid].shopify_location_id
            for item in tx.items:
                pos = self.positions[(item.sku, loc)]
                delta = int(float(item.decimalquantity))
                assert pos.sitoo_total is not None
                self.sitoo_version += 1
                level = self._level(item.sku, loc, pos.sitoo_total + delta, tx.externalid, delta)
                step(pos, level, BY_ID[loc], self.now)
        self.booked = len(self.out.transactions)

    def held(self, sku: str, loc: int) -> int:
        return self.positions[(sku, loc)].pending_units

    def target(self, sku: str, loc: int) -> int | None:
        return self.positions[(sku, loc)].target(0)


# -- derivation -----------------------------------------------------------------------------


def test_lines_of_one_sku_and_quantities_above_one_add_up_per_location() -> None:
    held = derive(
        state(
            fo(1, 11, ("A", 2), ("B", 1), ("A", 3)),  # two lines of A
            fo(2, 11, ("A", 4)),  # split into two fulfilment orders at one store
            fo(3, 12, ("A", 1)),
            fo(4, 99, ("A", 7)),  # not a mapped store
            fo(5, 12, ("B", 6), status="CLOSED"),  # moved away or merged: holds nothing
            fo(6, 12, ("", 3)),  # a custom line without a SKU
        ),
        LOCATIONS,
    )
    assert {k: (h.open, h.fulfilled) for k, h in held.items()} == {
        "A@11": (9, {}),
        "B@11": (1, {}),
        "A@12": (1, {}),
    }


async def test_a_multi_line_order_holds_every_line_until_its_move_out_is_booked() -> None:
    w = World({("A", 11): 20, ("B", 11): 5})
    await w.webhook(state(fo(1, 11, ("A", 2), ("A", 3), ("B", 2))), "orders/create")
    assert (w.held("A", 11), w.held("B", 11)) == (5, 2)
    assert (w.target("A", 11), w.target("B", 11)) == (15, 3)
    assert {h.sku for h in w.out.hints} == {"A", "B"} and all(h.routed for h in w.out.hints)

    # the store ships everything in one fulfilment: one Move Out, one item per SKU
    await w.webhook(
        state(
            fo(1, 11, ("A", 0), ("A", 0), ("B", 0), status="CLOSED"),
            fulfilment(900, 11, ("A", 2), ("A", 3), ("B", 2)),
        ),
        "fulfillments/create",
    )
    [move_out] = w.out.transactions
    assert move_out.externalid == f"sf-{ORDER}-900" and move_out.warehouseid == 101
    assert sorted((i.sku, i.decimalquantity) for i in move_out.items) == [
        ("A", "-5.000"),
        ("B", "-2.000"),
    ]
    # fulfilled, not yet booked by Sitoo: still held, the target does not move
    assert (w.held("A", 11), w.target("A", 11)) == (5, 15)
    w.book()
    assert (w.held("A", 11), w.held("B", 11)) == (0, 0)
    assert (w.target("A", 11), w.target("B", 11)) == (15, 3)  # the same as before the Move Out
    # another read of the fulfilled order sends no second Move Out
    await w.webhook(None, "orders/fulfilled")
    assert len(w.out.transactions) == 1


async def test_a_store_that_fulfilled_before_the_first_read_is_not_subtracted_twice() -> None:
    w = World({("A", 11): 10})
    # the first read comes after the store fulfilled 2 of 3 (review item 6)
    await w.webhook(
        state(fo(1, 11, ("A", 1), status="IN_PROGRESS"), fulfilment(900, 11, ("A", 2))),
        "orders/create",
    )
    assert (w.held("A", 11), w.target("A", 11)) == (3, 7)  # Shopify shows 10 - 3
    w.book()  # Sitoo 8
    assert (w.held("A", 11), w.target("A", 11)) == (1, 7)


async def test_a_partial_fulfilment_then_a_cancel_keeps_the_fulfilled_units_until_booked() -> None:
    w = World({("A", 11): 10})
    await w.webhook(state(fo(1, 11, ("A", 3))), "orders/create")
    await w.webhook(
        state(fo(1, 11, ("A", 1), status="IN_PROGRESS"), fulfilment(900, 11, ("A", 2))),
        "fulfillments/create",
    )
    assert (w.held("A", 11), w.target("A", 11)) == (3, 7)
    # the customer cancels the rest before the Move Out reaches Sitoo: Shopify's available is
    # 10 - 2 = 8, Sitoo still counts the 2 shipped units
    await w.webhook(
        state(fo(1, 11, ("A", 0), status="CANCELLED"), fulfilment(900, 11, ("A", 2))),
        "orders/cancelled",
    )
    assert (w.held("A", 11), w.target("A", 11)) == (2, 8)
    w.book()
    assert (w.held("A", 11), w.target("A", 11)) == (0, 8)


async def test_a_cancel_before_fulfilment_lets_every_unit_go() -> None:
    w = World({("A", 11): 10})
    await w.webhook(state(fo(1, 11, ("A", 3))), "orders/create")
    assert w.target("A", 11) == 7
    await w.webhook(state(fo(1, 11, ("A", 0), status="CANCELLED")), "orders/cancelled")
    assert (w.held("A", 11), w.target("A", 11)) == (0, 10)
    assert w.out.transactions == []


@pytest.mark.parametrize(
    ("restock", "remaining", "target"),
    [
        # CANCEL restock: Shopify releases the refunded units to available
        ("cancel", 1, 9),
        # NO_RESTOCK: Shopify keeps them committed on the fulfilment order (the simulator's
        # model); whatever Shopify says, the hold follows it
        ("no_restock", 3, 7),
    ],
)
async def test_a_refund_before_fulfilment_follows_the_fulfilment_order(
    restock: str, remaining: int, target: int
) -> None:
    w = World({("A", 11): 10})
    await w.webhook(state(fo(1, 11, ("A", 3))), "orders/create")
    await w.webhook(state(fo(1, 11, ("A", remaining))), "refunds/create")
    assert (w.held("A", 11), w.target("A", 11)) == (remaining, target), restock


async def test_an_order_edit_is_read_again_not_patched() -> None:
    w = World({("A", 11): 10, ("B", 11): 10})
    await w.webhook(state(fo(1, 11, ("A", 1))), "orders/create")
    # the merchant edits: A goes from 1 to 4, a line of B is added
    await w.webhook(state(fo(1, 11, ("A", 4), ("B", 2))), "orders/edited")
    assert (w.held("A", 11), w.held("B", 11)) == (4, 2)
    # and the edit is undone: B's line removed
    await w.webhook(state(fo(1, 11, ("A", 4), ("B", 0))), "orders/edited")
    assert (w.held("A", 11), w.held("B", 11)) == (4, 0)


async def test_a_fulfilment_order_moved_to_another_store_lets_go_at_the_first() -> None:
    w = World({("A", 11): 10, ("A", 12): 10})
    await w.webhook(state(fo(1, 11, ("A", 2))), "orders/create")
    assert (w.held("A", 11), w.held("A", 12)) == (2, 0)
    await w.webhook(
        state(fo(1, 11, ("A", 0), status="CLOSED"), fo(2, 12, ("A", 2))),
        "fulfillment_orders/moved",
    )
    assert (w.held("A", 11), w.held("A", 12)) == (0, 2)
    assert (w.target("A", 11), w.target("A", 12)) == (10, 8)


async def test_a_fulfilment_order_moved_to_an_unmapped_location_holds_nothing_here() -> None:
    w = World({("A", 11): 10})
    await w.webhook(state(fo(1, 11, ("A", 2))), "orders/create")
    await w.webhook(state(fo(1, 99, ("A", 2))), "fulfillment_orders/moved")  # moved whole
    assert (w.held("A", 11), w.target("A", 11)) == (0, 10)
    # nothing is sent for the unmapped location, and it stays let go at the next read
    assert {h.location_id for h in w.out.records} == {11}
    await w.webhook(None, "orders/updated")
    assert w.held("A", 11) == 0


async def test_a_pickup_order_holds_until_collected_and_leaves_sitoo_once() -> None:
    w = World({("A", 12): 10})
    await w.webhook(state(fo(1, 12, ("A", 2), method="PICK_UP")), "orders/create")
    assert (w.held("A", 12), w.target("A", 12)) == (2, 8)
    # handed over in Shopify (not at the till): its Sitoo order is cancelled, and the Move Out
    # waits for Sitoo's word that it delivered nothing of it (the till may have, unheard)
    await w.webhook(
        state(fo(1, 12, ("A", 0), method="PICK_UP", status="CLOSED"), fulfilment(77, 12, ("A", 2))),
        "fulfillments/create",
    )
    assert w.out.transactions == [] and (w.held("A", 12), w.target("A", 12)) == (2, 8)
    assert w.out.pickups[-1].action is PickupAction.CANCEL
    said = PickupInSitoo(
        externalid="fo-1-12",
        order_id=ORDER,
        fulfilment_order_id=1,
        sitoo_order_id=5,
        at=w.now,
        state=SitooPickupState.CANCELLED,
    )
    await w.holds.take(
        OrderRecord(
            topic=PICKUP_IN_SITOO_TOPIC,
            key=str(ORDER).encode(),
            value=said.model_dump_json().encode(),
        )
    )
    w.deliver()
    [move_out] = w.out.transactions
    assert move_out.warehouseid == 102 and move_out.externalid == f"sf-{ORDER}-77"
    w.book()
    assert (w.held("A", 12), w.target("A", 12)) == (0, 8)


async def test_a_pickup_becomes_one_sitoo_order_whose_reservation_replaces_the_hold() -> None:
    w = World({("A", 12): 10})
    pickup = fo(1, 12, ("A", 2), method="PICK_UP")
    await w.webhook(state(pickup), "orders/create")
    await w.webhook(None, "fulfillment_orders/order_routing_complete")  # a second read
    [export] = w.out.pickups  # asked for once
    assert (export.action, export.externalid) == (PickupAction.EXPORT, "fo-1-12")
    assert (export.order_id, export.fulfilment_order_id, export.warehouse_id) == (ORDER, 1, 102)
    # Sitoo makes the order, which reserves the 2; a reading from before that confirmation
    # cannot be told from one without them: the units stay held (shown less, never twice)
    pos = w.positions[("A", 12)]
    made_at = w.now + 0.5
    step(
        pos,
        SitooReserved(sku="A", warehouse_id=102, reserved=0, observed_at=made_at - 0.2),
        BY_ID[12],
        w.now,
    )
    answer = PickupInSitoo(
        externalid="fo-1-12", order_id=ORDER, fulfilment_order_id=1, sitoo_order_id=5, at=made_at
    )
    w.now += 1.0
    await w.holds.take(
        OrderRecord(
            topic=PICKUP_IN_SITOO_TOPIC,
            key=str(ORDER).encode(),
            value=answer.model_dump_json().encode(),
        )
    )
    w.deliver()
    assert w.out.records[-1].in_sitoo == 2 and w.out.records[-1].in_sitoo_since == made_at
    assert (w.held("A", 12), w.target("A", 12)) == (2, 8)
    # the sink's reading after the confirmation: Sitoo reserves them, the order holds none
    step(
        pos,
        SitooReserved(sku="A", warehouse_id=102, reserved=2, observed_at=made_at + 0.1),
        BY_ID[12],
        w.now,
    )
    assert (w.held("A", 12), w.target("A", 12)) == (0, 8)
    # the pickup is handed over in Shopify: the Move Out as for any store fulfilment, and the
    # Sitoo order cancelled, once
    await w.webhook(
        state(fo(1, 12, ("A", 0), method="PICK_UP", status="CLOSED"), fulfilment(77, 12, ("A", 2))),
        "fulfillments/create",
    )
    await w.webhook(None, "orders/updated")
    assert [(c.action, c.externalid) for c in w.out.pickups] == [
        (PickupAction.EXPORT, "fo-1-12"),
        (PickupAction.CANCEL, "fo-1-12"),
    ]
    # until the reservation's release is read, the units count twice (held as fulfilled, and
    # reserved): shown less, never more
    assert (w.held("A", 12), w.target("A", 12)) == (2, 6)
    step(
        pos,
        SitooReserved(sku="A", warehouse_id=102, reserved=0, observed_at=w.now),
        BY_ID[12],
        w.now,
    )
    assert w.out.transactions == []  # the Move Out waits for Sitoo's word on the pickup
    said = answer.model_copy(update={"state": SitooPickupState.CANCELLED, "at": w.now})
    await w.holds.take(
        OrderRecord(
            topic=PICKUP_IN_SITOO_TOPIC,
            key=str(ORDER).encode(),
            value=said.model_dump_json().encode(),
        )
    )
    w.book()
    assert (w.held("A", 12), w.target("A", 12)) == (0, 8)


async def test_a_pickup_collected_in_sitoo_gets_no_move_out_and_holds_nothing() -> None:
    w = World({("A", 12): 10})
    await w.webhook(state(fo(1, 12, ("A", 2), method="PICK_UP")), "orders/create")
    pos = w.positions[("A", 12)]
    made_at = w.now + 0.5

    async def told(topic: str, body: BaseModel) -> None:
        w.now += 1.0
        key = str(ORDER).encode()
        await w.holds.take(OrderRecord(topic=topic, key=key, value=body.model_dump_json().encode()))
        w.deliver()

    def reserved(units: int) -> None:
        reading = SitooReserved(sku="A", warehouse_id=102, reserved=units, observed_at=w.now)
        step(pos, reading, BY_ID[12], w.now)

    await told(
        PICKUP_IN_SITOO_TOPIC,
        PickupInSitoo(
            externalid="fo-1-12",
            order_id=ORDER,
            fulfilment_order_id=1,
            sitoo_order_id=5,
            at=made_at,
        ),
    )
    reserved(2)
    assert (w.held("A", 12), w.target("A", 12)) == (0, 8)
    # collected at the till: the reservation is let go, and the order's flow hears of the
    # handover before the ledger brings Sitoo's sale: the units stay held until it does, so
    # the 2 are never offered while Sitoo's total still has them
    sold_at = w.now + 0.5
    reserved(0)
    assert (w.held("A", 12), w.target("A", 12)) == (2, 8)
    handed = PickupHandedOver(
        externalid="fo-1-12",
        order_id=ORDER,
        fulfilment_order_id=1,
        location_id=12,
        took={"A": 2},
        at=w.now,
        delivered_at=sold_at,
    )
    await told(PICKUP_HANDED_OVER_TOPIC, handed)
    assert (w.held("A", 12), w.target("A", 12)) == (2, 8)
    w.sitoo_version += 1
    sale = w._level("A", 12, 8, None, -2).model_copy(update={"event_time": sold_at})
    step(pos, sale, BY_ID[12], w.now)
    assert (w.held("A", 12), w.target("A", 12)) == (0, 8)
    # Shopify's fulfilment of the handover: Sitoo took the units itself, no Move Out, and
    # nothing to cancel in Sitoo (the order is closed there)
    await w.webhook(
        state(fo(1, 12, ("A", 0), method="PICK_UP", status="CLOSED"), fulfilment(77, 12, ("A", 2))),
        "fulfillments/create",
    )
    await w.webhook(None, "orders/updated")
    assert w.out.transactions == []
    assert (w.held("A", 12), w.target("A", 12)) == (0, 8)
    assert [c.action for c in w.out.pickups] == [PickupAction.EXPORT]


async def test_a_pickup_moved_to_another_store_is_a_new_sitoo_order_there() -> None:
    w = World({("A", 11): 10, ("A", 12): 10})
    await w.webhook(state(fo(1, 11, ("A", 1), method="PICK_UP")), "orders/create")
    await w.webhook(state(fo(1, 12, ("A", 1), method="PICK_UP")), "fulfillment_orders/moved")
    # to a location no store is mapped to: nothing there to make
    await w.webhook(state(fo(1, 99, ("A", 1), method="PICK_UP")), "fulfillment_orders/moved")
    assert [(c.action, c.externalid, c.warehouse_id) for c in w.out.pickups] == [
        (PickupAction.EXPORT, "fo-1-11", 101),
        (PickupAction.CANCEL, "fo-1-11", 101),  # the old order first
        (PickupAction.EXPORT, "fo-1-12", 102),
        (PickupAction.CANCEL, "fo-1-12", 102),
    ]
    # back at the first store (a fulfilment cancelled, say): a new generation, not the
    # cancelled Sitoo order again
    await w.webhook(state(fo(1, 11, ("A", 1), method="PICK_UP")), "fulfillment_orders/moved")
    assert w.out.pickups[-1].externalid == "fo-1-11-2"


async def test_a_cancelled_fulfilment_is_held_again_and_its_move_out_reversed() -> None:
    w = World({("A", 11): 10})
    await w.webhook(state(fo(1, 11, ("A", 2))), "orders/create")
    shipped = state(fo(1, 11, ("A", 0), status="CLOSED"), fulfilment(900, 11, ("A", 2)))
    await w.webhook(shipped, "fulfillments/create")
    w.book()  # Sitoo 8, nothing held
    assert (w.held("A", 11), w.target("A", 11)) == (0, 8)
    # the fulfilment is cancelled: Shopify commits the 2 again (available stays 8), Sitoo
    # already lost them: nothing more to hold until Sitoo gets them back
    await w.webhook(
        state(fo(1, 11, ("A", 2)), fulfilment(900, 11, ("A", 2), status="CANCELLED")),
        "fulfillments/update",
    )
    assert (w.held("A", 11), w.target("A", 11)) == (0, 8)
    [_, move_in] = w.out.transactions
    assert move_in.externalid == f"sf-{ORDER}-900-r" and move_in.transactiontype == 10
    assert [(i.sku, i.decimalquantity) for i in move_in.items] == [("A", "2.000")]
    w.book()  # Sitoo 10, and the 2 are held again
    assert (w.held("A", 11), w.target("A", 11)) == (2, 8)
    await w.webhook(None, "orders/updated")
    assert len(w.out.transactions) == 2  # each sent once


# -- failures, unknown orders, the sweep ----------------------------------------------------


async def test_a_failed_read_is_deferred_with_backoff_and_read_again_never_dropped() -> None:
    w = World({("A", 11): 10})
    w.holds.backoff = Backoff(first=1.0, cap=8.0)
    w.shopify.failures.append(ShopifyError("unauthorized", "HTTP 401"))
    w.shopify.failures.extend(ShopifyError("server_error", "HTTP 503") for _ in range(6))
    await w.webhook(state(fo(1, 11, ("A", 3))), "orders/create")
    # tried twice in its batch, then left to the sweep: the batches behind it go on
    assert w.shopify.reads == 2 and w.out.dead == [] and len(w.slept) == 1
    waits: list[float] = []
    while w.shopify.failures or w.held("A", 11) != 3:
        track = OrderTrack.model_validate_json(w.tracks[str(ORDER)])
        assert track.retry_at > w.now and track.holding
        assert w.holds.due(w.tracks.items(), w.now) == []  # not before its backoff
        waits.append(track.retry_at - w.now)
        w.now = track.retry_at
        assert w.holds.due(w.tracks.items(), w.now) == [ORDER]
        assert w.holds.due(w.tracks.items(), w.now) == []  # asked once per backoff
        await w.holds.take(OrderRecord(topic=DERIVE_TOPIC, key=str(ORDER).encode(), value=b"{}"))
        w.deliver()
        assert len(waits) < 10, "never read"
    assert w.shopify.reads == 8 and w.out.dead == []
    assert max(waits) <= 8.0 and waits[0] < waits[-1]
    track = OrderTrack.model_validate_json(w.tracks[str(ORDER)])
    assert (track.failed_reads, track.retry_at) == (0, 0.0)


async def test_deferred_reads_are_due_as_soon_as_shopify_answers_again() -> None:
    """After a long outage the deferred reads waited out backoffs of up to a minute after
    Shopify was back, their held units stale (and their SKUs offered) meanwhile: in the e2e
    lifecycle run tillsync caught up 12-26 s after the outage. A read that succeeds says
    Shopify answers: every read deferred before it is due at the next sweep."""
    w = World({("A", 11): 10, ("B", 11): 10})
    w.holds.backoff = Backoff(first=30.0, cap=60.0)

    async def no_time_passes(seconds: float) -> None:
        # the tries' waits (15-30 s, drawn at random) would move the clock past another
        # order's backoff (15-30 s too): the steps below name the time themselves
        w.slept.append(seconds)

    w.holds._sleep = no_time_passes
    other = ORDER + 1
    w.shopify.orders[other] = state(fo(9, 11, ("B", 2)))
    w.shopify.failures.extend(ShopifyError("server_error", "HTTP 503") for _ in range(4))
    await w.webhook(state(fo(1, 11, ("A", 3))), "orders/create")
    await w.holds.take(OrderRecord(topic="orders/create", key=str(other).encode(), value=b"{}"))
    assert w.shopify.reads == 4 and w.holds.due(w.tracks.items(), w.now) == []
    # a read is deferred again while Shopify is still down: not due before its backoff
    w.now += 1.0
    assert w.holds.due(w.tracks.items(), w.now) == []
    # Shopify answers a read (a webhook's, of a third order): both deferred ones are due now,
    # long before their backoff, and asked for once
    third = ORDER + 2
    w.shopify.orders[third] = state(fo(10, 11, ("A", 1)))
    await w.holds.take(OrderRecord(topic="orders/create", key=str(third).encode(), value=b"{}"))
    w.now += 1.0
    assert sorted(w.holds.due(w.tracks.items(), w.now)) == [ORDER, other]
    assert w.holds.due(w.tracks.items(), w.now) == []
    # one that fails after Shopify came back keeps its backoff
    w.shopify.failures.extend(ShopifyError("server_error", "HTTP 503") for _ in range(2))
    await w.holds.take(OrderRecord(topic=DERIVE_TOPIC, key=str(ORDER).encode(), value=b"{}"))
    w.now += 1.0
    assert w.holds.due(w.tracks.items(), w.now) == []


def fulfilment_webhook(f_id: int, location: int, *lines: tuple[str, int], status: str) -> bytes:
    """A fulfillments/create|update body as Shopify sends it (the fields read of it)."""
    return json.dumps(
        {
            "id": f_id,
            "order_id": ORDER,
            "status": status,
            "location_id": location,
            "line_items": [
                {"id": n, "sku": sku, "quantity": q} for n, (sku, q) in enumerate(lines)
            ],
        }
    ).encode()


async def test_a_fulfilment_webhook_moves_stock_out_in_sitoo_while_shopify_cannot_be_read() -> None:
    w = World({("A", 11): 10, ("B", 11): 5})
    await w.webhook(state(fo(1, 11, ("A", 2), ("B", 1))), "orders/create")
    shipped = state(fo(1, 11, status="CLOSED"), fulfilment(7, 11, ("A", 2), ("B", 1)))
    w.shopify.orders[ORDER] = shipped
    w.shopify.failures.extend(ShopifyError("server_error", "HTTP 503") for _ in range(5))
    sent_by_first_retry: list[int] = []
    sleep = w.holds._sleep

    async def watching(seconds: float) -> None:
        sent_by_first_retry.append(len(w.out.transactions))
        await sleep(seconds)

    w.holds._sleep = watching
    body = fulfilment_webhook(7, 11, ("A", 2), ("B", 1), status="success")
    await w.holds.take(
        OrderRecord(topic="fulfillments/create", key=str(ORDER).encode(), value=body)
    )
    # the Move Out went before the order's state could be read, not after the outage
    assert sent_by_first_retry[0] == 1
    [tx] = w.out.transactions
    assert tx.externalid == f"sf-{ORDER}-7" and tx.warehouseid == LOC1.sitoo_warehouse_id
    assert sorted((i.sku, i.decimalquantity) for i in tx.items) == [
        ("A", "-2.000"),
        ("B", "-1.000"),
    ]
    # once read, the same fulfilment sends nothing again; a replayed webhook neither
    await w.holds.take(
        OrderRecord(topic="fulfillments/create", key=str(ORDER).encode(), value=body)
    )
    assert len(w.out.transactions) == 1
    w.deliver()
    w.book()
    assert (w.held("A", 11), w.target("A", 11)) == (0, 8)
    # a cancelled fulfilment's webhook reverses it at once too
    w.shopify.failures.extend(ShopifyError("server_error", "HTTP 503") for _ in range(2))
    cancelled = fulfilment_webhook(7, 11, ("A", 2), ("B", 1), status="cancelled")
    await w.holds.take(
        OrderRecord(topic="fulfillments/update", key=str(ORDER).encode(), value=cancelled)
    )
    assert [t.externalid for t in w.out.transactions] == [f"sf-{ORDER}-7", f"sf-{ORDER}-7-r"]


async def test_a_fulfilments_lines_are_learnt_once_and_handed_to_every_later_read() -> None:
    """A fulfilment's lines are fixed when it is made: learnt from its webhook (or the first
    read that lists it), they are not read again; its status is, at every read."""
    w = World({("A", 11): 10})
    asked: list[dict[int, tuple[FulfilmentLine, ...]]] = []
    read = w.shopify.order_fulfilment_state

    async def recording(
        order_id: int, known: Mapping[int, tuple[FulfilmentLine, ...]] | None = None
    ) -> OrderFulfilmentState | None:
        asked.append(dict(known or {}))
        return await read(order_id, known)

    w.shopify.order_fulfilment_state = recording  # type: ignore[method-assign]
    await w.webhook(state(fo(1, 11, ("A", 3))), "orders/create")
    assert asked == [{}]
    w.shopify.orders[ORDER] = state(fo(1, 11, ("A", 1)), fulfilment(7, 11, ("A", 2)))
    body = fulfilment_webhook(7, 11, ("A", 2), status="success")
    await w.holds.take(OrderRecord("fulfillments/create", str(ORDER).encode(), body))
    lines_7 = (FulfilmentLine(sku="A", quantity=2),)
    assert asked[-1] == {7: lines_7}
    # a fulfilment no webhook told of: the read learns its lines, the next one is handed them
    w.shopify.orders[ORDER] = state(
        fo(1, 11, status="CLOSED"), fulfilment(7, 11, ("A", 2)), fulfilment(8, 11, ("A", 1))
    )
    await w.webhook(None, "orders/updated")
    await w.webhook(None, "orders/updated")
    assert asked[-1] == {7: lines_7, 8: (FulfilmentLine(sku="A", quantity=1),)}
    assert [t.externalid for t in w.out.transactions] == [f"sf-{ORDER}-7", f"sf-{ORDER}-8"]


async def test_a_fulfilment_webhook_of_another_shape_waits_for_the_orders_state() -> None:
    w = World({("A", 11): 10})
    await w.webhook(state(fo(1, 11, ("A", 2))), "orders/create")
    w.shopify.orders[ORDER] = state(fo(1, 11, status="CLOSED"), fulfilment(7, 11, ("A", 2)))
    for body in (b"not json", b'{"id": 7}', b'{"id": 7, "order_id": 999, "status": "success"}'):
        record = OrderRecord(topic="fulfillments/create", key=str(ORDER).encode(), value=body)
        await w.holds.take(record)
    # read from Shopify instead, once; nothing dead-lettered for a body the read makes moot
    assert [t.externalid for t in w.out.transactions] == [f"sf-{ORDER}-7"]
    assert w.out.dead == []


async def test_only_an_order_shopify_does_not_have_is_a_dead_letter_with_its_headers() -> None:
    w = World({("A", 11): 10})
    headers = [("X-Shopify-Topic", b"orders/updated"), ("X-Shopify-Webhook-Id", b"w-1")]
    record = OrderRecord(topic="orders/updated", key=b"404", value=b'{"id": 404}', headers=headers)
    await w.holds.take(record)
    [(dead, reason)] = w.out.dead
    assert dead.headers == headers and dead.value == record.value and "no such order" in reason
    # the sweep asking for an order that is gone stops asking, without a dead letter
    w.tracks["405"] = OrderTrack(version=1, holding=True).model_dump_json().encode()
    await w.holds.take(OrderRecord(topic=DERIVE_TOPIC, key=b"405", value=b"{}"))
    assert len(w.out.dead) == 1
    assert not OrderTrack.model_validate_json(w.tracks["405"]).holding


async def test_a_fulfilment_order_webhook_is_traced_to_its_order_and_read_there() -> None:
    w = World({("A", 11): 10})
    w.shopify.fulfilment_orders[31] = ORDER
    # order_routing_complete names only its fulfilment order
    body = b'{"fulfillment_order": {"id": "gid://shopify/FulfillmentOrder/31", "status": "open"}}'
    key = order_key_of("fulfillment_orders/order_routing_complete", body)
    assert key == OrderKey(fulfilment_order_id=31)
    w.shopify.failures = [ShopifyError("transport_error", "timeout")]
    await w.holds.take(
        OrderRecord(topic="fulfillment_orders/order_routing_complete", key=key.encode(), value=body)
    )
    assert w.out.again == [ORDER] and w.out.records == []  # read under the order's own key


def test_order_keys_of_each_kind_of_webhook() -> None:
    assert order_key_of("orders/edited", b'{"id": 5}') == OrderKey(order_id=5)
    assert order_key_of("refunds/create", b'{"id": 9, "order_id": 5}') == OrderKey(order_id=5)
    assert order_key_of("fulfillments/update", b'{"id": 9, "order_id": 5}') == OrderKey(order_id=5)
    moved = (
        b'{"original_fulfillment_order": {"id": "gid://shopify/FulfillmentOrder/3",'
        b' "order_id": "gid://shopify/Order/5"}, "moved_fulfillment_order": {"id": 4}}'
    )
    assert order_key_of("fulfillment_orders/moved", moved) == OrderKey(order_id=5)
    assert OrderKey.decode(OrderKey(fulfilment_order_id=3).encode()) == OrderKey(
        fulfilment_order_id=3
    )


async def test_the_sweep_reads_again_only_orders_still_holding_units() -> None:
    w = World({("A", 11): 10})
    await w.webhook(state(fo(1, 11, ("A", 3))), "orders/create")
    w.tracks["56"] = OrderTrack(version=1, holding=False, read_at=0.0).model_dump_json().encode()
    assert await w.holds.sweep(w.tracks.items()) == 0  # read just now
    w.now += w.holds.sweep_interval
    assert await w.holds.sweep(w.tracks.items()) == 1 and w.out.again == [ORDER]
    assert await w.holds.sweep(w.tracks.items()) == 0  # asked already, read still queued
    # a webhook Shopify never delivered: the store fulfilled; the sweep's read heals it
    w.shopify.orders[ORDER] = state(
        fo(1, 11, ("A", 0), status="CLOSED"), fulfilment(900, 11, ("A", 3))
    )
    await w.holds.take(OrderRecord(topic=DERIVE_TOPIC, key=str(ORDER).encode(), value=b"{}"))
    w.deliver()
    assert len(w.out.transactions) == 1
    w.now += 2 * w.holds.sweep_interval
    assert await w.holds.sweep(w.tracks.items()) == 0  # nothing open any more


async def test_versions_rise_even_when_the_clock_does_not() -> None:
    w = World({("A", 11): 10})
    await w.webhook(state(fo(1, 11, ("A", 3))), "orders/create")
    w.now -= 100.0  # another worker with a slower clock takes the partition over
    await w.webhook(state(fo(1, 11, ("A", 1))), "refunds/create")
    first, second = (h.version for h in w.out.records)
    assert second > first and w.held("A", 11) == 1


async def test_a_replayed_older_record_never_moves_a_position_back() -> None:
    w = World({("A", 11): 10})
    await w.webhook(state(fo(1, 11, ("A", 3))), "orders/create")
    await w.webhook(
        state(fo(1, 11, ("A", 0), status="CLOSED"), fulfilment(900, 11, ("A", 3))),
        "fulfillments/create",
    )
    w.book()
    assert w.held("A", 11) == 0
    for old in w.out.records:  # a crash replays every record of the order
        assert not w.apply(old)
    assert (w.held("A", 11), w.target("A", 11)) == (0, 7)


def test_older_order_state_replaced_by_a_newer_derivation() -> None:
    # a record is all of what the order holds there, not a delta on the one before
    record = HeldUnits(sku="A", location_id=11, order_id=1, version=5, open=2, at=1.0)
    pos = Position(sku="A", location_id=11)
    step(pos, record, LOC1, 1.0)
    step(pos, record.model_copy(update={"version": 6, "open": 1}), LOC1, 2.0)
    assert pos.pending_units == 1


@pytest.mark.parametrize(
    ("topic", "body", "key"),
    [
        ("refunds/create", {"id": 9, "order_id": ORDER, "refund_line_items": []}, b"55"),
        ("fulfillments/update", {"id": 9, "order_id": ORDER, "status": "cancelled"}, b"55"),
        (
            "fulfillment_orders/order_routing_complete",
            {"fulfillment_order": {"id": "gid://shopify/FulfillmentOrder/31", "status": "open"}},
            b"fulfillment_order/31",
        ),
        ("orders/edited", {"id": ORDER}, b"55"),
    ],
)
def test_the_webhook_reader_forwards_what_changes_an_orders_holds(
    topic: str, body: dict[str, object], key: bytes
) -> None:
    reader = WebhookReader(LOCATIONS, SkuIndex(), Echoes())
    raw = json.dumps(body).encode()
    headers = [("X-Shopify-Topic", topic.encode()), ("X-Shopify-Webhook-Id", b"w-9")]
    verdict = reader.read(RawWebhook(body=raw, headers=headers), 1.0)
    assert isinstance(verdict, WebhookRecords) and verdict.order is not None
    assert verdict.order.key == key and verdict.order.value == raw
    assert verdict.order.headers == headers


async def test_a_batch_reads_each_order_once_and_orders_side_by_side() -> None:
    w = World({("A", 11): 10, ("A", 12): 10})
    w.shopify.orders[ORDER] = state(fo(1, 11, ("A", 1)))
    w.shopify.orders[56] = OrderFulfilmentState(
        order_id=56, fulfilment_orders=(fo(2, 12, ("A", 2)),), fulfilments=()
    )
    topics = ["orders/updated", "orders/fulfilled", "fulfillments/create"]
    batch = [OrderRecord(topic=t, key=str(ORDER).encode(), value=b"{}") for t in topics]
    batch.append(OrderRecord(topic="orders/create", key=b"56", value=b"{}"))
    batch.append(OrderRecord(topic="orders/paid", key=b"57", value=b"{}"))  # changes nothing
    await w.holds.take_batch(batch)
    w.deliver()
    assert w.shopify.reads == 2
    assert (w.held("A", 11), w.held("A", 12)) == (1, 2)


async def test_an_answer_of_a_shape_no_rule_takes_costs_only_its_own_order() -> None:
    w = World({("A", 11): 10})
    w.shopify.orders[ORDER] = state(fo(1, 11, ("A", 1)))
    w.shopify.malformed.add(56)
    await w.holds.take_batch(
        [
            OrderRecord(topic="orders/updated", key=str(ORDER).encode(), value=b"{}"),
            OrderRecord(topic="orders/updated", key=b"56", value=b'{"id": 56}'),
        ]
    )
    w.deliver()
    [(dead, reason)] = w.out.dead
    assert dead.key == b"56" and "not handled" in reason and "fulfillmentOrders" in reason
    assert w.held("A", 11) == 1


async def test_a_read_that_hangs_is_given_its_deadline_then_deferred(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = World({("A", 11): 10})
    w.holds.read_deadline = 0.01  # `order_read_timeout`
    never = asyncio.Event()

    async def hangs(order_id: int, known: object = None) -> None:
        w.shopify.reads += 1
        await never.wait()

    monkeypatch.setattr(w.shopify, "order_fulfilment_state", hangs)
    record = OrderRecord(topic="orders/create", key=str(ORDER).encode(), value=b"{}")
    await asyncio.wait_for(w.holds.take(record), 5)
    track = OrderTrack.model_validate_json(w.tracks[str(ORDER)])
    assert w.shopify.reads == 2 and track.retry_at > w.now and w.out.dead == []


async def test_a_move_out_counts_as_sent_only_once_kafka_has_it() -> None:
    """The order's track names a Move Out as sent (on disk at once), and a record taken again
    after a crash skips the Move Outs its track names; a command still in the producer's buffer
    when the worker was SIGKILLed was lost for good (the 50,000-event e2e: every position
    exact, a Move Out missing). So the output returns only once Kafka has the command."""
    delivered: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    class Topic:
        async def send(self, *, key: bytes, value: bytes) -> asyncio.Future[None]:
            return delivered

    class Producer:
        async def send(self, *args: object) -> asyncio.Future[None]:
            return delivered

    class Declared(dict[str, Topic]):
        def __missing__(self, suffix: str) -> Topic:
            return Topic()

    ctx = Context(
        app=type("A", (), {"producer": Producer()})(),  # type: ignore[arg-type]
        settings=type("S", (), {"app_id": "t"})(),  # type: ignore[arg-type]
        declared=Declared(),  # type: ignore[arg-type]
    )
    output = KafkaOrderOutput(ctx)
    tx = WarehouseTransactionIn(warehouseid=101, transactiontype=20, items=[], externalid="sf-1-2")
    sending = asyncio.create_task(output.transaction(tx))
    # ... and so do the held units, whose let-go records the track cannot send twice
    held = HeldUnits(sku="A", location_id=11, order_id=1, version=1, open=0, at=1.0)
    holding = asyncio.create_task(output.held([held]))
    await asyncio.sleep(0.01)
    assert not sending.done() and not holding.done()  # in the producer's buffer: not sent yet
    delivered.set_result(None)
    await asyncio.wait_for(asyncio.gather(sending, holding), 1.0)


async def _tell(w: World, topic: str, body: BaseModel) -> None:
    """A record of Sitoo's word on the order's pickup reaches the orders agent."""
    w.now += 1.0
    value = body.model_dump_json().encode()
    await w.holds.take(OrderRecord(topic=topic, key=str(ORDER).encode(), value=value))
    w.deliver()


async def test_a_pickup_late_at_each_step_is_raised_once_for_its_owner_then_cleared() -> None:
    w = World({("A", 12): 10})
    pickup = fo(1, 12, ("A", 2), method="PICK_UP")
    await w.webhook(state(pickup), "orders/create")

    def told() -> list[tuple[str, str, bool]]:
        return [(e.type, e.owner.value, e.cleared) for e in w.out.exceptions]

    def said(state_: SitooPickupState) -> PickupInSitoo:
        return PickupInSitoo(
            externalid="fo-1-12",
            order_id=ORDER,
            fulfilment_order_id=1,
            sitoo_order_id=5,
            at=w.now,
            state=state_,
        )

    # routed 11 minutes ago, still no Sitoo order: the sweep's reads raise it, once
    w.now += 11 * 60
    await w.webhook(None)
    await w.webhook(None)
    assert told() == [("pickup_not_in_store", "engineering", False)]
    await _tell(w, PICKUP_IN_SITOO_TOPIC, said(SitooPickupState.OPEN))
    assert told()[-1] == ("pickup_not_in_store", "engineering", True)
    # in the store two hours, not marked ready: the store's manager
    w.now += 121 * 60
    await w.webhook(None)
    assert told()[-1] == ("pickup_not_ready", "store-ops", False)
    await _tell(w, PICKUP_IN_SITOO_TOPIC, said(SitooPickupState.READY))
    assert told()[-1] == ("pickup_not_ready", "store-ops", True)
    # ready three days, not collected: customer service
    w.now += 73 * 3600
    await w.webhook(None)
    assert told()[-1] == ("pickup_uncollected", "e-commerce", False)
    handed = PickupHandedOver(
        externalid="fo-1-12",
        order_id=ORDER,
        fulfilment_order_id=1,
        location_id=12,
        took={"A": 2},
        at=w.now,
    )
    await _tell(w, PICKUP_HANDED_OVER_TOPIC, handed)
    assert told()[-1] == ("pickup_uncollected", "e-commerce", True)
    # collected at the till, still open in Shopify a quarter of an hour on: integration
    w.now += 16 * 60
    await w.webhook(None)
    assert told()[-1] == ("pickup_open_in_shopify", "engineering", False)
    closed = fo(1, 12, ("A", 0), method="PICK_UP", status="CLOSED")
    await w.webhook(state(closed, fulfilment(77, 12, ("A", 2))), "fulfillments/create")
    assert told()[-1] == ("pickup_open_in_shopify", "engineering", True)
    assert len(told()) == 8  # each raised once and cleared once
    assert w.out.transactions == []  # Sitoo's sale took the units: no Move Out


async def test_a_partial_pickup_left_open_in_shopify_says_what_the_customer_took() -> None:
    """The customer took one of two units and staff closed the Sitoo order: the rest stays
    open in Shopify for a person, who is told it was a partial pickup, not a lost handover."""
    w = World({("A", 12): 10})
    await w.webhook(state(fo(1, 12, ("A", 2), method="PICK_UP")), "orders/create")
    in_sitoo = PickupInSitoo(
        externalid="fo-1-12",
        order_id=ORDER,
        fulfilment_order_id=1,
        sitoo_order_id=5,
        at=w.now,
        lines={"100": 2},
    )
    await _tell(w, PICKUP_IN_SITOO_TOPIC, in_sitoo)
    handed = PickupHandedOver(
        externalid="fo-1-12",
        order_id=ORDER,
        fulfilment_order_id=1,
        location_id=12,
        took={"A": 1},
        at=w.now,
    )
    await _tell(w, PICKUP_HANDED_OVER_TOPIC, handed)
    w.now += 16 * 60
    await w.webhook(state(fo(1, 12, ("A", 1), method="PICK_UP", status="IN_PROGRESS")))
    [late] = [e for e in w.out.exceptions if e.type == "pickup_open_in_shopify"]
    assert "collected in part at the till (1 of 2 units)" in late.message
    assert "refund the rest, or keep it for the customer" in late.message


async def test_a_pickup_routed_where_no_store_is_mapped_is_raised_once_then_cleared() -> None:
    w = World({("A", 11): 10})
    await w.webhook(state(fo(1, 99, ("A", 1), method="PICK_UP")), "orders/create")
    await w.webhook(None)
    assert [(e.type, e.owner.value, e.cleared, e.key) for e in w.out.exceptions] == [
        ("pickup_location_unmapped", "engineering", False, "fo-1")
    ]
    assert w.out.pickups == []  # no store to send it to
    # moved to a mapped store: cleared, and it goes to that store
    await w.webhook(state(fo(1, 11, ("A", 1), method="PICK_UP")), "fulfillment_orders/moved")
    assert [(e.type, e.cleared) for e in w.out.exceptions][-1] == ("pickup_location_unmapped", True)
    assert [c.externalid for c in w.out.pickups] == ["fo-1-11"]


async def test_a_pickup_line_without_a_sku_is_raised_once_then_cleared() -> None:
    """Sitoo's order carries the lines with a SKU only: the store never sees the others."""
    w = World({("A", 12): 10})
    await w.webhook(state(fo(1, 12, ("A", 1), ("", 1), method="PICK_UP")), "orders/create")
    await w.webhook(None)
    assert [(e.type, e.owner.value, e.cleared, e.key) for e in w.out.exceptions] == [
        ("pickup_sku_unmapped", "e-commerce", False, "fo-1")
    ]
    assert [c.externalid for c in w.out.pickups] == ["fo-1-12"]  # the rest goes to the store
    # picked up in Shopify: nothing left to hand over, cleared
    await w.webhook(state(fo(1, 12, ("A", 0), ("", 0), method="PICK_UP", status="CLOSED")))
    assert [(e.type, e.cleared) for e in w.out.exceptions][-1] == ("pickup_sku_unmapped", True)
    assert len(w.out.exceptions) == 2


async def test_a_pickup_line_of_a_sku_sitoo_has_no_product_for_is_raised_then_cleared() -> None:
    """Sitoo's order carries it, but staff find no product to hand over: e-commerce is told
    which SKU, and it clears once that line is refunded."""
    w = World({("A", 12): 10})
    await w.webhook(state(fo(1, 12, ("A", 1), ("GIFT", 1), method="PICK_UP")), "orders/create")
    await w.webhook(None)
    [raised] = w.out.exceptions
    assert (raised.type, raised.owner.value, raised.cleared, raised.key) == (
        "pickup_sku_unmapped",
        "e-commerce",
        False,
        "fo-1",
    )
    assert "GIFT" in raised.message
    # the line refunded: only SKUs Sitoo knows are left
    await w.webhook(state(fo(1, 12, ("A", 1), ("GIFT", 0), method="PICK_UP")), "refunds/create")
    assert [(e.type, e.cleared) for e in w.out.exceptions] == [
        ("pickup_sku_unmapped", False),
        ("pickup_sku_unmapped", True),
    ]


async def test_the_sweep_asks_for_a_check_of_each_open_pickup_in_sitoo() -> None:
    """A pickup's steps at the till come as Sitoo events, which Sitoo drops after its retries:
    each read of the sweep asks the handover to read the Sitoo order of every open pickup."""
    w = World({("A", 12): 10})
    await w.webhook(state(fo(1, 12, ("A", 2), method="PICK_UP")), "orders/create")
    await w.webhook(None, DERIVE_TOPIC)  # the sweep, before Sitoo confirmed the order
    assert w.out.checks == []
    answer = PickupInSitoo(
        externalid="fo-1-12", order_id=ORDER, fulfilment_order_id=1, sitoo_order_id=5, at=w.now
    )
    await w.holds.take(
        OrderRecord(PICKUP_IN_SITOO_TOPIC, str(ORDER).encode(), answer.model_dump_json().encode())
    )
    await w.webhook(None, "orders/updated")  # a webhook's read asks for none
    assert w.out.checks == []
    await w.webhook(None, DERIVE_TOPIC)
    assert w.out.checks == [5]
    # handed over in Sitoo: nothing left to check
    handed = PickupHandedOver(
        externalid="fo-1-12",
        order_id=ORDER,
        fulfilment_order_id=1,
        location_id=12,
        took={"A": 2},
        at=w.now,
        delivered_at=w.now,
    )
    await w.holds.take(
        OrderRecord(
            PICKUP_HANDED_OVER_TOPIC, str(ORDER).encode(), handed.model_dump_json().encode()
        )
    )
    await w.webhook(None, DERIVE_TOPIC)
    assert w.out.checks == [5]


async def test_a_pickups_steps_at_its_store_are_timed_and_open_ones_counted_by_age() -> None:
    w = World({("A", 12): 10})

    def observed(step: str) -> float:
        value = REGISTRY.get_sample_value(
            "tillsync_pickup_step_seconds_sum", {"step": step, "location": "12"}
        )
        return value or 0.0

    def open_now(age: str) -> float:
        return REGISTRY.get_sample_value("tillsync_open_pickup_orders", {"age": age}) or 0.0

    ready0, collected0 = observed("ready"), observed("collected")
    await w.webhook(state(fo(1, 12, ("A", 1), method="PICK_UP")), "orders/create")
    made = w.now
    key = str(ORDER).encode()
    answers = [
        PickupInSitoo(
            externalid="fo-1-12", order_id=ORDER, fulfilment_order_id=1, sitoo_order_id=5, at=made
        ),
        PickupInSitoo(
            externalid="fo-1-12",
            order_id=ORDER,
            fulfilment_order_id=1,
            sitoo_order_id=5,
            at=made + 600,
            state=SitooPickupState.READY,
        ),
    ]
    for answer in answers + answers[1:]:  # the ready told twice: timed once
        await w.holds.take(
            OrderRecord(PICKUP_IN_SITOO_TOPIC, key, answer.model_dump_json().encode())
        )
    assert observed("ready") - ready0 == 600
    w.holds.due(list(w.tracks.items()), made + 1800)
    assert open_now("15m-1h") == 1 and open_now("<15m") == 0
    handed = PickupHandedOver(
        externalid="fo-1-12",
        order_id=ORDER,
        fulfilment_order_id=1,
        location_id=12,
        took={"A": 1},
        at=made + 4200,
        delivered_at=made + 4200,
    )
    await w.holds.take(
        OrderRecord(PICKUP_HANDED_OVER_TOPIC, key, handed.model_dump_json().encode())
    )
    assert observed("collected") - collected0 == 3600
    w.holds.due(list(w.tracks.items()), made + 4300)
    assert sum(open_now(a) for a in ("<15m", "15m-1h", "1h-4h", "4h-24h", ">24h")) == 0


async def test_a_pickup_whose_card_authorisation_lapses_soon_is_raised_for_finance() -> None:
    """flows.md (A): a card only authorised at checkout is captured at the handover; within a
    day of its authorisation lapsing, not collected, finance is told (and the store can ask the
    customer to pay); the handover clears it."""
    w = World({("A", 12): 10})
    await w.webhook(state(fo(1, 12, ("A", 1), method="PICK_UP")), "orders/create")
    made = PickupInSitoo(
        externalid="fo-1-12",
        order_id=ORDER,
        fulfilment_order_id=1,
        sitoo_order_id=5,
        at=w.now,
        authorised_until=w.now + 7 * 86400,
    )
    await _tell(w, PICKUP_IN_SITOO_TOPIC, made)
    ready = made.model_copy(update={"state": SitooPickupState.READY, "authorised_until": 0.0})
    await _tell(w, PICKUP_IN_SITOO_TOPIC, ready)

    def told() -> list[tuple[str, str, bool]]:
        return [(e.type, e.owner.value, e.cleared) for e in w.out.exceptions]

    w.now += 5 * 86400  # five days on: two left, nothing yet
    await w.webhook(None)
    assert "pickup_authorisation_expiring" not in [t for t, _, _ in told()]
    w.now += 86400 + 3600  # 23 hours left
    await w.webhook(None)
    await w.webhook(None)
    expiring = [t for t in told() if t[0] == "pickup_authorisation_expiring"]
    assert expiring == [("pickup_authorisation_expiring", "finance", False)]
    handed = PickupHandedOver(
        externalid="fo-1-12",
        order_id=ORDER,
        fulfilment_order_id=1,
        location_id=12,
        took={"A": 1},
        at=w.now,
        delivered_at=w.now,
    )
    await _tell(w, PICKUP_HANDED_OVER_TOPIC, handed)
    await w.webhook(None)
    assert [t for t in told() if t[0] == "pickup_authorisation_expiring"][-1][2] is True


async def test_an_export_sitoo_never_confirmed_is_asked_again_by_a_later_read() -> None:
    """The flow's "asked" is its belief that a Sitoo order is coming, not a fact: a command
    lost on its way (a lifecycle e2e run: 14 pickups asked while both platforms were failing,
    then a SIGKILL, never reached Sitoo and were never asked again) must not leave the pickup
    out of the store for good. Each read of the order after ``REASK_SECONDS`` without Sitoo's
    confirmation asks for the same export again (the sink finds an order it made by its
    externalid, so a second ask never makes a second order); a confirmed one never is."""
    w = World({("A", 12): 10, ("B", 12): 10})
    await w.webhook(state(fo(1, 12, ("A", 2), method="PICK_UP")), "orders/create")
    assert [(c.action, c.externalid) for c in w.out.pickups] == [(PickupAction.EXPORT, "fo-1-12")]
    w.now += pickups.REASK_SECONDS / 2
    await w.webhook(None, DERIVE_TOPIC)  # too soon: the first may still be on its way
    assert len(w.out.pickups) == 1
    w.now += pickups.REASK_SECONDS
    await w.webhook(None, DERIVE_TOPIC)  # the sweep's read, long after: asked again
    assert [(c.action, c.externalid) for c in w.out.pickups] == [
        (PickupAction.EXPORT, "fo-1-12"),
        (PickupAction.EXPORT, "fo-1-12"),
    ]
    await w.webhook(None, "orders/updated")  # a read just after: not a third time yet
    assert len(w.out.pickups) == 2
    [track] = OrderTrack.model_validate_json(w.tracks[str(ORDER)]).pickups.values()
    assert track.asked_at < track.reasked_at  # the first ask still dates its lateness
    answer = PickupInSitoo(
        externalid="fo-1-12", order_id=ORDER, fulfilment_order_id=1, sitoo_order_id=5, at=w.now
    )
    await w.holds.take(
        OrderRecord(PICKUP_IN_SITOO_TOPIC, str(ORDER).encode(), answer.model_dump_json().encode())
    )
    w.now += 10 * pickups.REASK_SECONDS
    await w.webhook(None, DERIVE_TOPIC)  # confirmed: never asked again
    assert [c.action for c in w.out.pickups] == [PickupAction.EXPORT, PickupAction.EXPORT]
