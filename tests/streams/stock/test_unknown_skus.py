"""A SKU one platform knows and the other does not: counted always, logged once an hour."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest

from tillsync.streams import metrics
from tillsync.streams.stock.unknown_skus import LOG_EVERY, UnknownSkus


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


def counted(platform: metrics.Platform) -> float:
    return metrics.unknown_skus.labels(platform=platform.value)._value.get()  # type: ignore[attr-defined]


def test_every_event_is_counted_and_each_sku_logged_once_an_hour(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    unknown = UnknownSkus(clock=clock)
    before = counted(metrics.Platform.SITOO)
    with caplog.at_level(logging.WARNING, logger="tillsync.skus"):
        assert unknown.note(metrics.Platform.SITOO, "S-1")
        assert not unknown.note(metrics.Platform.SITOO, "S-1")
        assert unknown.note(metrics.Platform.SITOO, "S-2")
        assert unknown.note(metrics.Platform.SHOPIFY, "S-1")  # the other side's is its own
        clock.now += LOG_EVERY - 1
        assert not unknown.note(metrics.Platform.SITOO, "S-1")
        clock.now += 1
        assert unknown.note(metrics.Platform.SITOO, "S-1")
    assert counted(metrics.Platform.SITOO) == before + 5
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4
    assert lines[0].startswith("SKU S-1 is in Sitoo but not in Shopify")
    assert lines[2].startswith("SKU S-1 is in Shopify but not in Sitoo")


def test_what_it_remembers_is_bounded() -> None:
    unknown = UnknownSkus(remember_at_most=3, clock=Clock())
    for n in range(10):
        unknown.note(metrics.Platform.SITOO, f"S-{n}")
    assert unknown.note(metrics.Platform.SITOO, "S-0")  # forgotten, so logged again
    assert not unknown.note(metrics.Platform.SITOO, "S-9")
