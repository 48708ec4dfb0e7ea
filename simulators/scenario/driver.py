"""The scenario driver: a mix of store and online activity played against both simulators.

Till sales, deliveries and returns happen in Sitoo; online orders (shipped from a store), their
fulfilment and staff edits of inventory happen in Shopify; pickup orders are placed in Shopify
and readied and collected at the till, on the Sitoo order tillsync made of each. The mix and
the rate are settings; the random choices come from one seed, so a run is repeatable.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from tillsync.schemas.sitoo import ORDER_CLOSED
from tillsync_sim.scenario.network import Network
from tillsync_sim.shopify import ShopifySimulator
from tillsync_sim.sitoo import SitooSimulator


@dataclass(frozen=True)
class Mix:
    """Relative weights of each action."""

    till_sale: float = 60
    delivery: float = 15
    till_return: float = 5
    online_order: float = 12
    fulfilment: float = 6
    admin_edit: float = 2
    # click & collect, played by the demo: a pickup order at a store, and a step at that
    # store's till on the Sitoo order tillsync made of it (ready, then collected)
    pickup_order: float = 0
    pickup_at_till: float = 0


@dataclass
class Run:
    done: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None

    @property
    def actions(self) -> int:
        return sum(self.done.values())


class Driver:
    def __init__(
        self,
        network: Network,
        shopify: ShopifySimulator,
        sitoo: SitooSimulator,
        *,
        mix: Mix = Mix(),
        seed: int = 11,
    ) -> None:
        self.network = network
        self.shopify = shopify
        self.sitoo = sitoo
        self.mix = mix
        self.rng = random.Random(seed)
        self._sales: list[tuple[int, int, str]] = []  # (storeid, orderid, sku) for returns
        self._open_orders: list[int] = []  # Shopify fulfillment order ids
        # pickup fulfilment orders still at the store: externalid of their Sitoo order -> ready
        self._pickups: dict[str, bool] = {}
        self.run = Run()
        self._actions: list[tuple[str, Callable[[], bool]]] = [
            ("till_sale", self.till_sale),
            ("delivery", self.delivery),
            ("till_return", self.till_return),
            ("online_order", self.online_order),
            ("fulfilment", self.fulfilment),
            ("admin_edit", self.admin_edit),
            ("pickup_order", self.pickup_order),
            ("pickup_at_till", self.pickup_at_till),
        ]
        self._weights = [getattr(mix, name) for name, _ in self._actions]

    # -- one action each; False when it could not happen (e.g. no stock) ------------------

    def _pick(self) -> tuple[int, str]:
        store = self.rng.randrange(len(self.network.stores))
        return store, self.rng.choice(self.network.skus)

    def till_sale(self) -> bool:
        i, sku = self._pick()
        store = self.network.stores[i]
        item = self.sitoo.state.stock[store.sitoo_warehouse_id].get(sku)
        if item is None or item.available < 1:
            return False
        order = self.sitoo.state.till_sale(store.sitoo_store_id, [{"sku": sku, "quantity": 1}])
        self._sales.append((store.sitoo_store_id, order.orderid, sku))
        return True

    def delivery(self) -> bool:
        i, sku = self._pick()
        store = self.network.stores[i]
        qty = self.rng.randint(1, 5)
        self.sitoo.state.receive_delivery(store.sitoo_warehouse_id, [{"sku": sku, "quantity": qty}])
        return True

    def till_return(self) -> bool:
        if not self._sales:
            return False
        storeid, orderid, sku = self._sales.pop(self.rng.randrange(len(self._sales)))
        self.sitoo.state.till_return(storeid, orderid, [{"sku": sku, "quantity": 1}])
        return True

    def online_order(self) -> bool:
        i, sku = self._pick()
        store = self.network.stores[i]
        item = self.shopify.state.item_for(sku)
        level = self.shopify.state.levels.get((item.id, store.shopify_location_id))
        if level is None or level.get("available") < 1:
            return False
        order = self.shopify.state.place_order(
            [(sku, 1)], location_id=store.shopify_location_id, delivery="SHIPPING"
        )
        self._open_orders.extend(order.fulfillment_order_ids)
        return True

    def pickup_order(self) -> bool:
        i, sku = self._pick()
        store = self.network.stores[i]
        item = self.shopify.state.item_for(sku)
        level = self.shopify.state.levels.get((item.id, store.shopify_location_id))
        if level is None or level.get("available") < 1:
            return False
        order = self.shopify.state.place_order(
            [(sku, 1)], location_id=store.shopify_location_id, delivery="PICK_UP"
        )
        for fo in order.fulfillment_order_ids:
            self._pickups[f"fo-{fo}-{store.shopify_location_id}"] = False
        return True

    def pickup_at_till(self) -> bool:
        """The oldest pickup whose Sitoo order tillsync has made: marked ready at the till, or
        collected once it was ready. False while no pickup's Sitoo order is there yet."""
        state = self.sitoo.state
        for externalid, ready in self._pickups.items():
            orderid = state.orders_by_externalid.get(externalid)
            if orderid is None or state.orders[orderid].state != 0:
                continue
            if ready:
                state.collect(orderid)
                del self._pickups[externalid]
            else:
                state.ready_for_pickup(orderid)
                self._pickups[externalid] = True
            return True
        return False

    def fulfilment(self) -> bool:
        if not self._open_orders:
            return False
        fo = self._open_orders.pop(0)
        self.shopify.state.fulfil(fo)
        return True

    def admin_edit(self) -> bool:
        i, sku = self._pick()
        store = self.network.stores[i]
        self.shopify.state.edit_inventory(
            sku, store.shopify_location_id, delta=self.rng.choice([-2, -1, 1, 3])
        )
        return True

    # -- playing ---------------------------------------------------------------------------

    def step(self) -> str | None:
        for _ in range(10):
            name, action = self.rng.choices(self._actions, self._weights)[0]
            if action():
                self.run.done[name] += 1
                return name
        return None

    async def play(
        self,
        actions: int,
        rate: float,
        progress: Callable[[Run], None] | None = None,
        tick: float = 0.05,
    ) -> Run:
        """Play until ``actions`` actions are done in all (this call and earlier ones), at
        about ``rate`` per second from now, yielding to the event loop between small slices so
        that the simulators keep serving HTTP."""
        began = time.monotonic()
        last_report = began
        already = self.run.actions
        target_done = 0
        while self.run.actions < actions:
            elapsed = time.monotonic() - began
            target_done = min(actions, already + int(elapsed * rate) + 1)
            while self.run.actions < target_done:
                if self.step() is None:
                    break
            if progress is not None and time.monotonic() - last_report >= 1.0:
                progress(self.run)
                last_report = time.monotonic()
            await asyncio.sleep(tick)
        self.run.ended = time.monotonic()
        return self.run


def moving_out(
    network: Network, shopify: ShopifySimulator, sitoo: SitooSimulator
) -> Counter[tuple[str, int]]:
    """Units of store fulfilments whose Move Out Sitoo has not booked yet, per (SKU, Shopify
    location): gone from the shelf and from Shopify's stock, still in Sitoo's count."""
    stores = {s.shopify_location_id for s in network.stores}
    booked = {t.externalid for t in sitoo.state.transactions_from(1) if t.externalid}
    out: Counter[tuple[str, int]] = Counter()
    for f in shopify.state.fulfillments.values():
        if f.status != "success" or f.location_id not in stores:
            continue
        if f"sf-{f.order_id}-{f.id}" in booked:
            continue
        skus = {li.id: li.sku for li in shopify.state.orders[f.order_id].line_items}
        for line_id, quantity in f.lines:
            out[(skus[line_id], f.location_id)] += quantity
    return out


def pickup_in_sitoo(
    network: Network, shopify: ShopifySimulator, sitoo: SitooSimulator
) -> Counter[tuple[str, int]]:
    """Units Shopify commits for store orders (pickups, ship-from-store) that Sitoo accounts
    for itself, per (SKU, Shopify location): reserved by the Sitoo order tillsync made there
    (web-order markers, flows.md A), or handed over at the till or shipped (out of Sitoo's
    stock by its own sale) and not yet fulfilled in Shopify. tillsync counts each of them
    once."""
    location_of = {s.sitoo_warehouse_id: s.shopify_location_id for s in network.stores}
    out: Counter[tuple[str, int]] = Counter()
    # by their externalids: till sales are orders too, thousands of them
    for orderid in sitoo.state.orders_by_externalid.values():
        order = sitoo.state.orders[orderid]
        extra = order.data.get("additionaldata") or {}
        if extra.get("weborder") != "true" or "shopify-fo-id" not in extra:
            continue
        loc = location_of.get(order.data.get("warehouseid") or -1)
        if loc is None:
            continue
        for sku, units in order.reserved.items():
            out[(sku, loc)] += int(units)
        fo = shopify.state.fulfillment_orders.get(int(extra["shopify-fo-id"]))
        if fo is None or not order.delivered:
            continue
        lines = {ln.id: ln for ln in fo.lines}
        for item in order.product_items():
            taken = order.delivered.get(int(item["orderitemid"]), 0)
            ln = lines.get(int((item.get("additionaldata") or {}).get("web-itemid") or 0))
            if ln is None:
                continue
            # delivered less what Shopify fulfilled of the line already (a shipment's earlier
            # parcels are fulfilled while the rest is still to ship)
            out[(item["sku"], loc)] += min(ln.remaining, max(0, taken - (ln.total - ln.remaining)))
    return out


def sitoo_method(extra: dict[str, str]) -> str | None:
    """The Shopify delivery method of a Sitoo store order tillsync made, from its markers."""
    if extra.get("weborder-bopis") == "true":
        return "PICK_UP"
    return extra.get("shopify-delivery-method")


def pickup_mismatches(
    network: Network,
    shopify: ShopifySimulator,
    sitoo: SitooSimulator,
    methods: frozenset[str] = frozenset({"PICK_UP"}),
) -> list[str]:
    """What is wrong with the store orders in Sitoo (click & collect, and ship-from-store when
    ``methods`` has SHIPPING), as Shopify stands now: each such fulfilment order with units to
    hand over at a store must be one open Sitoo order there, of those units (a shipment's with
    its delivery address); no other Sitoo store order may be open. A fulfilment order whose
    Sitoo order there closed with units left (a partial pickup: the customer took only part)
    has nothing more to hand over in Sitoo: its rest is for a person to refund or keep (or,
    at a store whose policy cancels, tillsync has refunded it and the fulfilment order is
    closed)."""
    warehouse_of = {s.shopify_location_id: s.sitoo_warehouse_id for s in network.stores}
    closed: set[tuple[int, int]] = set()
    for orderid in sitoo.state.orders_by_externalid.values():
        order = sitoo.state.orders[orderid]
        extra = order.data.get("additionaldata") or {}
        if order.state == ORDER_CLOSED and "shopify-fo-id" in extra:
            closed.add((int(extra["shopify-fo-id"]), int(order.data.get("warehouseid") or 0)))
    want: dict[int, tuple[int, dict[str, int]]] = {}
    for fo in shopify.state.fulfillment_orders.values():
        if fo.method_type not in methods or fo.status in ("CLOSED", "CANCELLED"):
            continue
        if (fo.id, warehouse_of.get(fo.location_id, -1)) in closed:
            continue
        lines: dict[str, int] = {}
        for ln in fo.lines:  # two lines of one SKU are two rows of it in Sitoo
            if ln.remaining:
                lines[ln.sku] = lines.get(ln.sku, 0) + ln.remaining
        if lines and fo.location_id in warehouse_of:
            want[fo.id] = (warehouse_of[fo.location_id], lines)
    have: dict[int, list[tuple[int, dict[str, int]]]] = {}
    for orderid in sitoo.state.orders_by_externalid.values():
        order = sitoo.state.orders[orderid]
        extra = order.data.get("additionaldata") or {}
        method = sitoo_method(extra)
        if method not in methods or order.state != 0:
            continue
        if (method == "SHIPPING") != bool(order.data.get("delivery_address")):
            continue  # a shipment without its address, or a pickup with one: not as wanted
        items: dict[str, int] = {}
        for item in order.product_items():
            # what is still to hand over: a shipment's parcels shipped so far are not
            left = int(item["quantity"]) - order.delivered.get(int(item["orderitemid"]), 0)
            if left:
                items[item["sku"]] = items.get(item["sku"], 0) + left
        have.setdefault(int(extra["shopify-fo-id"]), []).append((order.data["warehouseid"], items))
    out = []
    for fo_id in sorted(want.keys() | have.keys()):
        wanted = [want[fo_id]] if fo_id in want else []
        if have.get(fo_id, []) != wanted:
            out.append(f"fulfilment order {fo_id}: Sitoo has {have.get(fo_id, [])}, want {wanted}")
    return out


def shipment_mismatches(shopify: ShopifySimulator, sitoo: SitooSimulator) -> list[str]:
    """What is wrong with the ship-from-store orders staff shipped in Sitoo (closed): each of
    their parcels must be in exactly one Shopify fulfilment, by its tracking number, with the
    customer notified."""
    told: Counter[str] = Counter()
    notified: set[str] = set()
    for f in shopify.state.fulfillments.values():
        if f.status != "success":
            continue
        for number in f.tracking_numbers:
            told[number] += 1
            if f.notified:
                notified.add(number)
    out = []
    for orderid in sitoo.state.orders_by_externalid.values():
        order = sitoo.state.orders[orderid]
        if sitoo_method(order.data.get("additionaldata") or {}) != "SHIPPING" or order.state != 10:
            continue
        for d in order.deliveries:
            ref = d.orderdeliveryref
            if told[ref] != 1 or ref not in notified:
                out.append(
                    f"Sitoo order {orderid}: parcel {ref} in {told[ref]} Shopify fulfilments"
                    f"{'' if ref in notified else ', the customer not told'}; want 1"
                )
    return out


def expected_available(
    network: Network,
    shopify: ShopifySimulator,
    sitoo: SitooSimulator,
    *,
    in_flight: bool = False,
) -> dict[tuple[str, int], int]:
    """What tillsync should have made Shopify's `available` at each position: Sitoo's
    available less the buffer and the units Shopify committed there for open online orders
    (once: those a Sitoo pickup order reserves are out of Sitoo's available already).
    With ``in_flight``, also less the units of fulfilments whose Move Out Sitoo has not booked
    yet: the target while Move Outs are on their way (without it, the target once they are)."""
    leaving = moving_out(network, shopify, sitoo) if in_flight else Counter()
    in_sitoo = pickup_in_sitoo(network, shopify, sitoo)
    out: dict[tuple[str, int], int] = {}
    for store in network.stores:
        items = sitoo.state.stock[store.sitoo_warehouse_id]
        for sku in network.skus:
            item = items.get(sku)
            available = int(item.available) if item is not None else 0
            inv = shopify.state.item_for(sku)
            level = shopify.state.levels.get((inv.id, store.shopify_location_id))
            committed = level.get("committed") if level is not None else 0
            committed -= in_sitoo[(sku, store.shopify_location_id)]
            gone = leaving[(sku, store.shopify_location_id)]
            out[(sku, store.shopify_location_id)] = max(
                0, available - network.spec.buffer - committed - gone
            )
    return out


def actual_available(network: Network, shopify: ShopifySimulator) -> dict[tuple[str, int], int]:
    out: dict[tuple[str, int], int] = {}
    for store in network.stores:
        for sku in network.skus:
            inv = shopify.state.item_for(sku)
            level = shopify.state.levels.get((inv.id, store.shopify_location_id))
            out[(sku, store.shopify_location_id)] = level.get("available") if level else 0
    return out


def mismatches(
    network: Network,
    shopify: ShopifySimulator,
    sitoo: SitooSimulator,
    *,
    in_flight: bool = False,
) -> dict[tuple[str, int], tuple[int, int]]:
    want = expected_available(network, shopify, sitoo, in_flight=in_flight)
    have = actual_available(network, shopify)
    return {k: (have[k], v) for k, v in want.items() if have[k] != v}
