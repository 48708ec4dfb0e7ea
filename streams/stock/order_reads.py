"""The orders agent in the worker: its records taken into a backlog of orders to read, read
by a few reader tasks beside it, so that no read holds up the records behind it.

An order read waits on Shopify's cost budget (seconds when the stock writes and other reads
spend it) and on Shopify itself. Read in the agent, batch after batch, one slow read held every
later batch up, and with it the Move Outs that later fulfilment webhooks carry: in the demo on
the Standard plan a store fulfilment reached Sitoo in 0.2 s at the median but 6 s at p99.

So the agent only sends what the fulfilment webhooks themselves say (their Move Outs and
reversals) and puts the order in the backlog: one entry per order, however many of its
webhooks come while it waits, so an order whose webhooks arrive while Shopify is slow is read
once for all of them. ``PARALLEL_READS`` reader tasks take orders out, one read of an order at
a time (a record that comes while its order is being read asks for one more read, after).
A record is acknowledged once a read that started after it was taken is done, or once a newer
record of its order is taken (that one keeps the committed offset behind both): a crash or a
rebalance takes the unread ones again from Kafka (``SinkRunner``). A fulfilment-order webhook
whose order cannot be looked up now (Shopify down) waits out its backoff in the backlog,
unacknowledged, while the reader goes on: in a Shopify outage eight of them had held all eight
readers until it ended.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import MutableMapping, Sequence

import faust
from faust.web import Request, Response, View

from tillsync.streams import metrics, topics
from tillsync.streams.context import Context
from tillsync.streams.runtime import Runtime
from tillsync.streams.stock.backlog import Backlog, Taken
from tillsync.streams.stock.order_topics import changes_holds
from tillsync.streams.stock.orders import (
    SWEEP_TICK,
    KafkaOrderOutput,
    LookupDeferred,
    OrderHolds,
    OrderRecord,
    OrderTrack,
    RuntimeShopify,
    by_order,
    record_of,
)
from tillsync.streams.stock.sink_runner import Ack, BacklogWriter, SinkRunner, flow_of

log = logging.getLogger("tillsync.orders")

PARALLEL_READS = 8
# the agent's window: a change of one order brings several webhooks at once
WINDOW = 200
WINDOW_SECONDS = 0.05
# orders waiting to be read at most; the agent waits for room beyond (a Shopify outage defers
# each read to the sweep after its tries, so the backlog drains even then)
BACKLOG_CAPACITY = 20_000


async def _no_ack(_: faust.EventT) -> None:
    return None


class OrderReads(BacklogWriter[OrderRecord]):
    SINK = metrics.Sink.ORDER_READS  # no breaker: OrderHolds defers a failed read to the sweep

    def __init__(
        self,
        holds: OrderHolds,
        *,
        ack: Ack = _no_ack,
        parallel: int = PARALLEL_READS,
        capacity: int = BACKLOG_CAPACITY,
    ) -> None:
        self.holds = holds
        self.ack = ack
        self.parallel = parallel
        # key: the record's key (an order, or a fulfilment order); work: its records not yet
        # read, newest last
        self.backlog: Backlog[bytes | None, list[OrderRecord], OrderRecord] = Backlog(capacity)
        self._versions = itertools.count(1)
        # entries waiting out a deferred lookup: in flight (no reader takes them) until then
        self._later: dict[bytes | None, asyncio.TimerHandle] = {}
        self._seen_answered_again = 0.0

    async def accept_events(self, events: Sequence[faust.EventT]) -> None:
        await self.accept([record_of(event) for event in events])

    async def accept(self, batch: Sequence[OrderRecord]) -> None:
        # a record that changes nothing an order holds (orders/paid) is done with at once
        await self._ack_all([r for r in batch if not changes_holds(r.topic)])
        for key, group in by_order(batch).items():
            # never waits on Shopify: a fulfilment's Move Out goes to Sitoo now
            await self.holds.move_out_from_webhooks(group)
            await self.backlog.wait_for_room(key)
            entry = self.backlog.entries.get(key)
            # records not yet taken by a reader go with the newest (all dead-lettered if the
            # order turns out not to exist)
            carried = entry.work if entry is not None and entry.in_flight is None else []
            superseded = self.backlog.add(key, next(self._versions), [*carried, *group], group[-1])
            await self._ack_all(superseded)
            for record in group[:-1]:
                await self._ack_all([record])  # the newest of its order keeps the offset
        self._gauge()

    async def run_writer(self) -> None:
        """``parallel`` readers, each taking one order at a time; a surprise in one stops them
        all (the runner logs it and starts them again), so none is left running alone."""
        async with asyncio.TaskGroup() as readers:
            for n in range(self.parallel):
                readers.create_task(super().run_writer(), name=f"order-reader-{n}")

    async def write_round(self) -> None:
        taken = self.backlog.take(1)
        if taken:
            await self._read(taken[0])
        self._gauge()

    async def _read(self, taken: Taken[bytes | None, list[OrderRecord]]) -> None:
        try:
            await self.holds.read(taken.work)
        except LookupDeferred as later:
            # neither acknowledged nor read again until the backoff is over; the reader goes on
            self._later[taken.key] = asyncio.get_running_loop().call_later(
                later.delay, self._again, taken.key
            )
            return
        except BaseException:
            # a bug of ours (or a cancel): the order stays to be read, the runner logs it
            self.backlog.back(taken.key)
            raise
        await self._ack_all(self.backlog.done(taken.key, taken.version))
        if self.holds.answered_again_at > self._seen_answered_again:
            # Shopify is back after an outage: the lookups deferred meanwhile go now, not
            # after their backoff
            self._seen_answered_again = self.holds.answered_again_at
            for key, timer in list(self._later.items()):
                timer.cancel()
                self._again(key)

    def _again(self, key: bytes | None) -> None:
        self._later.pop(key, None)
        self.backlog.back(key)

    def release(self) -> None:
        for timer in self._later.values():
            timer.cancel()
        self._later.clear()
        super().release()

    async def _ack_all(self, records: Sequence[OrderRecord]) -> None:
        for record in records:
            if record.event is not None:
                await self.ack(record.event)


class OrderFlow:
    """The orders agent (through a ``SinkRunner``) and its sweep timer, over an
    ``OrderHolds``."""

    def __init__(self, ctx: Context, table: MutableMapping[str, bytes]) -> None:
        assert ctx.runtime is not None
        self.ctx = ctx
        self.rt: Runtime = ctx.runtime
        self.table = table
        self.holds = OrderHolds(
            table,
            self.rt.locations,
            RuntimeShopify(self.rt),
            KafkaOrderOutput(ctx),
            sweep_interval=ctx.settings.order_sweep_seconds,
            read_deadline=ctx.settings.order_read_timeout,
            methods=ctx.settings.sitoo_order_methods,
            in_sitoo=self.rt.skus.in_sitoo,
            refunds_to_sitoo=ctx.settings.refunds_to_sitoo,
        )
        self.reads = OrderReads(self.holds)
        self.runner = SinkRunner(
            self.reads, window=WINDOW, within=WINDOW_SECONDS, flowing=flow_of(ctx.app)
        )

    async def take(self, stream: faust.StreamT[bytes]) -> None:
        await self.runner.run(stream, ready=self.rt.ready)

    def track(self, order_id: str) -> OrderTrack | None:
        """What the worker remembers of one online order, for a person to read."""
        value = self.table.get(order_id) if order_id.isdigit() else None
        return OrderTrack.model_validate_json(value) if value else None

    async def sweep(self) -> None:
        if not self.rt.ready.is_set():
            return
        asked = await self.holds.sweep(list(self.table.items()))
        if asked:
            log.info("sweep: reading %d orders still holding units again", asked)


def register(ctx: Context) -> None:
    table = ctx.app.Table(
        "order-holds",
        default=None,
        schema=faust.Schema(key_type=str, key_serializer="json", value_serializer="raw"),
        value_type=bytes,
        help="one entry per online order: where it held units, its Move Outs sent",
    )
    flow = OrderFlow(ctx, table)
    ctx.app.agent(ctx.topic(topics.SHOPIFY_ORDER_WEBHOOKS), name="shopify-orders")(flow.take)
    ctx.app.timer(SWEEP_TICK)(flow.sweep)

    @ctx.app.page("/state/orders/{order_id}")
    class OrderOfId(View):
        async def get(self, request: Request, order_id: str) -> Response:
            track = flow.track(order_id)
            if track is None:
                return self.json({"order_id": order_id, "error": "no such order"}, status=404)
            return self.json({"order_id": order_id, **track.model_dump()})
