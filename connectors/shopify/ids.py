"""Shopify's global ids (``gid://shopify/<Kind>/<n>``) and the numbers inside them.

REST webhook bodies carry plain numbers, GraphQL carries GIDs; tillsync keeps numbers and
builds GIDs only at the GraphQL edge.
"""

from __future__ import annotations


def gid(kind: str, ident: int | str) -> str:
    return f"gid://shopify/{kind}/{ident}"


def gid_tail(value: str | int) -> int:
    """`gid://shopify/InventoryItem/123` -> 123 (a query string is dropped); numbers pass."""
    if isinstance(value, int):
        return value
    return int(str(value).rsplit("/", 1)[-1].split("?", 1)[0])
