"""Click & collect back from the store: what staff do at the till reaches Shopify once.

Sitoo tells of a pickup order's steps through Events SPI ``order`` events, which carry ids only
(flows.md, A). The ``sitoo-pickup-events`` agent picks out the ones that may be a pickup's step
(``ready-for-pickup``, ``pickup-rejected``, an ``update`` that closed the order) and passes them
on keyed by the Sitoo order (``sitoo.pickup-events``), so that one order's steps run one at a
time and its table entries live in one partition. The ``sitoo-pickups`` agent then reads the
order, and acts only on one tillsync made (externalid ``fo-...`` and the web-order markers):

- ready for pickup: the Shopify fulfilment order is marked prepared for pickup. Shopify emails
  the customer at every call, so it is called at most once per Sitoo order: the table records
  the ask before the call and its answer after it. A worker that finds an ask with no answer
  (it died between the two) does not call again: it raises an exception for a person, who can
  see in Shopify whether the customer was told. The order's flow hears of it too: its "not
  ready in time" deadline ends, its "not collected" one begins (``pickups.overdue``).
- collected (the order closed): what Sitoo delivered, per SKU, goes to the order's flow first
  (``PickupHandedOver``: those units left Sitoo through its own sale, and no Move Out may be
  written for them), then Shopify gets a fulfilment of exactly what Sitoo delivered that it has
  not fulfilled yet (per fulfilment order line, from ``web-itemid``): a repeat, a replay or a
  partial pickup finishing later fulfils only what is still owed. When checkout only
  authorised the card, the handover of the order's last open fulfilment order captures what
  each authorisation still holds (``_capture``).
- declined at the counter (the order closed with units the customer did not take: a return
  before pickup): at a store whose policy is ``on_rejected: cancel``, those units are
  refunded and restocked in Shopify (``restockType: CANCEL``), the cancel path; elsewhere a
  person decides (``pickup_open_in_shopify``).
- pickup rejected: an exception for e-commerce, once; at a store whose policy is
  ``on_rejected: cancel`` the Shopify order is first cancelled, refunded and restocked, when
  the pickup is all that is left of it (otherwise a person decides: refund some lines, move).
- paid in store (checkout took no money): the handover of the order's last fulfilment order
  marks it paid in Shopify once the till took the payment; handed over unpaid, it is raised
  for finance.
- shipped (a ship-from-store order, ``shopify-delivery-method`` SHIPPING, closed once staff
  shipped its parcels): as collected, but one Shopify fulfilment per parcel (Sitoo delivery),
  each with its tracking (``orderdeliveryref``, the carrier from ``pluginname``), and the
  customer notified; a shipment is never marked ready for pickup.

Each step reads the order and takes every step it shows as above, not only the one its event
named: one order's events reach us through different partitions, in any order. Sitoo gives up
on an event it could not deliver after its retries, so the order flow's sweep also asks for a
check of each open pickup in Sitoo (every ``order_sweep_seconds``), which reads it the same way.

The ``sitoo-pickups`` agent only takes the steps into a backlog; a writer task carries them out
(``command_writer.py``), so a platform's outage never holds up the worker's other agents. A
failure of either platform keeps the step and tries it again once that platform's breaker lets
it; a Shopify userError (the fulfilment order no longer open, say) is an exception for
e-commerce, not a retry; a step a platform refuses for itself is dead-lettered and raised for
the integration's owners.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

import faust
from pydantic import BaseModel, ValidationError

from tillsync.connectors.outcomes import Outcome
from tillsync.connectors.shopify.client import ShopifyError, UserErrorInfo
from tillsync.connectors.shopify.payment import Authorisation, OrderPayment
from tillsync.connectors.shopify.pickup import PickupDetails, Tracking
from tillsync.connectors.shopify.returns import SuggestedRefund, SuggestedTransaction
from tillsync.schemas.events import (
    ExceptionRecord,
    Owner,
    PickupHandedOver,
    PickupInSitoo,
    PickupStep,
    PickupStepKind,
    SitooPickupState,
    SitooReserved,
)
from tillsync.schemas.locations import LocationMap
from tillsync.schemas.sitoo import (
    ORDER_CLOSED,
    ORDER_OPEN,
    ORDERLOG_PICKUP_REJECTED,
    ORDERLOG_READY_FOR_PICKUP,
    Order,
    OrderDelivery,
    SitooEvent,
    WarehouseItem,
)
from tillsync.streams import metrics, topics
from tillsync.streams.context import Context
from tillsync.streams.runtime import Runtime
from tillsync.streams.stock.command_writer import (
    BOTH,
    NEITHER,
    Breakers,
    CommandWriter,
    Platforms,
)
from tillsync.streams.stock.order_topics import (
    PICKUP_HANDED_OVER_TOPIC,
    PICKUP_IN_SITOO_TOPIC,
    OrderKey,
)
from tillsync.streams.stock.pickups import PICK_UP, SHIPPING
from tillsync.streams.stock.reservations import read_reserved
from tillsync.streams.stock.shopify_webhooks import TOPIC_HEADER, KafkaHeaders
from tillsync.streams.stock.sink_output import KafkaSinkOutput
from tillsync.streams.stock.sink_runner import SinkRunner, flow_of
from tillsync.streams.stock.sitoo_orders import DELIVERY_METHOD, PAYMENT_PAID
from tillsync.streams.table_marks import TableMarks

log = logging.getLogger("tillsync.pickup_handover")

READY = PickupStepKind.READY
COLLECTED = PickupStepKind.COLLECTED
REJECTED = PickupStepKind.REJECTED
CHECK = PickupStepKind.CHECK
WATCH = PickupStepKind.WATCH
PARCEL = PickupStepKind.PARCEL
ASKED = 1  # the table's value for a ready asked of Shopify, its answer not known yet
ANSWERED = 2
# Shopify's answers that say a mutation did not run: turned away before it (429, THROTTLED,
# 401/403), or a 5xx, after which a GraphQL mutation is not applied. No answer at all (a
# timeout, a connection lost mid-call) leaves it unknown.
# a checkout that only authorised the card: the handover captures (Shopify's display states)
AUTHORISED_ONLY = frozenset({"AUTHORIZED", "PARTIALLY_PAID"})
NOT_APPLIED = frozenset(
    {Outcome.RATE_LIMITED, Outcome.THROTTLED, Outcome.UNAUTHORIZED, Outcome.SERVER_ERROR}
)
WINDOW = 100  # steps taken from the stream at once
WINDOW_SECONDS = 0.05


def step_of(event: SitooEvent, parcels: bool = True) -> PickupStep | None:
    """The pickup step an Events SPI event may be, or None (a till sale is an order born
    closed: an ``add``, never one of these; its deliveries are parcels the handover drops
    unread, as it watches only its shipments). ``parcels``: ship-from-store goes through Sitoo,
    so a delivery may be a shipment's parcel; without it no delivery event is passed on (one
    record per till sale a fifty-thousand-event e2e run could not afford)."""
    if event.order_id is None:
        return None
    if event.event_type == "order-delivery":
        if not parcels:
            return None
        return PickupStep(sitoo_order_id=event.order_id, step=PARCEL, event_id=event.event_id)
    if event.event_type != "order":
        return None
    kind = event.order_event_type
    if kind == "ready-for-pickup":
        step = READY
    elif kind == "pickup-rejected":
        step = REJECTED
    elif kind == "update" and event.order_state_changed == "closed":
        step = COLLECTED
    else:
        return None
    return PickupStep(sitoo_order_id=event.order_id, step=step, event_id=event.event_id)


def step_of_record(value: bytes, parcels: bool = True) -> PickupStep | None:
    """The pickup step of one raw Events SPI record (one event, as Sitoo sent it), if any."""
    try:
        return step_of(SitooEvent.model_validate_json(value), parcels)
    except ValidationError:
        return None  # the ledger's events agent dead-letters what it cannot read


@dataclass(frozen=True, slots=True)
class PickupRef:
    """A Sitoo order tillsync made of a store fulfilment order: a pickup, or ship-from-store."""

    externalid: str
    order_id: int
    fulfilment_order_id: int
    method: str = PICK_UP

    @property
    def shipment(self) -> bool:
        return self.method == SHIPPING


def pickup_ref(order: Order) -> PickupRef | None:
    extra = order.additionaldata
    if not (order.externalid or "").startswith("fo-"):
        return None
    if extra.get("weborder-bopis") == "true":
        method = PICK_UP
    elif extra.get(DELIVERY_METHOD) == SHIPPING:
        method = SHIPPING
    else:
        return None
    try:
        return PickupRef(
            order.externalid or "",
            int(extra["shopify-order-id"]),
            int(extra["shopify-fo-id"]),
            method,
        )
    except (KeyError, ValueError):
        return None


def delivered(
    order: Order, deliveries: Sequence[OrderDelivery]
) -> tuple[Counter[str], Counter[int]]:
    """What Sitoo delivered of the order: units per SKU, and per Shopify fulfilment order line
    (its ``web-itemid``)."""
    by_item = {i.orderitemid: i for i in order.orderitems if i.orderitemid is not None}
    skus: Counter[str] = Counter()
    lines: Counter[int] = Counter()
    for d in deliveries:
        if d.datecancelled:
            continue
        for di in d.orderdeliveryitems:
            item = by_item.get(di.orderitemid)
            if item is None or not item.sku:
                continue
            skus[item.sku] += di.quantity
            web = item.additionaldata.get("web-itemid")
            if web is not None and str(web).isdigit():
                lines[int(web)] += di.quantity
    return skus, lines


def delivered_at_by_sku(order: Order, deliveries: Sequence[OrderDelivery]) -> dict[str, float]:
    """Per SKU, Sitoo's time of its last delivery of it (its ledger's clock)."""
    by_item = {i.orderitemid: i.sku for i in order.orderitems if i.orderitemid is not None}
    out: dict[str, float] = {}
    for d in deliveries:
        if d.datecancelled:
            continue
        for di in d.orderdeliveryitems:
            sku = by_item.get(di.orderitemid)
            if sku:
                out[sku] = max(out.get(sku, 0.0), float(d.datedelivery or 0))
    return out


def shipments_owed(
    details: PickupDetails, order: Order, deliveries: Sequence[OrderDelivery]
) -> list[tuple[dict[int, int], Tracking | None]]:
    """Per parcel Sitoo shipped (its deliveries, oldest first), what of it Shopify has not
    fulfilled yet, with its tracking: one Shopify fulfilment per parcel, so the customer gets
    each tracking number. Convergent as ``still_owed``: each parcel owes what the deliveries up
    to it took less what Shopify fulfilled, so a repeat owes nothing."""
    done = {line.fulfilment_order_line_id: line.total - line.remaining for line in details.lines}
    total = {line.fulfilment_order_line_id: line.total for line in details.lines}
    upto: Counter[int] = Counter()
    out: list[tuple[dict[int, int], Tracking | None]] = []
    live = [d for d in deliveries if not d.datecancelled]
    for d in sorted(live, key=lambda d: (d.datedelivery or 0, d.orderdeliveryid or 0)):
        _, lines = delivered(order, [d])
        upto.update(lines)
        owed: dict[int, int] = {}
        for line, n in upto.items():
            if line not in done:
                continue
            more = min(total[line], n) - done[line]
            if more > 0:
                owed[line] = more
                done[line] += more
        if owed:
            ref = (d.orderdeliveryref or "").strip()
            out.append((owed, Tracking(ref, d.pluginname or "") if ref else None))
    return out


def still_owed(details: PickupDetails, took: Mapping[int, int]) -> dict[int, int]:
    """Per fulfilment order line, what Sitoo delivered that Shopify has not fulfilled yet:
    a handover told twice, or after a partial one, fulfils only the rest."""
    owed: dict[int, int] = {}
    for line in details.lines:
        done = line.total - line.remaining
        n = min(line.remaining, took.get(line.fulfilment_order_line_id, 0) - done)
        if n > 0:
            owed[line.fulfilment_order_line_id] = n
    return owed


class HandoverSitoo(Protocol):
    async def get_order(self, orderid: int) -> Order: ...

    async def order_deliveries(self, orderid: int) -> list[OrderDelivery]: ...

    async def warehouse_items_by_sku(
        self, warehouse_id: int, skus: Sequence[str]
    ) -> list[WarehouseItem]: ...


class HandoverShopify(Protocol):
    async def pickup(self, fulfilment_order_id: int) -> PickupDetails | None: ...

    async def suggested_order_refund(
        self, order_id: int, lines: Mapping[int, int]
    ) -> SuggestedRefund | None: ...

    async def cancel_lines(
        self,
        order_id: int,
        lines: Mapping[int, int],
        location_id: int,
        transactions: Sequence[SuggestedTransaction],
        currency: str,
        *,
        note: str,
        idempotency_key: str,
    ) -> tuple[int | None, list[UserErrorInfo]]: ...

    async def payment(self, order_id: int) -> OrderPayment | None: ...

    async def capture(
        self, order_id: int, authorisation: Authorisation
    ) -> tuple[int | None, list[UserErrorInfo]]: ...

    async def prepared_for_pickup(self, fulfilment_order_id: int) -> list[UserErrorInfo]: ...

    async def fulfil(
        self,
        fulfilment_order_id: int,
        lines: Mapping[int, int],
        *,
        notify: bool = False,
        tracking: Tracking | None = None,
    ) -> tuple[int | None, list[UserErrorInfo]]: ...

    async def mark_as_paid(self, order_id: int) -> list[UserErrorInfo]: ...

    async def cancel_order(
        self, order_id: int, *, reason: str, staff_note: str
    ) -> list[UserErrorInfo]: ...


class HandoverOutput(Protocol):
    async def handed_over(self, record: PickupHandedOver) -> None:
        """To the order's flow; returns once it is durable."""
        ...

    async def ready(self, answer: PickupInSitoo) -> None:
        """To the order's flow: the pickup is ready at the till (its deadlines go on)."""
        ...

    async def reserved(self, readings: Sequence[SitooReserved]) -> None:
        """To the positions: what Sitoo reserves now, once the collected order let go."""
        ...

    async def exception(self, record: ExceptionRecord) -> None: ...

    async def dead_letter(
        self, value: bytes, reason: str, headers: Mapping[str, bytes] | None = None
    ) -> None: ...


class PickupHandover(CommandWriter[PickupStep]):
    SINK = metrics.Sink.PICKUP_STEPS

    def __init__(
        self,
        sitoo: HandoverSitoo,
        shopify: HandoverShopify,
        output: HandoverOutput,
        locations: LocationMap,
        steps: MutableMapping[str, int],  # "ready:<order>" / "rejected:<order>" -> ASKED, ...
        *,
        breakers: Breakers | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(breakers=breakers, dead_letter=output.dead_letter)
        self.sitoo = sitoo
        self.shopify = shopify
        self.output = output
        self.locations = locations
        self.steps = steps
        self.clock = clock

    def decode(self, value: bytes) -> PickupStep:
        return PickupStep.model_validate_json(value)

    def key_of(self, command: PickupStep) -> str:
        # one Sitoo order's steps one at a time; a handover supersedes a ready still waiting
        # (the customer has the order: no email), a check any step (it reads them all). A
        # watch has a key of its own: superseded by a step, it would leave parcels unheard
        if command.step is WATCH:
            return f"{command.sitoo_order_id}:watch"
        return str(command.sitoo_order_id)

    def merged(self, older: PickupStep, newer: PickupStep) -> PickupStep:
        # any step but a parcel reads the order and takes all it shows, the parcel included;
        # a parcel in its place would be dropped unread for a pickup (a lifecycle e2e run: a
        # collect waiting out Shopify's outage, superseded by its own delivery's event, was
        # never handed over)
        if newer.step is PARCEL and older.step is not PARCEL:
            return older
        return newer

    def needs(self, command: PickupStep) -> Platforms:
        # a watch, or the parcel of an order not watched (a till sale's), calls neither
        # platform: never held up by an outage
        if command.step is WATCH or (
            command.step is PARCEL and not self.steps.get(f"watch:{command.sitoo_order_id}")
        ):
            return NEITHER
        return BOTH

    async def carry_out(self, command: PickupStep) -> None:
        await self.do(command)

    async def refused(self, command: PickupStep, reason: str) -> None:
        await self.output.exception(
            ExceptionRecord(
                type="pickup_step_failed",
                owner=Owner.ENGINEERING,
                key=f"sitoo-order-{command.sitoo_order_id}",
                message=(
                    f"the step '{command.step}' of Sitoo order {command.sitoo_order_id} could "
                    f"not be told to Shopify: {reason}"
                ),
                at=self.clock(),
            )
        )

    async def do(self, step: PickupStep) -> None:
        watch = f"watch:{step.sitoo_order_id}"
        if step.step is WATCH:
            self.steps[watch] = ANSWERED
            return
        if step.step is PARCEL and not self.steps.get(watch):
            return  # a till sale's delivery, most likely: not read
        order = await self.sitoo.get_order(step.sitoo_order_id)
        ref = pickup_ref(order)
        if ref is None:
            return  # not a pickup tillsync made
        await self._check(order, ref)

    async def _check(self, order: Order, ref: PickupRef) -> None:
        """Each step the order itself shows now, whichever step's event (or the sweep's check)
        asked: each is still told once (the steps table, and a handover fulfils only what is
        still owed). Not the step the event named: one order's events come through different
        partitions of Sitoo's raw events, so its ready may come after its collect, and a newer
        step of an order supersedes one still waiting (a lifecycle e2e run: a ready that came
        after its collect left the handover untold)."""
        logged = {i.orderlogtypeid for i in order.orderlogitems}
        if ORDERLOG_PICKUP_REJECTED in logged:
            await self._rejected(order, ref)
        if order.orderstateid == ORDER_CLOSED:
            await self._collected(order, ref)
            # only once told in full: a parcel's step replayed after a crash midway must
            # still be read (a lifecycle e2e run: a SIGKILL between the two left a shipment
            # unfulfilled in Shopify)
            self.steps.pop(f"watch:{order.orderid}", None)
        elif ref.shipment and order.orderstateid == ORDER_OPEN:
            await self._collected(order, ref, partial=True)  # its parcels so far
        elif (
            order.orderstateid == ORDER_OPEN
            and ORDERLOG_READY_FOR_PICKUP in logged
            and not ref.shipment  # Shopify refuses "prepared for pickup" for a shipment
        ):
            await self._ready(order, ref)

    async def _ready(self, order: Order, ref: PickupRef) -> None:
        key = f"ready:{order.orderid}"
        state = self.steps.get(key)
        if state == ANSWERED:
            return
        if state == ASKED:
            await self._exception(
                "pickup_ready_unknown",
                Owner.ECOMMERCE,
                ref,
                f"Shopify order {ref.order_id}: whether the customer was told the pickup "
                f"{ref.externalid} is ready is not known (the worker stopped while asking); "
                "check the order in Shopify, it is not asked again",
            )
            self.steps[key] = ANSWERED
            return
        self.steps[key] = ASKED  # before the call: every call emails the customer
        try:
            errors = await self.shopify.prepared_for_pickup(ref.fulfilment_order_id)
        except ShopifyError as exc:
            if exc.reason in NOT_APPLIED:
                # Shopify answered, and its answer says the mutation did not run: asked again
                # once Shopify is back, instead of an exception per pickup of an outage
                del self.steps[key]
            raise
        self.steps[key] = ANSWERED
        await self.output.ready(
            PickupInSitoo(
                externalid=ref.externalid,
                order_id=ref.order_id,
                fulfilment_order_id=ref.fulfilment_order_id,
                sitoo_order_id=order.orderid,
                at=self.clock(),
                state=SitooPickupState.READY,
            )
        )
        if errors:
            await self._exception(
                "pickup_ready_refused",
                Owner.ECOMMERCE,
                ref,
                f"Shopify order {ref.order_id}: the pickup {ref.externalid} is ready in Sitoo, "
                f"Shopify refused to mark it so: {_said(errors)}",
            )

    async def _collected(self, order: Order, ref: PickupRef, *, partial: bool = False) -> None:
        """The order handed over: closed (collected, or shipped), or with ``partial`` a
        shipment still open whose parcels so far are told (nothing, if none has left)."""
        loc = self.locations.by_warehouse(order.warehouseid or 0)
        if loc is None:
            return
        deliveries = await self.sitoo.order_deliveries(order.orderid)
        skus, lines = delivered(order, deliveries)
        if partial and not skus:
            return  # nothing shipped yet
        # Sitoo's time of the sale, by its own clock as its ledger stamps it: the order's
        # units stay held until a position's ledger is that new (per SKU: a parcel of one
        # SKU may leave long after another's)
        by_sku = delivered_at_by_sku(order, deliveries)
        delivered_at = max(by_sku.values(), default=0.0)
        # told even when nothing was delivered: the order's flow waits for Sitoo's word on
        # this pickup before it writes a Move Out at that store
        await self.output.handed_over(
            PickupHandedOver(
                externalid=ref.externalid,
                order_id=ref.order_id,
                fulfilment_order_id=ref.fulfilment_order_id,
                location_id=loc.shopify_location_id,
                took=dict(skus),
                at=self.clock(),
                delivered_at=delivered_at,
                delivered_at_by_sku=by_sku,
                partial=partial,
            )
        )
        # what the closed order let go, read here and not only by the reservations agent,
        # whose read of a collected order waits in memory and is lost if the worker dies
        # first: a position would keep the units reserved until the next full refresh. Sent
        # at once: the units stay held for the order (Shopify still commits them) until the
        # handover above reaches its flow, so the release offers nothing before the sale
        wanted = sorted({i.sku for i in order.orderitems if i.sku})
        if wanted:
            await self.output.reserved(
                await read_reserved(self.sitoo, loc.sitoo_warehouse_id, wanted, self.clock)
            )
        if not skus:
            return  # closed with nothing delivered: nothing for Shopify to fulfil
        details = await self.shopify.pickup(ref.fulfilment_order_id)
        if details is None:
            return
        owed: dict[int, int] = {}
        if ref.shipment:
            # one fulfilment per parcel with its tracking, and the customer is told (Shopify's
            # shipping confirmation); a pickup's customer was told at the till
            parcels = shipments_owed(details, order, deliveries)
        else:
            owed = still_owed(details, lines)
            parcels = [(owed, None)] if owed else []
        for owed, tracking in parcels:  # none: told before, Shopify has it all
            _, errors = await self.shopify.fulfil(
                ref.fulfilment_order_id, owed, notify=ref.shipment, tracking=tracking
            )
            if errors:
                done = "shipped from" if ref.shipment else "collected in"
                await self._exception(
                    "pickup_fulfilment_refused",
                    Owner.ECOMMERCE,
                    ref,
                    f"Shopify order {ref.order_id}: the order {ref.externalid} was {done} "
                    f"the store, Shopify refused its fulfilment: {_said(errors)}",
                )
                return
        if parcels and delivered_at:
            metrics.pickup_step.labels(
                step=metrics.PickupStepName.FULFILLED, location=str(loc.shopify_location_id)
            ).observe(max(0.0, self.clock() - delivered_at))
        if partial:
            return  # paid for once the order closes
        if not ref.shipment:
            await self._declined(order, ref, details, owed)
        if details.financial_status in AUTHORISED_ONLY:
            await self._capture(ref)
        elif details.financial_status == "PENDING":
            await self._paid_at_till(order, ref)

    async def _declined(
        self, order: Order, ref: PickupRef, details: PickupDetails, owed: Mapping[int, int]
    ) -> None:
        """Units the customer declined at the counter: the pickup closed in Sitoo without them
        (a return before pickup, flows.md C). At a store whose policy is ``on_rejected:
        cancel`` they take the cancel path in Shopify: refunded as Shopify suggests (nothing,
        when the customer pays in store) and put back from committed into available at the
        store (``restockType: CANCEL``), which closes the fulfilment order. Elsewhere the order
        flow raises ``pickup_open_in_shopify`` for a person, as it does for an order only
        authorised (capturing less than the authorisation is that person's call). The
        idempotency key makes a repeat one refund (tested); the units are also read from what
        Shopify has open now, a second guard for a repeat after the key has expired (not
        tested apart: the simulator keeps its keys)."""
        left: Counter[int] = Counter()
        for line in details.lines:
            n = line.remaining - owed.get(line.fulfilment_order_line_id, 0)
            if n > 0:
                left[line.line_item_id] += n
        loc = self.locations.by_warehouse(order.warehouseid or 0)
        if (
            not left
            or loc is None
            or loc.pickup.on_rejected != "cancel"
            or details.financial_status in AUTHORISED_ONLY
        ):
            return
        transactions: Sequence[SuggestedTransaction] = ()
        if details.financial_status != "PENDING":
            suggested = await self.shopify.suggested_order_refund(ref.order_id, left)
            if suggested is None:
                return  # the order is gone
            transactions = suggested.transactions
        _, errors = await self.shopify.cancel_lines(
            ref.order_id,
            dict(left),
            loc.shopify_location_id,
            transactions,
            details.currency,
            note=f"declined at the counter of {loc.name} (tillsync)",
            idempotency_key=f"declined-{order.orderid}",  # one closed Sitoo order, one cancel
        )
        if not errors:
            metrics.pickup_orders.labels(action="cancel_declined", outcome="cancelled").inc()
            return
        metrics.pickup_orders.labels(action="cancel_declined", outcome="refused").inc()
        key = f"declined-refused:{order.orderid}"
        if self.steps.get(key):
            return
        self.steps[key] = ANSWERED
        await self._exception(
            "pickup_decline_refused",
            Owner.ECOMMERCE,
            ref,
            f"Shopify order {ref.order_id}: the customer declined {sum(left.values())} units of "
            f"the pickup {ref.externalid} at the counter; Shopify refused to cancel and refund "
            f"them: {_said(errors)}; refund them in Shopify by hand",
        )

    async def _paid_at_till(self, order: Order, ref: PickupRef) -> None:
        """Pay in store (flows.md, A): checkout took no money and the till took it at the
        handover, so Shopify's order is marked paid once the last of its fulfilment orders is
        handed over (as a capture is). Convergent: a paid order is not marked again. A pickup
        handed over with no payment in Sitoo is raised once for finance."""
        paid = order.paymentstateid == PAYMENT_PAID or any(
            p.moneyamount > 0 for p in order.payments
        )
        if not paid:
            key = f"unpaid:{order.orderid}"
            if not self.steps.get(key):
                self.steps[key] = ANSWERED
                await self._exception(
                    "pickup_unpaid",
                    Owner.FINANCE,
                    ref,
                    f"Shopify order {ref.order_id}: the pickup {ref.externalid} was paid in "
                    "store, and handed over at the till with no payment in Sitoo; Shopify's "
                    "order is still unpaid: take the payment, or mark it paid in Shopify",
                )
            return
        payment = await self.shopify.payment(ref.order_id)
        if payment is None or not payment.unpaid or payment.open_fulfilment_orders:
            return  # paid, or another fulfilment order's handover is the last one
        errors = await self.shopify.mark_as_paid(ref.order_id)
        if not errors:
            metrics.pickup_orders.labels(action="mark_paid", outcome="paid").inc()
            return
        again = await self.shopify.payment(ref.order_id)
        if again is not None and not again.unpaid:
            return  # marked meanwhile: a repeat, or another handover of the order
        metrics.pickup_orders.labels(action="mark_paid", outcome="refused").inc()
        key = f"mark-paid-refused:{ref.order_id}"
        if self.steps.get(key):
            return
        self.steps[key] = ANSWERED
        await self._exception(
            "pickup_mark_paid_refused",
            Owner.FINANCE,
            ref,
            f"Shopify order {ref.order_id}: the pickup {ref.externalid} was paid at the till, "
            f"Shopify refused to mark the order paid: {_said(errors)}; mark it paid in Shopify",
        )

    async def _capture(self, ref: PickupRef) -> None:
        """Capture what the order's card authorisations still hold, once its last fulfilment
        order is handed over (flows.md, A: checkout only authorised, the handover captures).
        A capture Shopify refuses while the authorisation still holds something is raised
        once for finance: the money is at risk when the authorisation expires."""
        payment = await self.shopify.payment(ref.order_id)
        if payment is None:
            return
        for auth in payment.to_capture():
            _, errors = await self.shopify.capture(ref.order_id, auth)
            if not errors:
                metrics.pickup_orders.labels(action="capture", outcome="captured").inc()
                continue
            again = await self.shopify.payment(ref.order_id)
            left = next(
                (
                    a.left
                    for a in (again.authorisations if again is not None else ())
                    if a.transaction_id == auth.transaction_id
                ),
                Decimal("0.00"),
            )
            if left == 0:
                continue  # captured meanwhile: another handover of the order, or a repeat
            metrics.pickup_orders.labels(action="capture", outcome="refused").inc()
            key = f"capture-refused:{ref.order_id}:{auth.transaction_id}"
            if self.steps.get(key):
                continue
            self.steps[key] = ANSWERED
            await self._exception(
                "pickup_capture_refused",
                Owner.FINANCE,
                ref,
                f"Shopify order {ref.order_id}: the pickup {ref.externalid} was handed over, "
                f"Shopify refused to capture the {left} {auth.currency} its authorisation "
                f"still holds: {_said(errors)}; capture it in Shopify before the "
                f"authorisation expires ({auth.expires_at or 'no date given'})",
            )

    async def _rejected(self, order: Order, ref: PickupRef) -> None:
        """Raised once for e-commerce; with the store's ``on_rejected: cancel`` the Shopify
        order is first cancelled, refunded and restocked when the pickup is all that is left
        of it. The cancel comes before the step is recorded: a worker that dies between the
        two reads the order again and finds it cancelled (Shopify refuses a second cancel)."""
        key = f"rejected:{order.orderid}"
        if self.steps.get(key):
            return
        reason = next(
            (
                i.strvalue
                for i in reversed(order.orderlogitems)
                if i.orderlogtypeid == ORDERLOG_PICKUP_REJECTED
            ),
            None,
        )
        loc = self.locations.by_warehouse(order.warehouseid or 0)
        if loc is not None and loc.pickup.on_rejected == "cancel":
            outcome = await self._cancel_rejected(ref, loc.name, reason)
        else:
            outcome = "cancel and refund it, or move it, in Shopify"
        self.steps[key] = ANSWERED
        await self._exception(
            "pickup_rejected",
            Owner.ECOMMERCE,
            ref,
            f"Shopify order {ref.order_id}: the store rejected the pickup {ref.externalid}"
            f"{': ' + reason if reason else ''}; {outcome}",
        )

    async def _cancel_rejected(self, ref: PickupRef, store: str, reason: str | None) -> str:
        """Cancel the Shopify order of a rejected pickup if the pickup is all that is left of
        it; what was done, for the exception's message."""
        payment = await self.shopify.payment(ref.order_id)
        if payment is None:
            return "the order is no longer in Shopify"
        if payment.cancelled:
            return "the order is cancelled in Shopify"
        if not payment.only_open(ref.fulfilment_order_id):
            # a partial refund of only this pickup's lines is a person's call for now
            return (
                "the order has other parts fulfilled or open, so it was not cancelled: "
                "refund this pickup's lines, or move it, in Shopify"
            )
        errors = await self.shopify.cancel_order(
            ref.order_id,
            reason="OTHER",
            staff_note=f"pickup rejected at {store}{': ' + reason if reason else ''} (tillsync)",
        )
        if errors:
            again = await self.shopify.payment(ref.order_id)
            if again is None or not again.cancelled:
                metrics.pickup_orders.labels(action="cancel_rejected", outcome="refused").inc()
                return f"Shopify refused to cancel the order: {_said(errors)}; cancel it by hand"
        metrics.pickup_orders.labels(action="cancel_rejected", outcome="cancelled").inc()
        return "the order was cancelled, refunded and restocked in Shopify (the store's policy)"

    async def _exception(self, kind: str, owner: Owner, ref: PickupRef, message: str) -> None:
        await self.output.exception(
            ExceptionRecord(
                type=kind, owner=owner, key=ref.externalid, message=message, at=self.clock()
            )
        )


def _said(errors: Sequence[UserErrorInfo]) -> str:
    return "; ".join(e.message for e in errors)


class RuntimeHandoverPlatforms:
    """The worker's clients, looked up at each call."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime

    async def get_order(self, orderid: int) -> Order:
        return await self._rt.sitoo.get_order(orderid)

    async def order_deliveries(self, orderid: int) -> list[OrderDelivery]:
        return await self._rt.sitoo.order_deliveries(orderid)

    async def warehouse_items_by_sku(
        self, warehouse_id: int, skus: Sequence[str]
    ) -> list[WarehouseItem]:
        return await self._rt.sitoo.warehouse_items_by_sku(warehouse_id, list(skus))

    async def pickup(self, fulfilment_order_id: int) -> PickupDetails | None:
        return await self._rt.shopify.pickup(fulfilment_order_id)

    async def suggested_order_refund(
        self, order_id: int, lines: Mapping[int, int]
    ) -> SuggestedRefund | None:
        return await self._rt.shopify.suggested_order_refund(order_id, lines)

    async def cancel_lines(
        self,
        order_id: int,
        lines: Mapping[int, int],
        location_id: int,
        transactions: Sequence[SuggestedTransaction],
        currency: str,
        *,
        note: str,
        idempotency_key: str,
    ) -> tuple[int | None, list[UserErrorInfo]]:
        return await self._rt.shopify.cancel_lines(
            order_id,
            lines,
            location_id,
            transactions,
            currency,
            note=note,
            idempotency_key=idempotency_key,
        )

    async def prepared_for_pickup(self, fulfilment_order_id: int) -> list[UserErrorInfo]:
        return await self._rt.shopify.prepared_for_pickup(fulfilment_order_id)

    async def fulfil(
        self,
        fulfilment_order_id: int,
        lines: Mapping[int, int],
        *,
        notify: bool = False,
        tracking: Tracking | None = None,
    ) -> tuple[int | None, list[UserErrorInfo]]:
        return await self._rt.shopify.fulfil(
            fulfilment_order_id, lines, notify=notify, tracking=tracking
        )

    async def payment(self, order_id: int) -> OrderPayment | None:
        return await self._rt.shopify.payment(order_id)

    async def mark_as_paid(self, order_id: int) -> list[UserErrorInfo]:
        return await self._rt.shopify.mark_as_paid(order_id)

    async def cancel_order(
        self, order_id: int, *, reason: str, staff_note: str
    ) -> list[UserErrorInfo]:
        return await self._rt.shopify.cancel_order(order_id, reason=reason, staff_note=staff_note)

    async def capture(
        self, order_id: int, authorisation: Authorisation
    ) -> tuple[int | None, list[UserErrorInfo]]:
        return await self._rt.shopify.capture(order_id, authorisation)


class KafkaHandoverOutput:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.sink = KafkaSinkOutput(ctx, topics.SITOO_PICKUP_EVENTS)
        self.order_webhooks = topics.SHOPIFY_ORDER_WEBHOOKS.name(ctx.settings.app_id)

    async def handed_over(self, record: PickupHandedOver) -> None:
        await self._to_order(record.order_id, PICKUP_HANDED_OVER_TOPIC, record)

    async def ready(self, answer: PickupInSitoo) -> None:
        await self._to_order(answer.order_id, PICKUP_IN_SITOO_TOPIC, answer)

    async def reserved(self, readings: Sequence[SitooReserved]) -> None:
        await self.ctx.send_all(
            topics.STOCK_EVENTS,
            ((r.sku.encode(), r.model_dump_json().encode()) for r in readings),
            durable=True,
        )

    async def _to_order(self, order_id: int, topic: str, body: BaseModel) -> None:
        key = OrderKey(order_id=order_id).encode()
        headers: KafkaHeaders = [(TOPIC_HEADER, topic.encode())]
        send = self.ctx.app.producer.send
        value = body.model_dump_json().encode()
        await (await send(self.order_webhooks, key, value, None, None, headers))

    async def exception(self, record: ExceptionRecord) -> None:
        await self.sink.exception(record)

    async def dead_letter(
        self, value: bytes, reason: str, headers: Mapping[str, bytes] | None = None
    ) -> None:
        await self.sink.dead_letter(value, reason, headers=headers)


def register(ctx: Context) -> None:
    rt = ctx.runtime
    assert rt is not None
    steps_out = ctx.topic(topics.SITOO_PICKUP_EVENTS)
    table = ctx.app.Table(
        "pickup-steps",
        default=None,
        schema=faust.Schema(key_type=str, key_serializer="json", value_serializer="json"),
        help="a pickup's steps told to Shopify: ready asked and answered, rejections raised",
    )
    platforms = RuntimeHandoverPlatforms(rt)
    handover = PickupHandover(
        platforms, platforms, KafkaHandoverOutput(ctx), rt.locations, TableMarks(table, int)
    )

    parcels = ctx.settings.ship_from_store_to_sitoo

    @ctx.app.agent(ctx.topic(topics.RAW_SITOO_EVENTS), name="sitoo-pickup-events")
    async def pick_out(stream: faust.StreamT[bytes]) -> None:
        # quick: each Events SPI event in, its pickup step out, keyed by Sitoo order (Faust
        # flushes the producer before it commits the offsets of the events taken)
        async for values in stream.take(WINDOW, within=WINDOW_SECONDS):
            steps = [s for s in (step_of_record(v, parcels) for v in values) if s is not None]
            await ctx.send_all(
                topics.SITOO_PICKUP_EVENTS,
                ((str(s.sitoo_order_id).encode(), s.model_dump_json().encode()) for s in steps),
            )

    runner = SinkRunner(handover, window=WINDOW, within=WINDOW_SECONDS, flowing=flow_of(ctx.app))

    @ctx.app.agent(steps_out, name="sitoo-pickups")
    async def pickups(stream: faust.StreamT[bytes]) -> None:
        await runner.run(stream, ready=rt.ready)
