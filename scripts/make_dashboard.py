# ruff: noqa: E501 - one panel a line reads best
"""Writes grafana/dashboards/tillsync.json from the panel list below (run after changing it)."""

from __future__ import annotations

import json
from pathlib import Path

_STOCK_LATENCY = 'sum by (le) (rate(tillsync_sync_latency_seconds_bucket{flow="stock"}[1m]))'
PANELS: list[tuple[str, list[tuple[str, str]], str]] = [
    (
        "Stock sync latency (Sitoo event to confirmed Shopify write)",
        [
            (
                "p50",
                'histogram_quantile(0.5, sum by (le) (rate(tillsync_sync_latency_seconds_bucket{flow="stock"}[1m])))',
            ),
            (
                "p99",
                'histogram_quantile(0.99, sum by (le) (rate(tillsync_sync_latency_seconds_bucket{flow="stock"}[1m])))',
            ),
        ],
        "s",
    ),
    (
        "Events in per second",
        [("{{topic}}", "sum by (topic) (rate(tillsync_events_in_total[1m]))")],
        "ops",
    ),
    ("Drift open", [("open", "sum(tillsync_drift_open_positions)")], "short"),
    (
        "Drift detected and healed per minute",
        [
            ("detected {{cause}}", "sum by (cause) (increase(tillsync_drift_detected_total[1m]))"),
            ("healed", "sum(increase(tillsync_drift_healed_total[1m]))"),
        ],
        "short",
    ),
    (
        "Exceptions by owner",
        [("{{owner}} {{type}}", "sum by (owner, type) (increase(tillsync_exceptions_total[5m]))")],
        "short",
    ),
    (
        "API calls per second",
        [
            (
                "{{platform}} {{outcome}}",
                "sum by (platform, outcome) (rate(tillsync_api_calls_total[1m]))",
            )
        ],
        "ops",
    ),
    (
        "Throttle wait (s per s)",
        [
            (
                "{{platform}}",
                "sum by (platform) (rate(tillsync_api_throttle_wait_seconds_total[1m]))",
            )
        ],
        "s",
    ),
    ("Sink backlog", [("{{sink}}", "sum by (sink) (tillsync_sink_backlog_writes)")], "short"),
    (
        "Consumer lag (records to process)",
        [("{{topic}}", "sum by (topic) (tillsync_consumer_lag_records)")],
        "short",
    ),
    (
        "Dead letters per minute",
        [("{{origin}}", "sum by (origin) (increase(tillsync_dead_letters_total[1m]))")],
        "short",
    ),
    (
        "Events ignored per minute",
        [("{{reason}}", "sum by (reason) (increase(tillsync_events_ignored_total[1m]))")],
        "short",
    ),
    (
        "Worker CPU (cores)",
        [("{{instance}}", 'rate(process_cpu_seconds_total{job="tillsync"}[1m])')],
        "short",
    ),
    (
        "Worker memory",
        [("{{instance}} resident", 'process_resident_memory_bytes{job="tillsync"}')],
        "bytes",
    ),
]


def dashboard() -> dict[str, object]:
    panels = []
    for i, (title, targets, unit) in enumerate(PANELS):
        panels.append(
            {
                "id": i + 1,
                "type": "timeseries",
                "title": title,
                "datasource": {"type": "prometheus", "uid": "prometheus"},
                "gridPos": {"h": 8, "w": 12, "x": (i % 2) * 12, "y": (i // 2) * 8},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "targets": [
                    {"refId": chr(65 + j), "expr": expr, "legendFormat": legend}
                    for j, (legend, expr) in enumerate(targets)
                ],
            }
        )
    return {
        "uid": "tillsync-overview",
        "title": "tillsync: sync latency, drift and exceptions",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "tags": ["tillsync"],
        "panels": panels,
    }


if __name__ == "__main__":
    out = Path(__file__).resolve().parents[1] / "grafana" / "dashboards" / "tillsync.json"
    out.write_text(json.dumps(dashboard(), indent=2) + "\n")
    print(f"wrote {out}")
