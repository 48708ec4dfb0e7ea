"""The start: Shopify's levels stamped with the export's start, the SKU index re-derived from
the export, and its findings raised."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from tillsync.connectors.shopify.client import InventorySnapshot, SnapshotLevel
from tillsync.schemas.events import ExceptionRecord, ObservedSource
from tillsync.schemas.locations import Location, LocationMap
from tillsync.streams import topics
from tillsync.streams.context import Context
from tillsync.streams.skus import SkuIndex
from tillsync.streams.stock.position import Position, step
from tillsync.streams.stock.readings import CLOCK_SKEW_ALLOWANCE, ExportStamp
from tillsync.streams.stock.startup import build_index

LOC = Location(
    name="Store 1",
    shopify_location_id=11,
    sitoo_store_id=1,
    sitoo_warehouse_id=101,
    buffer=0,
    settle_seconds=2.0,
)


def level(sku: str, item: int, available: int, location: int = 11) -> SnapshotLevel:
    return SnapshotLevel(sku, item, location, {"available": available})


@dataclass
class Clock:
    now: float

    def __call__(self) -> float:
        return self.now


@dataclass
class SlowShopify:
    """A bulk export that takes a minute, by the clock."""

    clock: Clock
    skus: dict[int, str]
    levels: list[SnapshotLevel]
    created_at: float | None = None  # what Shopify says of the bulk operation's start

    async def inventory_snapshot(self) -> InventorySnapshot:
        self.clock.now += 60.0
        return InventorySnapshot(self.skus, self.levels, self.created_at)


@dataclass
class FakeTopic:
    sent: list[bytes] = field(default_factory=list)

    def take(self, records: Iterable[tuple[bytes | None, bytes]]) -> None:
        self.sent.extend(value for _, value in records)


@dataclass
class FakeRuntime:
    shopify: SlowShopify
    locations: LocationMap = field(default_factory=lambda: LocationMap(locations=[LOC]))
    skus: SkuIndex = field(default_factory=SkuIndex)


@dataclass
class FakeContext:
    runtime: FakeRuntime
    exceptions: FakeTopic = field(default_factory=FakeTopic)

    async def send_all(
        self, spec: topics.TopicSpec, records: Iterable[tuple[bytes | None, bytes]]
    ) -> None:
        assert spec is topics.EXCEPTIONS
        self.exceptions.take(records)


async def test_the_start_snapshot_is_stamped_when_the_export_began_not_when_it_ended() -> None:
    clock = Clock(1_700_000_000.0)
    shopify = SlowShopify(clock, {7: "A"}, [level("A", 7, 4), level("A", 7, 9, location=99)])
    ctx = FakeContext(FakeRuntime(shopify))
    [seen] = await build_index(cast(Context, ctx), clock=clock)
    assert seen.source is ObservedSource.SNAPSHOT and seen.available == 4
    assert seen.updated_at == 1_700_000_000.0 - CLOCK_SKEW_ALLOWANCE
    # a sale Shopify told of by webhook during the export is newer than the snapshot's value
    pos = Position(sku="A", location_id=11, inventory_item_id=7)
    webhook = seen.model_copy(
        update={"available": 3, "updated_at": 1_700_000_030.0, "source": ObservedSource.WEBHOOK}
    )
    step(pos, webhook, LOC, clock.now)
    assert step(pos, seen, LOC, clock.now).ignored and pos.observed == 3


async def test_the_start_snapshot_is_stamped_with_shopifys_start_of_the_export() -> None:
    clock = Clock(1_700_000_000.0)
    shopify = SlowShopify(clock, {7: "A"}, [level("A", 7, 4)], created_at=1_699_999_999.0)
    [seen] = await build_index(cast(Context, FakeContext(FakeRuntime(shopify))), clock=clock)
    assert seen.updated_at == 1_699_999_999.0  # Shopify's clock, not ours less an allowance


def test_shopifys_created_at_of_the_export_is_its_start_when_known() -> None:
    assert ExportStamp().of(100.0, created_at=97.0) == 97.0
    assert ExportStamp(skew_allowance=5.0).of(100.0) == 95.0


async def test_a_sku_two_items_claim_raises_an_exception_and_none_of_its_levels_is_taken() -> None:
    clock = Clock(1_700_000_000.0)
    skus = {7: "A", 8: "A", 9: "B"}
    levels = [level("A", 7, 4), level("A", 8, 5), level("B", 9, 1)]
    ctx = FakeContext(FakeRuntime(SlowShopify(clock, skus, levels)))
    seen = await build_index(cast(Context, ctx), clock=clock)
    assert [(s.sku, s.inventory_item_id) for s in seen] == [("B", 9)]
    [raw] = ctx.exceptions.sent
    record = ExceptionRecord.model_validate_json(raw)
    assert record.type == "duplicate_sku" and record.key == "A"
    assert cast(Any, ctx.runtime.skus).item_by_sku == {"B": 9}
