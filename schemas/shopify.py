"""Shopify's REST-shaped webhook bodies, as tillsync reads them.

Permissive on purpose: Shopify adds fields often and old payloads lack new ones, so unknown
fields are kept (``extra="allow"``) and only the fields tillsync uses are typed. Money goes
through ``tillsync.schemas.money`` so it is a cent-exact ``Decimal``, never a float.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from tillsync.schemas.money import money

Money = Annotated[Decimal, BeforeValidator(money)]


class _Shopify(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class MoneyAmount(_Shopify):
    amount: Money
    currency_code: str


class MoneySet(_Shopify):
    shop_money: MoneyAmount
    presentment_money: MoneyAmount | None = None


class TaxLine(_Shopify):
    title: str | None = None
    price: Money = Decimal("0.00")
    rate: float | None = None


class Address(_Shopify):
    first_name: str | None = None
    last_name: str | None = None
    address1: str | None = None
    city: str | None = None
    zip: str | None = None
    country_code: str | None = None
    phone: str | None = None


class Customer(_Shopify):
    id: int
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    tags: str = ""
    note: str | None = None
    state: str | None = None
    orders_count: int | None = None
    total_spent: Money | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    admin_graphql_api_id: str | None = None

    @property
    def tag_list(self) -> list[str]:
        return [t.strip() for t in self.tags.split(",") if t.strip()]


class LineItem(_Shopify):
    id: int
    variant_id: int | None = None
    product_id: int | None = None
    sku: str | None = None  # can be "" as well as missing
    title: str | None = None
    name: str | None = None
    quantity: int
    current_quantity: int | None = None
    fulfillable_quantity: int | None = None
    fulfillment_status: str | None = None
    price: Money = Decimal("0.00")
    price_set: MoneySet | None = None
    total_discount: Money = Decimal("0.00")
    requires_shipping: bool | None = None
    tax_lines: list[TaxLine] = Field(default_factory=list)
    admin_graphql_api_id: str | None = None


class ShippingLine(_Shopify):
    id: int | None = None
    code: str | None = None
    title: str | None = None
    source: str | None = None
    price: Money = Decimal("0.00")


class Fulfillment(_Shopify):
    id: int
    order_id: int
    status: str | None = None
    location_id: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    tracking_number: str | None = None
    line_items: list[LineItem] = Field(default_factory=list)


class Transaction(_Shopify):
    id: int | None = None
    kind: str | None = None
    status: str | None = None
    amount: Money = Decimal("0.00")
    currency: str | None = None


class RefundLineItem(_Shopify):
    id: int
    line_item_id: int
    quantity: int
    location_id: int | None = None
    # current payloads; the legacy fixture has only the refund-level `restock: true`
    restock_type: str | None = None
    subtotal: Money | None = None
    total_tax: Money | None = None
    line_item: LineItem | None = None


class Refund(_Shopify):
    id: int
    order_id: int
    created_at: datetime | None = None
    processed_at: datetime | None = None
    note: str | None = None
    restock: bool | None = None
    refund_line_items: list[RefundLineItem] = Field(default_factory=list)
    transactions: list[Transaction] = Field(default_factory=list)
    admin_graphql_api_id: str | None = None

    def restock_type_of(self, line: RefundLineItem) -> str:
        if line.restock_type:
            return line.restock_type
        return "legacy_restock" if self.restock else "no_restock"


class Order(_Shopify):
    id: int
    name: str | None = None
    order_number: int | None = None
    email: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    financial_status: str | None = None
    fulfillment_status: str | None = None
    currency: str | None = None
    total_price: Money = Decimal("0.00")
    subtotal_price: Money | None = None
    total_tax: Money | None = None
    total_discounts: Money | None = None
    location_id: int | None = None
    source_name: str | None = None
    customer: Customer | None = None
    line_items: list[LineItem] = Field(default_factory=list)
    shipping_lines: list[ShippingLine] = Field(default_factory=list)
    fulfillments: list[Fulfillment] = Field(default_factory=list)
    refunds: list[Refund] = Field(default_factory=list)
    shipping_address: Address | None = None
    billing_address: Address | None = None
    admin_graphql_api_id: str | None = None


class InventoryLevel(_Shopify):
    inventory_item_id: int
    location_id: int
    available: int | None = None  # null is seen in real payloads
    updated_at: datetime | None = None
    admin_graphql_api_id: str | None = None


class InventoryItem(_Shopify):
    id: int
    sku: str | None = None
    tracked: bool | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Location(_Shopify):
    id: int
    name: str
    active: bool | None = None
    address1: str | None = None
    city: str | None = None
    zip: str | None = None
    country_code: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Variant(_Shopify):
    id: int
    product_id: int | None = None
    title: str | None = None
    sku: str | None = None
    barcode: str | None = None
    price: Money = Decimal("0.00")
    position: int | None = None
    inventory_item_id: int | None = None
    inventory_quantity: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Product(_Shopify):
    id: int
    title: str
    handle: str | None = None
    vendor: str | None = None
    product_type: str | None = None
    status: str | None = None
    tags: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    variants: list[Variant] = Field(default_factory=list)


# Webhook topic -> the model of its body (top-level, not wrapped in a resource key).
TOPIC_MODELS: dict[str, type[BaseModel]] = {
    "orders/create": Order,
    "orders/paid": Order,
    "orders/updated": Order,
    "orders/fulfilled": Order,
    "orders/cancelled": Order,
    "refunds/create": Refund,
    "inventory_levels/update": InventoryLevel,
    "customers/create": Customer,
    "customers/update": Customer,
    "products/create": Product,
    "products/update": Product,
}


def parse_webhook(topic: str, body: dict[str, Any]) -> BaseModel | None:
    """The typed body for a topic tillsync consumes, or None for other topics."""
    model = TOPIC_MODELS.get(topic)
    return model.model_validate(body) if model else None
