"""A small, deterministic store network to start from: stores, their warehouses, products, stock."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .state import SitooState

CITIES = (
    "Stockholm",
    "Göteborg",
    "Malmö",
    "Uppsala",
    "Västerås",
    "Örebro",
    "Linköping",
    "Helsingborg",
    "Jönköping",
    "Norrköping",
)


@dataclass(frozen=True)
class SeedSpec:
    stores: int = 3
    skus: int = 20
    min_stock: int = 5
    max_stock: int = 30


def sku_name(n: int) -> str:
    return f"SKU-{n:04d}"


def seed(state: SitooState, spec: SeedSpec = SeedSpec()) -> None:
    """Add stores, products and opening stock without emitting events (nothing happened yet)."""
    rng = state.rng
    was = state.emitting
    state.emitting = False
    try:
        for n in range(1, spec.skus + 1):
            price = Decimal(rng.randrange(99, 1999))
            state.add_product(
                {
                    "sku": sku_name(n),
                    "title": f"Product {n}",
                    "moneyprice": str(price),
                    "moneypricein": str((price * Decimal("0.4")).quantize(Decimal("0.01"))),
                    "vatvalue": 25,
                    "barcode": f"73{n:011d}",
                }
            )
        for n in range(spec.stores):
            city = CITIES[n % len(CITIES)]
            store = state.add_store(f"Store {city}", f"STORE-{n + 1}", city=city)
            assert store.warehouseid is not None
            lines = [
                {"sku": sku_name(i), "quantity": rng.randint(spec.min_stock, spec.max_stock)}
                for i in range(1, spec.skus + 1)
            ]
            if lines:
                state.receive_delivery(store.warehouseid, lines, description="Opening stock")
    finally:
        state.emitting = was
