"""A blind return (goods back at a till with no receipt: a Sitoo credit order linked to no
original) finds its online order by the customer's email, or waits for staff to link it, and
is then one Shopify return like any other: the returns writer on both simulators over HTTP."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.streams.returns.test_store_returns import (
    Returns,
    Told,
    read,
    returns,
    shop,
    writer_for,
)
from tillsync.connectors.shopify.returns import OrderReturns
from tillsync.schemas.events import StoreReturn
from tillsync.schemas.returns import DEFAULT_RETURN_REASONS
from tillsync.streams.returns import link, show
from tillsync.streams.returns.plan import marker
from tillsync.streams.returns.writer import DONE
from tillsync_sim.shopify.model import Order

__all__ = ["returns", "shop"]  # the fixtures, used by name

ANN = "ann@example.com"


def shipped(r: Returns, *lines: tuple[int, int], email: str = ANN) -> Order:
    """An online order shipped from the first store, fulfilled in Shopify (Sitoo never had
    it, so a till cannot link a return to it)."""
    st = r.shop.shopify.state
    order = st.place_order(
        [(r.shop.network.skus[i], n) for i, n in lines],
        location_id=r.shop.network.stores[0].shopify_location_id,
        email=email,
    )
    [fo] = order.fulfillment_order_ids
    st.fulfil(fo)
    return order


def price_of(order: Order, sku: str) -> Decimal:
    return next(li.price for li in order.line_items if li.sku == sku)


def blind_return(
    r: Returns, sku: str, units: int, price: Decimal, *, email: str = ANN, payment: str = "none"
) -> int:
    store = r.shop.network.stores[0]
    credit = r.shop.sitoo.state.blind_return(
        store.sitoo_store_id,
        [{"sku": sku, "quantity": units, "price": str(price)}],
        email=email,
        reasoncode="SIZE-SMALL",
        payment=payment,
    )
    return credit.orderid


async def tell(r: Returns, credit: int, link: int | None = None) -> None:
    cmd = StoreReturn(credit_order_id=credit, shopify_order_id=link)
    await r.writer.take(cmd.model_dump_json().encode())


async def test_the_one_order_of_its_email_that_fits_is_returned_and_refunded_once(
    returns: Returns,
) -> None:
    r = returns
    sku = r.shop.network.skus[0]
    order = shipped(r, (0, 2), (1, 1))
    other = shipped(r, (1, 1))  # the same customer's, without the SKU: no candidate
    shipped(r, (0, 2), email="someone.else@example.com")  # another customer's
    credit = blind_return(r, sku, 1, price_of(order, sku))
    await tell(r, credit)
    await tell(r, credit)  # told again: nothing more
    state = await read(r, order.id)
    [ret] = state.returns
    assert [(line.sku, line.quantity, line.reason) for line in ret.lines] == [
        (sku, 1, "SIZE_TOO_SMALL")
    ]
    assert ret.status == "CLOSED" and marker(credit) in ret.lines[0].note
    assert state.refunded == price_of(order, sku)  # the till paid nothing back
    assert not (await read(r, other.id)).returns
    assert r.table[f"c{credit}"] == DONE and not r.queue and not r.told.exceptions
    # a replay with the writer's table lost finds the return by its marker
    await writer_for(r.shop, {}, Told()).take(
        StoreReturn(credit_order_id=credit).model_dump_json().encode()
    )
    state = await read(r, order.id)
    assert len(state.returns) == 1 and state.refunded == price_of(order, sku)


async def test_two_orders_that_fit_wait_for_staff_to_link_one_then_it_is_returned_once(
    returns: Returns,
) -> None:
    r = returns
    sku = r.shop.network.skus[0]
    first, second = shipped(r, (0, 1)), shipped(r, (0, 1))
    credit = blind_return(r, sku, 1, price_of(first, sku), payment="card")
    await tell(r, credit)
    assert not (await read(r, first.id)).returns and not (await read(r, second.id)).returns
    [exc] = r.told.exceptions
    assert exc.type == "return_blind" and exc.owner.value == "store-ops"
    assert first.name in exc.message and second.name in exc.message
    assert f"tillsync returns link {credit} ORDER" in exc.message
    assert ANN not in exc.message  # no personal data in an exception
    assert f"c{credit}" in r.queue and f"c{credit}" not in r.table
    await tell(r, credit)  # the poller's record again: still waiting, still one queue entry
    assert list(r.queue) == [f"c{credit}"]

    await tell(r, credit, link=second.id)  # tillsync returns link CREDIT SECOND
    [ret] = (await read(r, second.id)).returns
    assert ret.status == "CLOSED" and (await read(r, second.id)).refunded == 0  # paid at till
    assert not r.queue and r.table[f"c{credit}"] == DONE
    await tell(r, credit)  # a replay of the unlinked record: linked already, nothing more
    await tell(r, credit, link=first.id)  # a second link: the return is done
    assert not (await read(r, first.id)).returns
    assert len((await read(r, second.id)).returns) == 1


async def test_a_link_to_an_order_that_cannot_take_it_back_waits_for_another_link(
    returns: Returns,
) -> None:
    r = returns
    sku = r.shop.network.skus[0]
    right, wrong = shipped(r, (0, 1)), shipped(r, (1, 1))
    credit = blind_return(r, sku, 1, price_of(right, sku), email="")
    await tell(r, credit)
    [exc] = r.told.exceptions
    assert exc.type == "return_blind" and "no email" in exc.message
    await tell(r, credit, link=wrong.id)
    assert [e.type for e in r.told.exceptions][1:] == ["return_not_returnable"]
    assert not (await read(r, wrong.id)).returns
    assert f"c{credit}" in r.queue and f"c{credit}" not in r.table
    await tell(r, credit, link=right.id)
    assert len((await read(r, right.id)).returns) == 1
    assert not r.queue and r.table[f"c{credit}"] == DONE


async def test_an_order_with_less_money_left_than_the_return_is_worth_does_not_fit(
    returns: Returns,
) -> None:
    r = returns
    sku = r.shop.network.skus[0]
    order = shipped(r, (0, 1))
    credit = blind_return(r, sku, 1, price_of(order, sku) + Decimal("1.00"))
    await tell(r, credit)
    assert not (await read(r, order.id)).returns
    [exc] = r.told.exceptions
    assert "none of the online orders" in exc.message and f"c{credit}" in r.queue


async def test_returns_show_names_a_blind_returns_candidates_then_its_return(
    returns: Returns,
) -> None:
    r = returns
    sku = r.shop.network.skus[0]
    first, second = shipped(r, (0, 1)), shipped(r, (0, 1))
    credit = blind_return(r, sku, 1, price_of(first, sku))
    p = r.shop.platforms
    view = await show.read_return_with(p.sitoo, p.shopify, credit, lambda _: None)
    text = "\n".join(show.describe(view, DEFAULT_RETURN_REASONS))
    assert "a blind return" in text and first.name in text and second.name in text
    assert show.problems(view, DEFAULT_RETURN_REASONS) == [
        f"blind return {credit} is linked to no online order yet: tillsync returns link "
        f"{credit} ORDER"
    ]
    await tell(r, credit, link=first.id)
    view = await show.read_return_with(p.sitoo, p.shopify, credit, lambda _: None)
    assert show.problems(view, DEFAULT_RETURN_REASONS) == []
    assert view.shopify_order_id == first.id


async def test_a_link_is_checked_against_both_platforms_before_it_is_sent(
    returns: Returns,
) -> None:
    r = returns
    sku = r.shop.network.skus[0]
    right, wrong = shipped(r, (0, 1)), shipped(r, (1, 1))
    p = r.shop.platforms
    credit_id = blind_return(r, sku, 1, price_of(right, sku))
    credit = await p.sitoo.get_order(credit_id)

    def refused(order: OrderReturns | None, order_id: int) -> str:
        with pytest.raises(link.LinkRefused) as caught:
            link.check(credit, order, order_id)
        return str(caught.value)

    assert "Shopify has no order 99" in refused(None, 99)
    assert "cannot take the return" in refused(await read(r, wrong.id), wrong.id)
    assert link.check(credit, await read(r, right.id), right.id).warnings == ()
    pricey = await p.sitoo.get_order(blind_return(r, sku, 1, price_of(right, sku) * 2))
    [warning] = link.check(pricey, await read(r, right.id), right.id).warnings
    assert "held for finance" in warning
    await tell(r, credit_id, link=right.id)
    assert "has the return of" in refused(await read(r, right.id), right.id)
    linked = credit.model_copy(update={"creditorderid": 5})
    with pytest.raises(link.LinkRefused, match="linked already"):
        link.check(linked, await read(r, right.id), right.id)


async def test_a_blind_return_settled_by_hand_leaves_the_queue_and_is_never_returned(
    returns: Returns,
) -> None:
    r = returns
    sku = r.shop.network.skus[0]
    first, second = shipped(r, (0, 1)), shipped(r, (0, 1))
    credit = blind_return(r, sku, 1, price_of(first, sku))
    await tell(r, credit)
    assert f"c{credit}" in r.queue
    dismissed = StoreReturn(credit_order_id=credit, settled_by_hand=True)
    await r.writer.take(dismissed.model_dump_json().encode())  # tillsync returns dismiss
    assert not r.queue and r.table[f"c{credit}"] == DONE
    await tell(r, credit, link=first.id)  # a later link, and the poller's record again
    await tell(r, credit)
    assert not (await read(r, first.id)).returns and not (await read(r, second.id)).returns


async def test_an_email_with_more_orders_than_one_read_is_never_linked_by_itself(
    returns: Returns,
) -> None:
    """Shopify's read of an email's orders holds the newest 10. With more, an older order might
    fit as well, so the one fit among those read waits for staff instead of being linked."""
    r = returns
    sku = r.shop.network.skus[0]
    for _ in range(10):
        shipped(r, (1, 1))  # older orders of the same customer, none with the SKU
    newest = shipped(r, (0, 1))
    credit = blind_return(r, sku, 1, price_of(newest, sku))
    await tell(r, credit)
    assert not (await read(r, newest.id)).returns
    [exc] = r.told.exceptions
    assert "more online orders than tillsync reads at once" in exc.message
    assert newest.name in exc.message and f"c{credit}" in r.queue
