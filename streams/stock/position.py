"""One stock position: a SKU at a location, as both platforms see it, and what to do about it.

Pure logic, no Faust and no I/O, so that every rule here is tested on its own: the agent in
``tillsync.streams.stock.agents`` loads a position from the table, calls :func:`step` with one
event, stores the position and sends what the outcome asks for.

The target for Shopify is ``available = max(0, sitoo_available - buffer - pending)``, where
``pending`` counts units of online orders assigned to this location that Shopify has taken out
of `available` and Sitoo does not account for yet (held units, one ``OrderHold`` per order; see
``tillsync.streams.stock.held_units`` for how they are derived). Without it the sync would
offer those units again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from tillsync.schemas.events import (
    DriftCause,
    DriftCheck,
    DriftEvent,
    DriftState,
    HeldUnits,
    ObservedSource,
    OrderPlaced,
    PendingUnits,
    RestockState,
    ReturnRestock,
    SetInventory,
    ShopifyObserved,
    SitooLevel,
    SitooReserved,
    StockEvent,
    WriteResult,
)
from tillsync.schemas.locations import DriftPolicy, Location
from tillsync.streams.stock.refs import fulfilment_of_external_id

# A write with no answer for this long is treated as lost. Long on purpose: under load the sink
# may lag by many seconds, and calling that drift would add heal writes to the backlog; a
# crash replays unconfirmed commands anyway.
IN_FLIGHT_TIMEOUT = 300.0
# Shopify below the target while an online order of the SKU is on its way (its webhook seen,
# its routing query and pending units not yet) is that sale: writing the target back would
# offer the sold unit again. Such a shortfall waits until this long after the order was seen;
# one with no order in sight (a staff edit down) is drift after the usual settle window. An
# assumption sized to order routing under load, not a Shopify fact: one constant. Measured on
# the peak-day bench (BENCHMARKS.md, d): 8 s of grace let 22 orders oversell, 30 s let 1.
SHORTFALL_GRACE = 30.0
# A settled order hold (nothing held, every fulfilment booked) is kept SETTLED_KEEP_SECONDS,
# then pruned: long enough that a replayed record of that order finds it and changes nothing,
# and that a fulfilment cancelled after its Move Out was booked finds what Sitoo booked. At
# most SETTLED_CAP are kept (a position stays near 30 KB of its 1 MB record whatever the SKU
# sells: it is read, copied and stored at every event of the position), but none settled less
# than SETTLED_MIN_KEEP ago (what a crash replays is far younger). A record for an order no longer
# kept is taken only if it is newer than every pruned one (``holds_floor``); a record delayed
# past that is superseded anyway by the sweep's next read of an order still holding units.
SETTLED_KEEP_SECONDS = 6 * 3600.0
SETTLED_MIN_KEEP = 900.0
SETTLED_CAP = 300
PRUNE_ABOVE = 64  # holds a position may have before a pruning pass looks at them
PRUNE_EVERY = 60.0  # seconds between pruning passes of one position
NO_RECORD = -1  # the version of a hold whose order's record has not come yet (only bookings)
# A return at a till of an online order brings units back to Sitoo's stock at once; Shopify
# may restock them itself moments later (the returns flow's RESTOCKED disposition). Until the
# returns flow says which (``ReturnRestock``), its units are held back from Shopify: offered
# twice otherwise. A return it never tells of (a till sale's, the flow down or far behind)
# stops being held RETURN_GRACE after Sitoo booked it: long enough for a flow behind on
# Shopify's budget, short enough that units are not hidden for long. Shopify's restock, once
# announced, is awaited RESTOCK_EXPECT_SECONDS at most. Settled returns are kept
# RETURN_KEEP_SECONDS for replays.
RETURN_GRACE = 300.0
RESTOCK_EXPECT_SECONDS = 900.0
RETURN_KEEP_SECONDS = 6 * 3600.0


class PickupHold(BaseModel):
    """What an order's Sitoo pickup order accounts for of its units here (``held_units``):
    reserved since Sitoo confirmed the order made, or taken by Sitoo's sale at the handover
    (by Sitoo's clock, as its ledger's). One optional object, so that the many holds of other
    orders cost a position's record a ``null`` each, not four numbers."""

    in_sitoo: int = 0
    in_sitoo_since: float = 0.0
    took: int = 0
    took_since: float = 0.0


class OrderHold(BaseModel):
    """One order's held units of this SKU here, as its newest ``HeldUnits`` record says, and
    what Sitoo's ledger booked for each of its fulfilments (Move Out units out, a reversing
    Move In's units back)."""

    version: int = NO_RECORD
    open: int = 0
    fulfilled: dict[str, int] = Field(default_factory=dict)  # fulfilment id -> units
    booked: dict[str, int] = Field(default_factory=dict)  # fulfilment id -> units out of Sitoo
    # what the order's Sitoo pickup order accounts for here (reserved, or sold at the till)
    pickup: PickupHold | None = None
    settled_at: float | None = None

    @property
    def held(self) -> int:
        """open + sum over fulfilments of (fulfilled - booked). Negative for a fulfilment
        cancelled after its Move Out was booked: Sitoo has lost units Shopify has back, until
        the reversing Move In lands. Bookings of an order whose record has not come yet hold
        nothing: the units they took were never held here."""
        if self.version == NO_RECORD:
            return 0
        keys = self.fulfilled.keys() | self.booked.keys()
        return self.open + sum(self.fulfilled.get(k, 0) - self.booked.get(k, 0) for k in keys)

    def held_by(self, ledger_time: float) -> int:
        """``held``, less what a pickup's handover took once the ledger (as new as
        ``ledger_time``, Sitoo's clock) has the sale: before, Sitoo's total still has them."""
        p = self.pickup
        if p is not None and p.took and ledger_time >= p.took_since:
            return self.held - p.took
        return self.held

    def settled_by(self, ledger_time: float) -> bool:
        if self.version == NO_RECORD:
            return True
        keys = self.fulfilled.keys() | self.booked.keys()
        unbooked = [self.fulfilled.get(k, 0) - self.booked.get(k, 0) for k in keys]
        p = self.pickup
        if p is not None and p.took:
            return (
                ledger_time >= p.took_since
                and self.open == 0
                and min(unbooked, default=0) >= 0
                and sum(unbooked) == p.took
            )
        return self.open == 0 and not any(unbooked)

    @property
    def taking(self) -> bool:
        """A pickup's handover waits for its sale in the ledger."""
        return self.pickup is not None and self.pickup.took > 0


class ReturnHold(BaseModel):
    """One return at a till here (a Sitoo delivery): the units Sitoo's ledger booked back, and
    what the returns flow said Shopify does with them."""

    units: int = 0  # booked back by Sitoo's ledger so far
    booked_at: float | None = None  # when the ledger's transaction came (our clock)
    state: RestockState | None = None  # None: not told yet
    told_at: float = 0.0
    expired: bool = False  # waited too long: no longer held

    @property
    def settled(self) -> bool:
        return self.state in (RestockState.DONE, RestockState.RELEASED)

    @property
    def held(self) -> int:
        if self.expired or self.settled:
            return 0
        return self.units


class InFlight(BaseModel):
    target: int
    version: int
    since: float


class Position(BaseModel):
    sku: str
    location_id: int
    inventory_item_id: int | None = None
    sitoo_total: int | None = None
    sitoo_version: int = -1
    sitoo_event_time: float | None = None
    sitoo_reserved: int = 0
    reserved_at: float = 0.0
    # order id -> what the order holds here (see OrderHold); settled ones are pruned
    holds: dict[str, OrderHold] = Field(default_factory=dict)
    holds_floor: int = NO_RECORD  # the newest version of a pruned hold
    pruned_at: float = 0.0
    observed: int | None = None
    webhook_at: float = 0.0  # updated_at of the newest webhook taken
    write_at: float = 0.0  # when Shopify applied our newest confirmed write (by its clock)
    commanded: int | None = None
    command_version: int = 0
    in_flight: InFlight | None = None
    written_version: int = 0  # the newest command version Shopify confirmed
    written_sitoo_version: int = -1
    drift_since: float | None = None
    drift_cause: DriftCause | None = None
    drift_reported: bool = False
    # online orders of this SKU seen but not yet routed (order id -> until when a shortfall
    # waits for it)
    order_hints: dict[str, float] = Field(default_factory=dict)
    # returns at a till booked back here, by Sitoo delivery id (see ReturnHold)
    returns: dict[str, ReturnHold] = Field(default_factory=dict)

    @property
    def key(self) -> str:
        return position_key(self.sku, self.location_id)

    @property
    def pending_units(self) -> int:
        """Units online orders hold here that Sitoo does not count yet: every order's held
        units, less those its Sitoo pickup order reserves once this position's reading of
        Sitoo's reserved quantity is newer than that order (before, the reading may not hold
        them, and counting them twice only shows less). Never less than Sitoo reserves: a
        reservation that expired or was let go is in the reading first."""
        held = 0
        in_sitoo = 0
        for h in self.holds.values():
            if h.settled_at is not None:
                continue  # a settled hold holds nothing: most of a bestseller's, skipped cheaply
            held += h.held_by(self.sitoo_event_time or 0.0)
            p = h.pickup
            if p is not None and p.in_sitoo and p.in_sitoo_since <= self.reserved_at:
                in_sitoo += p.in_sitoo
        returned = sum(r.held for r in self.returns.values()) if self.returns else 0
        return held - min(in_sitoo, self.sitoo_reserved) + returned

    def return_wake(self) -> float | None:
        """When the first return still held stops being held if nothing is told of it."""
        ends = [
            h.told_at + RESTOCK_EXPECT_SECONDS
            if h.state is RestockState.EXPECTED
            else (h.booked_at or 0.0) + RETURN_GRACE
            for h in self.returns.values()
            if h.held and (h.state is RestockState.EXPECTED or h.booked_at is not None)
        ]
        return min(ends, default=None)

    @property
    def order_hint_until(self) -> float:
        return max(self.order_hints.values(), default=0.0)

    @property
    def sitoo_available(self) -> int | None:
        if self.sitoo_total is None:
            return None
        return self.sitoo_total - self.sitoo_reserved

    def target(self, buffer: int) -> int | None:
        available = self.sitoo_available
        if available is None:
            return None
        return max(0, available - buffer - self.pending_units)


def position_key(sku: str, location_id: int) -> str:
    return f"{sku}@{location_id}"


@dataclass
class Outcome:
    position: Position
    commands: list[SetInventory] = field(default_factory=list)
    drift: list[DriftEvent] = field(default_factory=list)
    check_at: float | None = None  # when to look again (settle window end)
    verify: bool = False  # read Shopify's value back: the webhooks could not be ordered
    ignored: str | None = None  # why the event changed nothing, for the audit


def step(pos: Position, event: StockEvent, loc: Location, now: float) -> Outcome:
    out = Outcome(pos)
    released = _age_returns(pos, now) if pos.returns else False
    if isinstance(event, ReturnRestock):
        if not _take_restock(pos, event, now, out):
            return out
    elif isinstance(event, SitooLevel):
        if event.version <= pos.sitoo_version:
            out.ignored = f"stale Sitoo transaction {event.version} <= {pos.sitoo_version}"
            return out
        pos.sitoo_total = event.total
        pos.sitoo_version = event.version
        pos.sitoo_event_time = event.event_time
        if event.return_delivery_id is not None:
            back = pos.returns.setdefault(f"d{event.return_delivery_id}", ReturnHold())
            back.units += event.delta
            back.booked_at = now
        ref = fulfilment_of_external_id(event.external_id)
        if ref is not None:
            # the Move Out (or its reversal) of a store fulfilment: booked against the order's
            # hold in the same step as it changes Sitoo's stock, so the units are counted by
            # exactly one of the two at every moment. The version check above keeps a replayed
            # transaction from booking twice.
            hold = pos.holds.setdefault(str(ref.order_id), OrderHold())
            fid = str(ref.fulfilment_id)
            hold.booked[fid] = hold.booked.get(fid, 0) - event.delta
            _settle(pos, hold, now)
        for waiting in pos.holds.values():
            # a pickup's handover whose sale this ledger event may be: settled once it is in
            if waiting.taking and waiting.settled_at is None:
                _settle(pos, waiting, now)
    elif isinstance(event, SitooReserved):
        if event.observed_at < pos.reserved_at:
            out.ignored = "older reservation reading"
            return out
        pos.sitoo_reserved = event.reserved
        pos.reserved_at = event.observed_at
    elif isinstance(event, ShopifyObserved):
        if event.source is ObservedSource.WEBHOOK:
            # Shopify stamps updated_at to the second: only a webhook from an earlier second
            # than what we know is certainly older
            if event.updated_at < math.floor(max(pos.webhook_at, pos.write_at)):
                out.ignored = "stale webhook (updated_at older than what we know)"
                return out
            # two changes of one second may arrive in either order: ask Shopify which won
            second = math.floor(event.updated_at)
            out.verify = second == math.floor(pos.webhook_at) or (
                second == math.floor(pos.write_at) and event.available != pos.observed
            )
            pos.webhook_at = max(pos.webhook_at, event.updated_at)
        elif math.floor(event.updated_at) <= math.floor(max(pos.webhook_at, pos.write_at)):
            # A reading (start snapshot, read-back, reconcile) is stamped by our clock when it
            # was taken; a snapshot taken before a restart's first writes can arrive after their
            # results. One from the second of a known change may predate it, so it is not
            # taken either: any change after that one comes with its own webhook.
            if event.source is ObservedSource.RECONCILE and event.available != pos.observed:
                # except that a reconcile looks for exactly the changes no webhook told of: a
                # variance found in that second is read back once the second has passed (a
                # start snapshot would ask this for thousands of positions at once)
                out.verify = True
                return out
            out.ignored = "stale reading (not newer than a change already known)"
            return out
        pos.inventory_item_id = event.inventory_item_id
        pos.observed = event.available
        if (
            pos.in_flight is None
            and pos.commanded is not None
            and event.available != pos.commanded
            and pos.drift_since is None
        ):
            pos.drift_since = now
            pos.drift_cause = (
                DriftCause.SHOPIFY_EDIT
                if event.source is ObservedSource.WEBHOOK
                else DriftCause.MISSED_EVENT
            )
    elif isinstance(event, WriteResult):
        _write_result(pos, event, now, out)
    elif isinstance(event, HeldUnits):
        if not _take_held(pos, event, now, out):
            return out
    elif isinstance(event, PendingUnits):
        # the per-line deltas of an older version, replaced by HeldUnits: a replayed one must
        # not hold units again
        out.ignored = "pending units record (superseded by held units)"
        return out
    elif isinstance(event, OrderPlaced):
        pos.order_hints = {k: t for k, t in pos.order_hints.items() if t > now}
        if event.routed:
            # its pending units are known (here or at another location): a shortfall here no
            # longer waits for it, and a wait it was holding up may end now
            pos.order_hints.pop(str(event.order_id), None)
        else:
            pos.order_hints[str(event.order_id)] = event.at + SHORTFALL_GRACE
            return out
    elif isinstance(event, DriftCheck):
        if released:  # a return no longer held: the target rose, drift or not
            _reconcile(pos, loc, now, out, now)
        else:
            _drift_check(pos, loc, now, out)
        _wake_for_returns(pos, out)
        return out
    _reconcile(pos, loc, now, out, _source_time(event, now))
    _wake_for_returns(pos, out)
    return out


def _wake_for_returns(pos: Position, out: Outcome) -> None:
    """Look again when the first held return's wait ends (a drift's settle window may be
    later, and every step's check replaces the one scheduled before)."""
    wake = pos.return_wake() if pos.returns else None
    if wake is not None:
        out.check_at = min(wake, out.check_at) if out.check_at is not None else wake


def _take_restock(pos: Position, event: ReturnRestock, now: float, out: Outcome) -> bool:
    """A return's state only moves forward: told, then done or released; a repeat or a replay
    changes nothing. Expected again after it expired (the flow was held up past the grace)
    holds the units back again until Shopify's restock."""
    key = f"d{event.delivery_id}"
    hold = pos.returns.get(key)
    if hold is not None and hold.settled:
        out.ignored = "stale return restock (the return is settled)"
        return False
    if event.state is RestockState.EXPECTED and now - event.at > RESTOCK_EXPECT_SECONDS:
        out.ignored = "stale return restock (expected too long ago)"
        return False
    hold = hold if hold is not None else ReturnHold()
    hold.state = event.state
    hold.told_at = event.at
    hold.expired = False
    pos.returns[key] = hold
    return True


def _age_returns(pos: Position, now: float) -> bool:
    """Returns held too long stop being held; settled ones are forgotten in time. True when
    one stopped being held (the target rose)."""
    released = False
    for key, hold in list(pos.returns.items()):
        since = max(hold.booked_at or 0.0, hold.told_at)
        if hold.settled or hold.expired:
            if now - since >= RETURN_KEEP_SECONDS:
                del pos.returns[key]
            continue
        waited = (
            now - hold.told_at >= RESTOCK_EXPECT_SECONDS
            if hold.state is RestockState.EXPECTED
            else hold.booked_at is not None and now - hold.booked_at >= RETURN_GRACE
        )
        if waited:
            hold.expired = True
            released = released or hold.units != 0
    return released


def _take_held(pos: Position, event: HeldUnits, now: float, out: Outcome) -> bool:
    """A newer derivation of the order replaces what the hold said; what Sitoo booked stays.
    False (with the reason in `out`) for a record no newer than one taken already."""
    key = str(event.order_id)
    hold = pos.holds.get(key)
    if hold is None and event.version <= pos.holds_floor:
        out.ignored = "stale held units (older than a pruned order hold)"
        return False
    if hold is not None and event.version <= hold.version:
        out.ignored = "stale held units (not newer than the order's hold)"
        return False
    hold = hold if hold is not None else OrderHold()
    hold.version = event.version
    hold.open = event.open
    hold.fulfilled = dict(event.fulfilled)
    if event.in_sitoo or event.took:
        hold.pickup = PickupHold(
            in_sitoo=min(event.in_sitoo, event.open),
            in_sitoo_since=event.in_sitoo_since,
            took=event.took,
            took_since=event.took_since,
        )
    else:
        hold.pickup = None
    pos.holds[key] = hold
    _settle(pos, hold, now)
    return True


def _settle(pos: Position, hold: OrderHold, now: float) -> None:
    """Marks a changed hold settled (or not again), then prunes the position if it is due."""
    if not hold.settled_by(pos.sitoo_event_time or 0.0):
        hold.settled_at = None
    elif hold.settled_at is None:
        hold.settled_at = now
    if len(pos.holds) > PRUNE_ABOVE and now - pos.pruned_at >= PRUNE_EVERY:
        prune_holds(pos, now)


def prune_holds(pos: Position, now: float) -> None:
    """Drops settled holds older than SETTLED_KEEP_SECONDS, then the oldest beyond
    SETTLED_CAP that settled at least SETTLED_MIN_KEEP ago."""
    pos.pruned_at = now
    settled = sorted(
        (hold.settled_at, key)
        for key, hold in pos.holds.items()
        if hold.settled_at is not None and hold.settled_by(pos.sitoo_event_time or 0.0)
    )
    over = len(settled) - SETTLED_CAP
    for n, (at, key) in enumerate(settled):
        old = now - at > SETTLED_KEEP_SECONDS
        if not old and not (n < over and now - at > SETTLED_MIN_KEEP):
            break  # sorted by age: every later one is younger
        hold = pos.holds.pop(key)
        pos.holds_floor = max(pos.holds_floor, hold.version)


def _write_result(pos: Position, event: WriteResult, now: float, out: Outcome) -> None:
    pos.inventory_item_id = event.inventory_item_id
    current = pos.in_flight is not None and event.version >= pos.in_flight.version
    if event.ok and event.written is not None:
        # A webhook can overtake the result of the write before it: an online sale right after
        # our write, say. Shopify's own stamps say which is newer; within one second, ask.
        applied = event.shopify_at if event.shopify_at is not None else event.at
        seen = math.floor(pos.webhook_at)
        # a result older than one taken already (a replay) says nothing of Shopify now
        if seen <= math.floor(applied) and event.version >= pos.written_version:
            out.verify = seen == math.floor(applied) and pos.observed != event.written
            pos.observed = event.written
        pos.written_version = max(pos.written_version, event.version)
        pos.write_at = max(pos.write_at, applied)
    if current:
        pos.in_flight = None
    if not event.ok and current and pos.drift_since is None:
        pos.drift_since = now
        pos.drift_cause = DriftCause.FAILED_WRITE


def _source_time(event: StockEvent, now: float) -> float:
    """When the change that leads to a write happened: sync latency is measured from it."""
    if isinstance(event, SitooLevel):
        return event.event_time
    if isinstance(
        event, PendingUnits | WriteResult | DriftCheck | OrderPlaced | HeldUnits | ReturnRestock
    ):
        return min(now, event.at)
    if isinstance(event, SitooReserved):
        return min(now, event.observed_at)
    return min(now, event.updated_at)


def _command(pos: Position, target: int, now: float, since: float | None = None) -> SetInventory:
    assert pos.inventory_item_id is not None
    pos.command_version += 1
    pos.commanded = target
    pos.in_flight = InFlight(target=target, version=pos.command_version, since=now)
    return SetInventory(
        sku=pos.sku,
        inventory_item_id=pos.inventory_item_id,
        location_id=pos.location_id,
        target=target,
        change_from=pos.observed,
        version=pos.command_version,
        sitoo_version=pos.sitoo_version,
        event_time=since if since is not None else now,
    )


def in_flight_command(pos: Position) -> SetInventory:
    """The command of the write a position has in flight, to send again after a restart."""
    assert pos.in_flight is not None and pos.inventory_item_id is not None
    return SetInventory(
        sku=pos.sku,
        inventory_item_id=pos.inventory_item_id,
        location_id=pos.location_id,
        target=pos.in_flight.target,
        change_from=pos.observed,
        version=pos.in_flight.version,
        sitoo_version=pos.sitoo_version,
        event_time=pos.in_flight.since,
    )


def _reconcile(pos: Position, loc: Location, now: float, out: Outcome, since: float) -> None:
    target = pos.target(loc.buffer_for(pos.sku))
    if target is None or pos.inventory_item_id is None:
        return  # one side unknown yet: nothing to write
    if pos.in_flight is not None and now - pos.in_flight.since > IN_FLIGHT_TIMEOUT:
        pos.in_flight = None
    if target != pos.commanded and pos.observed == target and pos.in_flight is None:
        # Shopify already shows it (an online sale it counted itself, or the first look at a
        # position that is right): nothing to write, and this is the new baseline
        pos.commanded = target
        _close_drift(pos, loc, now, out)
        return
    if target != pos.commanded:
        out.commands.append(_command(pos, target, now, since))
        return
    if pos.observed == target:
        _close_drift(pos, loc, now, out)
        return
    if pos.drift_reported and loc.drift_policy is DriftPolicy.ALERT:
        return  # reported once; a person decides, or the next Sitoo change overwrites it
    if pos.in_flight is None:
        if pos.drift_since is None:
            pos.drift_since = now
            pos.drift_cause = pos.drift_cause or DriftCause.MISSED_EVENT
        out.check_at = pos.drift_since + settle_for(pos, loc, target)


def settle_for(pos: Position, loc: Location, target: int) -> float:
    """How long a difference may last before it is drift: longer for a shortfall while an
    online order of the SKU is on its way to the positions."""
    shortfall = pos.observed is not None and pos.observed < target
    since = pos.drift_since or 0.0
    if shortfall and pos.order_hint_until > since:
        return max(loc.settle_seconds, pos.order_hint_until - since)
    return loc.settle_seconds


def _close_drift(pos: Position, loc: Location, now: float, out: Outcome) -> None:
    if pos.drift_since is not None and pos.drift_reported and pos.drift_cause is not None:
        out.drift.append(
            _drift(pos, DriftState.HEALED, pos.drift_cause, now, "Shopify agrees again")
        )
    pos.drift_since = None
    pos.drift_cause = None
    pos.drift_reported = False


def _drift(pos: Position, state: DriftState, cause: DriftCause, now: float, why: str) -> DriftEvent:
    target = pos.commanded
    return DriftEvent(
        sku=pos.sku,
        location_id=pos.location_id,
        state=state,
        cause=cause,
        target=target,
        observed=pos.observed,
        since=pos.drift_since or now,
        at=now,
        explanation=why,
    )


_EXPLAIN = {
    DriftCause.SHOPIFY_EDIT: "Shopify changed with no write of ours in flight (admin or app edit)",
    DriftCause.MISSED_EVENT: "Shopify differs and no event explains it (missed or lost event)",
    DriftCause.FAILED_WRITE: "our write to Shopify failed",
    DriftCause.UNKNOWN_SKU: "the SKU is known to one platform only",
}


def _drift_check(pos: Position, loc: Location, now: float, out: Outcome) -> None:
    if pos.in_flight is not None and now - pos.in_flight.since > IN_FLIGHT_TIMEOUT:
        pos.in_flight = None
    target = pos.target(loc.buffer_for(pos.sku))
    if pos.commanded is None and pos.drift_since is None:
        # never written: its Sitoo stock may have come before its SKU reached the index (a new
        # product), and the index may know it now
        _reconcile(pos, loc, now, out, now)
        return
    if pos.drift_since is None or target is None or pos.inventory_item_id is None:
        return
    if pos.observed == target:
        _close_drift(pos, loc, now, out)
        return
    if pos.in_flight is not None:
        return  # a write is on its way; its result decides
    due = pos.drift_since + settle_for(pos, loc, target)
    if now < due:
        out.check_at = due
        return
    cause = pos.drift_cause or DriftCause.MISSED_EVENT
    why = (
        f"{_EXPLAIN[cause]}: Shopify has {pos.observed}, the target is {target} "
        f"(Sitoo {pos.sitoo_available} available, buffer {loc.buffer_for(pos.sku)}, "
        f"pending {pos.pending_units})"
    )
    if pos.drift_reported and loc.drift_policy is DriftPolicy.ALERT:
        return  # reported already
    if not pos.drift_reported:
        out.drift.append(_drift(pos, DriftState.DETECTED, cause, now, why))
        pos.drift_reported = True
    if loc.drift_policy is DriftPolicy.HEAL:
        out.drift.append(_drift(pos, DriftState.HEALING, cause, now, "writing the target again"))
        out.commands.append(_command(pos, target, now))
    else:
        out.drift.append(_drift(pos, DriftState.REPORTED, cause, now, why))
