"""The SKU index: SKU ↔ Shopify inventory item ↔ Sitoo product.

Kept in memory on each worker (it is small: one entry per variant) and rebuilt from both
platforms at start, then kept current from product webhooks, which reach every worker of a
deployment through the SKU index feed (``tillsync.streams.stock.sku_feed``). Lookups happen on every
stock event, so they must not cost a table read.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SkuIndex:
    item_by_sku: dict[str, int] = field(default_factory=dict)
    sku_by_item: dict[int, str] = field(default_factory=dict)
    sitoo_skus: set[str] = field(default_factory=set)

    def add_shopify(self, sku: str, inventory_item_id: int) -> None:
        if not sku:
            return
        old = self.item_by_sku.get(sku)
        if old is not None and old != inventory_item_id:
            self.sku_by_item.pop(old, None)
        self.item_by_sku[sku] = inventory_item_id
        self.sku_by_item[inventory_item_id] = sku

    def add_sitoo(self, sku: str) -> None:
        self.sitoo_skus.add(sku)

    def only_in_shopify(self) -> set[str]:
        return set(self.item_by_sku) - self.sitoo_skus

    def only_in_sitoo(self) -> set[str]:
        return self.sitoo_skus - set(self.item_by_sku)
