"""When to look at a position again: drift checks due at the end of a settle window, and
read-backs of Shopify's value after webhooks that could not be ordered.

Kept in memory only: after a crash or a rebalance the full scan of the position table finds
what is still open, so nothing here has to survive a restart.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tillsync.schemas.events import DriftCheck, DriftState, ObservedSource, ShopifyObserved
from tillsync.streams.stock.position import Outcome, Position

VERIFY_AFTER = 1.5  # let the webhooks of that second arrive before reading back
VERIFY_BATCH = 50


@dataclass(frozen=True, slots=True)
class DueCheck:
    """A drift check to send for one position once its settle window has passed."""

    key: str
    sku: str
    location_id: int
    at: float

    def drift_check(self, now: float) -> DriftCheck:
        return drift_check(self.sku, self.location_id, now)


@dataclass(frozen=True, slots=True)
class ReadBack:
    """Shopify's `available` for one position, to be read once the webhooks of the ambiguous
    second have had time to arrive."""

    key: str
    sku: str
    location_id: int
    inventory_item_id: int
    at: float
    # Shopify's stamp of the newest change the position knew when it asked (0: none), and
    # when it asked by our clock: the reading is stamped from them (see `stamp`)
    known_at: float = 0.0
    asked_at: float = 0.0

    def stamp(self, started: float) -> float:
        """When the reading taken at `started` (our clock) was taken, by Shopify's clock.

        The position compares it with Shopify's own stamps (webhooks' updated_at, writes'
        createdAt), and our clock may be off from Shopify's by more than the second those
        stamps are rounded to. So it is stamped with no clock of ours: the change it knew of
        had happened when it asked, and the read began `started - asked_at` seconds later, so
        `known_at` plus that is a time the read cannot precede. With `VERIFY_AFTER` over one
        second, this falls in a later second than `known_at`: the reading settles the second
        it was asked for."""
        if self.known_at <= 0:
            return started  # nothing of Shopify's to compare it with
        return self.known_at + max(0.0, started - self.asked_at)

    def observed(self, available: int, started: float) -> ShopifyObserved:
        """The reading, for the position, of `available` read from `started` on."""
        return ShopifyObserved(
            sku=self.sku,
            location_id=self.location_id,
            inventory_item_id=self.inventory_item_id,
            available=available,
            updated_at=self.stamp(started),
            source=ObservedSource.READ,
        )


def drift_check(sku: str, location_id: int, now: float) -> DriftCheck:
    return DriftCheck(sku=sku, location_id=location_id, at=now)


class DriftScheduler:
    """The due drift checks, the pending read-backs and the positions in drift now, each
    keyed by position key: a position has at most one of each."""

    def __init__(self) -> None:
        self.due: dict[str, DueCheck] = {}
        self.read_backs: dict[str, ReadBack] = {}
        self.open_drift: set[str] = set()

    def follow(self, key: str, pos: Position, out: Outcome, now: float) -> None:
        """Take what one step's outcome asks of the schedule; `pos` is the position after it."""
        for drift in out.drift:
            if drift.state is DriftState.DETECTED:
                self.open_drift.add(key)
        if pos.drift_since is None:
            self.open_drift.discard(key)
            self.cancel(key)
        if out.check_at is not None:
            self.schedule(key, pos.sku, pos.location_id, out.check_at)
        if out.verify and pos.inventory_item_id is not None:
            known = max(pos.webhook_at, pos.write_at)
            self.read_back_later(
                key, pos.sku, pos.location_id, pos.inventory_item_id, now, known_at=known
            )

    def schedule(self, key: str, sku: str, location_id: int, at: float) -> None:
        """Check the position at `at`; replaces a check scheduled earlier."""
        self.due[key] = DueCheck(key=key, sku=sku, location_id=location_id, at=at)

    def cancel(self, key: str) -> None:
        self.due.pop(key, None)

    def is_scheduled(self, key: str) -> bool:
        return key in self.due

    def due_now(self, now: float) -> list[DueCheck]:
        """The checks due by `now`, taken off the schedule."""
        ready = [check for check in self.due.values() if check.at <= now]
        for check in ready:
            del self.due[check.key]
        return ready

    def read_back_later(
        self,
        key: str,
        sku: str,
        location_id: int,
        inventory_item_id: int,
        now: float,
        *,
        known_at: float = 0.0,
    ) -> None:
        self.read_backs[key] = ReadBack(
            key=key,
            sku=sku,
            location_id=location_id,
            inventory_item_id=inventory_item_id,
            at=now + VERIFY_AFTER,
            known_at=known_at,
            asked_at=now,
        )

    def read_backs_ready(self, now: float, limit: int = VERIFY_BATCH) -> list[ReadBack]:
        """Up to `limit` read-backs whose wait is over. They stay scheduled until `start` takes
        each: the reader awaits Shopify between two of them."""
        return [rb for rb in self.read_backs.values() if rb.at <= now][:limit]

    def start(self, read_back: ReadBack) -> None:
        """Take a read-back off the schedule as it is made (with whatever replaced it since it
        was listed: the one being made answers for both)."""
        self.read_backs.pop(read_back.key, None)

    def retry(self, read_back: ReadBack, now: float) -> None:
        """Make a failed read-back again later, unless a newer one was asked for meanwhile."""
        self.read_backs.setdefault(read_back.key, replace(read_back, at=now + VERIFY_AFTER))
