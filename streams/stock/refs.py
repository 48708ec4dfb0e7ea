"""Identities that tie a Shopify order line to the Sitoo stock movement that settles it.

A store-fulfilled online order is written to Sitoo as a Move Out whose externalid names the
Shopify order and fulfilment; when that transaction comes back through the ledger, the same
event that lowers Sitoo's stock settles the order line's pending units, so the target never
counts those units twice, nor drops them early.
"""

from __future__ import annotations

import re

_EXTERNAL = re.compile(r"^sf-(\d+)-(\d+)$")  # Sitoo externalid: [A-Za-z0-9_-], 1-40 chars


def pending_ref(order_id: int, sku: str) -> str:
    return f"order/{order_id}/{sku}"


def fulfilment_external_id(order_id: int, fulfillment_id: int) -> str:
    return f"sf-{order_id}-{fulfillment_id}"


def order_of_external_id(external_id: str | None) -> int | None:
    if not external_id:
        return None
    match = _EXTERNAL.match(external_id)
    return int(match.group(1)) if match else None
