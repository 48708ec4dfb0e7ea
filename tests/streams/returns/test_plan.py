"""What a store return owes Shopify, from both platforms' state (pure rules)."""

from __future__ import annotations

from decimal import Decimal

from tillsync.connectors.shopify.returns import (
    DisposalLine,
    Disposition,
    FulfilmentLine,
    OrderReturns,
    ReturnedLine,
    ShopifyReturn,
    SuggestedTransaction,
)
from tillsync.schemas.returns import DEFAULT_RETURN_REASONS, ShopifyReturnReason
from tillsync.schemas.sitoo import Order
from tillsync.streams.returns.plan import (
    credit_money,
    credit_rows,
    cut_to,
    disposals,
    fates,
    marker,
    plan_return,
    restocked,
    within_room,
)


def credit(*rows: tuple[str, int, str], payments: list[str] = (), total: str = "-300.00") -> Order:  # type: ignore[assignment]
    return Order.model_validate(
        {
            "orderid": 77,
            "creditorderid": 5,
            "warehouseid": 101,
            "moneytotal_gross_all": total,
            "additionaldata": {"refundreasoncode-comment": "customer said so"},
            "orderitems": [
                {
                    "productname": sku,
                    "sku": sku,
                    "quantity": -n,
                    "additionaldata": {"reasoncode-return": code} if code else {},
                }
                for sku, n, code in rows
            ],
            "payments": [{"name": "Card", "moneyamount": p} for p in payments],
        }
    )


def state(*lines: FulfilmentLine, returns: tuple[ShopifyReturn, ...] = ()) -> OrderReturns:
    return OrderReturns(
        order_id=1,
        name="#1001",
        currency="SEK",
        cancelled=False,
        received=Decimal("300.00"),
        refunded=Decimal("0.00"),
        fulfilment_lines=lines,
        returns=returns,
    )


def test_the_marker_of_one_credit_order_is_not_found_in_anothers() -> None:
    assert marker(12) not in marker(123)


def test_reasons_map_unmapped_codes_to_other_with_the_code_and_none_to_unknown() -> None:
    rows = credit_rows(
        credit(("A", 1, "DEFECT"), ("B", 1, "ODD"), ("C", 1, "")), DEFAULT_RETURN_REASONS
    )
    assert [r.reason.shopify for r in rows] == [
        ShopifyReturnReason.DEFECTIVE,
        ShopifyReturnReason.OTHER,
        ShopifyReturnReason.UNKNOWN,
    ]
    assert not rows[0].reason.resellable and rows[1].reason.resellable
    assert "ODD" in rows[1].reason.note and "customer said so" in rows[1].reason.note


def test_lines_come_from_the_originals_store_first_and_short_units_are_named() -> None:
    here = FulfilmentLine(
        id=10, fulfilment_id=1, location_id=11, line_item_id=100, sku="A", quantity=1
    )
    there = FulfilmentLine(
        id=9, fulfilment_id=2, location_id=12, line_item_id=100, sku="A", quantity=1
    )
    rows = credit_rows(credit(("A", 3, "")), DEFAULT_RETURN_REASONS)
    plan = plan_return(rows, state(there, here), at_location=11, mark=marker(77))
    assert [(line.fulfilment_line_id, line.quantity) for line in plan.lines] == [(10, 1), (9, 1)]
    assert plan.short == {"A": 1}
    assert all(marker(77) in line.note for line in plan.lines)


def test_units_on_live_returns_are_not_returnable_again() -> None:
    line = FulfilmentLine(
        id=10, fulfilment_id=1, location_id=11, line_item_id=100, sku="A", quantity=2
    )
    earlier = ShopifyReturn(
        id=3,
        status="CLOSED",
        lines=(ReturnedLine(30, 10, "A", 1, 0, "OTHER", marker(76)),),
        disposals=(),
    )
    rows = credit_rows(credit(("A", 2, "")), DEFAULT_RETURN_REASONS)
    plan = plan_return(rows, state(line, returns=(earlier,)), 11, marker(77))
    assert [(p.fulfilment_line_id, p.quantity) for p in plan.lines] == [(10, 1)]
    assert plan.short == {"A": 1}


def test_resellable_goods_are_restocked_where_sitoo_took_them_back_damaged_ones_not() -> None:
    rows = credit_rows(credit(("A", 1, ""), ("B", 1, "DEFECT")), DEFAULT_RETURN_REASONS)
    ret = ShopifyReturn(
        id=3,
        status="OPEN",
        lines=(
            ReturnedLine(30, 10, "A", 1, 1, "UNKNOWN", f"{rows[0].reason.note} {marker(77)}"),
            ReturnedLine(31, 20, "B", 1, 1, "DEFECTIVE", f"{rows[1].reason.note} {marker(77)}"),
        ),
        disposals=(DisposalLine(40, 10, 1, ()), DisposalLine(41, 20, 1, ())),
    )
    fate = fates(ret, rows, {101: 11})
    plan = disposals(ret, fate)
    assert [(d.disposal_line_id, d.restock_at) for d in plan] == [(40, 11), (41, None)]
    done = ShopifyReturn(
        id=3,
        status="OPEN",
        lines=ret.lines,
        disposals=(
            DisposalLine(40, 10, 1, (Disposition("RESTOCKED", 1, 11),)),
            DisposalLine(41, 20, 1, (Disposition("NOT_RESTOCKED", 1, None),)),
        ),
    )
    assert disposals(done, fate) == []
    assert [(r.sku, r.location_id, r.units) for r in restocked(done)] == [("A", 11, 1)]


def test_no_more_units_are_restocked_at_a_store_than_its_room_the_rest_not_restocked() -> None:
    rows = credit_rows(
        credit(("A", 3, ""), ("B", 1, ""), ("C", 1, "DEFECT")), DEFAULT_RETURN_REASONS
    )
    ret = ShopifyReturn(
        id=3,
        status="OPEN",
        lines=(
            ReturnedLine(30, 10, "A", 2, 2, "UNKNOWN", f"{rows[0].reason.note} {marker(77)}"),
            ReturnedLine(31, 11, "A", 1, 1, "UNKNOWN", f"{rows[0].reason.note} {marker(77)}"),
            ReturnedLine(32, 20, "B", 1, 1, "UNKNOWN", f"{rows[1].reason.note} {marker(77)}"),
            ReturnedLine(33, 30, "C", 1, 1, "DEFECTIVE", f"{rows[2].reason.note} {marker(77)}"),
        ),
        disposals=(
            DisposalLine(40, 10, 2, ()),
            DisposalLine(41, 11, 1, ()),
            DisposalLine(42, 20, 1, ()),
            DisposalLine(43, 30, 1, ()),
        ),
    )
    fate = fates(ret, rows, {101: 11})
    plan = disposals(ret, fate)
    # room for one A across both of its lines, none for B (none asked of C: damaged)
    capped = within_room(plan, ret, fate, {("A", 11): 1, ("B", 11): 0})
    assert [(d.disposal_line_id, d.quantity, d.restock_at) for d in capped] == [
        (40, 1, 11),
        (40, 1, None),
        (41, 1, None),
        (42, 1, None),
        (43, 1, None),
    ]
    assert within_room(plan, ret, fate, {("A", 11): 9, ("B", 11): 9}) == plan


def test_an_unmapped_store_restocks_nothing() -> None:
    rows = credit_rows(credit(("A", 1, "")), DEFAULT_RETURN_REASONS)
    ret = ShopifyReturn(
        3, "OPEN", (ReturnedLine(30, 10, "A", 1, 1, "UNKNOWN", rows[0].reason.note),), ()
    )
    assert fates(ret, rows, {999: 11})[10].restock_at is None


def test_money_owed_in_shopify_is_the_value_less_what_the_till_paid_back() -> None:
    assert credit_money(credit(("A", 1, ""), payments=["-300.00"])).owed_in_shopify == 0
    assert credit_money(credit(("A", 1, ""))).owed_in_shopify == Decimal("300.00")
    part = credit_money(credit(("A", 1, ""), payments=["-100.00"]))
    assert part.owed_in_shopify == Decimal("200.00") and part.paid_at_till == Decimal("100.00")


def test_a_refund_takes_shopifys_split_in_order_up_to_what_is_owed() -> None:
    split = [
        SuggestedTransaction(1, Decimal("50.00"), "gift_card"),
        SuggestedTransaction(2, Decimal("250.00"), "card"),
    ]
    assert cut_to(split, Decimal("120.00")) == [
        SuggestedTransaction(1, Decimal("50.00"), "gift_card"),
        SuggestedTransaction(2, Decimal("70.00"), "card"),
    ]
