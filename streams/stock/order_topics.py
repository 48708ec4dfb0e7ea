"""Which webhooks change what an online order holds, and which order each is about.

Every one of them only names the order: what the order holds is read from Shopify again
(``tillsync.streams.stock.held_units``). They reach the orders agent keyed by order, so one
order's derivations run one at a time, in order. A fulfilment-order webhook may name only its
fulfilment order (``fulfillment_orders/order_routing_complete`` carries its id and status):
it is keyed ``fulfillment_order/<id>``, and the orders agent asks Shopify for its order and
passes the order on under the order's own key (``DERIVE_TOPIC``), as the sweep does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tillsync.connectors.shopify.ids import gid_tail

# the order webhooks whose order may now hold other units (orders/paid, say, changes nothing)
ORDER_TOPICS = frozenset(
    {
        "orders/create",
        "orders/updated",
        "orders/edited",
        "orders/cancelled",
        "orders/fulfilled",
        "orders/partially_fulfilled",
    }
)
FULFILMENT_TOPICS = frozenset({"fulfillments/create", "fulfillments/update"})
REFUNDS_CREATE = "refunds/create"
OTHER_TOPICS = FULFILMENT_TOPICS | {REFUNDS_CREATE}
FULFILLMENT_ORDER_PREFIX = "fulfillment_orders/"  # all of them: moved, split, merged, ...
# Not Shopify's: the orders agent's own records on the order webhooks topic, asking for one
# order to be read again (by the sweep, or after a fulfilment order was traced to its order).
DERIVE_TOPIC = "tillsync/order-derive"
# ... and the Sitoo orders sink's answer that a pickup's Sitoo order exists (``PickupInSitoo``):
# the order is read again with it
PICKUP_IN_SITOO_TOPIC = "tillsync/pickup-in-sitoo"
# ... and Sitoo's handover of a pickup (``PickupHandedOver``): what it delivered has left Sitoo
PICKUP_HANDED_OVER_TOPIC = "tillsync/pickup-handed-over"
PICKUP_TOPICS = frozenset({PICKUP_IN_SITOO_TOPIC, PICKUP_HANDED_OVER_TOPIC})
_FO_KEY = "fulfillment_order/"


def changes_holds(topic: str) -> bool:
    return (
        topic in ORDER_TOPICS
        or topic in OTHER_TOPICS
        or topic.startswith(FULFILLMENT_ORDER_PREFIX)
        or topic == DERIVE_TOPIC
        or topic in PICKUP_TOPICS
    )


def forwarded(topic: str) -> bool:
    """Webhooks the orders agent takes: every order webhook (Move Outs and hints come from
    them too) and every other that changes what an order holds."""
    return topic.startswith("orders/") or changes_holds(topic)


@dataclass(frozen=True, slots=True)
class OrderKey:
    """Which order a record is about: its id, or only a fulfilment order's."""

    order_id: int | None = None
    fulfilment_order_id: int | None = None

    def encode(self) -> bytes:
        if self.order_id is not None:
            return str(self.order_id).encode()
        return f"{_FO_KEY}{self.fulfilment_order_id}".encode()

    @classmethod
    def decode(cls, key: bytes | str | None) -> OrderKey | None:
        text = key.decode() if isinstance(key, bytes) else (key or "")
        try:
            if text.startswith(_FO_KEY):
                return cls(fulfilment_order_id=int(text[len(_FO_KEY) :]))
            return cls(order_id=int(text))
        except ValueError:
            return None


def _id(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return gid_tail(value) if isinstance(value, str | int) else None
    except ValueError:
        return None


def order_key_of(topic: str, body: bytes) -> OrderKey | None:
    """The order a webhook of ``forwarded`` topic is about, or ``None`` if its body names none.
    Raises ValueError for a body that is not JSON."""
    data = json.loads(body)
    if not isinstance(data, dict):
        return None
    if topic.startswith("orders/"):
        order_id = _id(data.get("id"))
    elif topic.startswith(FULFILLMENT_ORDER_PREFIX):
        return _fulfilment_order_key(data)
    else:
        order_id = _id(data.get("order_id"))
    return OrderKey(order_id=order_id) if order_id is not None else None


def _fulfilment_order_key(data: dict[str, Any]) -> OrderKey | None:
    # the bodies differ by topic (fulfillment_order, original_fulfillment_order,
    # moved_fulfillment_order, remaining_fulfillment_order, ...): any fulfilment order in it
    # belongs to the one order
    found: int | None = None
    for name, value in data.items():
        if not isinstance(value, dict) or "fulfillment_order" not in name:
            continue
        order_id = _id(value.get("order_id"))
        if order_id is not None:
            return OrderKey(order_id=order_id)
        if found is None:
            found = _id(value.get("id"))
    order_id = _id(data.get("order_id"))
    if order_id is not None:
        return OrderKey(order_id=order_id)
    return OrderKey(fulfilment_order_id=found) if found is not None else None
