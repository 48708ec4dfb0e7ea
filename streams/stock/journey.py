"""One online order's journey across both platforms, for a person to read (``tillsync orders
show ORDER``): what Shopify says of its fulfilment orders and fulfilments, what tillsync holds
for it and has sent (the worker's track of the order), and which Move Outs and reversals Sitoo
has booked against which are owed.

It is what a store manager's "the online order never left our stock" or a finance query about
one order needs answered, without reading logs. Everything is read fresh: Shopify's order, the
worker's ``/state/orders/{id}`` (each worker named, as the order's partition lives on one),
Sitoo's ledger since a date (the ledger has no externalid filter) and the Sitoo orders of its
pickups (by externalid: open, handed over or cancelled, against whether Shopify still commits
each). What tillsync should hold is derived from Shopify's state by the same rule the worker
uses (``held_units.derive``), so a difference between that and the track is visible at a
glance.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from tillsync.connectors.shopify.client import ShopifyClient, ShopifyConfig
from tillsync.connectors.shopify.fulfilment_state import OrderFulfilmentState
from tillsync.connectors.sitoo.client import SitooClient, SitooConfig
from tillsync.schemas.locations import LocationMap
from tillsync.schemas.settings import Settings
from tillsync.schemas.sitoo import ORDER_CANCELLED, ORDER_CLOSED, ORDER_OPEN
from tillsync.streams.stock import pickups
from tillsync.streams.stock.held_units import DONE, TAKING, HeldAt, derive
from tillsync.streams.stock.refs import fulfilment_external_id, reversal_external_id

Echo = Callable[[str], None]
_STATES = {ORDER_OPEN: "open", ORDER_CLOSED: "closed", ORDER_CANCELLED: "cancelled"}


@dataclass(frozen=True, slots=True)
class SitooBooking:
    """One Move Out (or reversal) an order's fulfilment may have in Sitoo."""

    external_id: str
    fulfilment_id: int
    location_id: int
    reversal: bool
    owed: bool  # Shopify's state says Sitoo must have it
    transaction_id: int | None  # the warehouse transaction Sitoo booked it as, if any

    @property
    def verdict(self) -> str:
        if self.owed:
            return "booked" if self.transaction_id is not None else "OWED, not in Sitoo"
        return "booked, NOT OWED" if self.transaction_id is not None else "not owed"


@dataclass(frozen=True, slots=True)
class WorkerTrack:
    """The worker's track of the order (``OrderTrack`` as JSON), and which worker told it."""

    url: str
    track: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SitooPickup:
    """A Sitoo order tillsync made (or should have made) of one of the order's pickups."""

    externalid: str
    wanted: bool  # Shopify commits the pickup at that store now
    sitoo_order_id: int | None  # None: Sitoo has no order of that externalid
    state: str  # open, closed (handed over), cancelled, or "" when there is none

    @property
    def verdict(self) -> str:
        if self.sitoo_order_id is None:
            return "OWED, not in Sitoo" if self.wanted else "not in Sitoo"
        if self.wanted and self.state != "open":
            return f"{self.state} in Sitoo while Shopify still commits it"
        if not self.wanted and self.state == "open":
            return "OPEN in Sitoo, not wanted"
        return self.state


@dataclass(frozen=True, slots=True)
class Journey:
    order_id: int
    shopify: OrderFulfilmentState | None  # None: Shopify has no such order
    should_hold: dict[str, HeldAt]  # derived from Shopify's state now, by the worker's rule
    track: WorkerTrack | None  # None: no worker named knows the order
    bookings: tuple[SitooBooking, ...]
    pickups: tuple[SitooPickup, ...] = ()


def candidate_bookings(
    state: OrderFulfilmentState, locations: LocationMap
) -> list[tuple[str, int, int, bool, bool]]:
    """(externalid, fulfilment, location, reversal, owed before Sitoo is asked) for each Move
    Out and reversal an order's fulfilments at mapped stores can have. A reversal is owed only
    if its Move Out was booked: that is known once Sitoo has answered (``bookings``)."""
    out: list[tuple[str, int, int, bool, bool]] = []
    for f in state.fulfilments:
        if f.location_id is None or locations.by_shopify(f.location_id) is None:
            continue
        out.append((fulfilment_external_id(state.order_id, f.id), f.id, f.location_id, False, True))
        if f.status not in TAKING:
            out.append(
                (reversal_external_id(state.order_id, f.id), f.id, f.location_id, True, False)
            )
    return out


def bookings(
    state: OrderFulfilmentState, locations: LocationMap, booked: dict[str, int]
) -> tuple[SitooBooking, ...]:
    """Each Move Out and reversal of the order's fulfilments at mapped stores, owed or booked:
    a Move Out is owed for a successful fulfilment, and for a cancelled one whose Move Out Sitoo
    booked all the same (the goods left before the cancel); its reversal then is owed too."""
    status = {f.id: f.status for f in state.fulfilments}
    out: list[SitooBooking] = []
    for ext, fid, loc, reversal, _ in candidate_bookings(state, locations):
        moved = fulfilment_external_id(state.order_id, fid) in booked
        owed = moved if reversal else (status[fid] == DONE or moved)
        if owed or ext in booked:
            out.append(SitooBooking(ext, fid, loc, reversal, owed, booked.get(ext)))
    return tuple(out)


async def _worker_track(
    order_id: int, workers: Sequence[str], headers: dict[str, str]
) -> WorkerTrack | None:
    async with httpx.AsyncClient(timeout=10, headers=headers) as http:
        for url in workers:
            answer = await http.get(f"{url}/state/orders/{order_id}")
            if answer.status_code == 401:
                raise PermissionError(
                    f"the worker at {url} answers 401: set TILLSYNC_STATE_TOKEN (or "
                    "`state_token` in $TILLSYNC_CONFIG) to the worker's state token"
                )
            if answer.status_code == 200:
                return WorkerTrack(url, answer.json())
    return None


async def order_journey(
    settings: Settings,
    locations: LocationMap,
    order_id: int,
    *,
    workers: Sequence[str],
    since: int,
    echo: Echo,
) -> Journey:
    """Read the order's journey: Shopify first (what it says decides what is owed), then the
    workers, then Sitoo's ledger from ``since`` (Unix seconds)."""
    shopify = ShopifyClient(ShopifyConfig.from_settings(settings))
    sitoo = SitooClient(SitooConfig.from_settings(settings))
    try:
        echo(f"reading order {order_id} from Shopify...")
        state = await shopify.order_fulfilment_state(order_id)
        echo("asking the workers for their track of it...")
        track = await _worker_track(order_id, workers, settings.state_auth_headers)
        if state is None:
            return Journey(order_id, None, {}, track, ())
        wanted = [c[0] for c in candidate_bookings(state, locations)]
        booked: dict[str, int] = {}
        if wanted:
            days = (time.time() - since) / 86400
            echo(f"scanning Sitoo's ledger of the last {days:.1f} days for its Move Outs...")
            booked = await sitoo.find_transactions_by_externalid(since, wanted)
        if not settings.pickups_to_sitoo:
            # no Sitoo order is made of a pickup: it leaves Sitoo through its Move Outs
            return Journey(
                order_id,
                state,
                derive(state, locations),
                track,
                bookings(state, locations, booked),
            )
        tracked: dict[str, Any] = (track.track.get("pickups") or {}) if track else {}
        methods = settings.sitoo_order_methods
        committed = {_current(w, tracked) for w in pickups.wanted(state, locations, methods)}
        known = set(tracked) | {
            pickups.externalid(fo.id, fo.location_id)
            for fo in state.fulfilment_orders
            if fo.method in methods
            and fo.location_id is not None
            and locations.by_shopify(fo.location_id) is not None
        }
        names = sorted(committed | known)
        found = {o.externalid: o for o in await sitoo.orders_by_externalid(names)} if names else {}
        made = tuple(
            SitooPickup(
                ext,
                ext in committed,
                found[ext].orderid if ext in found else None,
                _STATES.get(found[ext].orderstateid, str(found[ext].orderstateid))
                if ext in found
                else "",
            )
            for ext in names
        )
        return Journey(
            order_id,
            state,
            derive(state, locations),
            track,
            bookings(state, locations, booked),
            made,
        )
    finally:
        await shopify.aclose()
        await sitoo.aclose()


def _current(w: pickups.Wanted, tracked: dict[str, Any]) -> str:
    """The externalid a pickup committed now should have: its newest generation the worker
    asked for, or the first."""
    generation = max(
        (
            int(t.get("generation", 1))
            for t in tracked.values()
            if t.get("fulfilment_order_id") == w.fulfilment_order_id
            and t.get("location_id") == w.location_id
        ),
        default=1,
    )
    return pickups.externalid(w.fulfilment_order_id, w.location_id, generation)


def _where(locations: LocationMap, location_id: int | None) -> str:
    if location_id is None:
        return "no location"
    loc = locations.by_shopify(location_id)
    return f"{loc.name} ({location_id})" if loc else f"unmapped location {location_id}"


def describe(journey: Journey, locations: LocationMap) -> list[str]:
    """The journey as lines of text, Shopify, then tillsync, then Sitoo."""
    out = [f"order {journey.order_id}"]
    state = journey.shopify
    out.append("  Shopify")
    if state is None:
        out.append("    no such order")
    else:
        for fo in state.fulfilment_orders:
            lines = ", ".join(f"{ln.sku or '(no SKU)'} x{ln.remaining}" for ln in fo.lines)
            out.append(
                f"    fulfilment order {fo.id} {fo.status} at {_where(locations, fo.location_id)}"
                f": remaining {lines or 'nothing'}"
            )
        for f in state.fulfilments:
            lines = ", ".join(f"{ln.sku or '(no SKU)'} x{ln.quantity}" for ln in f.lines)
            out.append(
                f"    fulfilment {f.id} {f.status} from {_where(locations, f.location_id)}: "
                f"{lines or 'no lines'}"
            )
        if not state.fulfilment_orders and not state.fulfilments:
            out.append("    no fulfilment orders")
    out.append("  tillsync")
    for held in journey.should_hold.values():
        fulfilled = sum(held.fulfilled.values())
        out.append(
            f"    should hold {held.sku} at {_where(locations, held.location_id)}: "
            f"{held.open} open, {fulfilled} fulfilled until Sitoo books them"
        )
    if journey.track is None:
        out.append("    no worker named knows this order (not received, or ask every worker)")
    else:
        t = journey.track.track
        held_at = ", ".join(f"{sku}@{loc}" for sku, loc in t.get("held_at", [])) or "nothing"
        out.append(
            f"    worker {journey.track.url}: version {t.get('version')}, holds at {held_at}; "
            f"Move Outs sent for {t.get('moved_out') or 'none'}, reversals "
            f"{t.get('reversed') or 'none'}"
        )
        if t.get("failed_reads"):
            out.append(
                f"    its reads of Shopify failed {t['failed_reads']} times in a row; "
                f"the next at {time.strftime('%H:%M:%S', time.localtime(t['retry_at']))}"
            )
        else:
            read = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t.get("read_at") or 0))
            out.append(
                f"    read last {read}; "
                f"{'read again by the sweep' if t.get('holding') else 'settled'}"
            )
    out.append("  Sitoo")
    for b in journey.bookings:
        kind = "reversal" if b.reversal else "Move Out"
        tx = f" (transaction {b.transaction_id})" if b.transaction_id is not None else ""
        out.append(
            f"    {kind} {b.external_id} at {_where(locations, b.location_id)}: {b.verdict}{tx}"
        )
    if not journey.bookings:
        out.append("    nothing owed: no fulfilment from a mapped store")
    for p in journey.pickups:
        order = f"order {p.sitoo_order_id}" if p.sitoo_order_id is not None else "no order"
        out.append(f"    pickup {p.externalid}: {order}, {p.verdict}")
    return out


def problems(journey: Journey) -> list[str]:
    """What is wrong with the journey, if anything: what the command's exit code says."""
    out = [
        f"{b.external_id} is owed but not in Sitoo"
        for b in journey.bookings
        if b.owed and b.transaction_id is None
    ]
    out += [
        f"{b.external_id} is in Sitoo but not owed"
        for b in journey.bookings
        if not b.owed and b.transaction_id is not None
    ]
    out += [
        f"pickup {p.externalid}: {p.verdict}"
        for p in journey.pickups
        if p.verdict not in ("open", "closed", "cancelled", "not in Sitoo")
    ]
    return out
