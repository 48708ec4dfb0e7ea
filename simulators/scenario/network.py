"""A seeded, deterministic store network on both simulators, and the location map for it.

Both simulators get the same stores, SKUs and opening stock, so that before anything happens
Shopify's available at each location equals Sitoo's stock (the worker then applies buffers).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tillsync_sim.shopify import ShopifySimulator
from tillsync_sim.sitoo import SitooSimulator


@dataclass(frozen=True)
class NetworkSpec:
    stores: int = 5
    skus: int = 2_000
    min_stock: int = 0
    max_stock: int = 20
    buffer: int = 1
    drift_policy: str = "heal"
    settle_seconds: float = 2.0
    seed: int = 7
    rejected_pickups: str = "alert"  # every store's pickup.on_rejected: alert or cancel
    # every store's other pickup deadlines (``PickupDeadlines`` field, value), e.g. seconds
    # rather than hours for a test to see each exception raised and cleared
    pickup_deadlines: tuple[tuple[str, float], ...] = ()


@dataclass
class Store:
    name: str
    shopify_location_id: int
    sitoo_store_id: int
    sitoo_warehouse_id: int


@dataclass
class Network:
    spec: NetworkSpec
    skus: list[str]
    stores: list[Store] = field(default_factory=list)

    def location_map(self) -> dict[str, object]:
        return {
            "locations": [
                {
                    "name": s.name,
                    "shopify_location_id": s.shopify_location_id,
                    "sitoo_store_id": s.sitoo_store_id,
                    "sitoo_warehouse_id": s.sitoo_warehouse_id,
                    "buffer": self.spec.buffer,
                    "drift_policy": self.spec.drift_policy,
                    "settle_seconds": self.spec.settle_seconds,
                    **({"pickup": pickup} if (pickup := self._pickup()) else {}),
                }
                for s in self.stores
            ]
        }

    def _pickup(self) -> dict[str, float | str]:
        pickup: dict[str, float | str] = dict(self.spec.pickup_deadlines)
        if self.spec.rejected_pickups != "alert":
            pickup["on_rejected"] = self.spec.rejected_pickups
        return pickup

    def write_location_map(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.location_map(), sort_keys=False))
        return path


def sku_name(n: int) -> str:
    return f"TS-{n:05d}"


def build(shopify: ShopifySimulator, sitoo: SitooSimulator, spec: NetworkSpec) -> Network:
    rng = random.Random(spec.seed)
    skus = [sku_name(n) for n in range(1, spec.skus + 1)]
    network = Network(spec=spec, skus=skus)
    state = sitoo.state
    was = state.emitting
    state.emitting = False  # the opening position is not news
    try:
        for i in range(1, spec.stores + 1):
            name = f"Store {i:02d}"
            location = shopify.state.add_location(name)
            store = state.add_store(name)
            assert store.warehouseid is not None
            network.stores.append(Store(name, location.id, store.storeid, store.warehouseid))
        opening: dict[tuple[str, int], int] = {}
        for n, sku in enumerate(skus, start=1):
            price = f"{rng.randrange(99, 1999)}.00"
            state.add_product(
                {"sku": sku, "title": f"Product {n}", "moneyprice": price, "vatvalue": 25}
            )
            inventory = {}
            for s in network.stores:
                qty = rng.randint(spec.min_stock, spec.max_stock)
                opening[(sku, s.sitoo_warehouse_id)] = qty
                inventory[s.shopify_location_id] = qty
            shopify.state.add_product(
                f"Product {n}", [{"sku": sku, "price": price}], inventory=inventory
            )
        for s in network.stores:
            for sku in skus:
                qty = opening[(sku, s.sitoo_warehouse_id)]
                if qty:
                    state.move_in(s.sitoo_warehouse_id, sku, qty, description="opening stock")
    finally:
        state.emitting = was
    return network
