"""The refund credits writer: a Shopify refund of an order a Sitoo till handed over becomes one
closed credit order against that Sitoo order (``refunds_to_sitoo``; flows.md, C).

The order flow reads each ``refunds/create`` webhook and asks for the credit orders it owes
(``tillsync.streams.stock.refund_restocks.refund_credits``): ``RefundCredit`` records on
``cmd.sitoo.credits``, keyed by their externalid ``rc-<refund>-<Sitoo order>``. This writer
looks that externalid up in Sitoo first and makes the order only when Sitoo has none: a
repeat, a replay, or a try after an answer was lost finds the one made before.

The credit order is the refund in Sitoo's order reports: the refunded lines as negative rows
at the Sitoo order's warehouse, a negative "Shopify" payment of what Shopify paid back (none
when it paid nothing), ``creditorderid`` the order it credits. It has no delivery, so it moves
no stock: the refund's Move In does that where Shopify restocked the units. Made by the API,
it has no register, so Sitoo puts it in no Z-report. The returns flow's poller sees it among
Sitoo's credit orders, and leaves it (``CREDIT_PREFIX``): it is no return at a till.

A Sitoo failure puts the command back until Sitoo answers (``CommandWriter``); a credit order
Sitoo refuses for itself is dead-lettered and raised for finance, whose books then miss it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Protocol

import faust

from tillsync.schemas.events import ExceptionRecord, RefundCredit
from tillsync.schemas.money import format_money, money
from tillsync.schemas.sitoo import ORDER_CLOSED, ORDERTYPE_ORDER, Order, OrderIn, OrderItemIn
from tillsync.streams import metrics, topics
from tillsync.streams.context import Context
from tillsync.streams.runtime import Runtime
from tillsync.streams.stock.command_writer import (
    SITOO_ONLY,
    Breakers,
    CommandWriter,
    Platforms,
)
from tillsync.streams.stock.sink_output import KafkaSinkOutput
from tillsync.streams.stock.sink_runner import SinkRunner, flow_of

log = logging.getLogger("tillsync.refund_credits")

WINDOW = 100
WINDOW_SECONDS = 0.05
PAYMENT_NAME = "Shopify"  # the payment row's name: where the money went back
PAYMENT_SUCCESSFUL = 20  # Sitoo's paymentstateid of a settled order


class CreditSitoo(Protocol):
    async def orders_by_externalid(self, externalids: Sequence[str]) -> list[Order]: ...

    async def add_order(self, order: OrderIn) -> int: ...


class CreditOutput(Protocol):
    async def exception(self, record: ExceptionRecord) -> None: ...

    async def dead_letter(
        self, value: bytes, reason: str, headers: Mapping[str, bytes] | None = None
    ) -> None: ...


def credit_order(credit: RefundCredit) -> OrderIn:
    """The Sitoo credit order of a refund."""
    paid = money(credit.refunded)
    return OrderIn(
        ordertypeid=ORDERTYPE_ORDER,
        orderstateid=ORDER_CLOSED,
        paymentstateid=PAYMENT_SUCCESSFUL,
        externalid=credit.externalid,
        creditorderid=credit.mirror_order_id,
        warehouseid=credit.warehouse_id,
        currencycode=credit.currency or None,
        additionaldata={
            "shopify-order-id": str(credit.order_id),
            "shopify-refund-id": str(credit.refund_id),
            "pos-originalsales-orderid": str(credit.mirror_order_id),
        },
        orderitems=[
            OrderItemIn(
                productname=row.name,
                sku=row.sku,
                quantity=-row.units,
                moneyrowprice=format_money(-money(row.gross)),
                additionaldata={"shopify-line-item-id": str(row.line_item_id)},
            )
            for row in credit.rows
        ],
        payments=(
            [{"name": PAYMENT_NAME, "moneyamount": format_money(-paid)}]
            if paid > Decimal("0.00")
            else []
        ),
    )


class RefundCredits(CommandWriter[RefundCredit]):
    SINK = metrics.Sink.REFUND_CREDITS

    def __init__(
        self,
        sitoo: CreditSitoo,
        output: CreditOutput,
        *,
        breakers: Breakers | None = None,
    ) -> None:
        super().__init__(breakers=breakers, dead_letter=output.dead_letter)
        self.sitoo = sitoo
        self.output = output

    def decode(self, value: bytes) -> RefundCredit:
        return RefundCredit.model_validate_json(value)

    def key_of(self, command: RefundCredit) -> str:
        return command.externalid

    def needs(self, command: RefundCredit) -> Platforms:
        return SITOO_ONLY  # Shopify's outage must not hold Sitoo's books up

    async def carry_out(self, command: RefundCredit) -> None:
        if await self.sitoo.orders_by_externalid([command.externalid]):
            metrics.refund_credits.labels(outcome=metrics.CreditOutcome.FOUND).inc()
            return
        made = await self.sitoo.add_order(credit_order(command))
        metrics.refund_credits.labels(outcome=metrics.CreditOutcome.MADE).inc()
        log.info(
            "Shopify refund %d of order %d: Sitoo credit order %d of order %d",
            command.refund_id,
            command.order_id,
            made,
            command.mirror_order_id,
        )

    async def refused(self, command: RefundCredit, reason: str) -> None:
        metrics.refund_credits.labels(outcome=metrics.CreditOutcome.REFUSED).inc()
        kind = metrics.ExceptionType.REFUND_NOT_IN_SITOO
        await self.output.exception(
            ExceptionRecord(
                type=kind,
                owner=metrics.EXCEPTION_OWNERS[kind],
                key=command.externalid,
                message=(
                    f"Shopify refund {command.refund_id} of order {command.order_id} "
                    f"({command.refunded} {command.currency}) is not in Sitoo: its credit order "
                    f"against Sitoo order {command.mirror_order_id} was refused: {reason}"
                ),
                at=command.at,
            )
        )


class RuntimeCreditSitoo:
    """The worker's Sitoo client, looked up at each call (the runtime builds it on first use)."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime

    async def orders_by_externalid(self, externalids: Sequence[str]) -> list[Order]:
        return await self._rt.sitoo.orders_by_externalid(externalids)

    async def add_order(self, order: OrderIn) -> int:
        return await self._rt.sitoo.add_order(order)


class KafkaCreditOutput:
    """``CreditOutput`` on the worker's topics."""

    def __init__(self, ctx: Context) -> None:
        self.sink = KafkaSinkOutput(ctx, topics.SITOO_CREDIT_COMMANDS)

    async def exception(self, record: ExceptionRecord) -> None:
        await self.sink.exception(record)

    async def dead_letter(
        self, value: bytes, reason: str, headers: Mapping[str, bytes] | None = None
    ) -> None:
        await self.sink.dead_letter(value, reason, headers=headers)


def register(ctx: Context) -> None:
    rt = ctx.runtime
    assert rt is not None
    writer = RefundCredits(RuntimeCreditSitoo(rt), KafkaCreditOutput(ctx))
    runner = SinkRunner(writer, window=WINDOW, within=WINDOW_SECONDS, flowing=flow_of(ctx.app))

    @ctx.app.agent(ctx.topic(topics.SITOO_CREDIT_COMMANDS), name="refund-credits")
    async def refund_credits(stream: faust.StreamT[bytes]) -> None:
        await runner.run(stream, ready=rt.ready)
