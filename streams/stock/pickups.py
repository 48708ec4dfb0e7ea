"""Store orders: which pickup (and ship-from-store) fulfilment orders must be Sitoo orders, and
which Sitoo orders must be cancelled, derived from an order's whole fulfilment state at every
read.

Ship-from-store (``ship_from_store_to_sitoo``) goes the same way as a pickup, with its delivery
method on its track and command (``SHIPPING``): a Sitoo order with the delivery address, which
staff ship in Sitoo; it has no "ready" step, and its deadline at the store is to be shipped
(``ship_within_hours``) instead of being readied and collected. Names here say "pickup" for
both: ship-from-store came later, and a rename is a mechanical move left for its own commit.

A pickup fulfilment order (delivery method ``PICK_UP``) assigned to a mapped store, still
committing units there, is one Sitoo order at that store's warehouse: store staff see it, and
Sitoo reserves its units (flows.md, A). Its key is ``externalid`` ``fo-<fulfilment order>-
<location>``: it names the one action (this fulfilment order at this store), so a derivation
repeated, replayed or racing another finds the order made before (the sink looks it up by
externalid before it makes one), and a pickup moved to another store is a new order there.
When the fulfilment order no longer commits units at that store (fulfilled in Shopify,
cancelled, moved, refunded away), the Sitoo order is cancelled and its reservation let go. A
fulfilment order that commits there again after that (a fulfilment cancelled) is a new
generation, ``fo-<fo>-<location>-<n>``: a cancelled Sitoo order cannot be opened again.

What the flow remembers of each (``PickupTrack``, in the order's track) is its own record of
what it asked for and what Sitoo confirmed. Its "asked" is a belief, not a fact: an export
Sitoo has not confirmed ``REASK_SECONDS`` after it was asked is asked for again at the next read
of the order (the sweep reads every order whose pickup still holds units), since a command can
be lost on its way; a cancel or an update is asked for once per change. Sitoo's confirmation
(``PickupInSitoo``) is what lets the position stop counting the units twice (``held_units``).

At every read of the order (a webhook, or the sweep every few minutes while the pickup holds
units) ``overdue`` checks each pickup against its store's deadlines (``PickupDeadlines`` in the
location map): no Sitoo order long after it was routed (integration), not ready within the
store's time (the store's manager), ready and not collected (customer service), collected at
the till and still open in Shopify (integration). Each is raised once, with its owner, and
cleared (the same type and key, ``cleared``) once its condition no longer holds.

Pure decisions: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field

from tillsync.connectors.shopify.fulfilment_state import OrderFulfilmentState
from tillsync.schemas.events import Owner, PickupAction, PickupCommand
from tillsync.schemas.locations import LocationMap, PickupDeadlines
from tillsync.streams.metrics import EXCEPTION_OWNERS, ExceptionType

PICK_UP = "PICK_UP"
SHIPPING = "SHIPPING"
# what a store order is without a say: a pickup (tracks and commands from before ship-from-store)
PICKUPS_ONLY = frozenset({PICK_UP})
# fulfilment order states whose remaining units are no longer committed anywhere
ENDED = frozenset({"CLOSED", "CANCELLED"})
# An export Sitoo has not confirmed this long after it was asked is asked again at the next
# read of its order (the sweep's, at the latest): the command may have been lost on its way.
# Long enough that one still waiting in the sink's backlog is rarely doubled (a double is only
# superseded there, and looked up by externalid before anything is made).
REASK_SECONDS = 120.0


class PickupTrack(BaseModel):
    """One Sitoo pickup order as the order flow knows it (by externalid)."""

    fulfilment_order_id: int
    location_id: int
    method: str = PICK_UP  # PICK_UP, or SHIPPING (ship-from-store)
    generation: int = 1
    asked_at: float = 0.0  # when its export was first asked for (its lateness counts from it)
    reasked_at: float = 0.0  # when it was last asked for again, unconfirmed (REASK_SECONDS)
    in_sitoo_at: float = 0.0  # when Sitoo confirmed it made (0: not yet)
    sitoo_order_id: int = 0
    cancelled: bool = False  # its cancel was asked for
    # Sitoo's word after the cancel: "cancelled" or "absent" (it delivered nothing), "closed"
    said: str = ""
    # the handover: Sitoo's own sale took these (SKU -> units) out of its stock
    handed_over: bool = False
    handed_over_at: float = 0.0
    took: dict[str, int] = Field(default_factory=dict)
    took_since: float = 0.0  # Sitoo's time of its delivery (its ledger's clock)
    # per SKU, Sitoo's time of its last delivery of it (a shipment's parcels come apart)
    took_since_by_sku: dict[str, float] = Field(default_factory=dict)
    ready_at: float = 0.0  # marked ready for pickup at the till (a pickup only)
    authorised_until: float = 0.0  # the card authorisation lapses then (0: paid, or unknown)
    raised: list[str] = Field(default_factory=list)  # exception types raised, not cleared
    # the Sitoo order's rows as Sitoo confirmed them (fulfilment order line -> units), and
    # the rows an update was last asked for: an update is asked once per change
    lines: dict[str, int] = Field(default_factory=dict)
    asked_lines: dict[str, int] = Field(default_factory=dict)

    def took_more(self, took: Mapping[str, int], since: Mapping[str, float]) -> PickupTrack:
        """With what Sitoo's deliveries took so far, per SKU, and when (cumulative: a word
        taken late or twice never takes less)."""
        skus = self.took.keys() | took.keys()
        merged = {sku: max(self.took.get(sku, 0), took.get(sku, 0)) for sku in skus}
        times = {
            sku: max(self.took_since_by_sku.get(sku, 0.0), since.get(sku, 0.0)) for sku in skus
        }
        return self.model_copy(
            update={
                "took": merged,
                "took_since_by_sku": times,
                "took_since": max(self.took_since, *times.values(), 0.0),
            }
        )

    @property
    def awaiting_sitoo(self) -> bool:
        """Sitoo may still hand this pickup over (or may have, unheard): a fulfilment of its
        units in Shopify cannot be told to be Sitoo's or the shop's yet."""
        return not self.handed_over and self.said not in ("cancelled", "absent")


@dataclass(frozen=True, slots=True)
class Wanted:
    fulfilment_order_id: int
    location_id: int
    warehouse_id: int
    method: str = PICK_UP


def externalid(fulfilment_order_id: int, location_id: int, generation: int = 1) -> str:
    base = f"fo-{fulfilment_order_id}-{location_id}"
    return base if generation == 1 else f"{base}-{generation}"


def wanted(
    state: OrderFulfilmentState,
    locations: LocationMap,
    methods: frozenset[str] = PICKUPS_ONLY,
) -> list[Wanted]:
    """The fulfilment orders of these delivery methods that must be Sitoo orders now: at a
    mapped store, still committing units of a SKU there."""
    out: list[Wanted] = []
    for fo in state.fulfilment_orders:
        if fo.method not in methods or fo.status in ENDED or fo.location_id is None:
            continue
        loc = locations.by_shopify(fo.location_id)
        if loc is None:
            continue  # an unmapped pickup location: no store to send it to
        if any(line.sku and line.remaining > 0 for line in fo.lines):
            out.append(Wanted(fo.id, fo.location_id, loc.sitoo_warehouse_id, fo.method))
    return out


def plan(
    order_id: int,
    state: OrderFulfilmentState,
    locations: LocationMap,
    tracks: Mapping[str, PickupTrack],
    now: float,
    methods: frozenset[str] = PICKUPS_ONLY,
) -> tuple[list[PickupCommand], dict[str, PickupTrack]]:
    """The commands to send now, and the tracks as they are once they are sent."""
    out = {ext: t.model_copy() for ext, t in tracks.items()}
    exports: list[PickupCommand] = []
    cancels: list[PickupCommand] = []
    updates: list[PickupCommand] = []
    live: set[str] = set()
    for w in wanted(state, locations, methods):
        mine = [
            (ext, t)
            for ext, t in out.items()
            if t.fulfilment_order_id == w.fulfilment_order_id and t.location_id == w.location_id
        ]
        current = max(mine, key=lambda et: et[1].generation, default=None)
        if current is not None and (not current[1].cancelled or current[1].handed_over):
            live.add(current[0])
            ext, t = current
            rows = _rows(state, w.fulfilment_order_id)
            if _stale(t, rows):
                out[ext] = t.model_copy(update={"asked_lines": rows})
                updates.append(_command(PickupAction.UPDATE, ext, order_id, w, now))
            elif _unconfirmed(t, now):
                out[ext] = t.model_copy(update={"reasked_at": now})
                exports.append(_command(PickupAction.EXPORT, ext, order_id, w, now))
            continue
        generation = current[1].generation + 1 if current is not None else 1
        ext = externalid(w.fulfilment_order_id, w.location_id, generation)
        out[ext] = PickupTrack(
            fulfilment_order_id=w.fulfilment_order_id,
            location_id=w.location_id,
            method=w.method,
            generation=generation,
            asked_at=now,
        )
        live.add(ext)
        exports.append(_command(PickupAction.EXPORT, ext, order_id, w, now))
    for ext, t in out.items():
        if ext in live or t.cancelled or t.handed_over:
            continue  # a handed-over order is closed in Sitoo: nothing to cancel
        loc = locations.by_shopify(t.location_id)
        warehouse = loc.sitoo_warehouse_id if loc is not None else 0
        w = Wanted(t.fulfilment_order_id, t.location_id, warehouse, t.method)
        out[ext] = t.model_copy(update={"cancelled": True})
        cancels.append(_command(PickupAction.CANCEL, ext, order_id, w, now))
    # a moved pickup's old order first: store staff never see it at two stores at once
    return cancels + exports + updates, out


def _unconfirmed(t: PickupTrack, now: float) -> bool:
    """An export asked for long ago that Sitoo has not confirmed, nor refused (``said``)."""
    if t.in_sitoo_at > 0 or t.said or t.cancelled or t.handed_over:
        return False
    return now - max(t.asked_at, t.reasked_at) >= REASK_SECONDS


def _rows(state: OrderFulfilmentState, fulfilment_order_id: int) -> dict[str, int]:
    """What a Sitoo order of the fulfilment order would hold now: units per line with a SKU."""
    fo = next(f for f in state.fulfilment_orders if f.id == fulfilment_order_id)
    return {str(line.id): line.remaining for line in fo.lines if line.sku and line.remaining > 0}


def _stale(t: PickupTrack, rows: dict[str, int]) -> bool:
    """The Sitoo order holds other rows than Shopify's fulfilment order now (an edit, a
    refund, part of it moved), and no update was asked for these rows yet. Only an order
    Sitoo confirmed with its rows, still open there with nothing handed over: a handed-over
    order's rest is the handover's to tell."""
    return (
        bool(t.lines)
        and t.in_sitoo_at > 0
        and not t.cancelled
        and not t.handed_over
        and not t.took
        and rows != t.lines
        and rows != t.asked_lines
    )


def in_sitoo(tracks: Mapping[str, PickupTrack]) -> dict[int, float]:
    """Fulfilment order id -> since when a Sitoo order (not cancelled, not handed over yet)
    reserves its units."""
    return {
        t.fulfilment_order_id: t.in_sitoo_at
        for t in tracks.values()
        if t.in_sitoo_at > 0 and not t.cancelled and not t.handed_over
    }


@dataclass(frozen=True, slots=True)
class Overdue:
    """One of a pickup's exceptions, raised or cleared now."""

    externalid: str
    type: str
    owner: Owner
    raised: bool  # False: cleared
    message: str


def _late(t: PickupTrack, open_here: bool, d: PickupDeadlines, now: float) -> dict[str, str]:
    """The exception types whose condition holds now, each with what to say."""
    out: dict[str, str] = {}
    if t.cancelled or t.said in ("cancelled", "absent"):
        return out
    if t.handed_over:
        if open_here and now - t.handed_over_at > d.close_in_shopify_minutes * 60:
            minutes = f"{(now - t.handed_over_at) / 60:.0f} minutes on"
            ordered, took = sum(t.lines.values()), sum(t.took.values())
            if t.method != SHIPPING and 0 < took < ordered:
                # the customer left part of it: a person's call, not a lost handover
                out["pickup_open_in_shopify"] = (
                    f"collected in part at the till ({took} of {ordered} units), the rest still "
                    f"open in Shopify {minutes}: refund the rest, or keep it for the customer"
                )
            else:
                done = "shipped from the store" if t.method == SHIPPING else "collected at the till"
                out["pickup_open_in_shopify"] = f"{done}, still open in Shopify {minutes}"
        return out
    if not open_here:
        return out
    if not t.in_sitoo_at:
        if now - t.asked_at > d.reach_store_minutes * 60:
            out["pickup_not_in_store"] = (
                f"the order never reached the store: no Sitoo order "
                f"{(now - t.asked_at) / 60:.0f} minutes after it was routed there"
            )
    elif t.method == SHIPPING:
        if not t.took and now - t.in_sitoo_at > d.ship_within_hours * 3600:
            out["shipment_not_shipped"] = (
                f"not shipped from the store {(now - t.in_sitoo_at) / 3600:.1f} hours after "
                "it reached it"
            )
    elif not t.ready_at:
        if now - t.in_sitoo_at > d.ready_within_minutes * 60:
            out["pickup_not_ready"] = (
                f"not ready for pickup {(now - t.in_sitoo_at) / 60:.0f} minutes after it "
                "reached the store"
            )
    elif now - t.ready_at > d.collect_within_hours * 3600:
        out["pickup_uncollected"] = (
            f"ready for pickup {(now - t.ready_at) / 3600:.1f} hours ago, not collected"
        )
    if t.authorised_until and now > t.authorised_until - d.authorisation_margin_hours * 3600:
        left = (t.authorised_until - now) / 3600
        out["pickup_authorisation_expiring"] = (
            f"the card was only authorised at checkout and the authorisation lapses in "
            f"{left:.0f} hours"
            if left > 0
            else "the card authorisation has lapsed"
        ) + ": the handover can no longer capture it; ask the customer to pay, or re-authorise"
    return out


def overdue(
    state: OrderFulfilmentState,
    locations: LocationMap,
    tracks: Mapping[str, PickupTrack],
    now: float,
    methods: frozenset[str] = PICKUPS_ONLY,
) -> tuple[list[Overdue], dict[str, PickupTrack]]:
    """Each pickup's exceptions to raise (its condition holds, not raised yet) or clear (raised,
    and no longer holds), and the tracks as they are once they are sent. Each type is raised
    once per pickup until it clears."""
    committing = {(w.fulfilment_order_id, w.location_id) for w in wanted(state, locations, methods)}
    out = dict(tracks)
    told: list[Overdue] = []
    for ext, t in tracks.items():
        loc = locations.by_shopify(t.location_id)
        if loc is None:
            continue
        late = _late(t, (t.fulfilment_order_id, t.location_id) in committing, loc.pickup, now)
        raised = [kind for kind in t.raised if kind not in late]  # cleared now
        new = [kind for kind in late if kind not in t.raised]
        if not raised and not new:
            continue
        told += [
            Overdue(ext, k, EXCEPTION_OWNERS[ExceptionType(k)], False, "cleared") for k in raised
        ]
        told += [Overdue(ext, k, EXCEPTION_OWNERS[ExceptionType(k)], True, late[k]) for k in new]
        out[ext] = t.model_copy(update={"raised": [k for k in t.raised if k in late] + new})
    return told, out


def unmapped(
    state: OrderFulfilmentState, locations: LocationMap, raised: Sequence[int]
) -> tuple[list[Overdue], list[int]]:
    """Pickups routed to a location no store is mapped to: no store will ever see them. Raised
    once per fulfilment order for integration (the location map lacks a store, or Shopify's
    routing sends pickups where no till is), cleared once it is picked up, moved or cancelled.
    Returns what to tell and the fulfilment orders raised now."""
    now = {
        fo.id: f"a pickup routed to location {fo.location_id}, which no store in the location "
        "map is: no store will see it"
        for fo in state.fulfilment_orders
        if fo.method == PICK_UP
        and fo.status not in ENDED
        and fo.location_id is not None
        and locations.by_shopify(fo.location_id) is None
        and any(line.remaining > 0 for line in fo.lines)
    }
    return _raised_and_cleared(ExceptionType.PICKUP_LOCATION_UNMAPPED, now, raised)


def unmapped_lines(
    state: OrderFulfilmentState,
    locations: LocationMap,
    raised: Sequence[int],
    methods: frozenset[str] = PICKUPS_ONLY,
    in_sitoo: Callable[[str], bool] | None = None,
) -> tuple[list[Overdue], list[int]]:
    """Store orders (pickups, ship-from-store) with a line still to hand over that Sitoo
    cannot carry: no SKU (a custom item, a product without one), so its Sitoo order leaves it
    out, or (with ``in_sitoo``) a SKU Sitoo has no product for, so staff find nothing to pick.
    Either way the store never hands it over. Raised once per fulfilment order for e-commerce
    (give the product a SKU Sitoo knows, or hand the line over by hand), cleared once no such
    line is left there (refunded, moved) or the order ends there. A product made in Sitoo later
    counts once the worker's SKU index has it (read at the worker's start).
    Returns what to tell and the fulfilment orders raised now."""
    now: dict[int, str] = {}
    for fo in state.fulfilment_orders:
        if (
            fo.method not in methods
            or fo.status in ENDED
            or fo.location_id is None
            or locations.by_shopify(fo.location_id) is None
        ):
            continue
        left = [line for line in fo.lines if line.remaining > 0]
        skuless = sum(1 for line in left if not line.sku)
        unknown = sorted(
            {line.sku for line in left if line.sku and in_sitoo and not in_sitoo(line.sku)}
        )
        said = []
        if skuless:
            said.append(f"{skuless} line(s) have no SKU: its Sitoo order leaves them out")
        if unknown:
            said.append(
                f"{len(unknown)} SKU(s) Sitoo has no product for ({', '.join(unknown[:5])}): "
                "staff find nothing to hand over"
            )
        if said:
            now[fo.id] = (
                "; ".join(said) + ". The store will not hand them over: give the product a SKU "
                "Sitoo knows, or hand it over by hand"
            )
    return _raised_and_cleared(ExceptionType.PICKUP_SKU_UNMAPPED, now, raised)


def _raised_and_cleared(
    kind: ExceptionType, now: Mapping[int, str], raised: Sequence[int]
) -> tuple[list[Overdue], list[int]]:
    """One exception per fulfilment order whose condition holds ``now`` (its message), raised
    once and cleared once it no longer holds: what to tell, and the fulfilment orders raised
    from now on."""
    owner, name = EXCEPTION_OWNERS[kind], kind.value
    told = [Overdue(f"fo-{fo}", name, owner, False, "cleared") for fo in raised if fo not in now]
    told += [
        Overdue(f"fo-{fo}", name, owner, True, message)
        for fo, message in sorted(now.items())
        if fo not in raised
    ]
    return told, sorted(now)


def open_ages(tracks: Mapping[str, PickupTrack], now: float) -> list[float]:
    """Seconds since each pickup still at its store was asked of Sitoo (not handed over, no
    cancel asked for)."""
    return [
        now - t.asked_at
        for t in tracks.values()
        if t.asked_at and not t.handed_over and not t.cancelled
    ]


def open_in_sitoo(tracks: Mapping[str, PickupTrack]) -> list[int]:
    """The Sitoo orders of the pickups Sitoo made that may still be readied, rejected or
    handed over there (not handed over yet, no cancel asked for)."""
    return sorted(
        t.sitoo_order_id
        for t in tracks.values()
        if t.in_sitoo_at and t.sitoo_order_id and not t.handed_over and not t.cancelled
    )


def awaiting_sitoo(
    tracks: Mapping[str, PickupTrack], state: OrderFulfilmentState | None = None
) -> set[int]:
    """The locations where a fulfilment's Move Out waits for Sitoo's word on a store order
    there: its handover (Sitoo's sale took the units: no Move Out) or its cancel (Sitoo
    delivered nothing: the units left through Shopify, a Move Out). Its units stay held
    meanwhile. With the order's ``state``, a store order whose rows Sitoo confirmed to be
    exactly what its fulfilment order still holds, nothing handed over, is not waited for:
    every unit fulfilled of it was the shop's own (a shipment partly fulfilled in Shopify,
    its Sitoo order brought up to date)."""
    out: set[int] = set()
    for t in tracks.values():
        if not t.awaiting_sitoo:
            continue
        if (
            state is not None
            and t.lines
            and not t.took
            and any(fo.id == t.fulfilment_order_id for fo in state.fulfilment_orders)
            and t.lines == _rows(state, t.fulfilment_order_id)
        ):
            continue
        out.add(t.location_id)
    return out


def taken_by_sitoo(tracks: Mapping[str, PickupTrack]) -> dict[tuple[str, int], tuple[int, float]]:
    """(SKU, location) -> units Sitoo's handovers took out of its stock for the order, and
    Sitoo's time of the latest of them (its ledger's clock)."""
    out: dict[tuple[str, int], tuple[int, float]] = {}
    for t in tracks.values():
        for sku, n in t.took.items():
            units, since = out.get((sku, t.location_id), (0, 0.0))
            at = t.took_since_by_sku.get(sku, t.took_since)
            out[(sku, t.location_id)] = (units + n, max(since, at))
    return out


def _command(action: PickupAction, ext: str, order_id: int, w: Wanted, now: float) -> PickupCommand:
    return PickupCommand(
        action=action,
        externalid=ext,
        order_id=order_id,
        fulfilment_order_id=w.fulfilment_order_id,
        location_id=w.location_id,
        warehouse_id=w.warehouse_id,
        method=w.method,
        at=now,
    )
