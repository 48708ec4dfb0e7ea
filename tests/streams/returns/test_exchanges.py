"""An exchange at the till: the customer brings an online order's goods back and takes other
goods for them, on the same receipt or in a new sale paid by a virtual payment (flows.md C).
Shopify records the return and restock; it refunds only what neither the other goods nor the
till settled: the returns writer on both simulators over HTTP."""

from __future__ import annotations

from decimal import Decimal

from tests.streams.returns.test_store_returns import (
    Returns,
    picked_up,
    read,
    returns,
    shop,
    tell,
    till_return,
)
from tillsync.schemas.sitoo import Order
from tillsync.streams.returns.plan import credit_money

__all__ = ["returns", "shop"]  # the fixtures, used by name


def _price(r: Returns, sku: str) -> Decimal:
    return r.shop.sitoo.state.products_by_sku[sku].moneyprice


async def test_an_exchange_on_the_same_receipt_for_dearer_goods_refunds_no_money(
    returns: Returns,
) -> None:
    r = returns
    sku, other = r.shop.network.skus[0], r.shop.network.skus[1]
    order_id, original = await picked_up(r, (0, 1))
    dearer = [{"sku": other, "quantity": 2}]
    credit = till_return(r, original, reasoncode="SIZE-SMALL", payment="none", exchange=dearer)
    rows = r.shop.sitoo.state.orders[credit].product_items()
    assert sorted(int(i["quantity"]) for i in rows) == [-1, 2]  # both on the one receipt
    await tell(r, credit, original)
    state = await read(r, order_id)
    [ret] = state.returns
    assert ret.status == "CLOSED" and [(x.sku, x.quantity) for x in ret.lines] == [(sku, 1)]
    assert state.refunded == 0  # the customer has the other goods for the money
    money = credit_money(Order.model_validate(r.shop.sitoo.state.orders[credit].wire()))
    assert money.owed_in_shopify == 0 and money.settled_by_exchange == money.value


async def test_an_exchange_for_cheaper_goods_has_shopify_refund_the_difference_once(
    returns: Returns,
) -> None:
    """Nothing paid back at the till: the difference goes back to the card online."""
    r = returns
    sku = r.shop.network.skus[0]
    cheap = min(r.shop.network.skus, key=lambda s: _price(r, s))
    order_id, original = await picked_up(r, (0, 2))
    line = next(li for li in r.shop.shopify.state.orders[order_id].line_items if li.sku == sku)
    credit = till_return(r, original, payment="none", exchange=[{"sku": cheap, "quantity": 1}])
    await tell(r, credit, original)
    await tell(r, credit, original)
    state = await read(r, order_id)
    assert len(state.returns) == 1
    assert state.refunded == 2 * line.price - _price(r, cheap)


async def test_an_exchange_by_virtual_payment_into_a_new_sale_refunds_no_money(
    returns: Returns,
) -> None:
    r = returns
    other = r.shop.network.skus[2]
    order_id, original = await picked_up(r, (0, 1))
    sales_before = len(r.shop.sitoo.state.orders)
    credit = till_return(r, original, payment="virtual", exchange=[{"sku": other, "quantity": 1}])
    made = r.shop.sitoo.state.orders[credit]
    [pay] = [p for p in made.data["payments"] if p["additionaldata"].get("virtual-payment")]
    assert Decimal(pay["moneyamount"]) < 0
    assert len(r.shop.sitoo.state.orders) == sales_before + 2  # the credit and the new sale
    await tell(r, credit, original)
    state = await read(r, order_id)
    [ret] = state.returns
    assert ret.status == "CLOSED" and state.refunded == 0
    assert not r.told.exceptions
