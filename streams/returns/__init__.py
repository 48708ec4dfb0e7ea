"""The returns flow: a return at a Sitoo till of an online order becomes a Shopify return,
restocked and refunded by rule, exactly once (flows.md, C).

``poller`` finds Sitoo's return orders; ``writer`` carries each to Shopify; ``plan`` works out
what one owes from both platforms' state. The other way, ``refund_credits`` books a Shopify
refund of an order a Sitoo till handed over as a Sitoo credit order (``refunds_to_sitoo``).
"""

from __future__ import annotations

from tillsync.streams.context import Context


def register(ctx: Context) -> None:
    from tillsync.streams.returns import agents, poller

    poller.register(ctx)
    agents.register(ctx)


def register_refund_credits(ctx: Context) -> None:
    from tillsync.streams.returns import refund_credits

    refund_credits.register(ctx)
