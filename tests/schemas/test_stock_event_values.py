"""Stock events refuse values no platform can mean: a clear validation error for each, never a
NaN or an infinity that would compare false with everything in a position."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from tillsync.schemas.events import (
    DriftCheck,
    OrderPlaced,
    PendingUnits,
    SetInventory,
    ShopifyObserved,
    SitooLevel,
    SitooReserved,
    WriteResult,
    stock_events,
)
from tillsync.schemas.money import MoneyError, parse_decimal, whole_units
from tillsync.schemas.sitoo import WarehouseTransaction

LEVEL: dict[str, Any] = {
    "sku": "A",
    "warehouse_id": 101,
    "total": 5,
    "version": 7,
    "event_time": 1_700_000_000.0,
}
RESERVED: dict[str, Any] = {
    "sku": "A",
    "warehouse_id": 101,
    "reserved": 1,
    "observed_at": 1_700_000_000.0,
}
OBSERVED: dict[str, Any] = {
    "sku": "A",
    "location_id": 11,
    "inventory_item_id": 7,
    "available": 3,
    "updated_at": 1_700_000_000.0,
    "source": "webhook",
}
RESULT: dict[str, Any] = {
    "sku": "A",
    "location_id": 11,
    "inventory_item_id": 7,
    "ok": True,
    "target": 3,
    "written": 3,
    "version": 1,
    "at": 1_700_000_000.0,
}
PENDING: dict[str, Any] = {
    "sku": "A",
    "location_id": 11,
    "ref": "order/1/line/2",
    "units": 1,
    "at": 1_700_000_000.0,
}
PLACED: dict[str, Any] = {"sku": "A", "order_id": 1, "units": 1, "at": 1_700_000_000.0}
CHECK: dict[str, Any] = {"sku": "A", "location_id": 11, "at": 1_700_000_000.0}
COMMAND: dict[str, Any] = {
    "sku": "A",
    "inventory_item_id": 7,
    "location_id": 11,
    "target": 3,
    "change_from": 2,
    "version": 1,
    "sitoo_version": 7,
    "event_time": 1_700_000_000.0,
}

MODELS: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (SitooLevel, LEVEL),
    (SitooReserved, RESERVED),
    (ShopifyObserved, OBSERVED),
    (WriteResult, RESULT),
    (PendingUnits, PENDING),
    (OrderPlaced, PLACED),
    (DriftCheck, CHECK),
    (SetInventory, COMMAND),
]

NAN, INF = float("nan"), float("inf")

# (model, field, value, what the error says)
NONSENSE: list[tuple[type[BaseModel], dict[str, Any], str, Any]] = [
    # quantities
    (SitooLevel, LEVEL, "total", NAN),
    (SitooLevel, LEVEL, "total", INF),
    (SitooLevel, LEVEL, "total", 10**12),
    (SitooLevel, LEVEL, "total", -(10**12)),
    (SitooLevel, LEVEL, "delta", 10**12),
    (SitooLevel, LEVEL, "total", 1.5),
    (SitooReserved, RESERVED, "reserved", NAN),
    (SitooReserved, RESERVED, "reserved", -1),
    (ShopifyObserved, OBSERVED, "available", NAN),
    (ShopifyObserved, OBSERVED, "available", -INF),
    (ShopifyObserved, OBSERVED, "available", 10**12),
    (WriteResult, RESULT, "target", 10**12),
    (WriteResult, RESULT, "written", 10**12),
    (PendingUnits, PENDING, "units", NAN),
    (OrderPlaced, PLACED, "units", -1),
    (OrderPlaced, PLACED, "units", INF),
    (SetInventory, COMMAND, "target", 10**12),
    (SetInventory, COMMAND, "change_from", NAN),
    # times
    (SitooLevel, LEVEL, "event_time", NAN),
    (SitooLevel, LEVEL, "event_time", INF),
    (SitooLevel, LEVEL, "event_time", -1.0),
    (SitooLevel, LEVEL, "event_time", 1_700_000_000_000.0),  # milliseconds, not seconds
    (SitooReserved, RESERVED, "observed_at", NAN),
    (ShopifyObserved, OBSERVED, "updated_at", NAN),
    (ShopifyObserved, OBSERVED, "updated_at", INF),
    (WriteResult, RESULT, "at", NAN),
    (WriteResult, RESULT, "shopify_at", INF),
    (PendingUnits, PENDING, "at", -INF),
    (OrderPlaced, PLACED, "at", NAN),
    (DriftCheck, CHECK, "at", NAN),
    (SetInventory, COMMAND, "event_time", NAN),
    # identities and versions
    (SitooLevel, LEVEL, "sku", "   "),
    (SitooLevel, LEVEL, "warehouse_id", -101),
    (SitooLevel, LEVEL, "version", -1),
    (ShopifyObserved, OBSERVED, "location_id", -11),
    (ShopifyObserved, OBSERVED, "inventory_item_id", -7),
    (WriteResult, RESULT, "version", -1),
    (SetInventory, COMMAND, "version", 0),
]


@pytest.mark.parametrize(("model", "good"), MODELS, ids=lambda m: getattr(m, "__name__", ""))
def test_the_reference_events_are_valid(model: type[BaseModel], good: dict[str, Any]) -> None:
    model.model_validate(good)


@pytest.mark.parametrize(
    ("model", "good", "name", "value"),
    NONSENSE,
    ids=[f"{m.__name__}.{n}={v!r}" for m, _, n, v in NONSENSE],
)
def test_nonsense_is_refused_with_the_field_named(
    model: type[BaseModel], good: dict[str, Any], name: str, value: Any
) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate({**good, name: value})
    [error] = caught.value.errors()
    assert error["loc"] == (name,)


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_on_the_wire_are_refused(literal: bytes) -> None:
    for name in ("total", "event_time"):
        raw = SitooLevel(**LEVEL).model_dump_json().encode()
        field = f'"{name}":'.encode()
        head, tail = raw.split(field)
        rest = tail.split(b",", 1)[1]
        with pytest.raises(ValidationError):
            stock_events(head + field + literal + b"," + rest)


@pytest.mark.parametrize("text", ["NaN", "sNaN", "Infinity", "-inf"])
def test_a_sitoo_quantity_that_is_not_a_finite_number_is_refused(text: str) -> None:
    with pytest.raises(MoneyError, match="not a finite number"):
        parse_decimal(text)
    with pytest.raises(MoneyError, match="not a finite number"):
        whole_units(text)


def test_a_warehouse_transaction_with_a_nan_total_is_a_validation_error() -> None:
    body = {
        "warehousetransactionid": 1,
        "warehouseid": 101,
        "transactiontype": 10,
        "items": [{"sku": "A", "decimalquantity": "-1.000", "decimaltotal": "NaN"}],
    }
    with pytest.raises(ValidationError) as caught:
        WarehouseTransaction.model_validate(body)
    [error] = caught.value.errors()
    assert error["loc"] == ("items", 0, "decimaltotal")


def test_ordinary_sitoo_quantities_still_parse() -> None:
    assert whole_units("5.000") == 5
    assert whole_units("-2.500") == -2
    assert parse_decimal("") == Decimal(0)
