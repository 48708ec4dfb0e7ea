"""Reading the worker's /metrics text (Prometheus exposition format).

The demo's live line, the benchmarks and the end-to-end tests all read numbers back from the
worker's /metrics; this is their one reader, built on prometheus_client's own parser instead of
a regular expression in each place.

Names are matched on *sample* names, as they appear in the text: counters keep ``_total``
(``tillsync_events_in_total``) and a histogram's samples are ``<name>_bucket``, ``<name>_count``
and ``<name>_sum``.
"""

from __future__ import annotations

import math
from functools import lru_cache

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


@lru_cache(maxsize=8)
def _samples(text: str) -> tuple[Sample, ...]:
    # a caller often reads several series out of one scrape: parse each text once
    return tuple(s for family in text_string_to_metric_families(text) for s in family.samples)


def _matching(text: str, name: str, labels: dict[str, str]) -> list[Sample]:
    return [
        s
        for s in _samples(text)
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def sample(text: str, name: str, **labels: str) -> float:
    """The value of sample ``name`` whose labels include ``labels``: the sum when several
    series match (fewer labels given than the series has), 0.0 when none does."""
    return float(sum(s.value for s in _matching(text, name, labels)))


def by_label(text: str, name: str, label: str, **labels: str) -> dict[str, float]:
    """The values of sample ``name`` matching ``labels``, added up per value of ``label``."""
    out: dict[str, float] = {}
    for s in _matching(text, name, labels):
        key = s.labels.get(label, "")
        out[key] = out.get(key, 0.0) + float(s.value)
    return out


def buckets(text: str, name: str, **labels: str) -> list[tuple[float, float]]:
    """The cumulative buckets of histogram ``name`` as (upper bound, count), sorted by bound,
    ``le="+Inf"`` as ``math.inf``; series that match ``labels`` are added up bound by bound."""
    counts: dict[float, float] = {}
    for s in _matching(text, f"{name}_bucket", labels):
        le = float(s.labels["le"])  # float("+Inf") is math.inf
        counts[le] = counts.get(le, 0.0) + float(s.value)
    return sorted(counts.items())


def quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """The smallest upper bound whose cumulative count reaches ``q`` of the total (the count of
    the largest bound): "q of the samples took at most this long". nan when there is nothing
    counted."""
    counts = sorted(buckets)
    if not counts or counts[-1][1] <= 0:
        return math.nan
    total = counts[-1][1]
    return next((le for le, c in counts if c >= q * total), math.nan)
