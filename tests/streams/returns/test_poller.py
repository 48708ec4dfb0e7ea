"""The orders poller's reading of Sitoo's orders: only returns go on, keyed by what they
return, each with its credit order as read."""

from __future__ import annotations

from tillsync.schemas.sitoo import WarehouseTransaction
from tillsync.streams.returns.poller import OrdersRead, is_return, returns_of
from tillsync.streams.stock.ledger import levels_of


def test_a_credit_order_or_goods_coming_back_is_a_return_a_sale_is_not() -> None:
    sale = {"orderid": 1, "orderitems": [{"sku": "A", "quantity": 2}]}
    linked = {"orderid": 2, "creditorderid": 1, "orderitems": [{"sku": "A", "quantity": -1}]}
    blind = {"orderid": 3, "orderitems": [{"sku": "A", "quantity": -1}]}
    assert [is_return(o) for o in (sale, linked, blind)] == [False, True, True]


def test_each_return_goes_on_with_what_it_returns_and_itself() -> None:
    linked = {"orderid": 2, "creditorderid": 1, "orderitems": [{"sku": "A", "quantity": -1}]}
    blind = {"orderid": 3, "orderitems": [{"sku": "A", "quantity": -1}]}
    found = returns_of(OrdersRead(cursor=3, orders=[linked, blind]))
    assert [(r.credit_order_id, r.original_order_id) for r in found] == [(2, 1), (3, None)]
    assert found[0].credit == linked


def test_the_ledger_names_a_returns_delivery_only_while_the_returns_flow_runs() -> None:
    tx = WarehouseTransaction.model_validate(
        {
            "warehousetransactionid": 9,
            "warehouseid": 101,
            "transactiontype": 40,
            "orderdeliveryid": 555,
            "items": [{"sku": "A", "decimalquantity": "1.000", "decimaltotal": "11.000"}],
        }
    )
    [on], _ = levels_of(tx, 1.0, returns=True)
    [off], _ = levels_of(tx, 1.0)
    assert on.return_delivery_id == 555 and off.return_delivery_id is None
    sale = tx.model_copy(update={"transactiontype": 20})
    [level], _ = levels_of(sale, 1.0, returns=True)
    assert level.return_delivery_id is None
