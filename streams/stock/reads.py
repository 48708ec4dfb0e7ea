"""Reading one inventory level back from Shopify: after a stale compare, or when two webhooks
of one second cannot be ordered by their timestamps."""

from __future__ import annotations

from tillsync.connectors.shopify.client import ShopifyClient


async def read_available(shopify: ShopifyClient, item_id: int, location_id: int) -> int | None:
    """Shopify's `available` for one item at one location; None when it is not stocked there."""
    return await shopify.available(item_id, location_id)
