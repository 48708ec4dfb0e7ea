"""The Sitoo orders sink: click & collect orders made, and cancelled, in Sitoo once each.

It takes ``PickupCommand`` records (``cmd.sitoo.orders``, keyed by the Sitoo order's
externalid, so one pickup's commands come in the order they were asked for) from the order
flow (``tillsync.streams.stock.pickups``).

- Export: the order is looked up by externalid first, and made only if Sitoo has none: a
  command repeated, replayed, or tried again after an answer was lost never makes a second one.
  What the Sitoo order holds is read from Shopify then (``PICKUP_FULFILLMENT_ORDER``): the
  fulfilment order's lines still to pick up, with names and prices, the order's name as the
  customer reference, the web-order markers of flows.md (A) and the payment state (paid, or
  only authorised). A fulfilment order no longer open at that store by then is not sent (the
  order flow's next read cancels or exports again as it finds it).
- Cancel: an open Sitoo order is cancelled, which lets go of what it reserves; one already
  closed or cancelled, or never made, is left as it is.

After either, the SKUs' reserved quantities at the warehouse are read (the read begun after
Sitoo confirmed the change) and sent to the positions, and an export's confirmation goes back
to the order flow (``PickupInSitoo``): only then does a position stop counting the pickup's
units as held (``Position.pending_units``), so they are never offered twice nor, for longer
than those two records take, counted twice.

The agent only takes the records into a backlog; a writer task carries the commands out
(``command_writer.py``). A failure of either platform keeps the command and tries it again
once that platform's breaker lets it, without end: it holds up only the pickups, never the
worker's other agents. A command that is not one, or that Sitoo refuses for itself (a 4xx), is
dead-lettered with its record's headers and raised as an exception for the integration's
owners.

``SitooOrdersSink`` holds the decisions and takes its platforms and its output as arguments,
so a test runs it on the simulators without Kafka; ``register`` wires it to the worker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Protocol

import faust

from tillsync.connectors.shopify.pickup import PickupDetails
from tillsync.schemas.events import (
    ExceptionRecord,
    Owner,
    PickupAction,
    PickupCommand,
    PickupInSitoo,
    PickupStep,
    PickupStepKind,
    SitooPickupState,
    SitooReserved,
)
from tillsync.schemas.sitoo import (
    ORDER_CANCELLED,
    ORDER_OPEN,
    ORDERTYPE_ORDER,
    Order,
    OrderDelivery,
    OrderIn,
    OrderItem,
    OrderItemIn,
    WarehouseItem,
)
from tillsync.streams import metrics, topics
from tillsync.streams.context import Context
from tillsync.streams.runtime import Runtime
from tillsync.streams.stock.command_writer import (
    BOTH,
    SITOO_ONLY,
    Breakers,
    CommandWriter,
    Platforms,
)
from tillsync.streams.stock.order_topics import PICKUP_IN_SITOO_TOPIC, OrderKey
from tillsync.streams.stock.pickups import ENDED, SHIPPING
from tillsync.streams.stock.reservations import read_reserved
from tillsync.streams.stock.shopify_webhooks import TOPIC_HEADER, KafkaHeaders
from tillsync.streams.stock.sink_output import KafkaSinkOutput
from tillsync.streams.stock.sink_runner import SinkRunner, flow_of

log = logging.getLogger("tillsync.sitoo_orders")

# Sitoo's payment states (flows.md, A): paid at checkout, or only authorised (captured at the
# handover); anything else (pending, pay in store) is not paid yet
PAYMENT_PAID = 20
PAYMENT_AUTHORISED = 15
PAYMENT_NONE = 0
WINDOW = 100  # commands taken from the stream at once
WINDOW_SECONDS = 0.05


class PickupSitoo(Protocol):
    async def orders_by_externalid(self, externalids: Sequence[str]) -> list[Order]: ...

    async def add_order(self, order: OrderIn) -> int: ...

    async def set_order_state(self, orderid: int, orderstateid: int) -> None: ...

    async def set_order_items(self, orderid: int, items: Sequence[OrderItemIn]) -> None: ...

    async def order_deliveries(self, orderid: int) -> list[OrderDelivery]: ...

    async def warehouse_items_by_sku(
        self, warehouse_id: int, skus: Sequence[str]
    ) -> list[WarehouseItem]: ...


class PickupShopify(Protocol):
    async def pickup(self, fulfilment_order_id: int) -> PickupDetails | None: ...


class PickupOutput(Protocol):
    async def in_sitoo(self, answer: PickupInSitoo) -> None: ...

    async def reserved(self, readings: Sequence[SitooReserved]) -> None: ...

    async def dead_letter(
        self, value: bytes, reason: str, headers: Mapping[str, bytes] | None = None
    ) -> None: ...

    async def exception(self, record: ExceptionRecord) -> None: ...

    async def watch(self, sitoo_order_id: int) -> None:
        """Ask the handover to hear this shipment's parcels before its order closes; returns
        once it is durable."""
        ...


class SitooOrdersSink(CommandWriter[PickupCommand]):
    SINK = metrics.Sink.SITOO_ORDERS

    def __init__(
        self,
        sitoo: PickupSitoo,
        shopify: PickupShopify,
        output: PickupOutput,
        *,
        breakers: Breakers | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(breakers=breakers, dead_letter=output.dead_letter)
        self.sitoo = sitoo
        self.shopify = shopify
        self.output = output
        self.clock = clock

    def decode(self, value: bytes) -> PickupCommand:
        return PickupCommand.model_validate_json(value)

    def key_of(self, command: PickupCommand) -> str:
        # one Sitoo order's export and cancel never run at once: a cancel run beside its export
        # could find nothing to cancel, and the export then leave an open order reserving units
        return command.externalid

    def needs(self, command: PickupCommand) -> Platforms:
        # an export or an update reads the order from Shopify; a cancel only calls Sitoo, and
        # must not wait out Shopify's outage while Sitoo's reservation keeps units from sale
        return SITOO_ONLY if command.action is PickupAction.CANCEL else BOTH

    async def carry_out(self, command: PickupCommand) -> None:
        await self.do(command)

    async def do(self, command: PickupCommand) -> None:
        if command.action is PickupAction.EXPORT:
            await self._export(command)
        elif command.action is PickupAction.UPDATE:
            await self._update(command)
        else:
            await self._cancel(command)

    async def _update(self, command: PickupCommand) -> None:
        """Bring an open Sitoo order's rows up to what Shopify's fulfilment order holds at the
        store now, read at this moment (convergent: rows already so are left alone). One
        delivered from already (a shipment's first parcel) keeps its rows: Sitoo refuses to
        change them. Either way the order flow hears what the rows are now."""
        found = await self.sitoo.orders_by_externalid([command.externalid])
        order = next((o for o in found if o.orderstateid == ORDER_OPEN), None)
        if order is None:
            return  # cancelled or handed over meanwhile: nothing to bring up to date
        body = order_of(command, await self.shopify.pickup(command.fulfilment_order_id))
        if body is None:
            return  # nothing left at the store: the order flow's next read cancels it
        rows = lines_of(order.orderitems)
        wanted = lines_of(body.orderitems)
        if rows != wanted and not await self.sitoo.order_deliveries(order.orderid):
            await self.sitoo.set_order_items(order.orderid, body.orderitems)
            metrics.pickup_orders.labels(action="update", outcome="updated").inc()
            skus = [i.sku for i in order.orderitems if i.sku] + [
                i.sku for i in body.orderitems if i.sku
            ]
            await self._read_reserved(command.warehouse_id, skus)
            rows = wanted
        elif rows != wanted:
            metrics.pickup_orders.labels(action="update", outcome="delivered_from").inc()
        await self.output.in_sitoo(
            PickupInSitoo(
                externalid=command.externalid,
                order_id=command.order_id,
                fulfilment_order_id=command.fulfilment_order_id,
                sitoo_order_id=order.orderid,
                at=self.clock(),
                lines=rows,
            )
        )

    async def _export(self, command: PickupCommand) -> None:
        found = await self.sitoo.orders_by_externalid([command.externalid])
        if found:
            order = found[0]
            if order.orderstateid == ORDER_CANCELLED:
                metrics.pickup_orders.labels(action="export", outcome="cancelled_before").inc()
                return  # its cancel came first in a replay: nothing reserves the units
            metrics.pickup_orders.labels(action="export", outcome="found").inc()
            made, skus = order.orderid, [i.sku for i in order.orderitems if i.sku]
            rows = lines_of(order.orderitems)
            authorised_until = None  # told with the answer of the export that made it
            still_open = order.orderstateid == ORDER_OPEN
        else:
            details = await self.shopify.pickup(command.fulfilment_order_id)
            body = order_of(command, details)
            if body is None:
                metrics.pickup_orders.labels(action="export", outcome="not_open").inc()
                log.info(
                    "store order %s not sent: not open at its store, or nothing to send",
                    command.externalid,
                )
                return
            made = await self.sitoo.add_order(body)
            skus = [i.sku for i in body.orderitems if i.sku]
            rows = lines_of(body.orderitems)
            authorised_until = details.authorisation_expires_at if details else None
            still_open = True
            metrics.pickup_orders.labels(action="export", outcome="made").inc()
        confirmed = self.clock()
        metrics.pickup_to_sitoo.labels(location=str(command.location_id)).observe(
            max(0.0, confirmed - command.at)
        )
        await self._read_reserved(command.warehouse_id, skus)
        if command.method == SHIPPING and still_open:  # a closed one has no parcel to come
            await self.output.watch(made)
        await self.output.in_sitoo(
            PickupInSitoo(
                externalid=command.externalid,
                order_id=command.order_id,
                fulfilment_order_id=command.fulfilment_order_id,
                sitoo_order_id=made,
                at=confirmed,
                authorised_until=authorised_until or 0.0,
                lines=rows,
            )
        )

    async def _cancel(self, command: PickupCommand) -> None:
        """Cancel the order if it is open; either way tell the order's flow what Sitoo's order
        was, which says whether its units left the store through Sitoo."""
        found = await self.sitoo.orders_by_externalid([command.externalid])
        open_ = [o for o in found if o.orderstateid == ORDER_OPEN]
        if open_:
            for order in open_:
                await self.sitoo.set_order_state(order.orderid, ORDER_CANCELLED)
            skus = [i.sku for o in open_ for i in o.orderitems if i.sku]
            await self._read_reserved(command.warehouse_id, skus)
            state = SitooPickupState.CANCELLED
        elif not found:
            state = SitooPickupState.ABSENT
        elif any(o.orderstateid == ORDER_CANCELLED for o in found):
            state = SitooPickupState.CANCELLED  # cancelled before (a replay)
        else:
            state = SitooPickupState.CLOSED  # handed over: its handover tells what it took
        metrics.pickup_orders.labels(action="cancel", outcome=state.value).inc()
        await self.output.in_sitoo(
            PickupInSitoo(
                externalid=command.externalid,
                order_id=command.order_id,
                fulfilment_order_id=command.fulfilment_order_id,
                sitoo_order_id=found[0].orderid if found else 0,
                at=self.clock(),
                state=state,
            )
        )

    async def _read_reserved(self, warehouse_id: int, skus: Sequence[str]) -> None:
        """What Sitoo reserves of these SKUs now, read after its change was confirmed."""
        if skus:
            await self.output.reserved(
                await read_reserved(self.sitoo, warehouse_id, sorted(set(skus)), self.clock)
            )

    async def refused(self, command: PickupCommand, reason: str) -> None:
        metrics.pickup_orders.labels(action=command.action.value, outcome="refused").inc()
        verb = "made" if command.action is PickupAction.EXPORT else "cancelled"
        await self.output.exception(
            ExceptionRecord(
                type="pickup_not_in_sitoo",
                owner=Owner.ENGINEERING,
                key=command.externalid,
                message=(
                    f"Shopify order {command.order_id}: the pickup order {command.externalid} "
                    f"could not be {verb} in Sitoo warehouse {command.warehouse_id}: {reason}"
                ),
                at=self.clock(),
            )
        )
        if command.action is PickupAction.EXPORT:
            # no Sitoo order will hand these units over: the order's flow must not wait for
            # one before it books their fulfilment out of Sitoo
            await self.output.in_sitoo(
                PickupInSitoo(
                    externalid=command.externalid,
                    order_id=command.order_id,
                    fulfilment_order_id=command.fulfilment_order_id,
                    at=self.clock(),
                    state=SitooPickupState.ABSENT,
                )
            )


def lines_of(items: Sequence[OrderItem | OrderItemIn]) -> dict[str, int]:
    """A Sitoo order's rows as units per Shopify fulfilment order line (``web-itemid``)."""
    out: dict[str, int] = {}
    for item in items:
        web = str((item.additionaldata or {}).get("web-itemid") or "")
        if web:
            out[web] = out.get(web, 0) + int(item.quantity)
    return out


def payment_state(financial_status: str) -> int:
    if financial_status in ("PAID", "PARTIALLY_REFUNDED"):
        return PAYMENT_PAID
    if financial_status in ("AUTHORIZED", "PARTIALLY_PAID"):
        return PAYMENT_AUTHORISED
    return PAYMENT_NONE


def _money(amount: Decimal) -> str:
    return str(amount.quantize(Decimal("0.01")))


# our own marker of a ship-from-store order (Sitoo's own is the delivery address; this names
# the Shopify delivery method for the handover, which must not mark a shipment "ready")
DELIVERY_METHOD = "shopify-delivery-method"


def order_of(command: PickupCommand, details: PickupDetails | None) -> OrderIn | None:
    """The Sitoo order of a store fulfilment order (a pickup, or ship-from-store with its
    delivery address), or ``None`` when there is nothing to hand over at that store any more
    (gone, ended, moved, its delivery method changed, no line with a SKU left, a shipment
    without an address)."""
    if (
        details is None
        or details.status in ENDED
        or details.method != command.method
        or details.location_id != command.location_id
    ):
        return None
    shipment = command.method == SHIPPING
    to = details.destination
    if shipment and (to is None or not to.address1 or not to.country_code):
        return None  # nowhere to send it: the order flow's exceptions tell of the order
    items = [
        OrderItemIn(
            productname=line.name,
            sku=line.sku,
            quantity=line.remaining,
            moneyrowprice=_money(line.unit_price * line.remaining),
            additionaldata={"web-itemid": str(line.fulfilment_order_line_id)},
        )
        for line in details.lines
        if line.sku and line.remaining > 0
    ]
    if not items:
        return None
    extra = {
        "weborder": "true",
        "shopify-order-id": str(details.order_id),
        "shopify-fo-id": str(details.fulfilment_order_id),
        DELIVERY_METHOD: command.method,
    }
    if not shipment:
        extra["weborder-bopis"] = "true"
    order = OrderIn(
        ordertypeid=ORDERTYPE_ORDER,
        orderstateid=ORDER_OPEN,
        paymentstateid=payment_state(details.financial_status),
        warehouseid=command.warehouse_id,
        externalid=command.externalid,
        email=details.email,
        customerref=details.order_name,
        currencycode=details.currency or None,
        additionaldata=extra,
        orderitems=items,
    )
    if shipment and to is not None:
        order = order.model_copy(
            update={
                "namefirst": to.first_name or None,
                "namelast": to.last_name or None,
                "phone": to.phone or None,
                "delivery_address": to.address1,
                "delivery_address2": to.address2 or None,
                "delivery_zip": to.zip or None,
                "delivery_city": to.city or None,
                "delivery_state": to.province or None,
                "delivery_countryid": to.country_code,
            }
        )
    return order


class RuntimePickupPlatforms:
    """The worker's clients, looked up at each call (the runtime builds them on first use)."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime

    async def orders_by_externalid(self, externalids: Sequence[str]) -> list[Order]:
        return await self._rt.sitoo.orders_by_externalid(externalids)

    async def add_order(self, order: OrderIn) -> int:
        return await self._rt.sitoo.add_order(order)

    async def set_order_state(self, orderid: int, orderstateid: int) -> None:
        await self._rt.sitoo.set_order_state(orderid, orderstateid)

    async def set_order_items(self, orderid: int, items: Sequence[OrderItemIn]) -> None:
        await self._rt.sitoo.set_order_items(orderid, items)

    async def order_deliveries(self, orderid: int) -> list[OrderDelivery]:
        return await self._rt.sitoo.order_deliveries(orderid)

    async def warehouse_items_by_sku(
        self, warehouse_id: int, skus: Sequence[str]
    ) -> list[WarehouseItem]:
        return await self._rt.sitoo.warehouse_items_by_sku(warehouse_id, list(skus))

    async def pickup(self, fulfilment_order_id: int) -> PickupDetails | None:
        return await self._rt.shopify.pickup(fulfilment_order_id)


class KafkaPickupOutput:
    """``PickupOutput`` on the worker's topics."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.sink = KafkaSinkOutput(ctx, topics.SITOO_ORDER_COMMANDS)
        self.order_webhooks = topics.SHOPIFY_ORDER_WEBHOOKS.name(ctx.settings.app_id)

    async def in_sitoo(self, answer: PickupInSitoo) -> None:
        key = OrderKey(order_id=answer.order_id).encode()
        headers: KafkaHeaders = [(TOPIC_HEADER, PICKUP_IN_SITOO_TOPIC.encode())]
        send = self.ctx.app.producer.send
        await (
            await send(
                self.order_webhooks, key, answer.model_dump_json().encode(), None, None, headers
            )
        )

    async def reserved(self, readings: Sequence[SitooReserved]) -> None:
        await self.ctx.send_all(
            topics.STOCK_EVENTS,
            ((r.sku.encode(), r.model_dump_json().encode()) for r in readings),
            durable=True,
        )

    async def dead_letter(
        self, value: bytes, reason: str, headers: Mapping[str, bytes] | None = None
    ) -> None:
        await self.sink.dead_letter(value, reason, headers=headers)

    async def exception(self, record: ExceptionRecord) -> None:
        await self.sink.exception(record)

    async def watch(self, sitoo_order_id: int) -> None:
        step = PickupStep(
            sitoo_order_id=sitoo_order_id,
            step=PickupStepKind.WATCH,
            event_id=f"watch-{sitoo_order_id}",
        )
        await self.ctx.send_all(
            topics.SITOO_PICKUP_EVENTS,
            [(str(sitoo_order_id).encode(), step.model_dump_json().encode())],
            durable=True,
        )


def register(ctx: Context) -> None:
    rt = ctx.runtime
    assert rt is not None
    platforms = RuntimePickupPlatforms(rt)
    sink = SitooOrdersSink(platforms, platforms, KafkaPickupOutput(ctx))
    runner = SinkRunner(sink, window=WINDOW, within=WINDOW_SECONDS, flowing=flow_of(ctx.app))

    @ctx.app.agent(ctx.topic(topics.SITOO_ORDER_COMMANDS), name="sitoo-orders-sink")
    async def orders_sink(stream: faust.StreamT[bytes]) -> None:
        await runner.run(stream, ready=rt.ready)
