"""The SKU index: SKU ↔ Shopify inventory item ↔ Sitoo product.

Kept in memory on each worker (it is small: one entry per variant) and rebuilt from both
platforms at start, then kept current from product webhooks, which reach every worker of a
deployment through the SKU index feed (``tillsync.streams.stock.sku_feed``). Lookups happen on every
stock event, so they must not cost a table read.

What Shopify says is kept as claims, one SKU per inventory item, and the lookups are derived
from the claims again whenever one changes: a SKU maps to an item only while exactly one item
claims it. A SKU two variants claim maps to neither (two positions would write one item, and
either could be the wrong one), and a variant whose SKU changes takes its item away from the
old SKU. Both come back as findings for a person to look at; nothing is merged silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class DuplicateSku:
    """Two or more Shopify inventory items claim one SKU: none of them is synced."""

    sku: str
    items: tuple[int, ...]


@dataclass(frozen=True)
class RenamedSku:
    """A Shopify inventory item's SKU changed ("" when it no longer has one)."""

    item: int
    old: str
    new: str


SkuFinding = DuplicateSku | RenamedSku


@dataclass
class SkuIndex:
    item_by_sku: dict[str, int] = field(default_factory=dict)
    sku_by_item: dict[int, str] = field(default_factory=dict)
    sitoo_skus: set[str] = field(default_factory=set)
    # inventory item -> its SKU, as Shopify last said; the two lookups above derive from it
    claims: dict[int, str] = field(default_factory=dict)
    items_of: dict[str, set[int]] = field(default_factory=dict)

    def add_shopify(self, sku: str, inventory_item_id: int) -> list[SkuFinding]:
        """One variant as Shopify says it is now; what changed that a person must see."""
        old = self.claims.get(inventory_item_id)
        if old == sku or (old is None and not sku):
            return []
        findings: list[SkuFinding] = []
        if old is not None:
            self._unclaim(inventory_item_id, old)
            findings.append(RenamedSku(item=inventory_item_id, old=old, new=sku))
        if sku:
            self.claims[inventory_item_id] = sku
            items = self.items_of.setdefault(sku, set())
            items.add(inventory_item_id)
            if len(items) > 1:
                findings.append(DuplicateSku(sku=sku, items=tuple(sorted(items))))
            self._derive(sku)
        return findings

    def replace_shopify(self, claims: Mapping[int, str]) -> list[SkuFinding]:
        """Every variant from a full export: the index is derived from these claims alone (an
        item that is gone loses its SKU). Findings are the renames since the index last knew
        the item, and every SKU claimed more than once."""
        renamed: list[SkuFinding] = [
            RenamedSku(item=item, old=old, new=claims.get(item, ""))
            for item, old in sorted(self.claims.items())
            if item in claims and claims[item] != old
        ]
        self.claims = {item: sku for item, sku in claims.items() if sku}
        self.items_of = {}
        for item, sku in self.claims.items():
            self.items_of.setdefault(sku, set()).add(item)
        self.item_by_sku = {}
        self.sku_by_item = {}
        for sku in self.items_of:
            self._derive(sku)
        duplicates: list[SkuFinding] = [
            DuplicateSku(sku=sku, items=tuple(sorted(items)))
            for sku, items in sorted(self.items_of.items())
            if len(items) > 1
        ]
        return renamed + duplicates

    def _unclaim(self, item: int, sku: str) -> None:
        del self.claims[item]
        items = self.items_of.get(sku, set())
        items.discard(item)
        self.sku_by_item.pop(item, None)
        if not items:
            self.items_of.pop(sku, None)
        self._derive(sku)

    def _derive(self, sku: str) -> None:
        """The lookups for one SKU from its claims: one item, or none."""
        items = self.items_of.get(sku, set())
        for item in items:
            self.sku_by_item.pop(item, None)
        if len(items) == 1:
            [item] = items
            self.item_by_sku[sku] = item
            self.sku_by_item[item] = sku
        else:
            self.item_by_sku.pop(sku, None)

    def add_sitoo(self, sku: str) -> None:
        self.sitoo_skus.add(sku)

    def in_shopify(self, sku: str) -> bool:
        """Some Shopify item claims this SKU (a duplicated one too: it is no unknown SKU)."""
        return sku in self.items_of

    def in_sitoo(self, sku: str) -> bool:
        return sku in self.sitoo_skus

    @property
    def duplicates(self) -> dict[str, tuple[int, ...]]:
        return {sku: tuple(sorted(i)) for sku, i in self.items_of.items() if len(i) > 1}

    def only_in_shopify(self) -> set[str]:
        return set(self.items_of) - self.sitoo_skus

    def only_in_sitoo(self) -> set[str]:
        return self.sitoo_skus - set(self.items_of)


def item_of(index: SkuIndex, sku: str, held: int | None) -> int | None:
    """The inventory item a position of `sku` writes to, given the one it holds: the index's
    answer whenever Shopify has said anything of this SKU (one item, or none while several
    claim it), so a rename or a duplicate reaches positions already stored; none when the item
    held now carries another SKU; otherwise the one held (the index may not be loaded yet)."""
    if sku in index.items_of:
        return index.item_by_sku.get(sku)
    if held is not None and index.sku_by_item.get(held, sku) != sku:
        return None
    return held if held is not None else index.item_by_sku.get(sku)
