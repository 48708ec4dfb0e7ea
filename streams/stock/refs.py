"""Identities that tie a Shopify fulfilment to the Sitoo stock movements that book it.

A store fulfilment of an online order is written to Sitoo as a Move Out whose externalid names
the Shopify order and fulfilment (``sf-<order>-<fulfilment>``); a fulfilment cancelled after
that gets a Move In that reverses it (``sf-<order>-<fulfilment>-r``). When either comes back
through the ledger, the same event that changes Sitoo's stock books it against the order's
held units at that position, so the target never counts those units twice, nor drops them
early.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Sitoo externalid: [A-Za-z0-9_-], 1-40 chars
_EXTERNAL = re.compile(r"^sf-(\d+)-(\d+)(-r)?$")


@dataclass(frozen=True, slots=True)
class FulfilmentRef:
    """The Shopify order and fulfilment a Sitoo transaction books."""

    order_id: int
    fulfilment_id: int
    reversal: bool = False


def fulfilment_external_id(order_id: int, fulfillment_id: int) -> str:
    return f"sf-{order_id}-{fulfillment_id}"


def reversal_external_id(order_id: int, fulfillment_id: int) -> str:
    return f"sf-{order_id}-{fulfillment_id}-r"


def fulfilment_of_external_id(external_id: str | None) -> FulfilmentRef | None:
    if not external_id:
        return None
    match = _EXTERNAL.match(external_id)
    if match is None:
        return None
    return FulfilmentRef(int(match.group(1)), int(match.group(2)), match.group(3) is not None)


def order_of_external_id(external_id: str | None) -> int | None:
    ref = fulfilment_of_external_id(external_id)
    return ref.order_id if ref else None
