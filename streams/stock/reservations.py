"""Sitoo's reserved quantities kept current: the units open orders hold at a warehouse.

Position targets subtract Sitoo's reserved quantity (``SitooReserved``), but a reservation
writes no warehouse transaction: the ledger never tells of one. So:

- on an Events SPI ``order`` event that may change what an order holds (``add``, ``update``
  (lines, warehouse, closed, cancelled), ``ready-for-pickup``, ``pickup-rejected``), the order is
  read, then the warehouse items of its lines at its warehouse, and their reserved quantities go
  to the stock events as they are now. An order born closed or cancelled (a till sale, a
  return) never held anything and costs no read. A collected order (``update``, ``closed``)
  releases its units as they leave the stock in a sale: its read waits ``CLOSED_DELAY``, so
  that the sale comes through the ledger first and the units are never offered twice between
  the release and the sale.
- every ``sitoo_reserved_refresh_seconds``, on the worker that polls the ledger, every mapped
  warehouse's items are read in pages, and the reserved quantities that differ from the last
  refresh's are sent: what no event told of (a lost event, a partial delivery, an order moved to
  another warehouse, a reservation that expired). The first refresh of a worker sends them all.

Every reading is stamped with the time its read *began*, and a position takes no reading older
than the one it has: a read that began before a change and ends after a newer read never undoes
it. A read that fails is kept and tried again at the next event or tick (logged and counted,
``tillsync_sitoo_reserved_reads_total``); an order that still fails after ``MAX_ATTEMPTS`` is
given up loudly, and the next refresh covers its items.

The decisions are plain classes (``ReservationRefresher``, ``ReservedCache``,
``RefreshSchedule``); ``SitooReservations`` only carries them to Faust, Kafka and Sitoo.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

import faust
from prometheus_client import Counter
from pydantic import ValidationError

from tillsync.connectors.sitoo.client import Progress
from tillsync.schemas.events import SitooReserved
from tillsync.schemas.money import whole_units
from tillsync.schemas.sitoo import Order, SitooEvent, WarehouseItem
from tillsync.streams import metrics, topics
from tillsync.streams.context import Context
from tillsync.streams.lru import RecentIds
from tillsync.streams.ownership import owns
from tillsync.streams.runtime import Runtime

log = logging.getLogger("tillsync.reservations")

RETRY_SECONDS = 5.0  # how soon a failed read is tried again when no event comes first
READ_AT_MOST_EVERY = 0.1  # seconds: the events of one burst (add, then ready) make one read
MAX_ATTEMPTS = 20  # failed reads of one order before it is given up (about 100 s of ticks)
# A collected order's release is read this long after its event: the ledger poller, woken by
# the same event, brings the sale (a lower total) first. Shorter than that and the release can
# come first, offering the collected units again until the sale arrives; longer only keeps
# them held back (never oversold) a little longer. An assumption sized to the poller's interval
# (ledger.POLL_INTERVAL, 2 s) and one page's read, not a Sitoo fact.
CLOSED_DELAY = 3.0
SKUS_PER_READ = 100  # SKUs per warehouse-item read by SKU (one `sku=a,b,...` query)
PAGE = 1000  # warehouse items per page of a scheduled refresh, as at the start snapshot

# the order events after which an order may hold other units than before
READ_ON = frozenset({"add", "update", "ready-for-pickup", "pickup-rejected"})
FINISHED = frozenset({"closed", "cancelled"})


class ReadTrigger(StrEnum):
    EVENT = "event"  # an order event named the order
    SCHEDULE = "schedule"  # the periodic refresh of a whole warehouse


class ReadOutcome(StrEnum):
    OK = "ok"
    FAILED = "failed"  # kept, tried again at the next event or tick
    GAVE_UP = "gave_up"  # an order that failed MAX_ATTEMPTS times: the refresh covers it


reserved_reads = metrics.Fixed(
    Counter(
        "tillsync_sitoo_reserved_reads_total",
        "Reads of Sitoo's reserved quantities, by what asked for them and how they ended",
        ["trigger", "outcome"],
        registry=metrics.REGISTRY,
    ),
    trigger=ReadTrigger,
    outcome=ReadOutcome,
)


class SitooReads(Protocol):
    """What the refresher reads of Sitoo (``SitooClient``, or a fake in tests)."""

    async def get_order(self, orderid: int) -> Order: ...

    async def warehouse_items_by_sku(
        self, warehouseid: int, skus: Sequence[str]
    ) -> list[WarehouseItem]: ...

    def iter_warehouse_items(
        self,
        warehouseid: int,
        *,
        modified_from: int | None = None,
        page_size: int | None = None,
        progress: Progress | None = None,
    ) -> AsyncIterator[WarehouseItem]: ...


Send = Callable[[list[SitooReserved]], Awaitable[None]]


def order_to_read(ev: SitooEvent) -> int | None:
    """The order whose reservation an event may have changed, or None."""
    if ev.event_type != "order" or ev.order_id is None:
        return None
    kind = ev.order_event_type
    if kind not in READ_ON:
        return None
    if kind == "add" and ev.order_state_changed in FINISHED:
        return None  # born closed or cancelled (a till sale, a return): it never held units
    return ev.order_id


def reserved_of(item: WarehouseItem, warehouse_id: int, read_at: float) -> SitooReserved:
    return SitooReserved(
        sku=item.sku,
        warehouse_id=warehouse_id,
        reserved=whole_units(item.decimalreserved),
        observed_at=read_at,
    )


class ItemReads(Protocol):
    async def warehouse_items_by_sku(
        self, warehouse_id: int, skus: Sequence[str]
    ) -> list[WarehouseItem]: ...


async def read_reserved(
    sitoo: ItemReads,
    warehouse_id: int,
    skus: Sequence[str],
    clock: Callable[[], float],
    per_read: int = SKUS_PER_READ,
) -> list[SitooReserved]:
    """What Sitoo reserves of these SKUs at the warehouse now, each stamped with when its read
    began; a SKU with no item there reserves nothing. The one read of reserved quantities: the
    refresher's, and the store order writers' right after a change of theirs."""
    wanted = list(dict.fromkeys(skus))
    out: list[SitooReserved] = []
    for i in range(0, len(wanted), per_read):
        chunk = wanted[i : i + per_read]
        read_at = clock()
        found = {item.sku: item for item in await sitoo.warehouse_items_by_sku(warehouse_id, chunk)}
        out.extend(
            reserved_of(found[sku], warehouse_id, read_at)
            if sku in found
            else SitooReserved(sku=sku, warehouse_id=warehouse_id, reserved=0, observed_at=read_at)
            for sku in chunk
        )
    return out


class ReservedCache:
    """Reserved quantities per warehouse as the last scheduled refresh read them.

    A cache of Sitoo, nothing more: each refresh replaces a warehouse's entry with what it read,
    and nothing else (no event, no delta) ever changes it. Only non-zero quantities are kept: a
    SKU not held is 0. A warehouse never read has no entry, and all of its first reading is
    news."""

    def __init__(self) -> None:
        self._seen: dict[int, dict[str, int]] = {}

    def forget(self, warehouse_id: int | None = None) -> None:
        """Drop one warehouse's entry (its readings may not have reached the positions) or all
        (this worker stops refreshing: when it starts again, it knows nothing)."""
        if warehouse_id is None:
            self._seen.clear()
        else:
            self._seen.pop(warehouse_id, None)

    def missing(self, warehouse_id: int, read: Iterable[str]) -> list[str]:
        """SKUs held at the last refresh that a paged read did not list: worth a read by SKU
        before they are taken for released (a row may slip between pages)."""
        held = self._seen.get(warehouse_id) or {}
        listed = set(read)
        return [sku for sku in held if sku not in listed]

    def changes(
        self, warehouse_id: int, readings: Sequence[SitooReserved], read_at: float
    ) -> list[SitooReserved]:
        """Replace the warehouse's entry by these readings; the readings that differ from it
        (all of them the first time), and a 0 for each SKU held before that is gone now."""
        old = self._seen.get(warehouse_id)
        now = {r.sku: r.reserved for r in readings}
        self._seen[warehouse_id] = {sku: n for sku, n in now.items() if n != 0}
        if old is None:
            return list(readings)
        out = [r for r in readings if r.reserved != old.get(r.sku, 0)]
        out.extend(
            SitooReserved(sku=sku, warehouse_id=warehouse_id, reserved=0, observed_at=read_at)
            for sku in old
            if sku not in now
        )
        return out


@dataclass
class RefreshSchedule:
    """When the next full refresh is due: an interval after the last good one, or soon after
    a failed one."""

    interval: float
    retry: float
    started: float
    next_at: float = field(init=False)

    def __post_init__(self) -> None:
        self.next_at = self.started + self.interval

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def ran(self, now: float, ok: bool) -> None:
        self.next_at = now + (self.interval if ok else min(self.retry, self.interval))


class ReservationRefresher:
    """Orders to read (from events) and the last refresh's readings, on one worker."""

    def __init__(
        self,
        warehouses: Iterable[int],
        send: Send,
        *,
        clock: Callable[[], float] = time.time,
        max_attempts: int = MAX_ATTEMPTS,
        closed_delay: float = CLOSED_DELAY,
        skus_per_read: int = SKUS_PER_READ,
        page_size: int = PAGE,
    ) -> None:
        self.warehouses = tuple(dict.fromkeys(warehouses))  # the mapped ones, in map order
        self.send = send
        self.clock = clock
        self.max_attempts = max_attempts
        self.closed_delay = closed_delay
        self.skus_per_read = skus_per_read
        self.page_size = page_size
        # order id -> failed reads so far: every order an event named and not yet read
        self.pending: dict[int, int] = {}
        # order id -> not read before then (a collected order: its sale comes first)
        self.not_before: dict[int, float] = {}
        self.cache = ReservedCache()
        self.recent = RecentIds()

    # -- order events -----------------------------------------------------------------------

    def hear(self, value: bytes) -> int | None:
        """Take one Events SPI record; the order id it queues for a read, if any. A record that
        is no valid event is the ledger's events agent's to dead-letter."""
        try:
            ev = SitooEvent.model_validate_json(value)
        except ValidationError:
            return None
        orderid = order_to_read(ev)
        if orderid is None or self.recent.seen(ev.event_id):
            return None
        self.pending.setdefault(orderid, 0)
        if ev.order_event_type == "update" and ev.order_state_changed == "closed":
            self.not_before[orderid] = self.clock() + self.closed_delay
        return orderid

    def next_read_at(self) -> float | None:
        """When the earliest order held back for its sale may be read (None: none is)."""
        waiting = [self.not_before[o] for o in self.pending if o in self.not_before]
        return min(waiting, default=None)

    def forget_event_ids(self) -> None:
        """A new run of the agent: records seen before it may come again, and are news then
        (the orders queued by the last run were lost with it)."""
        self.recent = RecentIds()

    async def read_pending(self, sitoo: SitooReads) -> None:
        """Read every queued order's items and send their reserved quantities (a collected
        order once its delay has passed)."""
        now = self.clock()
        for orderid in list(self.pending):
            if self.not_before.get(orderid, now) > now:
                continue
            self.not_before.pop(orderid, None)
            failed = self.pending.pop(orderid)
            try:
                await self.send(await self.read_order(sitoo, orderid))
            except Exception as exc:  # a Sitoo outage, a full producer: try again later
                failed += 1
                if failed >= self.max_attempts:
                    log.error(
                        "reserved quantities of Sitoo order %d: gave up after %d failed reads, "
                        "the next scheduled refresh covers its items: %s",
                        orderid,
                        failed,
                        exc,
                    )
                    reserved_reads.labels(
                        trigger=ReadTrigger.EVENT, outcome=ReadOutcome.GAVE_UP
                    ).inc()
                    continue
                log.warning(
                    "reserved quantities of Sitoo order %d: read %d failed (will retry): %s",
                    orderid,
                    failed,
                    exc,
                )
                reserved_reads.labels(trigger=ReadTrigger.EVENT, outcome=ReadOutcome.FAILED).inc()
                # an event heard during the read queued it again at 0: the failures count on
                self.pending[orderid] = max(failed, self.pending.get(orderid, 0))
                continue
            reserved_reads.labels(trigger=ReadTrigger.EVENT, outcome=ReadOutcome.OK).inc()

    async def read_order(self, sitoo: SitooReads, orderid: int) -> list[SitooReserved]:
        """The reserved quantities of an order's SKUs at its warehouse, as they are now."""
        order = await sitoo.get_order(orderid)
        wid = order.warehouseid
        if wid is None or wid not in self.warehouses:
            return []
        skus = list(dict.fromkeys(item.sku for item in order.orderitems if item.sku))
        return await self.read_skus(sitoo, wid, skus)

    async def read_skus(
        self, sitoo: SitooReads, warehouse_id: int, skus: Sequence[str]
    ) -> list[SitooReserved]:
        """Read these SKUs' warehouse items; a SKU with no item there reserves nothing."""
        return await read_reserved(sitoo, warehouse_id, skus, self.clock, self.skus_per_read)

    # -- the schedule -----------------------------------------------------------------------

    async def refresh(self, sitoo: SitooReads) -> bool:
        """Read every mapped warehouse and send what changed since the last refresh; False if
        some warehouse could not be read or sent (it is read in full again next time)."""
        ok = True
        for wid in self.warehouses:
            try:
                readings, began = await self.read_warehouse(sitoo, wid)
            except Exception as exc:
                ok = False
                log.warning(
                    "reserved quantities at Sitoo warehouse %d: refresh failed (will retry): %s",
                    wid,
                    exc,
                )
                reserved_reads.labels(
                    trigger=ReadTrigger.SCHEDULE, outcome=ReadOutcome.FAILED
                ).inc()
                continue
            changed = self.cache.changes(wid, readings, began)
            try:
                await self.send(changed)
            except Exception as exc:
                ok = False
                # the positions may not have these: next time, all of the warehouse is news
                self.cache.forget(wid)
                log.warning(
                    "reserved quantities at Sitoo warehouse %d: %d changes not sent "
                    "(will retry): %s",
                    wid,
                    len(changed),
                    exc,
                )
                reserved_reads.labels(
                    trigger=ReadTrigger.SCHEDULE, outcome=ReadOutcome.FAILED
                ).inc()
                continue
            reserved_reads.labels(trigger=ReadTrigger.SCHEDULE, outcome=ReadOutcome.OK).inc()
        return ok

    async def read_warehouse(
        self, sitoo: SitooReads, warehouse_id: int
    ) -> tuple[list[SitooReserved], float]:
        """Every item's reserved quantity, each stamped when the read of its page began; and
        when the whole read began."""
        began = self.clock()
        page_began = began

        def next_page(done: int, total: int) -> None:
            # the paging iterator reports a page once its items are taken, before it asks for
            # the next: the next page's read begins after this
            nonlocal page_began
            page_began = self.clock()

        readings = [
            reserved_of(item, warehouse_id, page_began)
            async for item in sitoo.iter_warehouse_items(
                warehouse_id, page_size=self.page_size, progress=next_page
            )
            if item.sku  # Sitoo allows a blank SKU; no position has one
        ]
        missing = self.cache.missing(warehouse_id, (r.sku for r in readings))
        if missing:
            readings.extend(await self.read_skus(sitoo, warehouse_id, missing))
        return readings, began


class SitooReservations:
    """The refresher on one worker: the agent that hears order events, and the task that reads
    them (and refreshes all on the worker that polls the ledger)."""

    def __init__(self, ctx: Context) -> None:
        assert ctx.runtime is not None
        self.ctx = ctx
        self.rt: Runtime = ctx.runtime
        self.ledger_name = topics.RAW_SITOO_LEDGER.name(ctx.settings.app_id)
        self.refresher = ReservationRefresher(
            (loc.sitoo_warehouse_id for loc in self.rt.locations.locations), self.send
        )
        self.wake = asyncio.Event()

    async def send(self, events: list[SitooReserved]) -> None:
        await self.ctx.send_all(
            topics.STOCK_EVENTS,
            ((ev.sku.encode(), ev.model_dump_json().encode()) for ev in events),
        )

    async def take_events(self, stream: faust.StreamT[bytes]) -> None:
        """Agent: Events SPI records (beside the ledger's agent) queue their orders for a read.
        Quick by design: the reads happen in `run`, so a slow Sitoo never holds the topic up."""
        self.refresher.forget_event_ids()
        async for value in stream:
            if self.refresher.hear(value) is not None:
                self.wake.set()

    def owns_schedule(self) -> bool:
        """The full refresh runs on one worker: the one that owns (and polls) the ledger."""
        return owns(self.ctx.app, self.ledger_name)

    async def run(self) -> None:
        """Task: read queued orders when woken or at the retry tick; refresh when due."""
        await self.rt.ready.wait()
        schedule = RefreshSchedule(
            interval=self.ctx.settings.sitoo_reserved_refresh_seconds,
            retry=RETRY_SECONDS,
            started=time.time(),
        )
        while True:
            self.wake.clear()
            try:
                await self.tick(schedule)
            except Exception as exc:  # the task must outlive anything a tick meets
                log.warning("reserved quantities: tick failed (will retry): %s", exc)
            wait = RETRY_SECONDS
            held = self.refresher.next_read_at()
            if held is not None:
                wait = min(wait, max(0.0, held - time.time()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), wait)
            await asyncio.sleep(READ_AT_MOST_EVERY)

    async def tick(self, schedule: RefreshSchedule) -> None:
        if self.refresher.pending:
            await self.refresher.read_pending(self.rt.sitoo)
        if not self.owns_schedule():
            self.refresher.cache.forget()
            return
        if schedule.due(time.time()):
            ok = await self.refresher.refresh(self.rt.sitoo)
            schedule.ran(time.time(), ok)


def register(ctx: Context) -> None:
    reservations = SitooReservations(ctx)
    ctx.app.agent(ctx.topic(topics.RAW_SITOO_EVENTS), name="sitoo-reservations")(
        reservations.take_events
    )
    ctx.app.task(reservations.run)
