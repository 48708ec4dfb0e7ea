"""A record of ``stock.events`` is one event, or a partition's write results."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tillsync.schemas.events import DriftCheck, WriteResult, WriteResults, stock_events


def _result(sku: str, version: int) -> WriteResult:
    return WriteResult(
        sku=sku,
        location_id=1,
        inventory_item_id=10 + version,
        ok=True,
        target=5,
        written=5,
        version=version,
        at=1.0,
    )


def test_a_single_event_is_itself() -> None:
    check = DriftCheck(sku="A", location_id=1, at=2.0)
    assert stock_events(check.model_dump_json().encode()) == [check]


def test_write_results_come_out_one_per_position_in_order() -> None:
    batch = WriteResults(results=[_result("A", 1), _result("B", 2), _result("A", 3)])
    events = stock_events(batch.model_dump_json().encode())
    assert [(e.sku, e.version) for e in events if isinstance(e, WriteResult)] == [
        ("A", 1),
        ("B", 2),
        ("A", 3),
    ]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"kind": "write_results", "results": []}',
        b'{"kind": "write_results", "results": [{"kind": "drift_check"}]}',
        b'{"kind": "something_else", "sku": "A"}',
        b"not json",
    ],
)
def test_anything_else_is_refused(raw: bytes) -> None:
    with pytest.raises(ValidationError):
        stock_events(raw)
