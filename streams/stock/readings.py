"""How a reading of Shopify made in bulk (the start snapshot, a reconcile) is stamped.

Positions compare a reading's stamp with Shopify's own (webhooks' updated_at, writes'
createdAt, to the second) and take it only when it is newer than every change they know. A
level in a bulk export was read at some moment between the export's start and its end, so the
only safe stamp is its start: stamped with its end (or with the time it is sent), a value read
minutes before could overwrite a webhook's newer one. Shopify's createdAt of the bulk operation
is that start by Shopify's clock; without it, the time we asked for the export, less what our
clock may be ahead of Shopify's, is a start the read cannot precede.
"""

from __future__ import annotations

from dataclasses import dataclass

# How far our clock may be ahead of Shopify's (NTP keeps servers well within it). An
# assumption, not a Shopify fact: one setting.
CLOCK_SKEW_ALLOWANCE = 2.0


@dataclass(frozen=True)
class ExportStamp:
    """The stamp of every level of one bulk export."""

    skew_allowance: float = CLOCK_SKEW_ALLOWANCE

    def of(self, asked_at: float, created_at: float | None = None) -> float:
        """`asked_at`: our clock before the export was asked for; `created_at`: Shopify's
        createdAt of the bulk operation, when known (to the second, rounded down: still a time
        the read cannot precede)."""
        if created_at is not None:
            return created_at
        return max(0.0, asked_at - self.skew_allowance)
