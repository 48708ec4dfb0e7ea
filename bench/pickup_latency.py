"""Click & collect: a routed pickup order to its Sitoo order at the store, at a steady rate.

A worker runs against both simulators (``--stores`` x ``--skus``, Plus plan so that Shopify's
cost bucket is not what is measured), every API call of both delayed ``--api-ms``. Once its
first sync is done, pickup orders of one to three lines are placed in Shopify at ``--rate`` per
second for ``--seconds``, each at a random store; the time from its placing until the Sitoo
order of its fulfilment order exists at that store is measured from the simulators' own state,
polled every 10 ms. At the end each pickup must be exactly one Sitoo order at the right
warehouse; the run fails otherwise.

Baseline, computed for the same orders: an export every 15 minutes (what agencies' connectors
do), instantaneous, at a phase uniform over its period: an order waits for the next export.

    .venv/bin/python -m bench.pickup_latency
    .venv/bin/python -m bench.pickup_latency --rate 20 --seconds 60 --api-ms 50
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
from pathlib import Path

from bench import add_common_args, cpu_seconds, harness, machine, work_dir
from tillsync_sim.scenario.harness import Harness
from tillsync_sim.scenario.network import NetworkSpec

EXPORT_PERIOD = 15 * 60.0
POLL = 0.01


def _q(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def baseline(placed: list[float], seed: int = 7) -> list[float]:
    """Each order's wait for the next of an export every ``EXPORT_PERIOD`` seconds, at a phase
    drawn per order (the same orders, placed at any time of a trading day)."""
    rng = random.Random(seed)
    return [(rng.uniform(0, EXPORT_PERIOD) - t) % EXPORT_PERIOD for t in placed]


async def _first_sync(h: Harness, total: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = await h.stock_state()
        if state["positions"] >= total and state["in_flight"] == 0:
            return
        await asyncio.sleep(0.5)
    raise SystemExit(f"the first sync did not finish in {timeout:.0f}s")


class Pickups:
    """The pickups placed, and when each one's Sitoo order was first seen."""

    def __init__(self, h: Harness) -> None:
        assert h.shopify is not None and h.sitoo is not None
        self.shopify, self.sitoo = h.shopify, h.sitoo
        self.placed: dict[str, float] = {}  # externalid -> placed at (monotonic)
        self.warehouse: dict[str, int] = {}
        self.seen: dict[str, float] = {}

    def place(self, rng: random.Random, h: Harness) -> None:
        assert h.network is not None
        store = rng.choice(h.network.stores)
        skus = rng.sample(h.network.skus, rng.randint(1, 3))
        order = self.shopify.state.place_order(
            [(sku, 1) for sku in skus], location_id=store.shopify_location_id, delivery="PICK_UP"
        )
        for fo in order.fulfillment_order_ids:
            ext = f"fo-{fo}-{store.shopify_location_id}"
            self.placed[ext] = time.monotonic()
            self.warehouse[ext] = store.sitoo_warehouse_id

    def look(self) -> None:
        made = self.sitoo.state.orders_by_externalid
        now = time.monotonic()
        for ext in self.placed.keys() - self.seen.keys():
            if ext in made:
                self.seen[ext] = now

    def wrong(self) -> list[str]:
        """Pickups not exactly one Sitoo order at their store."""
        out = []
        for ext, warehouse in self.warehouse.items():
            made = [
                o
                for o in self.sitoo.state.orders.values()
                if o.data.get("externalid") == ext and o.state != 20
            ]
            if len(made) != 1 or made[0].data.get("warehouseid") != warehouse:
                out.append(f"{ext}: {[(o.orderid, o.data.get('warehouseid')) for o in made]}")
        return out


async def _watch(pickups: Pickups, stop: asyncio.Event) -> None:
    while not stop.is_set():
        pickups.look()
        await asyncio.sleep(POLL)


async def run(args: argparse.Namespace, work: Path) -> None:
    spec = NetworkSpec(stores=args.stores, skus=args.skus, buffer=1, min_stock=500, max_stock=900)
    env = {"TILLSYNC_SITOO_REQUESTS_PER_SECOND": str(args.sitoo_rps)}
    h = harness(args.bootstrap, spec, work, worker_env=env, plan="plus")
    await h.start_simulators()
    assert h.shopify is not None and h.sitoo is not None
    rng = random.Random(args.seed)
    pickups = Pickups(h)
    stop = asyncio.Event()
    try:
        h.start_worker()
        await h.wait_ready(timeout=180)
        await _first_sync(h, args.stores * args.skus, timeout=300)
        h.shopify.set_faults(latency_ms=args.api_ms)
        h.sitoo.set_faults(latency_ms=args.api_ms)
        watcher = asyncio.create_task(_watch(pickups, stop))
        pid = h.worker.proc.pid if h.worker is not None and h.worker.proc is not None else 0
        cpu0 = cpu_seconds(pid)
        began = time.monotonic()
        placed = 0
        while (elapsed := time.monotonic() - began) < args.seconds:
            while placed < int(elapsed * args.rate):
                pickups.place(rng, h)
                placed += 1
            await asyncio.sleep(0.005)
        rate = placed / (time.monotonic() - began)
        deadline = time.monotonic() + args.drain
        while len(pickups.seen) < len(pickups.placed) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        window = time.monotonic() - began
        cpu = cpu_seconds(pid) - cpu0
        stop.set()
        await watcher
        wrong = pickups.wrong()
    finally:
        stop.set()
        await h.stop()
    waits = [pickups.seen[e] - t for e, t in pickups.placed.items() if e in pickups.seen]
    base = baseline([t - began for t in pickups.placed.values()])
    print(
        f"placed {placed:,} pickup orders ({len(pickups.placed):,} fulfilment orders) at "
        f"{rate:.1f}/s for {args.seconds:.0f}s over {args.stores} stores; both APIs answering "
        f"in {args.api_ms:.0f} ms; Sitoo paced at {args.sitoo_rps:.0f} requests/s"
    )
    print(
        f"routed pickup -> Sitoo order at its store: p50 {_q(waits, 0.5):.3f}s, "
        f"p90 {_q(waits, 0.9):.3f}s, p99 {_q(waits, 0.99):.3f}s, max {max(waits):.3f}s over "
        f"{len(waits):,} ({len(pickups.placed) - len(waits)} not in Sitoo after "
        f"{args.drain:.0f}s of draining)"
    )
    print(
        f"baseline, the same orders exported every {EXPORT_PERIOD / 60:.0f} minutes: "
        f"p50 {_q(base, 0.5):.0f}s, p99 {_q(base, 0.99):.0f}s"
    )
    cores = os.cpu_count() or 1
    print(f"worker CPU {cpu:.1f}s over the {window:.0f}s of placing and draining ({cores} cores)")
    print(f"machine: {machine()}")
    if wrong or len(waits) < len(pickups.placed):
        raise SystemExit(f"{len(wrong)} pickups not exactly one Sitoo order: {wrong[:5]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--rate", type=float, default=20.0, help="pickup orders per second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--api-ms", type=float, default=50.0, help="latency of every API call")
    parser.add_argument("--stores", type=int, default=5)
    parser.add_argument("--skus", type=int, default=200)
    parser.add_argument(
        "--sitoo-rps", type=float, default=200.0, help="the worker's pace of Sitoo calls"
    )
    parser.add_argument("--drain", type=float, default=120.0, help="seconds to wait at the end")
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()
    with work_dir("pickup-latency", args.keep) as work:
        asyncio.run(run(args, work))


if __name__ == "__main__":
    main()
