"""Online orders: what each holds at the store locations, and the Move Outs of its fulfilments.

An online order placed in Shopify takes units out of `available` at the location its
fulfilment orders are assigned to; Sitoo knows nothing of them until a store fulfilment's Move
Out is booked. On every webhook that may change that (``order_topics``) and on a periodic
sweep of orders still holding units, ``OrderHolds`` reads the order's whole fulfilment state
again (every fulfilment order with its lines, every fulfilment with its status and location; a
fulfilment's lines, fixed when Shopify makes it, are learnt once from its webhook or a read and
kept in the order's track) and sends, per (SKU, location), the ``HeldUnits`` derived from it
(``tillsync.streams.stock.held_units``): never a delta, and to every location the order held
at before too, so a moved, edited, refunded or cancelled order lets go there. Each successful
fulfilment from a mapped store becomes one Move Out in Sitoo (once: its externalid names order
and fulfilment; the Sitoo sink writes an externalid once), and a fulfilment cancelled after its
Move Out was sent becomes one reversing Move In.

A read that fails (an outage, a 401, a GraphQL error) is tried again in place, then deferred
to the sweep with backoff, without end: nothing is dropped, and nothing waits behind it. An
order Shopify says does not exist is the only input that can never succeed: its webhook goes
to the dead letters with its headers. In the worker the reads run beside the agent
(``tillsync.streams.stock.order_reads``), so a read and a webhook's Move Out of the same order
may overlap: the track keeps the union of the Move Outs both sent.

Each derivation is versioned ``max(previous + 1, now in ms)``: one order's reads run one at a
time (its records share a partition and the sweep goes through the same topic), so a later read
sees a state at least as new; the previous version from the order's table entry keeps the
versions rising when the clock does not (a restart on another worker), and the clock keeps
them rising when the table entry is older than a record already sent (a crash between the two).
``updated_at`` is not used: Shopify stamps it to the second, and a fulfilment order's move
need not touch the order's.

``OrderHolds`` holds the decisions and needs no Kafka; ``OrderFlow`` carries them to Faust.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, cast

import faust
import httpx
from pydantic import BaseModel, Field, ValidationError

from tillsync.connectors.shopify.client import ShopifyError
from tillsync.connectors.shopify.fulfilment_state import FulfilmentLine, OrderFulfilmentState
from tillsync.schemas.events import (
    ExceptionRecord,
    HeldUnits,
    OrderPlaced,
    PickupCommand,
    PickupHandedOver,
    PickupInSitoo,
    PickupStep,
    PickupStepKind,
    RefundCredit,
    SitooPickupState,
)
from tillsync.schemas.locations import LocationMap
from tillsync.schemas.sitoo import WarehouseTransactionIn
from tillsync.streams import metrics, topics
from tillsync.streams.context import Context
from tillsync.streams.deadletter import dead_letter, error_reason
from tillsync.streams.partitioned import in_partition_of
from tillsync.streams.runtime import Runtime
from tillsync.streams.stock import pickups
from tillsync.streams.stock.held_units import (
    TAKING,
    HeldAt,
    derive,
    fulfilment_in_webhook,
    held_key,
    move_outs,
    reversals,
)
from tillsync.streams.stock.order_topics import (
    DERIVE_TOPIC,
    FULFILMENT_TOPICS,
    PICKUP_IN_SITOO_TOPIC,
    PICKUP_TOPICS,
    REFUNDS_CREATE,
    OrderKey,
    changes_holds,
)
from tillsync.streams.stock.pickups import PickupTrack
from tillsync.streams.stock.refund_restocks import (
    made_since,
    refund_credits,
    refund_move_ins,
    refunds_told,
)
from tillsync.streams.stock.shopify_webhooks import TOPIC_HEADER, KafkaHeaders, header_in

log = logging.getLogger("tillsync.orders")

T = TypeVar("T")

# How often the sweep looks for orders to read again (a deferred read comes back at its own
# backoff, so this is short), and how long an order still holding units goes unread before it
# is read again: what heals a webhook Shopify never delivered (`order_sweep_seconds`).
SWEEP_TICK = 2.0
SWEEP_INTERVAL = 300.0
# the orders of a batch are read side by side: one read at a time would hold the held units
# of a burst of orders behind a queue of round trips
PARALLEL_READS = 8
# backoff between tries of a failed read: doubling from the first, at most the cap, jittered
RETRY_FIRST = 1.0
RETRY_CAP = 60.0
# An order's read is tried this many times when it is asked for, each given at most
# READ_DEADLINE seconds (`order_read_timeout`; the client's own retries of a Shopify outage last
# 30-60 s); then it is deferred to the sweep, with backoff, so that a reader is not held for as
# long as Shopify is down.
INLINE_TRIES = 2
READ_DEADLINE = 10.0
# Reads deferred this many times in a row, none answered between, are Shopify being down: the
# first read answered after them makes every deferred read due at once, instead of each
# waiting out a backoff of up to RETRY_CAP after Shopify is back (a failure of one order's own
# comes between answered reads, and keeps its backoff)
OUTAGE_READS = 2

# the failures worth trying again: everything Shopify or the network can answer. A bug in our
# own code raises something else and stops the agent loudly instead of looping.
TRANSIENT = (ShopifyError, httpx.HTTPError, asyncio.TimeoutError, OSError)


class _Deferred(Exception):
    """A read failed as often as it may in its batch: the sweep tries it again later."""


class LookupDeferred(Exception):
    """A fulfilment order's order could not be looked up now: its records are to be read again
    after ``delay`` seconds (they name no order, so no order's track can wait for them)."""

    def __init__(self, fulfilment_order_id: int, delay: float) -> None:
        super().__init__(f"fulfilment order {fulfilment_order_id}: looked up again in {delay:.1f}s")
        self.delay = delay


class OrderTrack(BaseModel):
    """What the orders agent remembers of one order (its table entry): enough to let go at a
    location the order no longer holds at, to send each Move Out once, and to know whether the
    sweep must read it again."""

    version: int = -1  # of the newest derivation sent
    held_at: list[tuple[str, int]] = Field(default_factory=list)  # (SKU, location) held last
    moved_out: list[int] = Field(default_factory=list)  # fulfilments whose Move Out was sent
    reversed: list[int] = Field(default_factory=list)  # ... and whose reversal was sent
    # the Move Ins and credit orders of refunds sent to Sitoo, by externalid (``refund_restocks``)
    refunds_in: list[str] = Field(default_factory=list)
    # when this worker first knew the order (0: a track stored before it was kept): an order
    # webhook carries every refund the order ever had, and only those made since are tillsync's
    # to book in Sitoo
    since: float = 0.0
    # fulfilment id -> its lines as (SKU, units): fixed when Shopify makes a fulfilment, so
    # learnt once (from its webhook or a read) and not read again; its status is, every time
    lines: dict[str, list[tuple[str, int]]] = Field(default_factory=dict)
    # the order's Sitoo pickup orders by externalid (``tillsync.streams.stock.pickups``)
    pickups: dict[str, PickupTrack] = Field(default_factory=dict)
    unmapped_pickups: list[int] = Field(default_factory=list)  # raised, not cleared
    skuless_pickups: list[int] = Field(default_factory=list)  # raised, not cleared
    holding: bool = False  # units still open (or fulfilments pending): the sweep reads it
    read_at: float = 0.0
    # reads that failed in a row, and when the sweep tries the next: a deferred read is never
    # dropped, only tried later
    failed_reads: int = 0
    retry_at: float = 0.0
    deferred_at: float = 0.0


class StateReader(Protocol):
    """What the orders agent asks of Shopify."""

    async def order_fulfilment_state(
        self, order_id: int, known: Mapping[int, tuple[FulfilmentLine, ...]] | None = None
    ) -> OrderFulfilmentState | None: ...

    async def order_of_fulfilment_order(self, fulfilment_order_id: int) -> int | None: ...


class OrderOutput(Protocol):
    """Where the orders agent's results go."""

    async def held(self, records: Sequence[HeldUnits | OrderPlaced]) -> None: ...

    async def transaction(self, tx: WarehouseTransactionIn) -> None:
        """A Move Out or reversal for the Sitoo sink; returns once it is durable."""
        ...

    async def derive_again(self, order_id: int) -> None: ...

    async def credit(self, credit: RefundCredit) -> None:
        """A refund's credit order for the refund credits writer; returns once it is durable."""
        ...

    async def pickup(self, command: PickupCommand) -> None:
        """A command for the Sitoo orders sink; returns once it is durable."""
        ...

    async def check_pickup(self, sitoo_order_id: int) -> None:
        """Ask the pickup handover to read this Sitoo order for steps whose events were lost."""
        ...

    async def exception(self, record: ExceptionRecord) -> None:
        """Hand a pickup that is late at its store to the team that owns it (or clear it)."""
        ...

    async def dead_letter(self, record: OrderRecord, reason: str) -> None: ...


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """One record of the order webhooks topic."""

    topic: str  # the webhook's topic header, or DERIVE_TOPIC
    key: bytes | None
    value: bytes
    headers: KafkaHeaders = field(default_factory=list)
    # the Faust event it came in, whose partition its order's table entry is in; None when
    # the table is a plain mapping (no Faust)
    event: faust.EventT | None = None


def _partition_of(record: OrderRecord) -> AbstractContextManager[None]:
    return in_partition_of(record.event) if record.event is not None else nullcontext()


@dataclass(slots=True)
class Backoff:
    """Waits between tries of a read that keeps failing."""

    first: float = RETRY_FIRST
    cap: float = RETRY_CAP
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        full = min(self.cap, self.first * 2 ** min(attempt, 30))
        return full * (0.5 + self.rng.random() / 2)


def _encode_track(track: OrderTrack) -> bytes:
    return track.model_dump_json().encode()


class OrderHolds:
    """The orders agent's logic: one record in, the order read again, its held units, Move
    Outs and reversals out. Its table is any mapping (order id -> ``OrderTrack`` JSON)."""

    def __init__(
        self,
        tracks: MutableMapping[str, bytes],
        locations: LocationMap,
        shopify: StateReader,
        output: OrderOutput,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        backoff: Backoff | None = None,
        sweep_interval: float = SWEEP_INTERVAL,
        read_deadline: float = READ_DEADLINE,
        parallel: int = PARALLEL_READS,
        methods: frozenset[str] = pickups.PICKUPS_ONLY,
        in_sitoo: Callable[[str], bool] | None = None,
        refunds_to_sitoo: bool = False,
    ) -> None:
        """``in_sitoo``: whether Sitoo has a product of a SKU (a store order's line it has none
        for is raised); None leaves SKUs unchecked."""
        self.tracks = tracks
        self.locations = locations
        self.shopify = shopify
        self.output = output
        self._clock = clock
        self._sleep = sleep
        self.backoff = backoff if backoff is not None else Backoff()
        self.sweep_interval = sweep_interval
        self.read_deadline = read_deadline
        self.parallel = parallel
        # the delivery methods whose fulfilment orders at a store are Sitoo orders
        # (``Settings.sitoo_order_methods``): one left out holds its units and leaves Sitoo
        # through a Move Out, as any other store fulfilment does
        self.methods = methods
        self.in_sitoo = in_sitoo
        self.refunds_to_sitoo = refunds_to_sitoo
        self._asked: dict[int, float] = {}  # order id -> when the sweep last asked for it
        # fulfilment order id -> lookups failed in a row (in memory: a restart starts again)
        self._lookups_failed: dict[int, int] = {}
        self._deferred_in_a_row = 0  # reads and lookups deferred with none answered between
        # when Shopify answered again after an outage: what was deferred before is due now
        self.answered_again_at = 0.0

    async def take(self, record: OrderRecord) -> None:
        await self.take_batch([record])

    async def take_batch(self, records: Sequence[OrderRecord]) -> None:
        """A batch of records, in process: what the fulfilment webhooks say goes to Sitoo
        first, then each order named is read once, different orders side by side (at most
        ``parallel`` at a time). The worker's orders agent does the same through a backlog
        (``tillsync.streams.stock.order_reads``), so that no read holds the next batch up."""
        groups = by_order(records)
        for group in groups.values():
            await self.move_out_from_webhooks(group)
        gate = asyncio.Semaphore(self.parallel)

        async def one(group: list[OrderRecord]) -> None:
            while True:
                async with gate:
                    try:
                        await self.read(group)
                        return
                    except LookupDeferred as later:
                        delay = later.delay
                await self._sleep(delay)

        await asyncio.gather(*(one(group) for group in groups.values()))

    async def move_out_from_webhooks(self, group: Sequence[OrderRecord]) -> None:
        """The Move Outs (and reversals) the fulfilment webhooks of one order's records tell
        of, sent before the order is read: a Shopify outage must not hold Sitoo's stock up."""
        key = OrderKey.decode(group[-1].key)
        if key is not None and key.order_id is not None:
            with _partition_of(group[-1]):
                await self._move_out_from_webhooks(key.order_id, group)

    async def read(self, group: list[OrderRecord]) -> None:
        """One order's records (or one fulfilment order's): the order read and derived once.
        Raises ``LookupDeferred`` when a fulfilment order's order cannot be looked up now."""
        with _partition_of(group[-1]):
            try:
                await self._take_key(group)
            except (ValidationError, KeyError, TypeError, ValueError) as exc:
                # an answer or a table entry of a shape no read again will change: kept, with
                # the reason, for a fix to replay; the other orders go on
                log.exception("order records %s not handled", group[-1].key)
                for r in group:
                    await self.output.dead_letter(r, f"{r.topic} not handled: {error_reason(exc)}")

    async def _take_key(self, records: list[OrderRecord]) -> None:
        record = records[-1]
        key = OrderKey.decode(record.key)
        if key is None:
            for r in records:
                await self.output.dead_letter(r, f"{r.topic}: no order id in its key")
            return
        if key.order_id is None:
            assert key.fulfilment_order_id is not None
            fo = key.fulfilment_order_id
            try:
                order_id = await self._retrying(
                    f"fulfilment order {fo}",
                    lambda: self.shopify.order_of_fulfilment_order(fo),
                    tries=INLINE_TRIES,
                )
            except _Deferred:
                failed = self._lookups_failed[fo] = self._lookups_failed.get(fo, 0) + 1
                self._deferred_in_a_row += 1
                raise LookupDeferred(fo, self.backoff.delay(failed)) from None
            self._lookups_failed.pop(fo, None)
            self._answered()
            if order_id is None:
                for r in records:
                    await self.output.dead_letter(r, f"{r.topic}: no such fulfilment order")
            else:
                # read under the order's own key, in its partition, one read at a time
                await self.output.derive_again(order_id)
            return
        self._take_pickup_answers(key.order_id, records)
        await self.derive(key.order_id, records)

    def _take_pickup_answers(self, order_id: int, records: Sequence[OrderRecord]) -> None:
        """What Sitoo said of the order's pickups: its order exists, and reserves the units from
        then on (the Sitoo orders sink); or it handed them over, and its own sale took them
        (the pickup handover). Kept in the track before anything else of the order is done."""
        pickup_records = [r for r in records if r.topic in PICKUP_TOPICS]
        if not pickup_records:
            return
        track = self._track(order_id)
        for r in pickup_records:
            if r.topic == PICKUP_IN_SITOO_TOPIC:
                answer = PickupInSitoo.model_validate_json(r.value)
                known = track.pickups.get(answer.externalid)
                if known is None:
                    continue  # asked for before a crash lost its track
                if answer.state is SitooPickupState.OPEN:
                    if not known.in_sitoo_at:
                        known = known.model_copy(
                            update={
                                "in_sitoo_at": answer.at,
                                "sitoo_order_id": answer.sitoo_order_id,
                            }
                        )
                    if answer.authorised_until and not known.authorised_until:
                        known = known.model_copy(
                            update={"authorised_until": answer.authorised_until}
                        )
                    if answer.lines:  # the rows Sitoo holds now (an export's, an update's)
                        known = known.model_copy(update={"lines": dict(answer.lines)})
                elif answer.state is SitooPickupState.READY:
                    if not known.ready_at and known.in_sitoo_at:
                        metrics.pickup_step.labels(
                            step=metrics.PickupStepName.READY, location=str(known.location_id)
                        ).observe(max(0.0, answer.at - known.in_sitoo_at))
                    known = known.model_copy(update={"ready_at": known.ready_at or answer.at})
                else:
                    known = known.model_copy(update={"said": answer.state.value})
                track.pickups[answer.externalid] = known
            else:
                handed = PickupHandedOver.model_validate_json(r.value)
                known = track.pickups.get(handed.externalid) or PickupTrack(
                    fulfilment_order_id=handed.fulfilment_order_id,
                    location_id=handed.location_id,
                )
                if not known.handed_over and known.ready_at and not handed.partial:
                    metrics.pickup_step.labels(
                        step=metrics.PickupStepName.COLLECTED, location=str(known.location_id)
                    ).observe(max(0.0, handed.at - known.ready_at))
                known = known.took_more(
                    handed.took,
                    handed.delivered_at_by_sku or dict.fromkeys(handed.took, handed.delivered_at),
                )
                if not handed.partial:
                    known = known.model_copy(
                        update={
                            "handed_over": True,
                            "handed_over_at": known.handed_over_at or handed.at,
                        }
                    )
                track.pickups[handed.externalid] = known
        self.tracks[str(order_id)] = _encode_track(track)

    async def _move_out_from_webhooks(self, order_id: int, records: Sequence[OrderRecord]) -> None:
        """The Move Outs (and reversals) the fulfilment webhooks themselves tell of, sent before
        the order is read: a Shopify outage must not hold Sitoo's stock up. The same externalid
        and the track's list keep each sent once, whichever path sends it first."""
        # a pickup handed over in Sitoo comes before the fulfilment Shopify makes of it
        self._take_pickup_answers(order_id, records)
        track = self._track(order_id)
        taken = {k: n for k, (n, _) in pickups.taken_by_sitoo(track.pickups).items()}
        waiting = pickups.awaiting_sitoo(track.pickups)
        moved: list[int] = []
        reversed_: list[int] = []
        learnt: dict[str, list[tuple[str, int]]] = {}
        name = str(order_id)
        refunded: list[str] = []
        for record in records:
            for told in self._refunds(record, track):
                sent = [*track.refunds_in, *refunded]
                for made in refund_move_ins(told, order_id, self.locations, sent):
                    await self.output.transaction(made.move_in)
                    refunded.append(made.external_id)
                credits = refund_credits(
                    told, order_id, track.pickups, self.locations, sent, self._clock()
                )
                for credit in credits:
                    await self.output.credit(credit)
                    refunded.append(credit.externalid)
            if record.topic == REFUNDS_CREATE:
                continue
            if record.topic not in FULFILMENT_TOPICS:
                continue
            state = fulfilment_in_webhook(record.value, order_id)
            if state is None:
                continue  # the read below tells all the same
            learnt.update(_lines_of(state))
            for fid, tx in move_outs(state, self.locations, track.moved_out, name, taken, waiting):
                await self.output.transaction(tx)
                track.moved_out.append(fid)
                moved.append(fid)
            for fid, tx in reversals(state, self.locations, track.moved_out, track.reversed, name):
                await self.output.transaction(tx)
                track.reversed.append(fid)
                reversed_.append(fid)
        if moved or reversed_ or refunded or learnt.keys() - track.lines.keys():
            self._remember(order_id, self._track(order_id), moved, reversed_, learnt, refunded)

    def _refunds(self, record: OrderRecord, track: OrderTrack) -> list[Mapping[str, Any]]:
        """The refunds a webhook tells of that this worker books in Sitoo: a refund's own
        webhook, and those an order webhook carries that were made since the order was first
        known (what heals a ``refunds/create`` lost, or taken before the handover was known;
        an older one was booked, or not, before tillsync knew the order)."""
        if not self.refunds_to_sitoo:
            return []
        told = refunds_told(record.topic, record.value)
        if record.topic == REFUNDS_CREATE:
            return told
        return [r for r in told if made_since(r, track.since)]

    async def derive(self, order_id: int, records: Sequence[OrderRecord]) -> None:
        known = _known_lines(self._track(order_id))
        try:
            state = await self._retrying(
                f"order {order_id}",
                lambda: self.shopify.order_fulfilment_state(order_id, known),
                tries=INLINE_TRIES,
            )
        except _Deferred:
            # the track as it is now: a webhook's Move Out may have been sent meanwhile
            track = self._track(order_id)
            track.failed_reads += 1
            track.deferred_at = self._clock()
            track.retry_at = track.deferred_at + self.backoff.delay(track.failed_reads)
            track.holding = True
            self._deferred_in_a_row += 1
            self.tracks[str(order_id)] = _encode_track(track)
            log.warning(
                "order %s deferred: read again in %.0f s (%d failed in a row)",
                order_id,
                track.retry_at - self._clock(),
                track.failed_reads,
            )
            return
        self._answered()
        track = self._track(order_id)
        if state is None:
            # the sweep's order may be gone from Shopify: nothing to read again; a webhook of
            # an order Shopify does not have is input that can never succeed
            log.warning("order %s is not in Shopify", order_id)
            track.holding = False
            self.tracks[str(order_id)] = _encode_track(track)
            for r in records:
                if r.topic != DERIVE_TOPIC:
                    await self.output.dead_letter(r, f"{r.topic}: no such order")
            return
        now = self._clock()
        version = max(track.version + 1, int(now * 1000))
        # the pickups' Sitoo orders first: a command is durable before the track names it
        if self.methods:
            swept = any(r.topic == DERIVE_TOPIC for r in records)
            await self._pickups(order_id, state, track, now, swept=swept)
        taken_at = pickups.taken_by_sitoo(track.pickups)
        held = derive(state, self.locations, pickups.in_sitoo(track.pickups), taken_at)
        taken = {k: n for k, (n, _) in taken_at.items()}
        out: list[HeldUnits | OrderPlaced] = []
        # every pair held now, and every pair held before that holds nothing now (let go)
        was = {held_key(sku, loc): (sku, loc) for sku, loc in track.held_at}
        for key, (sku, loc) in was.items():
            if key not in held:
                out.append(HeldAt(sku=sku, location_id=loc).record(order_id, version, now))
        out.extend(h.record(order_id, version, now) for h in held.values())
        if track.version < 0:
            # the first read: a shortfall of these SKUs no longer waits for this order
            out.extend(
                OrderPlaced(sku=sku, order_id=order_id, units=0, at=now, routed=True)
                for sku in _skus_of(state)
            )
        await self.output.held(out)
        name = str(order_id)
        moved: list[int] = []
        reversed_: list[int] = []
        waiting = pickups.awaiting_sitoo(track.pickups, state)
        for fid, tx in move_outs(state, self.locations, track.moved_out, name, taken, waiting):
            await self.output.transaction(tx)
            track.moved_out.append(fid)
            moved.append(fid)
        for fid, tx in reversals(state, self.locations, track.moved_out, track.reversed, name):
            await self.output.transaction(tx)
            track.reversed.append(fid)
            reversed_.append(fid)
        track.version = version
        track.held_at = [(h.sku, h.location_id) for h in held.values()]
        track.holding = _still_changing(state, held)
        track.read_at = now
        track.failed_reads, track.retry_at, track.deferred_at = 0, 0.0, 0.0
        self._remember(order_id, track, moved, reversed_, _lines_of(state))
        self._asked.pop(order_id, None)

    async def _pickups(
        self,
        order_id: int,
        state: OrderFulfilmentState,
        track: OrderTrack,
        now: float,
        *,
        swept: bool = False,
    ) -> None:
        """The pickups' Sitoo orders asked for (a command durable before the track names it),
        and each pickup late at its store raised or cleared. A read of the sweep also asks for
        a check of each pickup open in Sitoo: its steps at the till come as Sitoo events only,
        which Sitoo drops after its retries."""
        if swept:
            for sitoo_order_id in pickups.open_in_sitoo(track.pickups):
                await self.output.check_pickup(sitoo_order_id)
        commands, track.pickups = pickups.plan(
            order_id, state, self.locations, track.pickups, now, self.methods
        )
        for command in commands:
            await self.output.pickup(command)
        told, track.pickups = pickups.overdue(
            state, self.locations, track.pickups, now, self.methods
        )
        unmapped, track.unmapped_pickups = pickups.unmapped(
            state, self.locations, track.unmapped_pickups
        )
        told += unmapped
        skuless, track.skuless_pickups = pickups.unmapped_lines(
            state, self.locations, track.skuless_pickups, self.methods, self.in_sitoo
        )
        told += skuless
        for late in told:
            await self.output.exception(_exception_of(order_id, late, now))

    def due(self, tracks: Iterable[tuple[str, bytes]], now: float) -> list[int]:
        """The orders the sweep reads again now: a deferred read once its backoff is over, or an
        order still holding, unread for a sweep interval and not asked for within one (a read
        asked for may still be queued)."""
        out: list[int] = []
        ages: Counter[metrics.PickupAge] = Counter()
        for key, value in tracks:
            if not value:
                continue
            track = OrderTrack.model_validate_json(value)
            for seconds in pickups.open_ages(track.pickups, now):
                ages[metrics.pickup_age(seconds)] += 1
            order_id = int(key)
            if not self._is_due(track, self._asked.get(order_id, 0.0), now):
                continue
            self._asked[order_id] = now
            out.append(order_id)
        for bucket in metrics.PickupAge:
            metrics.pickups_open.labels(age=bucket).set(ages[bucket])
        return out

    def _answered(self) -> None:
        """Shopify answered a read: if it had been failing, it is back."""
        if self._deferred_in_a_row >= OUTAGE_READS:
            self.answered_again_at = self._clock()
            log.info("Shopify answers again: reads deferred meanwhile are due now")
        self._deferred_in_a_row = 0

    def _is_due(self, track: OrderTrack, asked: float, now: float) -> bool:
        if track.retry_at > 0:
            # a deferred read: due at its backoff, and asked for once per backoff; or as soon
            # as Shopify answers again after an outage, once
            back = self.answered_again_at > max(asked, track.deferred_at)
            return back or (now >= track.retry_at and asked < track.retry_at)
        unread = now - track.read_at >= self.sweep_interval
        return track.holding and unread and now - asked >= self.sweep_interval

    async def sweep(self, tracks: Iterable[tuple[str, bytes]]) -> int:
        due = self.due(tracks, self._clock())
        for order_id in due:
            await self.output.derive_again(order_id)
        return len(due)

    def _remember(
        self,
        order_id: int,
        track: OrderTrack,
        moved: list[int],
        reversed_: list[int],
        lines: dict[str, list[tuple[str, int]]] | None = None,
        refunded: list[str] | None = None,
    ) -> None:
        """Store ``track`` with the Move Outs and reversals sent by this call, and the
        fulfilment lines it learnt, added to those the stored track has now: the webhook path
        and a read of the same order may overlap (the worker's reads run beside its agent), and
        neither may forget what the other sent. No await between reading the stored track and
        writing it."""
        stored = self._track(order_id)
        track.moved_out = _merged(stored.moved_out, track.moved_out, moved)
        track.reversed = _merged(stored.reversed, track.reversed, reversed_)
        track.refunds_in = list(
            dict.fromkeys([*stored.refunds_in, *track.refunds_in, *(refunded or [])])
        )
        track.lines = {**stored.lines, **track.lines, **(lines or {})}
        # what Sitoo said of a pickup, taken meanwhile by the other path: kept whichever
        # path knew it
        for ext, known in stored.pickups.items():
            mine = track.pickups.get(ext)
            if mine is None:
                track.pickups[ext] = known
                continue
            if known.in_sitoo_at and not mine.in_sitoo_at:
                mine = mine.model_copy(
                    update={
                        "in_sitoo_at": known.in_sitoo_at,
                        "sitoo_order_id": known.sitoo_order_id,
                    }
                )
            if known.took:
                mine = mine.took_more(
                    known.took,
                    known.took_since_by_sku or dict.fromkeys(known.took, known.took_since),
                )
            if known.handed_over and not mine.handed_over:
                mine = mine.model_copy(
                    update={"handed_over": True, "handed_over_at": known.handed_over_at}
                )
            if known.ready_at and not mine.ready_at:
                mine = mine.model_copy(update={"ready_at": known.ready_at})
            if known.lines != mine.lines:  # only Sitoo's answers change them: the stored
                mine = mine.model_copy(update={"lines": known.lines})
            if known.said and not mine.said:
                mine = mine.model_copy(update={"said": known.said})
            track.pickups[ext] = mine
        self.tracks[str(order_id)] = _encode_track(track)

    def _track(self, order_id: int) -> OrderTrack:
        stored = self.tracks.get(str(order_id))
        return OrderTrack.model_validate_json(stored) if stored else OrderTrack(since=self._clock())

    async def _retrying(
        self, what: str, call: Callable[[], Awaitable[T]], tries: int | None = None
    ) -> T:
        """`call` until it answers, each try given `read_deadline` seconds; after `tries` failed
        tries, raises _Deferred (None: tries for ever)."""
        attempt = 0
        while True:
            try:
                return await asyncio.wait_for(call(), self.read_deadline)
            except TRANSIENT as exc:
                attempt += 1
                if tries is not None and attempt >= tries:
                    raise _Deferred(what) from exc
                wait = self.backoff.delay(attempt - 1)
                log.warning(
                    "reading %s failed (%s, try %d); trying again in %.1f s",
                    what,
                    type(exc).__name__,
                    attempt,
                    wait,
                )
                await self._sleep(wait)


def _exception_of(order_id: int, late: pickups.Overdue, now: float) -> ExceptionRecord:
    what = "cleared" if not late.raised else late.message
    return ExceptionRecord(
        type=late.type,
        owner=late.owner,
        key=late.externalid,
        message=f"Shopify order {order_id}, pickup {late.externalid}: {what}",
        at=now,
        details={"order_id": order_id},
        cleared=not late.raised,
    )


def by_order(records: Sequence[OrderRecord]) -> dict[bytes | None, list[OrderRecord]]:
    """The records that may change what an order holds, grouped by their key (an order, or a
    fulfilment order not yet traced to its order), in the order they came."""
    groups: dict[bytes | None, list[OrderRecord]] = {}
    for record in records:
        if changes_holds(record.topic):
            groups.setdefault(record.key, []).append(record)
    return groups


def _merged(*lists: list[int]) -> list[int]:
    return list(dict.fromkeys(i for ids in lists for i in ids))


def _lines_of(state: OrderFulfilmentState) -> dict[str, list[tuple[str, int]]]:
    return {str(f.id): [(ln.sku, ln.quantity) for ln in f.lines] for f in state.fulfilments}


def _known_lines(track: OrderTrack) -> dict[int, tuple[FulfilmentLine, ...]]:
    return {
        int(fid): tuple(FulfilmentLine(sku=sku, quantity=n) for sku, n in lines)
        for fid, lines in track.lines.items()
    }


def _skus_of(state: OrderFulfilmentState) -> list[str]:
    skus = {line.sku for fo in state.fulfilment_orders for line in fo.lines if line.sku}
    skus |= {line.sku for f in state.fulfilments for line in f.lines if line.sku}
    return sorted(skus)


def _still_changing(state: OrderFulfilmentState, held: dict[str, HeldAt]) -> bool:
    """Units still open at a mapped location, or a fulfilment not yet done: Shopify can change
    either without a webhook reaching us, so the sweep reads the order again."""
    if any(h.open for h in held.values()):
        return True
    return any(f.status in TAKING and f.status != "SUCCESS" for f in state.fulfilments)


class KafkaOrderOutput:
    """``OrderOutput`` on the worker's topics."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.sitoo_commands = ctx.topic(topics.SITOO_STOCK_COMMANDS)
        self.sitoo_orders = ctx.topic(topics.SITOO_ORDER_COMMANDS)
        self.sitoo_credits = ctx.topic(topics.SITOO_CREDIT_COMMANDS)
        self.pickup_steps = ctx.topic(topics.SITOO_PICKUP_EVENTS)
        self.exceptions = ctx.topic(topics.EXCEPTIONS)
        self.order_webhooks = topics.SHOPIFY_ORDER_WEBHOOKS.name(ctx.settings.app_id)
        self.origin = self.order_webhooks

    async def held(self, records: Sequence[HeldUnits | OrderPlaced]) -> None:
        # returns once Kafka has them, as `transaction` does: the track records where the order
        # holds next, and a let-go record lost in a crash would never be sent again
        await self.ctx.send_all(
            topics.STOCK_EVENTS,
            ((r.sku.encode(), r.model_dump_json().encode()) for r in records),
            durable=True,
        )

    async def transaction(self, tx: WarehouseTransactionIn) -> None:
        sent = await self.sitoo_commands.send(
            key=(tx.externalid or "").encode(), value=tx.model_dump_json().encode()
        )
        # Returns once the command is in Kafka, not in the producer's buffer: the order's track
        # names it as sent next (on disk at once), and a record taken again after a crash skips
        # a Move Out its track names. A SIGKILL between the two lost Move Outs for good (the
        # 50,000-event e2e: every position exact, a Move Out missing).
        await sent

    async def credit(self, credit: RefundCredit) -> None:
        sent = await self.sitoo_credits.send(
            key=credit.externalid.encode(), value=credit.model_dump_json().encode()
        )
        await sent  # in Kafka before the track names it sent, as `transaction`

    async def pickup(self, command: PickupCommand) -> None:
        sent = await self.sitoo_orders.send(
            key=command.externalid.encode(), value=command.model_dump_json().encode()
        )
        await sent  # in Kafka before the track names it asked for, as `transaction`

    async def check_pickup(self, sitoo_order_id: int) -> None:
        # asked again at the next sweep if lost: no need to wait for Kafka
        step = PickupStep(
            sitoo_order_id=sitoo_order_id,
            step=PickupStepKind.CHECK,
            event_id=f"sweep-{time.time():.3f}",
        )
        await self.pickup_steps.send(
            key=str(sitoo_order_id).encode(), value=step.model_dump_json().encode()
        )

    async def exception(self, record: ExceptionRecord) -> None:
        if not record.cleared:
            metrics.exceptions_raised.labels(type=record.type, owner=record.owner.value).inc()
        await self.exceptions.send(value=record.model_dump_json().encode())

    async def derive_again(self, order_id: int) -> None:
        key = OrderKey(order_id=order_id).encode()
        headers: KafkaHeaders = [(TOPIC_HEADER, DERIVE_TOPIC.encode())]
        await self.ctx.app.producer.send(self.order_webhooks, key, b"{}", None, None, headers)

    async def dead_letter(self, record: OrderRecord, reason: str) -> None:
        await dead_letter(
            self.ctx,
            origin=self.origin,
            reason=reason,
            value=record.value,
            headers=record.headers,
            key=record.key,
        )


class RuntimeShopify:
    """The worker's Shopify client as a ``StateReader``, looked up at each call: the runtime
    builds its client on first use."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    async def order_fulfilment_state(
        self, order_id: int, known: Mapping[int, tuple[FulfilmentLine, ...]] | None = None
    ) -> OrderFulfilmentState | None:
        return await self._runtime.shopify.order_fulfilment_state(order_id, known)

    async def order_of_fulfilment_order(self, fulfilment_order_id: int) -> int | None:
        return await self._runtime.shopify.order_of_fulfilment_order(fulfilment_order_id)


def record_of(event: faust.EventT) -> OrderRecord:
    headers = _headers(event)
    return OrderRecord(
        topic=header_in(headers, TOPIC_HEADER),
        key=cast(bytes | None, event.key),
        value=cast(bytes, event.value),
        headers=headers,
        event=event,
    )


def _headers(event: faust.EventT) -> KafkaHeaders:
    raw: object = event.message.headers or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return list(cast(Iterable[tuple[str, bytes]], pairs))
