"""Approximate latency percentiles, declared alike by every domain with a ``latency_ms``
column (storage, ai, calls): ``latencyMsP50``, ``P90``, ``P95`` and ``P99``."""

from stats_gateway.core.domain import ApproxPercentile, Metric

LATENCY_PERCENTILES = tuple(
    Metric(name=f"latencyMsP{q}", agg=ApproxPercentile("latency_ms", q / 100),
           doc=f"{q}th percentile latency, within 4.76% of the exact one")
    for q in (50, 90, 95, 99))
LATENCY_PERCENTILE_NAMES = tuple(m.name for m in LATENCY_PERCENTILES)
