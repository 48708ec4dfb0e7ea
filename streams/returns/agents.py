"""The returns flow's agent, table and the worker's side of its writer (clients, Kafka)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import faust

from tillsync.connectors.shopify.client import UserErrorInfo
from tillsync.connectors.shopify.returns import (
    CustomerOrders,
    DisposalIn,
    OrderReturns,
    ReturnLineIn,
    ShopifyReturn,
    SuggestedRefund,
    SuggestedTransaction,
)
from tillsync.schemas.events import ExceptionRecord, ReturnRestock
from tillsync.schemas.sitoo import Order, OrderDelivery, WarehouseItem
from tillsync.streams import metrics, topics
from tillsync.streams.context import Context
from tillsync.streams.returns.writer import StoreReturns
from tillsync.streams.runtime import Runtime
from tillsync.streams.stock.sink_output import KafkaSinkOutput
from tillsync.streams.stock.sink_runner import SinkRunner, flow_of
from tillsync.streams.table_marks import TableMarks

WINDOW = 100
WINDOW_SECONDS = 0.05
QUEUE_GAUGE_SECONDS = 30.0


class RuntimeReturnsPlatforms:
    """The worker's clients, looked up at each call (the runtime builds them on first use)."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime

    async def get_order(self, orderid: int) -> Order:
        return await self._rt.sitoo.get_order(orderid)

    async def order_deliveries(self, orderid: int) -> list[OrderDelivery]:
        return await self._rt.sitoo.order_deliveries(orderid)

    async def order_returns(self, order_id: int) -> OrderReturns | None:
        return await self._rt.shopify.order_returns(order_id)

    async def orders_by_email(self, email: str) -> CustomerOrders:
        return await self._rt.shopify.orders_by_email(email)

    async def available(self, item_id: int, location_id: int) -> int | None:
        return await self._rt.shopify.available(item_id, location_id)

    async def warehouse_items_by_sku(
        self, warehouse_id: int, skus: Sequence[str]
    ) -> list[WarehouseItem]:
        return await self._rt.sitoo.warehouse_items_by_sku(warehouse_id, list(skus))

    async def create_return(
        self, order_id: int, lines: Sequence[ReturnLineIn]
    ) -> tuple[ShopifyReturn | None, list[UserErrorInfo]]:
        return await self._rt.shopify.create_return(order_id, lines)

    async def dispose(self, disposals: Sequence[DisposalIn]) -> list[UserErrorInfo]:
        return await self._rt.shopify.dispose(disposals)

    async def suggested_refund(
        self, return_id: int, lines: Mapping[int, int]
    ) -> SuggestedRefund | None:
        return await self._rt.shopify.suggested_refund(return_id, lines)

    async def refund_return(
        self,
        return_id: int,
        lines: Mapping[int, int],
        transactions: Sequence[SuggestedTransaction],
        currency: str,
    ) -> tuple[int | None, list[UserErrorInfo]]:
        return await self._rt.shopify.refund_return(return_id, lines, transactions, currency)

    async def close_return(self, return_id: int) -> list[UserErrorInfo]:
        return await self._rt.shopify.close_return(return_id)

    async def approve_return(
        self, return_id: int
    ) -> tuple[ShopifyReturn | None, list[UserErrorInfo]]:
        return await self._rt.shopify.approve_return(return_id)


class KafkaReturnsOutput:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.sink = KafkaSinkOutput(ctx, topics.SITOO_RETURNS)

    async def restocks(self, records: Sequence[ReturnRestock]) -> None:
        await self.ctx.send_all(
            topics.STOCK_EVENTS,
            ((r.sku.encode(), r.model_dump_json().encode()) for r in records),
            durable=True,
        )

    async def exception(self, record: ExceptionRecord) -> None:
        await self.sink.exception(record)

    async def dead_letter(
        self, value: bytes, reason: str, headers: Mapping[str, bytes] | None = None
    ) -> None:
        await self.sink.dead_letter(value, reason, headers=headers)


def register(ctx: Context) -> None:
    rt = ctx.runtime
    assert rt is not None
    table = ctx.app.Table(
        "store-returns",
        default=None,
        schema=faust.Schema(key_type=str, key_serializer="json", value_serializer="json"),
        help="per Sitoo credit order: when its Shopify return was asked, or that it is done; "
        "per return asked for online: the credit order that took it",
    )
    queue = ctx.app.Table(
        "blind-returns",
        default=None,
        schema=faust.Schema(key_type=str, key_serializer="json", value_serializer="json"),
        help="blind returns waiting for a link to their online order: since when",
    )
    platforms = RuntimeReturnsPlatforms(rt)
    writer = StoreReturns(
        platforms,
        platforms,
        KafkaReturnsOutput(ctx),
        rt.locations,
        ctx.settings.return_reasons,
        TableMarks(table, float),
        lambda sku: rt.skus.item_by_sku.get(sku),  # the index is replaced at each start
        TableMarks(queue, float),
    )
    runner = SinkRunner(writer, window=WINDOW, within=WINDOW_SECONDS, flowing=flow_of(ctx.app))

    @ctx.app.timer(QUEUE_GAUGE_SECONDS)
    async def count_blind_returns() -> None:
        # the table reads this worker's active partitions only: the workers' gauges add up
        metrics.returns_blind_queued.set(len(queue))

    @ctx.app.agent(ctx.topic(topics.SITOO_RETURNS), name="store-returns")
    async def store_returns(stream: faust.StreamT[bytes]) -> None:
        await runner.run(stream, ready=rt.ready)
