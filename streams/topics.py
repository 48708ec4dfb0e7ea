"""Every Kafka topic tillsync reads or writes, with how it is keyed. The one place for names.

Raw topics keep what a platform said, byte for byte, so that any flow can be replayed after a
bug fix or an outage. Canonical topics hold validated events keyed so that all about one entity
lands in one partition. Command topics feed the sinks.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Keying(StrEnum):
    SKU = "sku"
    ORDER = "shopify order id"
    SITOO_ORDER = "sitoo order id"
    EMAIL = "normalised email"
    EXTERNAL_ID = "external id of the write"
    NONE = "arrival order"


@dataclass(frozen=True)
class TopicSpec:
    """A topic, named relative to the app id so that two deployments never share one."""

    suffix: str
    keyed_by: Keying
    doc: str
    compacted: bool = False
    partitions: int | None = None  # None: the app's topic_partitions

    def name(self, app_id: str) -> str:
        return f"{app_id}.{self.suffix}"


RAW_SHOPIFY_WEBHOOKS = TopicSpec(
    "raw.shopify.webhooks", Keying.NONE, "Shopify webhook bodies and headers, unchanged"
)
RAW_SITOO_EVENTS = TopicSpec("raw.sitoo.events", Keying.NONE, "Sitoo Events SPI batches, unchanged")
RAW_SITOO_LEDGER = TopicSpec(
    "raw.sitoo.ledger",
    Keying.NONE,
    "warehouse transactions polled from Sitoo, in ledger order",
    # one partition: the ledger is one ordered sequence, and its cursor lives beside it
    partitions=1,
)
SHOPIFY_ORDER_WEBHOOKS = TopicSpec(
    "shopify.order-webhooks",
    Keying.ORDER,
    "order webhooks from the raw topic, de-duplicated, body and headers unchanged",
)
STOCK_EVENTS = TopicSpec("stock.events", Keying.SKU, "canonical stock changes from both platforms")
SHOPIFY_INVENTORY_COMMANDS = TopicSpec(
    "cmd.shopify.inventory", Keying.SKU, "inventory targets for the Shopify sink"
)
SITOO_STOCK_COMMANDS = TopicSpec(
    "cmd.sitoo.stock", Keying.EXTERNAL_ID, "stock transactions for the Sitoo sink"
)
SITOO_ORDER_COMMANDS = TopicSpec(
    "cmd.sitoo.orders",
    Keying.EXTERNAL_ID,
    "pickup orders to make or cancel in Sitoo, for the Sitoo orders sink",
)
SITOO_CREDIT_COMMANDS = TopicSpec(
    "cmd.sitoo.credits",
    Keying.EXTERNAL_ID,
    "Shopify refunds to book as Sitoo credit orders, for the refund credits writer",
)
SITOO_PICKUP_EVENTS = TopicSpec(
    "sitoo.pickup-events",
    Keying.SITOO_ORDER,
    "the Events SPI steps that may be a pickup's (ready, collected, rejected), by Sitoo order",
)
RAW_SITOO_ORDERS = TopicSpec(
    "raw.sitoo.orders",
    Keying.NONE,
    "Sitoo's return (credit) orders as the orders poller read them, with the poller's cursor",
    # one partition: the poll is one ordered sequence, and its cursor lives beside it
    partitions=1,
)
SITOO_RETURNS = TopicSpec(
    "sitoo.returns",
    Keying.SITOO_ORDER,
    "returns at a till (Sitoo credit orders) for the returns flow, by the Sitoo order returned",
)
SKU_INDEX = TopicSpec(
    "sku.index",
    Keying.SKU,
    "SKU and inventory item pairs learnt from product webhooks, read in full by every worker",
    compacted=True,
    # one ordered sequence that each worker reads from an offset of its own, outside the group
    partitions=1,
)
DRIFT = TopicSpec("drift", Keying.SKU, "drift detected, healed or reported")
EXCEPTIONS = TopicSpec("exceptions", Keying.NONE, "exceptions with an owner")
DEAD_LETTER = TopicSpec(
    "deadletter", Keying.NONE, "every message that could not be handled, with the reason"
)

ALL: tuple[TopicSpec, ...] = (
    RAW_SHOPIFY_WEBHOOKS,
    RAW_SITOO_EVENTS,
    RAW_SITOO_LEDGER,
    SHOPIFY_ORDER_WEBHOOKS,
    STOCK_EVENTS,
    SHOPIFY_INVENTORY_COMMANDS,
    SITOO_STOCK_COMMANDS,
    SITOO_ORDER_COMMANDS,
    SITOO_CREDIT_COMMANDS,
    SITOO_PICKUP_EVENTS,
    RAW_SITOO_ORDERS,
    SITOO_RETURNS,
    SKU_INDEX,
    DRIFT,
    EXCEPTIONS,
    DEAD_LETTER,
)

# Kafka headers tillsync adds to raw records (platform headers are kept as they came)
HEADER_RECEIVED_AT = "tillsync-received-at"
HEADER_REASON = "tillsync-reason"
HEADER_ORIGIN_TOPIC = "tillsync-origin-topic"
