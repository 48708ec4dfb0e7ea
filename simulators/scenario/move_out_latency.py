"""How long a store fulfilment in Shopify takes to reach Sitoo as its Move Out.

Seen from outside, as a retailer would: both simulators' state is looked at every ``poll``
seconds; a fulfilment is stamped when it first shows in Shopify, its Move Out when it first
shows in Sitoo (externalid ``sf-<order>-<fulfilment>``), so each figure is exact to the poll.
The worker's own metrics are not used: a Move Out that never left would not show there.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time
from collections.abc import Callable

from tillsync_sim.scenario.network import Network
from tillsync_sim.shopify import ShopifySimulator
from tillsync_sim.sitoo import SitooSimulator

MOVE_OUT_PREFIX = "sf-"


class MoveOutClock:
    def __init__(
        self,
        network: Network,
        shopify: ShopifySimulator,
        sitoo: SitooSimulator,
        *,
        poll: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        from_start: bool = False,
    ) -> None:
        """``from_start``: look at every transaction Sitoo has, not only those that come after
        this clock starts (the Move Outs of fulfilments made before it)."""
        self.shopify = shopify
        self.sitoo = sitoo
        self.poll = poll
        self._clock = clock
        self._stores = {s.shopify_location_id for s in network.stores}
        self._fulfilments_seen = 0  # how many of Shopify's fulfilments were looked at
        self._next_transaction = 1 if from_start else len(sitoo.state.transactions) + 1
        self.fulfilled_at: dict[int, float] = {}  # fulfilment id -> first seen in Shopify
        self.moved_at: dict[int, float] = {}  # fulfilment id -> its Move Out first seen in Sitoo

    def look(self) -> None:
        now = self._clock()
        fulfilments = self.shopify.state.fulfillments
        for f in itertools.islice(fulfilments.values(), self._fulfilments_seen, None):
            if f.location_id in self._stores and f.status == "success":
                self.fulfilled_at.setdefault(f.id, now)
        self._fulfilments_seen = len(fulfilments)
        for t in self.sitoo.state.transactions_from(self._next_transaction):
            self._next_transaction = t.warehousetransactionid + 1
            externalid = t.externalid or ""
            if not externalid.startswith(MOVE_OUT_PREFIX) or externalid.endswith("-r"):
                continue
            fulfilment_id = int(externalid.rsplit("-", 1)[1])
            self.moved_at.setdefault(fulfilment_id, now)

    async def run(self, until: asyncio.Event) -> None:
        while not until.is_set():
            self.look()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(until.wait(), self.poll)
        self.look()

    def latencies(self) -> list[float]:
        """Seconds from fulfilment to Move Out, for those seen on both sides, sorted."""
        return sorted(
            max(0.0, self.moved_at[f] - at)
            for f, at in self.fulfilled_at.items()
            if f in self.moved_at
        )

    def waiting(self) -> int:
        """Fulfilments whose Move Out has not shown in Sitoo yet."""
        return sum(1 for f in self.fulfilled_at if f not in self.moved_at)

    def quantile(self, q: float) -> float:
        values = self.latencies()
        if not values:
            return math.nan
        return values[min(len(values) - 1, math.ceil(q * len(values)) - 1)]

    def line(self) -> str:
        return (
            f"Move Outs in Sitoo: {len(self.latencies())} of {len(self.fulfilled_at)} store "
            f"fulfilments, fulfilment to Sitoo p50 {self.quantile(0.5):.1f}s "
            f"p99 {self.quantile(0.99):.1f}s (seen every {self.poll:.1f}s)"
        )
