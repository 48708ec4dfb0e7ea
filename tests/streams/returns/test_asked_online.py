"""A return the customer asked for online whose goods come back at a till instead of by post:
the return Shopify has is carried out (approved, restocked, refunded, closed), not made a
second time: the returns writer on both simulators over HTTP."""

from __future__ import annotations

from tests.streams.returns.test_store_returns import (
    Returns,
    Told,
    available,
    picked_up,
    read,
    returns,
    shop,
    tell,
    till_return,
    writer_for,
)
from tillsync.schemas.events import StoreReturn
from tillsync.schemas.returns import DEFAULT_RETURN_REASONS
from tillsync.streams.returns import show
from tillsync_sim.shopify.state import ReturnRequest

__all__ = ["returns", "shop"]  # the fixtures, used by name


def ask_online(r: Returns, order_id: int, units: int) -> int:
    """The customer asks for a return of ``units`` of the order's first fulfilment line."""
    st = r.shop.shopify.state
    [fulfilment] = st.orders[order_id].fulfillment_ids
    line = st.fulfillments[fulfilment].line_ids[0]
    return st.request_return(order_id, [ReturnRequest(line, units, "STYLE")]).id


async def test_the_return_asked_for_online_is_approved_and_carried_out_not_made_again(
    returns: Returns,
) -> None:
    r = returns
    sku = r.shop.network.skus[0]
    order_id, original = await picked_up(r, (0, 2))
    asked = ask_online(r, order_id, 2)
    before = available(r, sku)
    credit = till_return(r, original, reasoncode="SIZE-SMALL", payment="none")
    await tell(r, credit, original)
    await tell(r, credit, original)  # told again: nothing more
    state = await read(r, order_id)
    [ret] = state.returns
    assert ret.id == asked and ret.status == "CLOSED"
    assert [(x.sku, x.quantity, x.reason) for x in ret.lines] == [(sku, 2, "STYLE")]
    assert available(r, sku) == before + 2  # restocked at the store it came back to
    assert state.refunded == state.received  # the till paid nothing back
    assert r.table[f"r{asked}"] == credit and not r.told.exceptions
    # a replay with the writer's table lost: the return is done, none is made again
    again = StoreReturn(credit_order_id=credit, original_order_id=original)
    await writer_for(r.shop, {}, Told()).take(again.model_dump_json().encode())
    assert len((await read(r, order_id)).returns) == 1
    p = r.shop.platforms
    view = await show.read_return_with(p.sitoo, p.shopify, credit, lambda _: None)
    assert show.problems(view, DEFAULT_RETURN_REASONS) == []


async def test_a_return_asked_for_other_units_is_left_alone_and_raised(returns: Returns) -> None:
    r = returns
    order_id, original = await picked_up(r, (0, 2))
    asked = ask_online(r, order_id, 1)  # one unit asked for online, two at the till
    credit = till_return(r, original, payment="card")
    await tell(r, credit, original)
    [ret] = (await read(r, order_id)).returns
    assert ret.id == asked and ret.status == "REQUESTED"  # not approved, not duplicated
    [exc] = r.told.exceptions
    assert exc.type == "return_not_returnable"
