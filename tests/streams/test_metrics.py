"""The worker's metrics: the registry, the fixed label sets and the consumer lag."""

from __future__ import annotations

from typing import NamedTuple

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tillsync.schemas.events import DriftCause, SitooLevel
from tillsync.schemas.locations import Location
from tillsync.streams import metrics
from tillsync.streams.stock.position import Position, step
from tillsync_sim.metrics_text import sample


class TP(NamedTuple):
    topic: str
    partition: int


class FakeConsumer:
    """The two calls the lag makes of Faust's consumer, answering from plain dicts."""

    def __init__(self, highwaters: dict[TP, int | None]) -> None:
        self.assigned: set[TP] = set(highwaters)
        self.highwaters = highwaters

    def assignment(self) -> set[TP]:
        return set(self.assigned)

    def highwater(self, tp: TP) -> int | None:
        if tp not in self.assigned:
            raise AssertionError("Partition is not assigned")  # what aiokafka does
        return self.highwaters[tp]


def scrape(registry: CollectorRegistry = metrics.REGISTRY) -> str:
    return generate_latest(registry).decode()


def names(text: str) -> set[str]:
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def test_the_registry_exports_process_platform_and_gc_metrics() -> None:
    exported = names(scrape())
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes"} <= exported
    assert {"python_gc_collections_total", "python_gc_objects_collected_total"} <= exported
    assert "python_info" in exported


def test_every_tillsync_name_ends_in_its_unit_and_no_created_series_are_exported() -> None:
    exported = {n for n in names(scrape()) if n.startswith("tillsync_")}
    assert exported, "no tillsync_ samples: the label sets were not created at 0"
    assert not [n for n in exported if n.endswith("_created")]
    units = ("_total", "_seconds", "_bucket", "_count", "_sum", "_positions", "_writes", "_orders")
    assert [n for n in exported if not n.endswith(units)] == []


def test_every_allowed_value_exists_at_zero_before_the_first_event() -> None:
    for cause in DriftCause:
        got = metrics.REGISTRY.get_sample_value("tillsync_drift_detected_total", {"cause": cause})
        assert got is not None, cause
    for platform, outcomes in metrics.API_OUTCOMES.items():
        for outcome in outcomes:
            labels = {"platform": platform, "outcome": outcome}
            assert metrics.REGISTRY.get_sample_value("tillsync_api_calls_total", labels) is not None
    got = metrics.REGISTRY.get_sample_value(
        "tillsync_sink_backlog_writes", {"sink": "shopify-inventory"}
    )
    assert got is not None


def test_a_label_value_outside_the_fixed_set_is_counted_as_other() -> None:
    text = scrape()
    before = sample(text, "tillsync_events_ignored_total", reason="other")
    metrics.events_ignored.labels(reason="stale webhook (updated_at older than what we know)").inc()
    metrics.events_ignored.labels(reason="no such reason").inc()
    text = scrape()
    assert sample(text, "tillsync_events_ignored_total", reason="other") == before + 2
    assert sample(text, "tillsync_events_ignored_total", reason="no such reason") == 0
    calls = sample(text, "tillsync_api_calls_total", platform="shopify", outcome="other")
    metrics.api_calls.labels(platform="shopify", outcome="teapot").inc()
    got = sample(scrape(), "tillsync_api_calls_total", platform="shopify", outcome="other")
    assert got == calls + 1


def test_an_allowed_value_keeps_its_own_series() -> None:
    before = sample(scrape(), "tillsync_drift_detected_total", cause="missed_event")
    metrics.drift_detected.labels(cause=DriftCause.MISSED_EVENT).inc()
    assert sample(scrape(), "tillsync_drift_detected_total", cause="missed_event") == before + 1


def test_a_fixed_metric_creates_only_the_series_it_is_given() -> None:
    registry = CollectorRegistry()
    fixed = metrics.Fixed(
        Counter("t_calls_total", "calls", ["platform", "outcome"], registry=registry),
        series=[{"platform": "shopify", "outcome": "graphql_error"}],
        platform=["shopify", "sitoo"],
        outcome=["ok", "graphql_error"],
    )
    fixed.labels(platform="sitoo", outcome="ok").inc()
    assert {(s.labels["platform"], s.labels["outcome"]) for s in _samples(registry)} == {
        ("shopify", "graphql_error"),
        ("sitoo", "ok"),
    }


def test_topic_labels_take_any_value_until_bound_then_only_the_apps_topics() -> None:
    registry = CollectorRegistry()
    fixed = metrics.Fixed(Counter("t_in_total", "in", ["topic"], registry=registry), topic=None)
    fixed.labels(topic="early").inc()
    fixed.allow(topic=["app.stock.events", "app.raw.sitoo.events"])
    fixed.labels(topic="elsewhere").inc()
    fixed.labels(topic="app.stock.events").inc()
    counts = {s.labels["topic"]: s.value for s in _samples(registry)}
    assert counts == {"early": 1, "app.stock.events": 1, "app.raw.sitoo.events": 0, "other": 1}


def test_an_unknown_label_name_is_refused() -> None:
    registry = CollectorRegistry()
    fixed = metrics.Fixed(Counter("t_x_total", "x", ["reason"], registry=registry), reason=["a"])
    with pytest.raises(ValueError):
        fixed.allow(cause=["b"])


@pytest.mark.parametrize(
    ("words", "reason"),
    [
        ("stale Sitoo transaction 4 <= 5", "stale"),
        ("stale webhook (updated_at older than what we know)", "stale"),
        ("stale reading (not newer than a change already known)", "stale"),
        ("older reservation reading", "stale"),
        ("order line 1001/1 already settled", "duplicate"),
        ("something new", "other"),
    ],
)
def test_the_positions_agents_words_map_to_a_reason(words: str, reason: str) -> None:
    assert metrics.reason_of(words) == reason


def test_what_a_position_says_of_a_stale_event_is_counted_as_stale() -> None:
    loc = Location(name="Store 1", shopify_location_id=11, sitoo_store_id=1, sitoo_warehouse_id=101)
    pos = Position(sku="SKU", location_id=11)
    level = SitooLevel(sku="SKU", warehouse_id=101, total=10, version=5, event_time=100.0)
    step(pos, level, loc, 100.0)
    out = step(pos, level.model_copy(update={"total": 9}), loc, 101.0)
    assert out.ignored and metrics.reason_of(out.ignored) == "stale"


def test_the_other_modules_enums_are_inside_the_fixed_sets() -> None:
    # the values the ingestion and the webhook flow label with live in their own modules
    from tillsync.streams.ingest.receivers import RejectReason, Source
    from tillsync.streams.stock.shopify_webhooks import IgnoreReason

    assert {str(v) for v in Source} <= {str(v) for v in metrics.WebhookSource}
    assert {str(v) for v in RejectReason} <= {str(v) for v in metrics.RejectReason}
    assert {str(v) for v in IgnoreReason} <= {str(v) for v in metrics.IgnoredReason}


# --- consumer lag ---------------------------------------------------------------------------

A0, A1, B0 = TP("app.stock.events", 0), TP("app.stock.events", 1), TP("app.raw.sitoo.events", 0)


def lag_of(lag: metrics.ConsumerLag) -> dict[tuple[str, str], float]:
    registry = CollectorRegistry()
    registry.register(lag)
    return {
        (s.labels["topic"], s.labels["partition"]): s.value
        for s in _samples(registry)
        if s.name == "tillsync_consumer_lag_records"
    }


def test_lag_is_the_end_minus_the_next_record_to_process() -> None:
    lag = metrics.ConsumerLag()
    consumer = FakeConsumer({A0: 100, A1: 50})
    lag.attach(consumer)
    lag.processed(A0, 89)  # done with 89: 90 is next, 100 is the end
    lag.processed(A1, 49)
    assert lag_of(lag) == {("app.stock.events", "0"): 10, ("app.stock.events", "1"): 0}


def test_lag_yields_only_the_partitions_assigned_when_scraped() -> None:
    lag = metrics.ConsumerLag()
    consumer = FakeConsumer({A0: 100, A1: 50, B0: 7})
    lag.attach(consumer)
    for tp in (A0, A1, B0):
        lag.processed(tp, 0)
    assert len(lag_of(lag)) == 3
    consumer.assigned = {A1}  # A0 and B0 moved to another worker
    assert lag_of(lag) == {("app.stock.events", "1"): 49}
    consumer.assigned = set()
    assert lag_of(lag) == {}


def test_lag_before_a_record_is_processed_is_counted_from_the_position() -> None:
    lag = metrics.ConsumerLag()
    lag.attach(FakeConsumer({A0: 100, A1: None}))
    assert lag_of(lag) == {}  # nothing known yet: no series rather than a guess
    lag.refresh(ends={A1: 60}, positions={A0: 40, A1: 55})
    # the broker's end offset stands in for a high watermark not fetched yet
    assert lag_of(lag) == {("app.stock.events", "0"): 60, ("app.stock.events", "1"): 5}
    lag.processed(A0, 79)
    assert lag_of(lag)[("app.stock.events", "0")] == 20


def test_lag_takes_the_newer_end_and_never_goes_below_zero() -> None:
    lag = metrics.ConsumerLag()
    consumer = FakeConsumer({A0: 100})
    lag.attach(consumer)
    lag.refresh(ends={A0: 120}, positions={})
    lag.processed(A0, 109)
    assert lag_of(lag) == {("app.stock.events", "0"): 10}
    lag.processed(A0, 130)  # processed past both ends seen: the ends are behind, not the lag
    assert lag_of(lag) == {("app.stock.events", "0"): 0}
    lag.processed(A0, 5)  # an older record finishing late does not move it back
    assert lag_of(lag) == {("app.stock.events", "0"): 0}


def test_lag_leaves_out_topics_without_committed_offsets_and_forgets_on_rebalance() -> None:
    lag = metrics.ConsumerLag()
    lag.attach(FakeConsumer({A0: 100, B0: 10}), counted=lambda topic: topic == A0.topic)
    lag.processed(A0, 9)
    lag.processed(B0, 0)
    assert lag_of(lag) == {("app.stock.events", "0"): 90}
    lag.forget_all()
    assert lag_of(lag) == {}


def test_lag_of_a_consumer_not_started_is_no_series() -> None:
    class NotStarted(FakeConsumer):
        def assignment(self) -> set[TP]:
            raise RuntimeError("Consumer thread not yet started")

    lag = metrics.ConsumerLag()
    assert lag_of(lag) == {}
    lag.attach(NotStarted({A0: 1}))
    assert lag_of(lag) == {}


def test_the_lag_family_is_exported_even_without_a_consumer() -> None:
    # the dashboard check reads the family names of the registry
    assert "tillsync_consumer_lag_records" in {m.name for m in metrics.REGISTRY.collect()}


def _samples(registry: CollectorRegistry) -> list:
    return [s for f in text_string_to_metric_families(scrape(registry)) for s in f.samples]
