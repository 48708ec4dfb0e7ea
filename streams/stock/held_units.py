"""Held units of one online order, derived in full from its fulfilment state in Shopify.

Held units are the units Shopify has taken out of `available` at a mapped store for an order
and that Sitoo does not account for yet. They are never patched by deltas: every order,
fulfilment-order, fulfilment and refund webhook, and a periodic sweep, reads the order's whole
fulfilment state again (``OrderFulfilmentState``) and ``derive`` turns it into one
``HeldUnits`` record per (SKU, location), built from the order's lines:

- ``open``: units on the order's fulfilment orders at that location that are not closed or
  cancelled, not yet fulfilled (``remainingQuantity``). A refund that restocks (CANCEL), an
  edit, a cancel, a move, a split or a merge all show here as Shopify's own new numbers.
- ``fulfilled``, per fulfilment: units a fulfilment from that location took out of Shopify's
  stock (success, or still pending). Sitoo learns of them from the fulfilment's Move Out.

How a Move Out and the held units meet (one rule, in ``Position``): per order and fulfilment
the position books what Sitoo's ledger took out under that fulfilment's externalid, and holds

    held = open + sum over fulfilments (fulfilled - booked)

so a store that fulfilled before the first read is never subtracted twice (the units are in
``fulfilled`` until their Move Out is booked, then in neither), and a cancel after a partial
fulfilment keeps the fulfilled units held until their Move Out lands. A fulfilment cancelled
after its Move Out was booked has ``fulfilled`` 0 and ``booked`` n: it holds -n (Sitoo already
lost units Shopify has back) until the reversing Move In lands.

The lines of one SKU at one location are summed: the record is derived from one complete read,
so two lines of one SKU can no longer overwrite each other, and Sitoo books Move Outs per SKU,
not per line. A pickup fulfilment order at a mapped store becomes a Sitoo order there
(``tillsync.streams.stock.pickups``), which reserves its units: they would count twice, held
here and reserved there. So its remaining units are marked ``in_sitoo`` from the time Sitoo
confirmed the order made, and the position leaves them out of its pending units once its own
reading of Sitoo's reserved quantity is newer than that (``Position.pending_units``). A pickup
fulfilled in Shopify leaves Sitoo through a Move Out, as any store fulfilment does, and its Sitoo
order is cancelled (its reservation let go).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field

from tillsync.connectors.shopify.fulfilment_state import (
    FulfilmentLine,
    FulfilmentState,
    OrderFulfilmentState,
)
from tillsync.schemas.events import HeldUnits
from tillsync.schemas.locations import LocationMap
from tillsync.schemas.sitoo import WarehouseTransactionIn, WarehouseTransactionItemIn
from tillsync.streams.stock.refs import fulfilment_external_id, reversal_external_id

MOVE_IN = 10  # Sitoo transactiontype "Move In" (sitoo-api.md: from the example description)
MOVE_OUT = 20  # Sitoo transactiontype "Move Out"

# fulfilment order states whose remaining units are no longer committed anywhere
NOT_COMMITTING = frozenset({"CLOSED", "CANCELLED"})
# fulfilment states whose units have left Shopify's stock at the location
TAKING = frozenset({"SUCCESS", "PENDING", "OPEN"})
# the fulfilment state a Move Out is written for: the goods have left the store
DONE = "SUCCESS"


@dataclass(slots=True)
class HeldAt:
    """What one order holds of one SKU at one location."""

    sku: str
    location_id: int
    open: int = 0
    fulfilled: dict[int, int] = field(default_factory=dict)
    in_sitoo: int = 0  # of `open`, what the order's Sitoo pickup orders here reserve
    in_sitoo_since: float = 0.0
    took: int = 0  # what a pickup's handover here took through Sitoo's own sale
    took_since: float = 0.0  # Sitoo's delivery time (its ledger's clock)

    @property
    def empty(self) -> bool:
        return self.open == 0 and not any(self.fulfilled.values())

    def record(self, order_id: int, version: int, at: float) -> HeldUnits:
        return HeldUnits(
            sku=self.sku,
            location_id=self.location_id,
            order_id=order_id,
            version=version,
            open=self.open,
            fulfilled={str(f): n for f, n in self.fulfilled.items() if n},
            at=at,
            in_sitoo=self.in_sitoo,
            in_sitoo_since=self.in_sitoo_since,
            took=self.took,
            took_since=self.took_since,
        )


def held_key(sku: str, location_id: int) -> str:
    return f"{sku}@{location_id}"


def sitoo_covered(
    state: OrderFulfilmentState,
    locations: LocationMap,
    taken: Mapping[tuple[str, int], int],
) -> tuple[dict[tuple[int, str], int], dict[tuple[str, int], int]]:
    """Which fulfilled units Sitoo's pickup handovers account for: ((fulfilment, SKU) ->
    units, and (SKU, location) -> what is left over for units still open in Shopify). Sitoo
    delivered them through its own sale, so they hold nothing and get no Move Out. Given to
    the fulfilments at that store in the order Shopify made them, so every caller agrees."""
    left = dict(taken)
    covered: dict[tuple[int, str], int] = {}
    for f in sorted(state.fulfilments, key=lambda f: f.id):
        if f.status not in TAKING or f.location_id is None:
            continue
        if locations.by_shopify(f.location_id) is None:
            continue
        for sku, units in _units_by_sku(f).items():
            n = min(units, left.get((sku, f.location_id), 0))
            if n > 0:
                covered[(f.id, sku)] = n
                left[(sku, f.location_id)] -= n
    return covered, left


def derive(
    state: OrderFulfilmentState,
    locations: LocationMap,
    in_sitoo: Mapping[int, float] | None = None,
    taken: Mapping[tuple[str, int], tuple[int, float]] | None = None,
) -> dict[str, HeldAt]:
    """The order's held units per (SKU, mapped location), keyed by ``held_key``; pairs that
    hold nothing now are left out. ``in_sitoo``: fulfilment order id -> since when a Sitoo
    pickup order at its location reserves its remaining units; ``taken``: (SKU, location) ->
    units Sitoo's pickup handovers delivered and Sitoo's time of it
    (``tillsync.streams.stock.pickups``): they stay in ``open`` and ``fulfilled`` as Shopify
    counts them, and ``took`` tells the position to hold them no more once its ledger has the
    sale (before, Sitoo's total still counts them: letting go then would offer them twice)."""
    in_sitoo = in_sitoo or {}
    taken = taken or {}
    covered, left = sitoo_covered(state, locations, {k: n for k, (n, _) in taken.items()})
    out: dict[str, HeldAt] = {}

    def at(sku: str, location_id: int) -> HeldAt:
        key = held_key(sku, location_id)
        if key not in out:
            out[key] = HeldAt(sku=sku, location_id=location_id)
        return out[key]

    for fo in state.fulfilment_orders:
        if fo.status in NOT_COMMITTING:
            continue
        if fo.location_id is None or locations.by_shopify(fo.location_id) is None:
            continue  # an unmapped location: Sitoo never counted these units
        since = in_sitoo.get(fo.id)
        for line in fo.lines:
            if line.sku and line.remaining > 0:
                held = at(line.sku, fo.location_id)
                held.open += line.remaining
                if since is not None:
                    held.in_sitoo += line.remaining
                    held.in_sitoo_since = max(held.in_sitoo_since, since)
    for f in state.fulfilments:
        if f.status not in TAKING or f.location_id is None:
            continue
        if locations.by_shopify(f.location_id) is None:
            continue
        for sku, units in _units_by_sku(f).items():
            held = at(sku, f.location_id)
            held.fulfilled[f.id] = held.fulfilled.get(f.id, 0) + units
    # what Sitoo's sale took: its fulfilments here (never booked: no Move Out), then what is
    # still open in Shopify (delivered at the till, not fulfilled in Shopify yet)
    for (sku, loc), (_, since) in taken.items():
        held_here = out.get(held_key(sku, loc))
        if held_here is None:
            continue
        of_fulfilled = sum(
            n for (fid, s), n in covered.items() if s == sku and fid in held_here.fulfilled
        )
        held_here.took = of_fulfilled + min(left.get((sku, loc), 0), held_here.open)
        held_here.took_since = since
    return {key: held for key, held in out.items() if not held.empty}


def _units_by_sku(f: FulfilmentState) -> dict[str, int]:
    units: dict[str, int] = {}
    for line in f.lines:
        if line.sku and line.quantity > 0:
            units[line.sku] = units.get(line.sku, 0) + line.quantity
    return units


def _transaction(
    f: FulfilmentState,
    warehouse_id: int,
    sign: int,
    kind: int,
    external_id: str,
    why: str,
    covered: Mapping[tuple[int, str], int] | None = None,
) -> WarehouseTransactionIn | None:
    # one item per SKU: Sitoo's ledger stamps every item of a transaction with one id, and a
    # second item of a SKU would look like a replay of the first. Units a pickup handover
    # delivered in Sitoo are out of its stock already: left out
    covered = covered or {}
    items = [
        WarehouseTransactionItemIn(sku=sku, decimalquantity=f"{sign * (n - left)}.000")
        for sku, n in _units_by_sku(f).items()
        if (left := covered.get((f.id, sku), 0)) < n
    ]
    if not items:
        return None
    return WarehouseTransactionIn(
        warehouseid=warehouse_id,
        transactiontype=kind,
        items=items,
        description=why,
        externalid=external_id,
    )


def move_outs(
    state: OrderFulfilmentState,
    locations: LocationMap,
    done: Collection[int],
    name: str,
    taken: Mapping[tuple[str, int], int] | None = None,
    waiting_at: Collection[int] = (),
) -> Iterator[tuple[int, WarehouseTransactionIn]]:
    """(fulfilment id, Move Out) for each successful fulfilment from a mapped store not in
    `done` (those whose Move Out was sent already), pickups included, less the units Sitoo's
    pickup handovers delivered themselves (``taken``): a fulfilment of only those has none.
    None yet at a location in ``waiting_at``: a pickup there may be Sitoo's to hand over, and
    whether these units left through Sitoo is not known yet (``pickups.awaiting_sitoo``)."""
    covered, _ = sitoo_covered(state, locations, taken or {})
    for f in state.fulfilments:
        loc = locations.by_shopify(f.location_id or 0)
        if loc is None or f.status != DONE or f.id in done or f.location_id in waiting_at:
            continue
        tx = _transaction(
            f,
            loc.sitoo_warehouse_id,
            -1,
            MOVE_OUT,
            fulfilment_external_id(state.order_id, f.id),
            f"Shopify order {name} fulfilled from store",
            covered,
        )
        if tx is not None:
            yield f.id, tx


def reversals(
    state: OrderFulfilmentState,
    locations: LocationMap,
    moved_out: Collection[int],
    reversed_: Collection[int],
    name: str,
) -> Iterator[tuple[int, WarehouseTransactionIn]]:
    """(fulfilment id, Move In) for each fulfilment whose Move Out was sent and that Shopify
    now says did not take place (cancelled, failed): its units are back in Shopify's stock and
    must come back in Sitoo's."""
    for f in state.fulfilments:
        if f.id not in moved_out or f.id in reversed_ or f.status in TAKING:
            continue
        loc = locations.by_shopify(f.location_id or 0)
        if loc is None:
            continue
        tx = _transaction(
            f,
            loc.sitoo_warehouse_id,
            1,
            MOVE_IN,
            reversal_external_id(state.order_id, f.id),
            f"Shopify order {name}: fulfilment {f.id} cancelled",
        )
        if tx is not None:
            yield f.id, tx


def fulfilment_in_webhook(body: bytes, order_id: int) -> OrderFulfilmentState | None:
    """The one fulfilment a ``fulfillments/create|update`` body tells of, as a state of its
    order holding only it; None for a body of another shape or order.

    What a fulfilment took from a store is in its webhook: its Move Out (or, once cancelled,
    the reversal) needs no read of Shopify, so it reaches Sitoo while Shopify is down. What the
    order still holds is read from Shopify all the same: the body says nothing of the rest."""
    try:
        doc = json.loads(body)
        if int(doc["order_id"]) != order_id:
            return None
        lines = tuple(
            FulfilmentLine(sku=str(li.get("sku") or ""), quantity=int(li["quantity"]))
            for li in doc["line_items"]
        )
        location = doc.get("location_id")
        fulfilment = FulfilmentState(
            id=int(doc["id"]),
            status=str(doc["status"]).upper(),
            location_id=int(location) if location is not None else None,
            lines=lines,
        )
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return OrderFulfilmentState(order_id=order_id, fulfilment_orders=(), fulfilments=(fulfilment,))
