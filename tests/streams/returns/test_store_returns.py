"""A return at a Sitoo till of an online order becomes one Shopify return, restocked and
refunded by rule, exactly once: the returns writer on both simulators over real HTTP, the
online order picked up through the pickup flow's own writers first."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from tests.streams.stock.test_pickup_handover import COLLECTED, Shop, _in_sitoo, _step, shop
from tillsync.connectors.outcomes import Outcome
from tillsync.connectors.shopify.client import ShopifyError
from tillsync.connectors.shopify.returns import OrderReturns, ReturnLineIn
from tillsync.schemas.events import ExceptionRecord, RestockState, ReturnRestock, StoreReturn
from tillsync.schemas.returns import DEFAULT_RETURN_REASONS
from tillsync.streams.returns import show
from tillsync.streams.returns.plan import marker
from tillsync.streams.returns.writer import DONE, StoreReturns

__all__ = ["shop"]  # the fixture, used by name


@dataclass
class Told:
    marks: list[ReturnRestock] = field(default_factory=list)
    exceptions: list[ExceptionRecord] = field(default_factory=list)
    dead: list[str] = field(default_factory=list)

    async def restocks(self, records: Sequence[ReturnRestock]) -> None:
        self.marks.extend(records)

    async def exception(self, record: ExceptionRecord) -> None:
        self.exceptions.append(record)

    async def dead_letter(
        self, value: bytes, reason: str, headers: Mapping[str, bytes] | None = None
    ) -> None:
        self.dead.append(reason)


@dataclass
class Returns:
    shop: Shop
    writer: StoreReturns
    told: Told
    table: dict[str, float]
    queue: dict[str, float]


def writer_for(
    shop: Shop, table: dict[str, float], told: Told, queue: dict[str, float] | None = None
) -> StoreReturns:
    p = shop.platforms
    return StoreReturns(
        p.sitoo,
        p.shopify,
        told,
        shop.handover.locations,
        DEFAULT_RETURN_REASONS,
        table,
        lambda sku: _item_of(shop, sku),
        queue if queue is not None else {},
        settle=0.0,
    )


def _item_of(shop: Shop, sku: str) -> int | None:
    variant = shop.shopify.state.variant_by_sku(sku)
    return variant.inventory_item_id if variant is not None else None


@pytest.fixture
def returns(shop: Shop) -> Returns:
    told, table, queue = Told(), dict[str, float](), dict[str, float]()
    return Returns(shop, writer_for(shop, table, told, queue), told, table, queue)


async def picked_up(r: Returns, *lines: tuple[int, int], status: str = "paid") -> tuple[int, int]:
    """An online order picked up at the first store: (Shopify order, Sitoo original)."""
    order_id, _, made = await _in_sitoo(r.shop, *lines, financial_status=status)
    r.shop.sitoo.state.collect(made)
    await r.shop.handover.take(_step(made, COLLECTED))
    return order_id, made


def till_return(
    r: Returns,
    original: int,
    lines: list[dict[str, object]] | None = None,
    *,
    exchange: list[dict[str, object]] | None = None,
    **kw: str,
) -> int:
    store = r.shop.network.stores[0]
    state = r.shop.sitoo.state
    return state.till_return(store.sitoo_store_id, original, lines, exchange=exchange, **kw).orderid


async def tell(r: Returns, credit: int, original: int | None) -> None:
    cmd = StoreReturn(credit_order_id=credit, original_order_id=original)
    await r.writer.take(cmd.model_dump_json().encode())


async def read(r: Returns, order_id: int) -> OrderReturns:
    found = await r.shop.platforms.shopify.order_returns(order_id)
    assert found is not None
    return found


def available(r: Returns, sku: str) -> int:
    store = r.shop.network.stores[0]
    st = r.shop.shopify.state
    item = st.variant_by_sku(sku).inventory_item_id  # type: ignore[union-attr]
    return st.levels[(item, store.shopify_location_id)].get("available")


async def test_a_return_paid_back_at_the_till_is_one_closed_return_restocked_with_no_money(
    returns: Returns,
) -> None:
    r = returns
    sku = r.shop.network.skus[0]
    order_id, original = await picked_up(r, (0, 2))
    before = available(r, sku)
    credit = till_return(r, original, reasoncode="SIZE-SMALL", payment="card")
    await tell(r, credit, original)
    await tell(r, credit, original)  # told again: nothing more
    state = await read(r, order_id)
    [ret] = state.returns
    assert ret.status == "CLOSED"
    assert [(line.sku, line.quantity, line.reason) for line in ret.lines] == [
        (sku, 2, "SIZE_TOO_SMALL")
    ]
    assert all(marker(credit) in line.note for line in ret.lines)
    assert available(r, sku) == before + 2  # restocked at the store where it came back
    assert state.refunded == 0  # the till paid the customer back: no money in Shopify
    assert ret.refundable == 0  # but the lines are refunded in Shopify's books
    # the positions there held Sitoo's units back until Shopify restocked them itself
    [delivery] = r.shop.sitoo.state.orders[credit].deliveries
    here = r.shop.network.stores[0].shopify_location_id
    assert [(m.sku, m.location_id, m.delivery_id, m.state) for m in r.told.marks] == [
        (sku, here, delivery.orderdeliveryid, RestockState.EXPECTED),
        (sku, here, delivery.orderdeliveryid, RestockState.DONE),
    ]
    assert r.table[f"c{credit}"] == DONE and not r.told.exceptions


async def test_a_return_restocks_in_shopify_no_more_than_sitoos_stock_leaves_room_for(
    returns: Returns,
) -> None:
    """Shopify's restock adds to what it shows. A store sold past its stock (Sitoo at -1 there
    before the return) shows 0 in Shopify, not -1: restocking both returned units would show 2
    where Sitoo's available is 1. So one unit is restocked and the other not, and Shopify
    shows Sitoo's 1 (a run of the returns e2e showed 5 for a target of 3 for 28 s)."""
    r = returns
    sku = r.shop.network.skus[0]
    store = r.shop.network.stores[0]
    order_id, original = await picked_up(r, (0, 2))
    r.shop.sitoo.state.stocktaking(store.sitoo_warehouse_id, {sku: -1})
    item = _item_of(r.shop, sku)
    assert item is not None
    r.shop.shopify.state.apply_set("available", [(item, store.shopify_location_id, 0)])
    credit = till_return(r, original, reasoncode="SIZE-SMALL", payment="card")
    await tell(r, credit, original)
    [ret] = (await read(r, order_id)).returns
    assert ret.status == "CLOSED"
    kinds = sorted(
        (d.type, d.quantity, d.location_id) for line in ret.disposals for d in line.dispositions
    )
    assert kinds == [("NOT_RESTOCKED", 1, None), ("RESTOCKED", 1, store.shopify_location_id)]
    assert available(r, sku) == 1
    # Shopify restocked some of them itself: the positions let the delivery go as done
    assert [m.state for m in r.told.marks] == [RestockState.EXPECTED, RestockState.DONE]


async def test_a_return_the_till_did_not_pay_back_is_refunded_by_shopify_once(
    returns: Returns,
) -> None:
    r = returns
    order_id, original = await picked_up(r, (0, 1), (1, 1))
    credit = till_return(
        r, original, [{"sku": r.shop.network.skus[1], "quantity": 1}], payment="none"
    )
    await tell(r, credit, original)
    order = r.shop.shopify.state.orders[order_id]
    line = next(li for li in order.line_items if li.sku == r.shop.network.skus[1])
    state = await read(r, order_id)
    assert state.refunded == line.price
    # a replay with the writer's table lost (a new deployment's state) finds it by its marker
    again = writer_for(r.shop, {}, Told())
    await again.take(
        StoreReturn(credit_order_id=credit, original_order_id=original).model_dump_json().encode()
    )
    state = await read(r, order_id)
    assert len(state.returns) == 1 and state.refunded == line.price


async def test_a_partial_then_a_second_return_of_one_line_are_two_returns(returns: Returns) -> None:
    r = returns
    order_id, original = await picked_up(r, (0, 3))
    first = till_return(
        r, original, [{"sku": r.shop.network.skus[0], "quantity": 1}], payment="none"
    )
    await tell(r, first, original)
    second = till_return(
        r, original, [{"sku": r.shop.network.skus[0], "quantity": 2}], payment="none"
    )
    await tell(r, second, original)
    await tell(r, first, original)
    state = await read(r, order_id)
    assert sorted(sum(line.quantity for line in ret.lines) for ret in state.returns) == [1, 2]
    assert [len(state.marked(marker(c))) for c in (first, second)] == [1, 1]
    assert state.refunded == state.received  # all three units refunded, once each


async def test_damaged_goods_are_not_restocked_and_store_ops_hear_they_are_on_sale(
    returns: Returns,
) -> None:
    r = returns
    sku = r.shop.network.skus[2]
    order_id, original = await picked_up(r, (2, 1))
    before = available(r, sku)
    credit = till_return(r, original, reasoncode="DEFECT", payment="card")
    await tell(r, credit, original)
    [ret] = (await read(r, order_id)).returns
    assert ret.lines[0].reason == "DEFECTIVE" and ret.status == "CLOSED"
    assert available(r, sku) == before
    # Sitoo took them into sellable stock: the stock flow offers them, Shopify does not
    assert [m.state for m in r.told.marks] == [RestockState.RELEASED]
    [exc] = r.told.exceptions
    assert exc.type == "return_unsellable_in_stock" and exc.owner.value == "store-ops"


async def test_a_till_sales_return_is_sitoos_alone(returns: Returns) -> None:
    r = returns
    store = r.shop.network.stores[0]
    sale = r.shop.sitoo.state.till_sale(
        store.sitoo_store_id, [{"sku": r.shop.network.skus[0], "quantity": 1}]
    )
    credit = till_return(r, sale.orderid)
    await tell(r, credit, sale.orderid)
    assert r.table[f"c{credit}"] == DONE and not r.told.exceptions
    assert [m.state for m in r.told.marks] == [RestockState.RELEASED]  # no wait for the grace


async def test_sitoos_value_unlike_shopifys_holds_the_money_for_finance(returns: Returns) -> None:
    r = returns
    order_id, original = await picked_up(r, (0, 1))
    credit = till_return(r, original, payment="none")
    r.shop.sitoo.state.orders[credit].data["moneytotal_gross_all"] = "-1.00"
    await tell(r, credit, original)
    state = await read(r, order_id)
    [ret] = state.returns
    assert ret.status == "OPEN" and state.refunded == 0 and ret.undisposed == 0
    [exc] = r.told.exceptions
    assert exc.type == "return_refund_mismatch" and exc.owner.value == "finance"


async def test_a_return_whose_answer_was_lost_is_found_not_made_again(returns: Returns) -> None:
    r = returns
    order_id, original = await picked_up(r, (0, 1))
    credit = till_return(r, original, payment="none")
    shopify = r.shop.platforms.shopify
    real = shopify.create_return

    async def lost(order: int, lines: Sequence[ReturnLineIn]):  # type: ignore[no-untyped-def]
        await real(order, lines)
        raise ShopifyError(Outcome.TRANSPORT_ERROR, "no answer")

    shopify.create_return = lost  # type: ignore[method-assign, assignment]
    with pytest.raises(ShopifyError):
        await r.writer.carry_out(StoreReturn(credit_order_id=credit, original_order_id=original))
    shopify.create_return = real  # type: ignore[method-assign]
    await tell(r, credit, original)
    state = await read(r, order_id)
    assert len(state.returns) == 1 and state.refunded == state.received > Decimal(0)


async def test_returns_show_tells_a_return_owed_then_made(returns: Returns) -> None:
    r = returns
    _, original = await picked_up(r, (0, 2))
    credit = till_return(r, original, reasoncode="ODD-CODE", payment="none")
    p = r.shop.platforms
    view = await show.read_return_with(p.sitoo, p.shopify, credit, lambda _: None)
    assert show.problems(view, DEFAULT_RETURN_REASONS) == [
        f"no Shopify return for credit order {credit} yet"
    ]
    await tell(r, credit, original)
    view = await show.read_return_with(p.sitoo, p.shopify, credit, lambda _: None)
    assert show.problems(view, DEFAULT_RETURN_REASONS) == []
    text = "\n".join(show.describe(view, DEFAULT_RETURN_REASONS))
    assert "2 x " in text and "OTHER" in text and "ODD-CODE" in text
    assert ": CLOSED" in text and "2 restocked at location" in text


async def test_two_returns_at_one_store_never_count_the_same_room(returns: Returns) -> None:
    """Two returns of one SKU at one store, run at once: each reads Sitoo's stock and what
    Shopify shows, then restocks within the room left. Were both to read before either
    restocked, both would see a room of one and Shopify would show 2 where Sitoo has 1. The
    first run's read of Shopify waits here (up to a second) for the other's: the store's lock
    keeps the other out until the first has restocked."""
    r = returns
    sku = r.shop.network.skus[0]
    store = r.shop.network.stores[0]
    first_order, first = await picked_up(r, (0, 1))
    second_order, second = await picked_up(r, (0, 1))
    r.shop.sitoo.state.stocktaking(store.sitoo_warehouse_id, {sku: -1})
    item = _item_of(r.shop, sku)
    assert item is not None
    r.shop.shopify.state.apply_set("available", [(item, store.shopify_location_id, 0)])
    credits = [till_return(r, o, payment="card") for o in (first, second)]  # Sitoo at 1 now
    shopify = r.shop.platforms.shopify
    real = shopify.available
    reading = [asyncio.Event(), asyncio.Event()]

    async def gated(item_id: int, location_id: int) -> int | None:
        mine = 0 if not reading[0].is_set() else 1
        reading[mine].set()
        if mine == 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reading[1].wait(), 1.0)
        return await real(item_id, location_id)

    shopify.available = gated  # type: ignore[method-assign]
    await asyncio.gather(
        *(
            r.writer.carry_out(StoreReturn(credit_order_id=c, original_order_id=o))
            for c, o in zip(credits, (first, second), strict=True)
        )
    )
    assert available(r, sku) == 1  # Sitoo's 1, not 2
    restocked = [
        d.quantity
        for o in (first_order, second_order)
        for ret in (await read(r, o)).returns
        for line in ret.disposals
        for d in line.dispositions
        if d.type == "RESTOCKED"
    ]
    assert restocked == [1]
