"""Online orders through their whole life, played step by step beside the store mix.

The Driver's online orders are one unit of one SKU, shipped whole. tillsync derives the units an
order holds at a store from the order's whole fulfilment state (README, "Held units"), so what
can go wrong lies in the shapes and turns the Driver never takes: several lines, two lines of
one SKU, quantities above one, more than ten lines, partial fulfilments, cancels before and
after one, refunds before fulfilment with and without restock, fulfilment orders moved between
stores and to a location no store is mapped to, pickups, and fulfilments cancelled after their
Move Out. ``OrderLife`` places orders of each of those shapes, each with a plan (the steps it
will go through), and advances one order by one step per call, so that many orders are in
flight at once and their webhooks interleave, as in a shop.

It also judges every order as it is placed, as ``bench/oversell.py`` does: a unit is oversold
when Sitoo had no unit free for it at that store, Sitoo's available less the units earlier
online orders hold there (Shopify's committed: not yet shipped, cancelled, refunded with
restock or moved away; plus units shipped whose Move Out Sitoo has not booked yet, less units
of a cancelled fulfilment whose reversal it has not booked yet).

Shopify's order edits (``orderEditBegin`` ... ``orderEditCommit``) are not simulated, so there
are no edited orders here; a refund with restock type CANCEL moves stock as an edit that takes
units off a line does.

``Player`` plays the Driver's store mix, an ``OrderLife`` and Sitoo till sales of two lines of
one SKU together at a rate, from one seed.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from tillsync.schemas.sitoo import ORDER_CLOSED
from tillsync_sim.scenario.driver import Driver, pickup_in_sitoo
from tillsync_sim.scenario.network import Network
from tillsync_sim.shopify import ShopifySimulator
from tillsync_sim.shopify.model import Fulfillment, FulfillmentOrder, Order
from tillsync_sim.shopify.state import CartPart
from tillsync_sim.sitoo import SitooSimulator

# The steps an order goes through after it is placed, by plan; the weights say how often each
# plan is chosen. Every plan ends with the order closed, cancelled or moved away, except "open",
# which holds its units to the end of the run.
PLANS: dict[str, tuple[str, ...]] = {
    "ship": ("fulfil",),
    "partial_then_rest": ("fulfil_part", "fulfil"),
    "cancel_before_fulfilment": ("cancel",),
    "partial_then_cancel": ("fulfil_part", "cancel"),
    "refund_restock_then_ship": ("refund_restock", "fulfil"),
    "refund_no_restock_then_ship": ("refund_no_restock", "fulfil"),
    "move_to_store_then_ship": ("move_to_store", "fulfil"),
    "partial_then_move_unmapped": ("fulfil_part", "move_unmapped", "fulfil"),
    "move_unmapped_then_ship": ("move_unmapped", "fulfil"),
    "pickup": ("prepare_for_pickup", "fulfil"),
    # at the store, through the Sitoo order tillsync made: staff mark it ready, the customer
    # collects it (or never comes, and the order is cancelled in Shopify)
    "pickup_in_store": ("ready_in_sitoo", "collect_in_sitoo"),
    "pickup_rejected": ("reject_in_sitoo", "cancel"),
    # paid at the till when collected (checkout took no money): tillsync marks it paid
    "pickup_paid_in_store": ("ready_in_sitoo", "collect_paid_in_sitoo"),
    # the customer takes one unit and leaves the rest, which e-commerce then refunds (restock)
    "pickup_partly_collected": ("ready_in_sitoo", "collect_part_in_sitoo", "refund_rest"),
    # one order: picked up at one store, shipped from another (a fulfilment order each)
    "mixed_cart": ("ready_in_sitoo", "collect_in_sitoo", "ship_in_sitoo"),
    # ship-from-store through the Sitoo order tillsync made: staff ship it in Sitoo, whole or
    # in two parcels, and tillsync fulfils it in Shopify with the tracking
    "ship_in_sitoo": ("ship_in_sitoo",),
    "ship_in_parcels": ("ship_part_in_sitoo", "ship_in_sitoo"),
    "fulfilment_cancelled": ("fulfil", "cancel_fulfilment", "fulfil"),
    "more_than_ten_lines": ("fulfil_part", "fulfil"),
    "open_to_the_end": (),
}
WEIGHTS: dict[str, float] = {
    "ship": 20,
    "partial_then_rest": 10,
    "cancel_before_fulfilment": 6,
    "partial_then_cancel": 6,
    "refund_restock_then_ship": 6,
    "refund_no_restock_then_ship": 5,
    "move_to_store_then_ship": 8,
    "partial_then_move_unmapped": 4,
    "move_unmapped_then_ship": 3,
    "pickup": 4,
    "pickup_in_store": 8,
    "pickup_rejected": 2,
    "pickup_paid_in_store": 3,
    "pickup_partly_collected": 3,
    "mixed_cart": 4,
    "ship_in_sitoo": 8,
    "ship_in_parcels": 4,
    "fulfilment_cancelled": 6,
    "more_than_ten_lines": 5,
    "open_to_the_end": 3,
}
# plans whose first step fulfils part of the order: it needs two units at least
NEEDS_TWO_UNITS = frozenset(
    {
        "partial_then_rest",
        "partial_then_cancel",
        "partial_then_move_unmapped",
        "more_than_ten_lines",
        "ship_in_parcels",
        "pickup_partly_collected",
    }
)
# steps store staff take on the Sitoo order tillsync made of a pickup: without tillsync
# running there is none, and they wait
IN_STORE = frozenset(
    {
        "ready_in_sitoo",
        "collect_in_sitoo",
        "collect_paid_in_sitoo",
        "collect_part_in_sitoo",
        "reject_in_sitoo",
    }
)
# the same for a shipment's Sitoo order (ship-from-store through Sitoo)
SHIPPED_IN_STORE = frozenset({"ship_in_sitoo", "ship_part_in_sitoo"})
# steps that move no stock anywhere: not stock events
STOCK_NEUTRAL = frozenset(
    {"prepare_for_pickup", "refund_no_restock", "ready_in_sitoo", "reject_in_sitoo"}
)
OPEN_STATES = ("OPEN", "IN_PROGRESS")
UNMAPPED_STOCK = 1_000  # what the unmapped location has of a SKU when an order first moves there


@dataclass
class _Life:
    order_id: int
    plan: str
    steps: list[str]


@dataclass(frozen=True)
class Oversell:
    """One SKU of an order placed with fewer units free in Sitoo than it took."""

    at: float  # time.monotonic()
    window: str
    order_id: int
    location_id: int
    sku: str
    units: int
    oversold: int
    free: int  # Sitoo's free units there when the order was placed
    shopify_available: int
    # seconds since Sitoo last changed the SKU's stock at that store, at most (Sitoo stamps a
    # change in whole seconds): an oversell this soon after a till sale is the race no sync
    # can win, one long after it is a level tillsync left wrong
    since_sitoo_change: float
    # seconds since staff last edited the level in the Shopify admin: an edit up is drift
    # tillsync undoes, and an order in the moment before it does is the same race
    since_staff_edit: float = float("inf")


@dataclass(frozen=True)
class _Pending:
    """A Move Out (sign 1) or its reversal (sign -1) Sitoo has not booked yet."""

    location_id: int
    units: Counter[str]
    sign: int


class OrderLife:
    """Places online orders of every shape and advances them one step per ``step()``."""

    def __init__(
        self,
        network: Network,
        shopify: ShopifySimulator,
        sitoo: SitooSimulator,
        *,
        seed: int = 23,
        target_open: int = 60,
        window: Callable[[], str] = lambda: "normal",
        in_store: bool = True,
        ship_from_store: bool = False,
    ) -> None:
        """``target_open``: orders kept in flight (an order is placed whenever fewer are);
        ``in_store``: play pickups at the till through tillsync's Sitoo order;
        ``ship_from_store``: play shipments shipped in Sitoo through tillsync's Sitoo order
        (``ship_from_store_to_sitoo``);
        ``window``: the name of the time the run is in ("normal", "shopify_outage", ...),
        under which an oversell is counted."""
        self.network = network
        self.shopify = shopify
        self.sitoo = sitoo
        self.rng = random.Random(seed)
        self.target_open = target_open
        self.window = window
        self.unmapped = shopify.state.add_location("Pop-up (not mapped)").id
        self._stores = {s.shopify_location_id: s for s in network.stores}
        self._active: list[_Life] = []
        self._kept: list[int] = []  # orders of plan "open_to_the_end"
        self.done: Counter[str] = Counter()  # steps taken, by name
        self.placed: Counter[str] = Counter()  # orders placed, by plan
        self.shapes: Counter[str] = Counter()  # orders placed, by shape
        self.oversold: Counter[str] = Counter()  # units, by window
        self.oversells: list[Oversell] = []
        # every Move Out (and reversal) tillsync must book in Sitoo, by externalid
        self.expected_move_outs: set[str] = set()
        # order id -> its plan and the steps taken, each with the run's window then: what a
        # failure's diagnosis prints for the orders at a position that ended wrong
        self.history: dict[int, list[str]] = {}
        self._pending: dict[str, _Pending] = {}
        self._unbooked: Counter[tuple[int, str]] = Counter()
        self._booked: set[str] = set()
        self._ledger_cursor = 1
        # orders whose checkout only authorised the card (every other pickup collected at the
        # till): tillsync captures at the handover
        self.authorised: set[int] = set()
        # orders paid at the till when collected: tillsync marks them paid in Shopify
        self.paid_in_store: set[int] = set()
        # the plans whose steps at the store need tillsync's Sitoo order of the pickup are
        # left out when tillsync does not make one (``pickups_to_sitoo`` off)
        self._plans = [
            p
            for p in WEIGHTS
            if (in_store or not set(PLANS[p]) & IN_STORE)
            and (ship_from_store or not set(PLANS[p]) & SHIPPED_IN_STORE)
        ]
        self._weights = [WEIGHTS[p] for p in self._plans]
        self._acts: dict[str, Callable[[Order], bool | None]] = {
            "fulfil": self._fulfil,
            "fulfil_part": self._fulfil_part,
            "cancel": self._cancel,
            "refund_restock": lambda o: self._refund(o, "cancel"),
            "refund_no_restock": lambda o: self._refund(o, "no_restock"),
            "move_to_store": self._move_to_store,
            "move_unmapped": self._move_unmapped,
            "prepare_for_pickup": self._prepare_for_pickup,
            "ready_in_sitoo": lambda o: self._in_store(o, "ready"),
            "collect_in_sitoo": lambda o: self._in_store(o, "collect"),
            "collect_paid_in_sitoo": lambda o: self._in_store(o, "collect_paid"),
            "collect_part_in_sitoo": lambda o: self._in_store(o, "collect_part"),
            "refund_rest": self._refund_rest,
            "reject_in_sitoo": lambda o: self._in_store(o, "reject"),
            "ship_in_sitoo": lambda o: self._in_store(o, "ship"),
            "ship_part_in_sitoo": lambda o: self._in_store(o, "ship_part"),
            "cancel_fulfilment": self._cancel_fulfilment,
        }

    # -- what is open ----------------------------------------------------------------------

    @property
    def open_orders(self) -> int:
        return len(self._active) + len(self._kept)

    @property
    def pending_move_outs(self) -> int:
        """Move Outs and reversals due that Sitoo has not booked yet."""
        return len(self.owed())

    def owed(self) -> set[str]:
        """The externalids of the Move Outs and reversals due that Sitoo has not booked yet."""
        self._sync_ledger()
        return set(self._pending)

    def _sync_ledger(self) -> None:
        """Take the Move Outs Sitoo has booked since the last look off the pending ones."""
        fresh = self.sitoo.state.transactions_from(self._ledger_cursor)
        self._ledger_cursor += len(fresh)
        for t in fresh:
            ext = t.externalid or ""
            if not ext.startswith("sf-"):
                continue
            self._booked.add(ext)
            pending = self._pending.pop(ext, None)
            if pending is not None:
                for sku, units in pending.units.items():
                    self._unbooked[(pending.location_id, sku)] -= pending.sign * units

    def free(self, location_id: int, sku: str) -> int:
        """Units of ``sku`` at the store no online order holds: what tillsync should show,
        before the buffer."""
        self._sync_ledger()
        store = self._stores[location_id]
        item = self.sitoo.state.stock[store.sitoo_warehouse_id].get(sku)
        available = int(item.available) if item is not None else 0
        return available - self._committed(sku, location_id) - self._unbooked[(location_id, sku)]

    def _since_sitoo_change(self, location_id: int, sku: str) -> float:
        """Seconds since Sitoo last changed ``sku``'s stock at the store, rounded up to
        Sitoo's whole-second stamp (never less than the truth); infinite if it never has."""
        state = self.sitoo.state
        item = state.stock[self._stores[location_id].sitoo_warehouse_id].get(sku)
        if item is None:
            return float("inf")
        return state.clock() - item.datelastmodified

    def _since_staff_edit(self, location_id: int, sku: str) -> float:
        state = self.shopify.state
        edited = state.staff_edited.get((state.item_for(sku).id, location_id))
        return float("inf") if edited is None else time.monotonic() - edited

    def uncaptured(self) -> list[int]:
        """Authorised orders handed over at the till in full whose card was not captured."""
        return self._handed_over_owing(
            self.authorised, "collect_in_sitoo", lambda o: o.capturable() > 0
        )

    def unpaid(self) -> list[int]:
        """Orders paid at the till when collected, handed over in full, that Shopify still
        has unpaid."""
        return self._handed_over_owing(
            self.paid_in_store, "collect_paid", lambda o: o.financial_status != "paid"
        )

    def _handed_over_owing(
        self, order_ids: set[int], collect_step: str, owing: Callable[[Order], bool]
    ) -> list[int]:
        """Of ``order_ids``, those collected at the till (``collect_step``) with every
        fulfilment order closed that still ``owing`` something in Shopify."""
        state = self.shopify.state
        out = []
        for order_id in sorted(order_ids):
            order = state.orders[order_id]
            fos = [state.fulfillment_orders[i] for i in order.fulfillment_order_ids]
            collected = any(step.startswith(collect_step) for step in self.history[order_id])
            if collected and all(fo.status == "CLOSED" for fo in fos) and owing(order):
                out.append(order_id)
        return out

    def _level(self, sku: str, location_id: int) -> tuple[int, int]:
        state = self.shopify.state
        level = state.levels.get((state.item_for(sku).id, location_id))
        return (level.get("available"), level.get("committed")) if level else (0, 0)

    def _committed(self, sku: str, location_id: int) -> int:
        """Shopify's committed units there that Sitoo does not account for itself through
        their pickup order (reserved, or handed over): those are out of its available already."""
        in_sitoo = pickup_in_sitoo(self.network, self.shopify, self.sitoo)[(sku, location_id)]
        return self._level(sku, location_id)[1] - in_sitoo

    # -- playing ---------------------------------------------------------------------------

    def step(self) -> str | None:
        """Place an order when fewer than ``target_open`` can take a step (an order waiting
        for Sitoo to book a Move Out cannot), else take the next step of one of them. Returns
        the step's name, None when nothing could be done."""
        self._sync_ledger()
        ready = [life for life in self._active if not self._waiting(life)]
        if len(ready) < self.target_open:
            placed = self.place()
            if placed is not None:
                return placed
        for _ in range(10):
            if not ready:
                return None
            life = ready.pop(self.rng.randrange(len(ready)))
            while life.steps:
                outcome = self._advance(life)
                if outcome is None:  # not now: another order
                    break
                if outcome:
                    if not life.steps:
                        self._active.remove(life)
                    self.done[outcome] += 1
                    return outcome
                # "": the step has nothing left to act on; go on with the next
            if not life.steps:
                self._active.remove(life)
        return None

    def _waiting(self, life: _Life) -> bool:
        """The order's next step cannot happen yet: a step at the store on a Sitoo order
        tillsync has not made yet, or the cancel of a fulfilment whose Move Out is not booked
        yet. Such an order does not count among those open to take a step."""
        if life.steps and life.steps[0] in IN_STORE | SHIPPED_IN_STORE:
            step = "ship" if life.steps[0] in SHIPPED_IN_STORE else None
            order = self.shopify.state.order(life.order_id)
            return self._in_store(order, step, only_ask=True) is None
        if not life.steps or life.steps[0] != "cancel_fulfilment":
            return False
        last = self._last_store_fulfilment(self.shopify.state.order(life.order_id))
        return last is not None and f"sf-{life.order_id}-{last.id}" not in self._booked

    def _advance(self, life: _Life) -> str | None:
        """One step of one order: its name when done, "" when there was nothing for it to do
        (dropped), None when it cannot happen yet (kept)."""
        name = life.steps[0]
        did = self._acts[name](self.shopify.state.order(life.order_id))
        if did is None:
            return None
        life.steps.pop(0)
        self.history.setdefault(life.order_id, []).append(
            f"{name}{'' if did else ' (nothing to do)'} [{self.window()}]"
        )
        return name if did else ""

    # -- placing ---------------------------------------------------------------------------

    def place(self) -> str | None:
        """Place one order of a random plan at a random store, of SKUs Shopify shows there (a
        mixed cart: picked up at one store, shipped from another)."""
        plan = self.rng.choices(self._plans, self._weights)[0]
        store = self.rng.choice(self.network.stores)
        loc = store.shopify_location_id
        lines = self._draft(plan, loc)
        if lines is None:
            return None
        if plan != "mixed_cart":
            self.place_lines(plan, loc, lines)
            return "place"
        other = self.rng.choice([s for s in self.network.stores if s is not store])
        shipped = self._draft(plan, other.shopify_location_id)
        if shipped is None:
            return None
        self.place_parts(
            plan,
            [
                CartPart(tuple(lines), loc, "PICK_UP"),
                CartPart(tuple(shipped), other.shopify_location_id, "SHIPPING"),
            ],
        )
        return "place"

    def place_lines(self, plan: str, location_id: int, lines: list[tuple[str, int]]) -> Order:
        """Place an order of these (SKU, quantity) lines at a store, judge it for oversells
        and give it the steps of ``plan``."""
        delivery = "PICK_UP" if plan.startswith("pickup") else "SHIPPING"
        return self.place_parts(plan, [CartPart(tuple(lines), location_id, delivery)])

    def place_parts(self, plan: str, parts: list[CartPart]) -> Order:
        """Place an order of one fulfilment order per part, judge each unit for oversells at
        its part's store and give the order the steps of ``plan``."""
        units: Counter[tuple[int, str]] = Counter()
        for part in parts:
            for sku, qty in part.lines:
                units[(part.location_id, sku)] += qty
        judged = [
            (
                location_id,
                sku,
                n,
                self.free(location_id, sku),
                self._level(sku, location_id)[0],
                self._since_sitoo_change(location_id, sku),
                self._since_staff_edit(location_id, sku),
            )
            for (location_id, sku), n in units.items()
        ]
        # no draw from the seed: the rest of the run stays as it was
        authorised = plan == "pickup_in_store" and self.placed[plan] % 2 == 0
        status = "authorized" if authorised else "paid"
        if plan == "pickup_paid_in_store":
            status = "pending"  # the till takes the money
        order = self.shopify.state.place_mixed_order(parts, financial_status=status)
        if authorised:
            self.authorised.add(order.id)
        if plan == "pickup_paid_in_store":
            self.paid_in_store.add(order.id)
        window = self.window()
        for location_id, sku, n, free, shown, since, edited in judged:
            over = max(0, n - max(0, free))
            if over:
                self.oversold[window] += over
                self.oversells.append(
                    Oversell(
                        time.monotonic(),
                        window,
                        order.id,
                        location_id,
                        sku,
                        n,
                        over,
                        free,
                        shown,
                        since,
                        edited,
                    )
                )
        self.placed[plan] += 1
        self.history[order.id] = [
            f"placed ({plan}) "
            + "; ".join(f"{p.delivery} {list(p.lines)} at {p.location_id}" for p in parts)
            + f" [{window}]"
        ]
        self._shape([line for p in parts for line in p.lines])
        if plan == "open_to_the_end":
            self._kept.append(order.id)
        else:
            self._active.append(_Life(order.id, plan, list(PLANS[plan])))
        self.done["place"] += 1
        return order

    def _draft(self, plan: str, loc: int) -> list[tuple[str, int]] | None:
        """The lines of an order the storefront would take: every unit shown available."""
        n = (
            self.rng.randint(11, 14)
            if plan == "more_than_ten_lines"
            else self.rng.choice([1, 1, 2, 2, 3, 4])
        )
        taken: Counter[str] = Counter()
        lines: list[tuple[str, int]] = []

        def shown(sku: str) -> int:
            return self._level(sku, loc)[0] - taken[sku]

        for _ in range(n * 3):
            if len(lines) == n:
                break
            sku = self.rng.choice(self.network.skus)
            qty = self.rng.choices([1, 2, 3], [75, 18, 7])[0]
            if shown(sku) >= qty:
                lines.append((sku, qty))
                taken[sku] += qty
        if not lines or (plan == "more_than_ten_lines" and len(lines) <= 10):
            return None
        if self.rng.random() < 0.15:  # the same SKU again, on a line of its own
            sku = self.rng.choice(lines)[0]
            if shown(sku) >= 1:
                lines.append((sku, 1))
                taken[sku] += 1
        if plan in NEEDS_TWO_UNITS and sum(taken.values()) < 2:
            sku = lines[0][0]
            if shown(sku) < 1:
                return None
            lines[0] = (sku, lines[0][1] + 1)
        return lines

    def _shape(self, lines: list[tuple[str, int]]) -> None:
        skus = [sku for sku, _ in lines]
        self.shapes["orders"] += 1
        if len(lines) > 1:
            self.shapes["multi_line"] += 1
        if len(set(skus)) < len(skus):
            self.shapes["one_sku_on_two_lines"] += 1
        if any(qty > 1 for _, qty in lines):
            self.shapes["quantity_above_one"] += 1
        if len(lines) > 10:
            self.shapes["more_than_ten_lines"] += 1

    # -- the steps: True done, False nothing to do, None not yet ----------------------------

    def _open_fos(self, order: Order) -> list[FulfillmentOrder]:
        fos = (self.shopify.state.fulfillment_orders[i] for i in order.fulfillment_order_ids)
        return [
            fo for fo in fos if fo.status in OPEN_STATES and any(ln.remaining for ln in fo.lines)
        ]

    def _record_fulfilment(
        self, order: Order, fo: FulfillmentOrder, wanted: dict[int, int]
    ) -> None:
        f = self.shopify.state.fulfil(fo.id, list(wanted.items()))
        if fo.location_id not in self._stores:
            return  # no store ships it: no Move Out
        by_line = {ln.id: ln.sku for ln in fo.lines}
        units: Counter[str] = Counter()
        for line_id, qty in wanted.items():
            units[by_line[line_id]] += qty
        self._expect(f"sf-{order.id}-{f.id}", _Pending(fo.location_id, units, 1))

    def _expect(self, externalid: str, pending: _Pending) -> None:
        self.expected_move_outs.add(externalid)
        self._pending[externalid] = pending
        for sku, units in pending.units.items():
            self._unbooked[(pending.location_id, sku)] += pending.sign * units

    def _fulfil(self, order: Order) -> bool:
        fos = self._open_fos(order)
        for fo in fos:
            self._record_fulfilment(
                order, fo, {ln.id: ln.remaining for ln in fo.lines if ln.remaining}
            )
        return bool(fos)

    def _fulfil_part(self, order: Order) -> bool:
        for fo in self._open_fos(order):
            each = [ln.id for ln in fo.lines for _ in range(ln.remaining)]
            if len(each) < 2:
                continue
            self.rng.shuffle(each)
            wanted: Counter[int] = Counter(each[: self.rng.randint(1, len(each) - 1)])
            self._record_fulfilment(order, fo, dict(wanted))
            return True
        return False

    def _cancel(self, order: Order) -> bool:
        if order.cancelled_at:
            return False
        self.shopify.state.cancel_order(order.id)
        return True

    def _refund(self, order: Order, restock: str) -> bool:
        """Refund units not fulfilled yet: with restock CANCEL (released at the store) or
        without restock (the units stay committed, as the simulator keeps them)."""
        fos = self._open_fos(order)
        if not fos:
            return False
        unfulfilled = [
            li for li in order.line_items if li.quantity - li.refunded - li.fulfilled >= 1
        ]
        if not unfulfilled:
            return False
        li = self.rng.choice(unfulfilled)
        most = li.quantity - li.refunded - li.fulfilled
        qty = self.rng.randint(1, most) if restock == "cancel" else 1
        where = fos[0].location_id if restock == "cancel" else None
        self.shopify.state.refund(order.id, [(li.id, qty, restock, where)])
        return True

    def _move_to_store(self, order: Order) -> bool:
        """Move to another store that shows every unit left available, as a merchant would."""
        for fo in self._open_fos(order):
            need: Counter[str] = Counter()
            for ln in fo.lines:
                need[ln.sku] += ln.remaining
            stores = [s for s in self.network.stores if s.shopify_location_id != fo.location_id]
            self.rng.shuffle(stores)
            for s in stores:
                loc = s.shopify_location_id
                if all(self._level(sku, loc)[0] >= n for sku, n in need.items()):
                    self.shopify.state.move_fulfillment_order(fo.id, loc)
                    return True
        return False

    def _move_unmapped(self, order: Order) -> bool:
        state = self.shopify.state
        for fo in self._open_fos(order):
            for ln in fo.lines:
                state.activate(ln.inventory_item_id, self.unmapped, UNMAPPED_STOCK)
            state.move_fulfillment_order(fo.id, self.unmapped)
            return True
        return False

    def _prepare_for_pickup(self, order: Order) -> bool:
        fos = [fo for fo in self._open_fos(order) if fo.method_type == "PICK_UP"]
        for fo in fos:
            self.shopify.state.prepare_for_pickup(fo.id)
        return bool(fos)

    def _in_store(self, order: Order, step: str | None, *, only_ask: bool = False) -> bool | None:
        """A step store staff take on the Sitoo order of a pickup (or of a shipment, for the
        ship steps): None while tillsync has not made it yet (the step waits), False when none
        is left to take it on. ``only_ask``: only whether it could be taken."""
        method = "SHIPPING" if step in ("ship", "ship_part") else "PICK_UP"
        fos = [fo for fo in self._open_fos(order) if fo.method_type == method]
        if not fos:
            return False
        state = self.sitoo.state
        for fo in fos:
            made = state.orders_by_externalid.get(f"fo-{fo.id}-{fo.location_id}")
            if made is None or state.orders[made].state != 0:
                return None
        if only_ask:
            return True
        for fo in fos:
            made = state.orders_by_externalid[f"fo-{fo.id}-{fo.location_id}"]
            if step == "ready":
                state.ready_for_pickup(made)
            elif step == "collect":
                state.collect(made)
            elif step == "collect_paid":
                state.collect(made, take_payment=True)
            elif step == "collect_part":
                first = state.orders[made].product_items()[0]
                state.collect(made, lines={int(first["orderitemid"]): 1})
            elif step == "reject":
                state.reject_pickup(made, "the customer never came")
            elif step == "ship":
                state.ship(made, f"TRK-{made}-{len(state.orders[made].deliveries) + 1}", "PostNord")
            elif step == "ship_part":
                first = state.orders[made].product_items()[0]
                state.ship(made, f"TRK-{made}-1", "PostNord", {int(first["orderitemid"]): 1})
        return True

    def _last_store_fulfilment(self, order: Order) -> Fulfillment | None:
        state = self.shopify.state
        ours = [
            f
            for f in (state.fulfillments[i] for i in order.fulfillment_ids)
            if f.status == "success" and f.location_id in self._stores
        ]
        return ours[-1] if ours else None

    def _cancel_fulfilment(self, order: Order) -> bool | None:
        """Cancel a store fulfilment once Sitoo has booked its Move Out: its units are
        committed again and tillsync owes Sitoo the reversal."""
        f = self._last_store_fulfilment(order)
        if f is None:
            return False
        externalid = f"sf-{order.id}-{f.id}"
        if externalid not in self._booked:
            return None
        self.shopify.state.cancel_fulfillment(f.id)
        skus = {li.id: li.sku for li in order.line_items}
        units: Counter[str] = Counter()
        for li_id, qty in f.lines:
            units[skus[li_id]] += qty
        self._expect(f"{externalid}-r", _Pending(f.location_id, units, -1))
        return True

    def _refund_rest(self, order: Order) -> bool | None:
        """What the customer left at the till, refunded with restock once tillsync has
        fulfilled what they took (refunded first, the units taken would be refunded too)."""
        state = self.sitoo.state
        lines: list[tuple[int, int, str, int | None]] = []
        for fo in self._open_fos(order):
            made = state.orders_by_externalid.get(f"fo-{fo.id}-{fo.location_id}")
            if (
                fo.method_type != "PICK_UP"
                or made is None
                or state.orders[made].state != ORDER_CLOSED
            ):
                continue
            taken = sum(state.orders[made].delivered.values())
            if sum(ln.total - ln.remaining for ln in fo.lines) < taken:
                return None  # not handed over in Shopify yet
            lines += [(ln.line_item_id, ln.remaining, "cancel", fo.location_id) for ln in fo.lines]
        lines = [ln for ln in lines if ln[1] > 0]
        if not lines:
            return False
        self.shopify.state.refund(order.id, lines)
        return True


class Player:
    """The Driver's store mix, an ``OrderLife`` and Sitoo till sales of two lines of one SKU,
    played together from one seed: ``online`` and ``till_pairs`` are the shares of steps given
    to the last two, the rest goes to the Driver (whose own online orders should be weighted 0,
    so that every online order is judged for oversells)."""

    def __init__(
        self,
        driver: Driver,
        life: OrderLife,
        *,
        online: float = 0.3,
        till_pairs: float = 0.03,
        seed: int = 5,
    ) -> None:
        self.driver = driver
        self.life = life
        self.online = online
        self.till_pairs = till_pairs
        self.rng = random.Random(seed)
        self.done: Counter[str] = Counter()
        self._pairs: list[tuple[int, int]] = []  # (storeid, orderid) of two-line till sales

    @property
    def actions(self) -> int:
        return sum(self.done.values())

    @property
    def stock_events(self) -> int:
        """Actions that changed stock in one platform or the other."""
        return sum(n for name, n in self.done.items() if name not in STOCK_NEUTRAL)

    def step(self) -> str | None:
        r = self.rng.random()
        name: str | None = None
        if r < self.till_pairs:
            name = self.till_pair()
        elif r < self.till_pairs + self.online:
            name = self.life.step()
        if name is None:
            name = self.driver.step()
        if name is not None:
            self.done[name] += 1
        return name

    def till_pair(self) -> str | None:
        """A till sale of two lines of one SKU, or the return of the second of those lines."""
        sitoo = self.driver.sitoo.state
        if self._pairs and self.rng.random() < 0.3:
            storeid, orderid = self._pairs.pop(self.rng.randrange(len(self._pairs)))
            second = sitoo.order(orderid).product_items()[-1]
            sitoo.till_return(
                storeid, orderid, [{"orderitemid": int(second["orderitemid"]), "quantity": 1}]
            )
            return "till_return_second_line"
        store = self.rng.choice(self.driver.network.stores)
        sku = self.rng.choice(self.driver.network.skus)
        item = sitoo.stock[store.sitoo_warehouse_id].get(sku)
        if item is None or item.available < 2:
            return None
        line = {"sku": sku, "quantity": 1}
        order = sitoo.till_sale(store.sitoo_store_id, [line, dict(line)])
        self._pairs.append((store.sitoo_store_id, order.orderid))
        return "till_sale_two_lines"

    async def play(
        self,
        until: Callable[[], bool],
        rate: float,
        progress: Callable[[Player], None] | None = None,
        tick: float = 0.05,
    ) -> None:
        """Play at about ``rate`` actions a second until ``until()`` holds, yielding to the
        event loop between small slices so that the simulators keep serving HTTP."""
        began = time.monotonic()
        already = self.actions
        last_report = began
        while not until():
            due = already + int((time.monotonic() - began) * rate) + 1
            while self.actions < due and not until():
                if self.step() is None:
                    break
            if progress is not None and time.monotonic() - last_report >= 1.0:
                progress(self)
                last_report = time.monotonic()
            await asyncio.sleep(tick)
