"""The demo's closing lines, from a worker's /metrics text."""

from __future__ import annotations

from tillsync_sim.demo import _Baseline, _by_cause, _points, budget_breakdown, drift_breakdown

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
    base = _Baseline({}, 0.0, 4.0, 0.0, _by_cause(BEFORE), {}, 0.0)
    line = drift_breakdown(AFTER, base, staff_edits=70)
    assert line == (
        "drift detected by cause: shopify_edit 70, missed_event 0, failed_write 2, "
        "unknown_sku 0 (staff edits made: 70)"
    )


POINTS_BEFORE = """\
# TYPE tillsync_shopify_query_points_total counter
tillsync_shopify_query_points_total{document="OrderHolds",kind="actual"} 100.0
tillsync_shopify_query_points_total{document="OrderHolds",kind="requested"} 900.0
tillsync_shopify_query_points_total{document="InventorySetQuantities",kind="actual"} 50.0
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 10.0
"""
POINTS_AFTER = (
    POINTS_BEFORE.replace('"actual"} 100.0', '"actual"} 1100.0')
    .replace('"actual"} 50.0', '"actual"} 550.0')
    .replace("total 10.0", "total 15.0")
)


def test_the_budget_line_gives_points_per_second_by_document_and_the_cpu() -> None:
    base = _Baseline({}, 0.0, 0.0, 0.0, _by_cause(""), _points(POINTS_BEFORE), 10.0)
    line = budget_breakdown(POINTS_AFTER, base, seconds=10.0)
    assert line == (
        "Shopify points/s spent: 150 (OrderHolds 100, InventorySetQuantities 50); "
        "worker CPU 50% of a core"
    )
