"""How a Sitoo reason code becomes a Shopify return reason: the retailer's table, validated at
start (``Settings.return_reasons``).

Sitoo's reason codes are the retailer's own (``GET /reasoncodes.json``); Shopify's are a fixed
enum. A code the table does not name becomes OTHER, with the code in the line's note, so that
nothing is lost and e-commerce can extend the table; a return with no code is UNKNOWN.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class ShopifyReturnReason(StrEnum):
    """Shopify's ``ReturnReason`` (2025-01 schema)."""

    SIZE_TOO_SMALL = "SIZE_TOO_SMALL"
    SIZE_TOO_LARGE = "SIZE_TOO_LARGE"
    UNWANTED = "UNWANTED"
    NOT_AS_DESCRIBED = "NOT_AS_DESCRIBED"
    WRONG_ITEM = "WRONG_ITEM"
    DEFECTIVE = "DEFECTIVE"
    STYLE = "STYLE"
    COLOR = "COLOR"
    OTHER = "OTHER"
    UNKNOWN = "UNKNOWN"


class ReasonRule(BaseModel):
    """What one Sitoo reason code means in Shopify: its reason, and whether the goods go back
    on sale (restocked at the store's location) or not (damaged)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shopify: ShopifyReturnReason
    resellable: bool = True


# a starting table: Sitoo's codes are each retailer's own, so this is an example to replace
DEFAULT_RETURN_REASONS: dict[str, ReasonRule] = {
    "SIZE-SMALL": ReasonRule(shopify=ShopifyReturnReason.SIZE_TOO_SMALL),
    "SIZE-LARGE": ReasonRule(shopify=ShopifyReturnReason.SIZE_TOO_LARGE),
    "UNWANTED": ReasonRule(shopify=ShopifyReturnReason.UNWANTED),
    "NOT-AS-DESCRIBED": ReasonRule(shopify=ShopifyReturnReason.NOT_AS_DESCRIBED),
    "WRONG-ITEM": ReasonRule(shopify=ShopifyReturnReason.WRONG_ITEM),
    "DEFECT": ReasonRule(shopify=ShopifyReturnReason.DEFECTIVE, resellable=False),
    "STYLE": ReasonRule(shopify=ShopifyReturnReason.STYLE),
    "COLOR": ReasonRule(shopify=ShopifyReturnReason.COLOR),
}


class ReturnReason(BaseModel):
    """One returned row's reason as Shopify gets it."""

    model_config = ConfigDict(frozen=True)

    shopify: ShopifyReturnReason
    resellable: bool
    note: str  # what the line's returnReasonNote says of Sitoo's reason


def reason_of(code: str, comment: str, table: dict[str, ReasonRule]) -> ReturnReason:
    """The Shopify reason of a Sitoo code: mapped, OTHER with the code in the note when the
    table has no such code (resellable: nothing says the goods are damaged), UNKNOWN with
    none."""
    said = f"; {comment}" if comment else ""
    if not code:
        return ReturnReason(
            shopify=ShopifyReturnReason.UNKNOWN, resellable=True, note=f"no Sitoo reason{said}"
        )
    rule = table.get(code)
    if rule is None:
        return ReturnReason(
            shopify=ShopifyReturnReason.OTHER,
            resellable=True,
            note=f"Sitoo reason {code} (not in tillsync's table){said}",
        )
    return ReturnReason(
        shopify=rule.shopify, resellable=rule.resellable, note=f"Sitoo reason {code}{said}"
    )
