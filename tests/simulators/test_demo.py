"""The demo's closing lines, from a worker's /metrics text."""

from __future__ import annotations

from tillsync_sim.demo import _Baseline, _by_cause, drift_breakdown

BEFORE = """\
# TYPE tillsync_drift_detected_total counter
tillsync_drift_detected_total{cause="shopify_edit"} 3.0
tillsync_drift_detected_total{cause="missed_event"} 1.0
tillsync_drift_detected_total{cause="failed_write"} 0.0
tillsync_drift_detected_total{cause="unknown_sku"} 0.0
"""
AFTER = BEFORE.replace('"shopify_edit"} 3.0', '"shopify_edit"} 73.0').replace(
    '"failed_write"} 0.0', '"failed_write"} 2.0'
)


def test_the_breakdown_counts_the_scenario_only_beside_the_edits_it_made() -> None:
    base = _Baseline({}, 0.0, 4.0, 0.0, _by_cause(BEFORE))
    line = drift_breakdown(AFTER, base, staff_edits=70)
    assert line == (
        "drift detected by cause: shopify_edit 70, missed_event 0, failed_write 2, "
        "unknown_sku 0 (staff edits made: 70)"
    )
