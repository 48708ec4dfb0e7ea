"""Reading one inventory level back from Shopify: after a stale compare, or when two webhooks
of one second cannot be ordered by their timestamps."""

from __future__ import annotations

from tillsync.connectors.shopify.budget import Priority
from tillsync.connectors.shopify.client import ShopifyClient
from tillsync.connectors.shopify.ids import gid
from tillsync.connectors.shopify.stock_documents import LEVEL_AVAILABLE


async def read_available(shopify: ShopifyClient, item_id: int, location_id: int) -> int | None:
    """Shopify's `available` for one item at one location; None when it is not stocked there."""
    data = await shopify.execute(
        LEVEL_AVAILABLE,
        {
            "item": gid("InventoryItem", item_id),
            "location": gid("Location", location_id),
        },
        priority=Priority.READ_BACK,
    )
    level = (data.get("inventoryItem") or {}).get("inventoryLevel") or {}
    for q in level.get("quantities", []):
        if q["name"] == "available":
            return int(q["quantity"])
    return None
