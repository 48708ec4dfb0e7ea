"""tillsync.schemas.shopify parses Shopify's own fixtures and the simulator's webhook bodies."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import BaseModel

from tillsync.schemas.shopify import (
    Customer,
    Fulfillment,
    InventoryItem,
    InventoryLevel,
    Location,
    Order,
    Product,
    Refund,
    Variant,
    parse_webhook,
)
from tillsync_sim.shopify import ShopifySimulator, payloads

from .conftest import SEED, make_settings

FIXTURES = Path(__file__).parent / "fixtures"
MODELS: dict[str, type[BaseModel]] = {
    "customer": Customer,
    "fulfillment": Fulfillment,
    "inventory_item": InventoryItem,
    "inventory_level": InventoryLevel,
    "inventory_levels": InventoryLevel,
    "location": Location,
    "locations": Location,
    "order": Order,
    "product": Product,
    "refund": Refund,
    "variant": Variant,
}


def test_every_fixture_has_a_model() -> None:
    assert {p.stem for p in FIXTURES.glob("*.json")} == set(MODELS)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_fixture_parses(name: str) -> None:
    raw = json.loads((FIXTURES / f"{name}.json").read_text())
    [(_, value)] = raw.items()
    items = value if isinstance(value, list) else [value]
    for item in items:
        MODELS[name].model_validate(item)


def test_typed_fields() -> None:
    order = Order.model_validate(json.loads((FIXTURES / "order.json").read_text())["order"])
    assert isinstance(order.total_price, Decimal)
    assert order.line_items and order.line_items[0].quantity >= 1
    assert order.customer is not None and order.customer.email
    refund = Refund.model_validate(json.loads((FIXTURES / "refund.json").read_text())["refund"])
    # the old fixture has only `restock: true`; tillsync reads it as a legacy restock
    assert refund.restock_type_of(refund.refund_line_items[0]) == "legacy_restock"
    extra = Order.model_validate({"id": 1, "brand_new_field": {"x": 1}})
    assert extra.model_extra == {"brand_new_field": {"x": 1}}


def test_simulator_bodies_parse() -> None:
    sim = ShopifySimulator(make_settings())
    sim.seed(SEED)
    st = sim.state
    loc = next(iter(st.locations))
    order = st.place_order([("SHIRT-S", 2)], location_id=loc, email="m@example.com")
    st.fulfil(order.fulfillment_order_ids[0])
    refund = st.refund(order.id, [(order.line_items[0].id, 1, "return", loc)])
    parsed = parse_webhook("orders/updated", payloads.order(order, st))
    assert isinstance(parsed, Order)
    assert parsed.fulfillments[0].line_items[0].sku == "SHIRT-S"
    r = parse_webhook("refunds/create", payloads.refund(refund, order))
    assert isinstance(r, Refund) and r.refund_line_items[0].location_id == loc
    product = next(iter(st.products.values()))
    p = parse_webhook("products/update", payloads.product(product, st))
    assert isinstance(p, Product) and p.variants[0].price == Decimal("499.00")
    assert parse_webhook("shop/update", {}) is None
