"""Oversells on a seeded peak-trading day with scarce stock: tillsync beside a 15-minute copy.

One seeded plan of the day (``--hours`` of trading compressed into ``--day-seconds``) is played
twice on the same store network (``--stores`` x ``--skus``, 0-3 units each, popular SKUs
sold far more than others): till sales in Sitoo (when the shelf has a unit), online orders in
Shopify (when Shopify shows the units available; one to three units, shipped from the store
after closing or, ``--pickup-share`` of them, collected there), cancellations of open online
orders (``--cancellations``) and a few deliveries.

* tillsync: the simulators and a worker, as in the end-to-end tests; the plan runs in real
  (compressed) time while the worker syncs.
* baseline: no worker; every ``--interval-minutes`` of the (compressed) day each position's
  Shopify on-hand is set to Sitoo's available, so Shopify shows that less what online orders
  have committed. The copy is instantaneous and exact, which flatters the baseline.

An oversold unit is a unit of an online order line that Sitoo no longer had free at that store
when the order was placed: Sitoo's available there, less the units of earlier online orders
not yet shipped (nor cancelled), was below the line's quantity. The end-of-day shortfall (units
that cannot ship, whoever took them first) is printed too.

Time compression hurts tillsync only: its sync takes real seconds, each one worth
``hours x 3600 / day-seconds`` seconds of the day, while the baseline's copies are instant.

    .venv/bin/python -m bench.oversell
    .venv/bin/python -m bench.oversell --day-seconds 90 --hours 10 --stores 4 --skus 500
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench import (
    add_common_args,
    harness,
    histogram,
    machine,
    quantile,
    work_dir,
    worker_metrics,
)
from tillsync_sim.scenario.harness import Harness
from tillsync_sim.scenario.network import NetworkSpec


@dataclass(frozen=True)
class Action:
    at: float  # fraction of the trading day, 0..1
    kind: str  # till_sale | online_order | cancel | delivery
    store: int
    sku: int  # index into the network's SKUs; for a cancel, which open order
    quantity: int = 1
    pickup: bool = False


@dataclass
class Outcome:
    done: Counter[str] = field(default_factory=Counter)
    oversold: int = 0  # units
    ordered: int = 0  # online units ordered
    online_units: Counter[tuple[int, str]] = field(default_factory=Counter)
    shortfall: int = 0
    lateness: float = 0.0  # worst lag of the player behind the plan, real seconds
    notes: list[str] = field(default_factory=list)


def plan(args: argparse.Namespace) -> list[Action]:
    rng = random.Random(args.seed)
    # a peak day: a few SKUs are what everyone wants (Zipf-like popularity)
    weights = [1.0 / (rank**args.skew) for rank in range(1, args.skus + 1)]
    order = list(range(args.skus))
    rng.shuffle(order)
    kinds = ["till_sale", "online_order", "cancel", "delivery"]
    mix = [args.till_sales, args.online_orders, args.cancellations, args.deliveries]
    out: list[Action] = []
    for _ in range(sum(mix)):
        kind = rng.choices(kinds, mix)[0]
        sku = order[rng.choices(range(args.skus), weights)[0]]
        if kind == "delivery":
            qty = rng.randint(1, 3)
        elif kind == "online_order":
            qty = rng.choices([1, 2, 3], [70, 20, 10])[0]
        else:
            qty = 1
        pickup = kind == "online_order" and rng.random() < args.pickup_share
        out.append(Action(rng.random(), kind, rng.randrange(args.stores), sku, qty, pickup))
    out.sort(key=lambda a: a.at)
    return out


class Day:
    """Plays actions on the simulators and judges every online order as it is placed."""

    def __init__(self, h: Harness) -> None:
        assert h.network is not None and h.shopify is not None and h.sitoo is not None
        self.network, self.shopify, self.sitoo = h.network, h.shopify, h.sitoo
        self.out = Outcome()
        # online orders not cancelled: (order id, store, SKU, units), oldest first
        self.open: list[tuple[int, int, str, int]] = []

    def sitoo_available(self, store: int, sku: str) -> int:
        item = self.sitoo.state.stock[self.network.stores[store].sitoo_warehouse_id].get(sku)
        return int(item.available) if item is not None else 0

    def play(self, a: Action) -> None:
        store = self.network.stores[a.store]
        sku = self.network.skus[a.sku]
        if a.kind == "till_sale":
            # the shelf still holds units promised online until the store ships after closing
            if self.sitoo_available(a.store, sku) >= 1:
                self.sitoo.state.till_sale(store.sitoo_store_id, [{"sku": sku, "quantity": 1}])
                self.out.done[a.kind] += 1
        elif a.kind == "online_order":
            item = self.shopify.state.item_for(sku)
            level = self.shopify.state.levels.get((item.id, store.shopify_location_id))
            if level is None or level.get("available") < a.quantity:
                self.out.done["online_refused"] += 1
                return
            free = self.sitoo_available(a.store, sku) - self.out.online_units[(a.store, sku)]
            self.out.oversold += max(0, a.quantity - max(free, 0))
            self.out.ordered += a.quantity
            placed = self.shopify.state.place_order(
                [(sku, a.quantity)],
                location_id=store.shopify_location_id,
                delivery="PICK_UP" if a.pickup else "SHIPPING",
            )
            self.open.append((placed.id, a.store, sku, a.quantity))
            self.out.online_units[(a.store, sku)] += a.quantity
            self.out.done["pickup_order" if a.pickup else a.kind] += 1
        elif a.kind == "cancel":
            if not self.open:
                return
            order_id, at, of, units = self.open.pop(a.sku % len(self.open))
            self.shopify.state.cancel_order(order_id)
            self.out.online_units[(at, of)] -= units
            self.out.done[a.kind] += 1
        else:
            self.sitoo.state.receive_delivery(
                store.sitoo_warehouse_id, [{"sku": sku, "quantity": a.quantity}]
            )
            self.out.done[a.kind] += 1

    def close(self) -> Outcome:
        for (store, sku), units in self.out.online_units.items():
            self.out.shortfall += max(0, units - self.sitoo_available(store, sku))
        return self.out

    def copy_stock(self) -> None:
        """The baseline's job: Shopify on-hand := Sitoo available, everywhere."""
        for i, store in enumerate(self.network.stores):
            for sku in self.network.skus:
                item = self.shopify.state.item_for(sku)
                level = self.shopify.state.levels.get((item.id, store.shopify_location_id))
                if level is not None:
                    level.set("on_hand", self.sitoo_available(i, sku))


def spec(args: argparse.Namespace) -> NetworkSpec:
    return NetworkSpec(
        stores=args.stores,
        skus=args.skus,
        min_stock=0,
        max_stock=3,
        buffer=0,
        seed=args.seed,
        settle_seconds=2.0,
    )


async def baseline(args: argparse.Namespace, actions: list[Action], work_dir: Path) -> Outcome:
    h = harness(args.bootstrap, spec(args), work_dir / "baseline")
    await h.start_simulators()
    assert h.shopify is not None and h.sitoo is not None
    try:
        # nobody listens: no webhooks, no Events SPI
        h.shopify.state.subscriptions.clear()
        h.sitoo.state.emitting = False
        day = Day(h)
        interval = args.interval_minutes / (args.hours * 60)  # as a fraction of the day
        next_copy = interval
        # the copy is instantaneous, so the day needs no clock: actions and copies in order
        for a in actions:
            while a.at >= next_copy:
                day.copy_stock()
                next_copy += interval
            day.play(a)
        return day.close()
    finally:
        await h.stop()


async def with_tillsync(
    args: argparse.Namespace, actions: list[Action], work_dir: Path
) -> tuple[Outcome, str]:
    h = harness(args.bootstrap, spec(args), work_dir / "tillsync", plan=args.plan)
    await h.start_simulators()
    try:
        h.start_worker()
        await h.wait_ready()
        async with httpx.AsyncClient(timeout=10.0) as http:
            # the opening snapshot: every position known before the shops open
            want = args.stores * args.skus
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                state = (await http.get(f"{h.worker_url}/state/stock")).json()
                if state["positions"] >= want and state["in_flight"] == 0:
                    break
                await asyncio.sleep(0.5)
            day = Day(h)
            began = time.monotonic()
            i = 0
            while i < len(actions):
                now = (time.monotonic() - began) / args.day_seconds
                while i < len(actions) and actions[i].at <= now:
                    day.play(actions[i])
                    i += 1
                day.out.lateness = max(
                    day.out.lateness, (now - actions[i - 1].at) * args.day_seconds if i else 0.0
                )
                # yield so the simulators answer the worker's calls between actions
                await asyncio.sleep(0.01)
            text = await worker_metrics(http, h.worker_url)
        return day.close(), text
    except BaseException:
        if h.worker is not None:
            print(h.worker.log_path.read_text(errors="replace")[-3000:])
        raise
    finally:
        await h.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=4)
    parser.add_argument("--skus", type=int, default=500)
    parser.add_argument("--hours", type=float, default=10.0, help="trading hours in the day")
    parser.add_argument("--day-seconds", type=float, default=90.0, help="real seconds it takes")
    parser.add_argument("--interval-minutes", type=float, default=15.0, help="baseline copy")
    parser.add_argument("--till-sales", type=int, default=2_400)
    parser.add_argument("--online-orders", type=int, default=1_600)
    parser.add_argument("--deliveries", type=int, default=150)
    parser.add_argument("--cancellations", type=int, default=100)
    parser.add_argument(
        "--pickup-share", type=float, default=0.2, help="online orders collected in store"
    )
    parser.add_argument("--skew", type=float, default=0.9, help="Zipf exponent of popularity")
    parser.add_argument("--seed", type=int, default=2026)
    # the day is compressed, so its API calls come hours x 3600 / day-seconds times faster than
    # they would: a Standard shop's budget in real time is a Plus shop's here
    parser.add_argument(
        "--plan",
        default="plus",
        choices=["standard", "advanced", "plus"],
        help="the shop's Shopify plan (its API budget) in the compressed day",
    )
    add_common_args(parser)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    actions = plan(args)
    scale = args.hours * 3600 / args.day_seconds
    with work_dir("oversell", args.keep) as tmp:
        base = asyncio.run(baseline(args, actions, tmp))
        ours, text = asyncio.run(with_tillsync(args, actions, tmp))
    lat = histogram(text, "tillsync_sync_latency_seconds", flow="stock")
    p50, p99 = quantile(lat, 0.5), quantile(lat, 0.99)
    print(
        f"day: {len(actions)} planned actions, {args.hours:g} h in {args.day_seconds:g} s "
        f"(1 real s = {scale / 60:.1f} min of the day); {args.stores} stores x {args.skus} "
        f"SKUs, 0-3 units each"
    )
    for name, o in (
        (f"baseline (copy every {args.interval_minutes:g} min)", base),
        ("tillsync", ours),
    ):
        orders = o.done["online_order"] + o.done["pickup_order"]
        print(
            f"{name}: {o.oversold} units oversold of {o.ordered} ordered online in {orders} "
            f"orders ({o.done['pickup_order']} pickups, {o.done['cancel']} cancelled) "
            f"({o.oversold / max(o.ordered, 1):.1%}); end-of-day shortfall "
            f"{o.shortfall} units; till sales {o.done['till_sale']}, online refused "
            f"{o.done['online_refused']}"
        )
    if base.oversold:
        print(f"oversells avoided: {1 - ours.oversold / base.oversold:.0%}")
    print(
        f"tillsync sync latency (stock): p50 {p50:.2f}s, p99 {p99:.2f}s real = "
        f"{p50 * scale / 60:.1f} / {p99 * scale / 60:.1f} min of the compressed day; "
        f"player lag at worst {ours.lateness:.2f}s"
    )
    print(
        "reproduce: .venv/bin/python -m bench.oversell "
        f"--stores {args.stores} --skus {args.skus} --hours {args.hours:g} "
        f"--day-seconds {args.day_seconds:g} --interval-minutes {args.interval_minutes:g} "
        f"--till-sales {args.till_sales} --online-orders {args.online_orders} "
        f"--deliveries {args.deliveries} --cancellations {args.cancellations} "
        f"--pickup-share {args.pickup_share:g} --plan {args.plan} --seed {args.seed}"
    )


if __name__ == "__main__":
    main()
