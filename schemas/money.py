"""Money and quantity handling: the one place where amounts are parsed and formatted.

Both platforms put money on the wire as decimal strings ("123.50"); Sitoo also sends quantities
as strings with three decimals ("5.000"). Floats never touch money here: amounts are
``Decimal`` quantised to the currency's minor unit with banker's-free half-up rounding, which
is what tills and Shopify both print.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
MILLI = Decimal("0.001")


class MoneyError(ValueError):
    """An amount or quantity on the wire is not a decimal number."""


def parse_decimal(value: str | int | float | Decimal | None) -> Decimal:
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, float):
        # floats arrive from loose JSON producers; str() keeps the digits the sender meant
        value = str(value)
    try:
        number = Decimal(value)
    except (InvalidOperation, TypeError) as exc:
        raise MoneyError(f"not a decimal number: {value!r}") from exc
    if not number.is_finite():
        # Decimal takes "NaN" and "Infinity" happily; no amount or quantity is either
        raise MoneyError(f"not a finite number: {value!r}")
    return number


def money(value: str | int | float | Decimal | None) -> Decimal:
    """Parse an amount and round it to cents."""
    return parse_decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def format_money(value: Decimal | int | str) -> str:
    """Sitoo's and Shopify's wire format: a string with exactly two decimals."""
    return str(money(value))


def format_quantity(value: Decimal | int | str) -> str:
    """Sitoo's wire format for decimals such as quantities: three decimals."""
    return str(parse_decimal(value).quantize(MILLI, rounding=ROUND_HALF_UP))


def whole_units(value: str | int | Decimal | None) -> int:
    """A stock quantity as whole units; fractional stock (sold by weight) is truncated."""
    return int(parse_decimal(value))
