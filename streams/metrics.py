"""Prometheus metrics: names prefixed ``tillsync_``, base units, ``_total`` counters, no SKU labels.

One registry per process keeps the worker's and a test's metrics apart.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

events_in = Counter(
    "tillsync_events_in_total",
    "Records taken in, by topic",
    ["topic"],
    registry=REGISTRY,
)
events_out = Counter(
    "tillsync_events_out_total",
    "Records written, by topic",
    ["topic"],
    registry=REGISTRY,
)
dead_letters = Counter(
    "tillsync_dead_letters_total",
    "Records sent to the dead-letter topic, by origin topic",
    ["origin"],
    registry=REGISTRY,
)
sync_latency = Histogram(
    "tillsync_sync_latency_seconds",
    "Source event time to confirmed write on the other platform",
    ["flow"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
drift_detected = Counter(
    "tillsync_drift_detected_total",
    "Drift detected, by cause",
    ["cause"],
    registry=REGISTRY,
)
drift_healed = Counter("tillsync_drift_healed_total", "Drift healed by a write", registry=REGISTRY)
drift_open = Gauge(
    "tillsync_drift_open", "Positions in drift now (this worker's partitions)", registry=REGISTRY
)
exceptions_raised = Counter(
    "tillsync_exceptions_total",
    "Exceptions raised, by type and owner",
    ["type", "owner"],
    registry=REGISTRY,
)
api_calls = Counter(
    "tillsync_api_calls_total",
    "Calls to a platform API, by platform and outcome",
    ["platform", "outcome"],
    registry=REGISTRY,
)
api_call_seconds = Histogram(
    "tillsync_api_call_seconds",
    "Duration of platform API calls",
    ["platform"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
throttle_wait = Counter(
    "tillsync_api_throttle_wait_seconds_total",
    "Time spent waiting for a platform's rate limit",
    ["platform"],
    registry=REGISTRY,
)
sink_backlog = Gauge(
    "tillsync_sink_backlog",
    "Coalesced writes waiting in a sink",
    ["sink"],
    registry=REGISTRY,
)
consumer_lag = Gauge(
    "tillsync_consumer_lag",
    "Messages between the committed offset and the end of a partition",
    ["topic", "partition"],
    registry=REGISTRY,
)
webhooks_rejected = Counter(
    "tillsync_webhooks_rejected_total",
    "Webhook and Events SPI requests refused, by source and reason",
    ["source", "reason"],
    registry=REGISTRY,
)
events_ignored = Counter(
    "tillsync_events_ignored_total",
    "Events that changed nothing (stale, duplicate, unmapped, echo of our write), by reason",
    ["reason"],
    registry=REGISTRY,
)
