"""The SKU index: one item per SKU or none, re-derived from what Shopify says now."""

from __future__ import annotations

from tillsync.streams.skus import DuplicateSku, RenamedSku, SkuIndex, item_of


def test_a_variant_maps_its_sku_both_ways() -> None:
    skus = SkuIndex()
    assert skus.add_shopify("A", 7) == []
    assert skus.item_by_sku == {"A": 7} and skus.sku_by_item == {7: "A"}
    assert skus.add_shopify("A", 7) == []  # the same again: nothing new


def test_two_variants_claiming_one_sku_map_neither_and_are_a_finding() -> None:
    skus = SkuIndex()
    skus.add_shopify("A", 7)
    assert skus.add_shopify("A", 8) == [DuplicateSku(sku="A", items=(7, 8))]
    # neither item is written for A, and neither item's webhooks become A's observations
    assert "A" not in skus.item_by_sku
    assert 7 not in skus.sku_by_item and 8 not in skus.sku_by_item
    assert skus.duplicates == {"A": (7, 8)}
    assert skus.in_shopify("A")  # claimed, so no unknown SKU


def test_a_renamed_variant_takes_its_item_away_from_the_old_sku() -> None:
    skus = SkuIndex()
    skus.add_shopify("OLD", 7)
    assert skus.add_shopify("NEW", 7) == [RenamedSku(item=7, old="OLD", new="NEW")]
    assert skus.item_by_sku == {"NEW": 7} and skus.sku_by_item == {7: "NEW"}
    assert not skus.in_shopify("OLD")


def test_a_rename_that_ends_a_duplicate_maps_the_sku_to_the_item_left() -> None:
    skus = SkuIndex()
    skus.add_shopify("A", 7)
    skus.add_shopify("A", 8)
    assert skus.add_shopify("B", 8) == [RenamedSku(item=8, old="A", new="B")]
    assert skus.item_by_sku == {"A": 7, "B": 8}
    assert skus.sku_by_item == {7: "A", 8: "B"}
    assert skus.duplicates == {}


def test_a_variant_that_loses_its_sku_is_a_rename_to_none() -> None:
    skus = SkuIndex()
    skus.add_shopify("A", 7)
    assert skus.add_shopify("", 7) == [RenamedSku(item=7, old="A", new="")]
    assert skus.item_by_sku == {} and skus.sku_by_item == {}
    assert skus.add_shopify("", 9) == []


def test_a_full_export_re_derives_everything() -> None:
    skus = SkuIndex()
    skus.add_shopify("A", 7)
    skus.add_shopify("GONE", 9)
    findings = skus.replace_shopify({7: "A2", 8: "B", 10: "B", 11: "C"})
    assert findings == [
        RenamedSku(item=7, old="A", new="A2"),
        DuplicateSku(sku="B", items=(8, 10)),
    ]
    assert skus.item_by_sku == {"A2": 7, "C": 11}
    assert skus.sku_by_item == {7: "A2", 11: "C"}
    assert not skus.in_shopify("GONE")  # an item the export no longer has is dropped


def test_skus_on_one_side_only() -> None:
    skus = SkuIndex()
    skus.replace_shopify({7: "A", 8: "B"})
    skus.add_sitoo("B")
    skus.add_sitoo("S")
    assert skus.only_in_shopify() == {"A"} and skus.only_in_sitoo() == {"S"}


def test_a_stored_position_follows_the_index_through_a_rename_and_a_duplicate() -> None:
    index = SkuIndex()
    # the index not loaded yet: the item the position holds stays
    assert item_of(index, "A", 7) == 7
    index.add_shopify("A", 7)
    assert item_of(index, "A", None) == 7
    # item 7 now says B: a position of A no longer writes to it, one of B does
    index.add_shopify("B", 7)
    assert item_of(index, "A", 7) is None
    assert item_of(index, "B", None) == 7
    # a second item claims B: neither is written until one keeps it
    index.add_shopify("B", 8)
    assert item_of(index, "B", 7) is None
