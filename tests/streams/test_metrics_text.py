from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from tillsync_sim.metrics_text import buckets, quantile, sample


@pytest.fixture
def text() -> str:
    """/metrics text the way the worker renders it, from a registry of its own."""
    registry = CollectorRegistry()
    calls = Counter("tillsync_api_calls_total", "calls", ["platform", "outcome"], registry=registry)
    calls.labels(platform="shopify", outcome="ok").inc(7)
    calls.labels(platform="shopify", outcome="throttled").inc(2)
    calls.labels(platform="sitoo", outcome="ok").inc(5)
    Gauge("tillsync_drift_open_positions", "open", registry=registry).set(3)
    latency = Histogram(
        "tillsync_sync_latency_seconds",
        "latency",
        ["flow"],
        buckets=(0.1, 0.5, 1.0),
        registry=registry,
    )
    for seconds in (0.05, 0.2, 0.3, 0.7, 2.0):
        latency.labels(flow="stock").observe(seconds)
    latency.labels(flow="order").observe(0.05)
    return generate_latest(registry).decode()


def test_a_counter_sample_keeps_total_in_its_name_and_filters_on_labels(text: str) -> None:
    assert sample(text, "tillsync_api_calls_total", platform="shopify", outcome="throttled") == 2
    assert sample(text, "tillsync_api_calls_total", outcome="ok", platform="sitoo") == 5
    # the family name the parser gives the counter is not a sample name
    assert sample(text, "tillsync_api_calls") == 0.0


def test_fewer_labels_than_the_series_has_sum_the_matching_series(text: str) -> None:
    assert sample(text, "tillsync_api_calls_total", platform="shopify") == 9
    assert sample(text, "tillsync_api_calls_total", outcome="ok") == 12
    assert sample(text, "tillsync_api_calls_total") == 14


def test_a_missing_series_or_label_value_is_zero(text: str) -> None:
    assert sample(text, "tillsync_no_such_total") == 0.0
    assert sample(text, "tillsync_api_calls_total", platform="vend") == 0.0
    assert sample(text, "tillsync_api_calls_total", region="eu") == 0.0  # no such label
    assert sample("", "tillsync_api_calls_total") == 0.0


def test_a_gauge_and_a_histograms_count_and_sum(text: str) -> None:
    assert sample(text, "tillsync_drift_open_positions") == 3
    assert sample(text, "tillsync_sync_latency_seconds_count", flow="stock") == 5
    assert sample(text, "tillsync_sync_latency_seconds_count") == 6
    assert sample(text, "tillsync_sync_latency_seconds_sum", flow="stock") == pytest.approx(3.25)


def test_buckets_are_cumulative_sorted_and_end_at_inf(text: str) -> None:
    assert buckets(text, "tillsync_sync_latency_seconds", flow="stock") == [
        (0.1, 1.0),
        (0.5, 3.0),
        (1.0, 4.0),
        (math.inf, 5.0),
    ]


def test_buckets_of_several_series_are_added_bound_by_bound(text: str) -> None:
    assert buckets(text, "tillsync_sync_latency_seconds") == [
        (0.1, 2.0),
        (0.5, 4.0),
        (1.0, 5.0),
        (math.inf, 6.0),
    ]


def test_buckets_of_a_missing_histogram_are_empty(text: str) -> None:
    assert buckets(text, "tillsync_sync_latency_seconds", flow="refund") == []
    assert buckets(text, "tillsync_api_calls_total") == []


def test_quantile_is_the_smallest_bound_whose_count_reaches_q(text: str) -> None:
    stock = buckets(text, "tillsync_sync_latency_seconds", flow="stock")
    assert quantile(stock, 0.2) == 0.1  # 1 of 5 reaches 0.2 exactly
    assert quantile(stock, 0.5) == 0.5  # 2.5 of 5: the second bucket holds 3
    assert quantile(stock, 0.8) == 1.0
    assert quantile(stock, 0.99) == math.inf  # the 2 s write is past every finite bound


def test_quantile_of_nothing_counted_is_nan() -> None:
    assert math.isnan(quantile([], 0.5))
    assert math.isnan(quantile([(0.1, 0.0), (math.inf, 0.0)], 0.5))


def test_quantile_sorts_the_buckets_it_is_given() -> None:
    assert quantile([(math.inf, 4.0), (1.0, 4.0), (0.1, 1.0)], 0.5) == 1.0
