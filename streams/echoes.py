"""Shopify's webhooks for our own writes, recognised so that they cost no position update.

Every quantity the sink writes comes back as an ``inventory_levels/update`` webhook carrying
the value written. The write result has already told the position that value, so on the worker
that made the write the echo is dropped once its raw record is in Kafka (the audit and a replay
still see it). A webhook that does not match (another worker wrote, the value has moved since,
or it came long after) takes the ordinary path: a miss costs CPU, never correctness.
"""

from __future__ import annotations

from collections import OrderedDict

# Shopify stamps a write's createdAt and its webhook's updated_at to the second, by one clock;
# a webhook stamped further from the write than this is not taken for its echo.
ECHO_WINDOW = 2.0


class Echoes:
    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        # (inventory item, location) -> (value written, when Shopify applied it)
        self._expected: OrderedDict[tuple[int, int], tuple[int, float]] = OrderedDict()

    def expect(self, item: int, location: int, value: int, applied_at: float) -> None:
        key = (item, location)
        self._expected[key] = (value, applied_at)
        self._expected.move_to_end(key)
        if len(self._expected) > self.capacity:
            self._expected.popitem(last=False)

    def absorb(self, item: int, location: int, available: int, updated_at: float) -> bool:
        """True if this webhook is the echo of our newest write there (each write absorbs one)."""
        key = (item, location)
        expected = self._expected.get(key)
        if expected is None:
            return False
        value, applied_at = expected
        if value != available or abs(updated_at - applied_at) > ECHO_WINDOW:
            return False
        del self._expected[key]
        return True

    def __len__(self) -> int:
        return len(self._expected)
