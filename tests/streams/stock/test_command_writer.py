"""The pickup writers' breakers: their own lines, and the stock sinks' gauge left alone."""

from __future__ import annotations

import logging

import pytest

from tillsync.connectors.outcomes import Outcome
from tillsync.streams.metrics import REGISTRY
from tillsync.streams.stock.command_writer import Breakers


def test_a_pickup_writers_breaker_names_itself_and_leaves_the_stock_gauge_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The gauge says since when the stock writes to a platform are held back: a pickup
    writer's breaker closing must not say they flow again while the stock sink's is open."""
    gauge = "tillsync_breaker_open_since_timestamp_seconds"
    before = REGISTRY.get_sample_value(gauge, {"platform": "shopify"})
    breakers = Breakers.of("sitoo-orders")
    with caplog.at_level(logging.WARNING, logger="tillsync.breaker"):
        for _ in range(breakers.shopify.policy.threshold):
            breakers.shopify.failed(Outcome.SERVER_ERROR)
        assert breakers.shopify.is_open
        assert REGISTRY.get_sample_value(gauge, {"platform": "shopify"}) == before
        breakers.succeeded()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("sitoo-orders: shopify is failing")
    assert lines[1].startswith("sitoo-orders: shopify answers again")
