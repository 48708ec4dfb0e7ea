"""The stock flow: Sitoo's ledger and Shopify's inventory webhooks in, positions per (SKU,
location) in a table, drift found as it appears, writes out through the sinks (Shopify's
levels, Sitoo's Move Outs and pickup orders)."""

from __future__ import annotations

from tillsync.streams.context import Context


def register(ctx: Context) -> None:
    """Every agent, table, timer and view of the stock flow."""
    from tillsync.streams.stock import (
        agents,
        ledger,
        order_reads,
        pickup_handover,
        reservations,
        shopify_sink,
        shopify_webhooks,
        sitoo_orders,
        sitoo_sink,
        startup,
    )

    agents.register(ctx)
    startup.register(ctx)
    ledger.register(ctx)
    reservations.register(ctx)
    shopify_webhooks.register(ctx)
    order_reads.register(ctx)
    shopify_sink.register(ctx)
    sitoo_sink.register(ctx)
    if ctx.settings.pickups_to_sitoo:
        sitoo_orders.register(ctx)
        pickup_handover.register(ctx)
