"""Weave's metric specs -> ad-hoc engine metrics, and engine values -> Weave's bucket keys.

Keys are Weave's own: ``<agg>_<metric>`` (``sum_input_tokens``) and ``p<q>_<metric>``
(``p95_latency_ms``, ``p99.9_latency_ms``), plus ``count``, the rows in the bucket.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property

from domains.call_usage import DOMAIN as CALL_USAGE
from domains.calls import DOMAIN as CALLS
from stats_gateway.core.domain import Count, Max, Mean, Metric, Min, Percentile, Sum
from stats_gateway.seeds.fields import column_of

ROWS = "n"  # hidden: calls (or usage rows) in the bucket, reported as ``count``
ERRORS = "e"  # hidden: calls that raised

# Weave's usage metric -> the call-usage domain's metric it aggregates differently
# (column and columns added to it row by row read from that metric's declaration)
USAGE_VALUES = {
    "input_tokens": "inputTokens",
    "output_tokens": "outputTokens",
    "total_tokens": "totalTokens",
    "input_cost": "inputCost",
    "output_cost": "outputCost",
    "total_cost": "totalCost",
}
LATENCY = column_of(CALLS, "latencyMs")
ERROR = column_of(CALLS, "error")


@dataclass(frozen=True)
class Wanted:
    """One metric with its aggregations and percentiles, duplicates merged."""

    metric: str
    aggregations: tuple[str, ...]
    percentiles: tuple[float, ...]


def merge_specs(specs) -> list[Wanted]:
    """Specs naming the same metric merge; repeats drop; a spec asking for nothing means
    ``sum`` (as in Weave)."""
    order: list[str] = []
    aggs: dict[str, list[str]] = {}
    pcts: dict[str, dict[str, float]] = {}
    for spec in specs:
        if spec.metric not in aggs:
            order.append(spec.metric)
            aggs[spec.metric], pcts[spec.metric] = [], {}
        asked = list(spec.aggregations or ())
        if not asked and not spec.percentiles:
            asked = ["sum"]
        aggs[spec.metric] += [a for a in asked if a not in aggs[spec.metric]]
        for q in spec.percentiles or ():
            pcts[spec.metric].setdefault(percentile_label(q), q)
    return [Wanted(m, tuple(aggs[m]), tuple(pcts[m].values())) for m in order]


def percentile_label(q: float) -> str:
    """95 -> "95", 99.9 -> "99.9", 0.00001 -> "0.00001" (never exponent notation)."""
    if float(q).is_integer():
        return str(int(q))
    return format(Decimal(repr(float(q))), "f")


@dataclass(frozen=True)
class Output:
    """One key of a bucket: read from an engine metric, or derived from the hidden counts
    (``derive(calls, errors)``)."""

    key: str
    metric: Metric | None = None
    derive: Callable[[int, int], object] | None = None


def _column_agg(agg: str, column: str, plus: tuple[str, ...], q: float | None = None):
    if q is not None:
        return Percentile(column, q / 100, plus=plus)
    return {"sum": lambda: Sum(column, plus=plus), "avg": lambda: Mean(column, plus=plus),
            "min": lambda: Min(column, plus=plus), "max": lambda: Max(column, plus=plus),
            "count": lambda: Count(column)}[agg]()


def _zero_one_percentile(n: int, ones: int, q: float) -> float | None:
    """``percentile_cont`` over n values of which ``ones`` are 1 and the rest 0."""
    if not n:
        return None
    h = q * (n - 1)
    lo, hi = math.floor(h), math.ceil(h)

    def at(i: int) -> float:  # sorted: the zeros, then the ones
        return 1.0 if i >= n - ones else 0.0

    return at(lo) + (h - lo) * (at(hi) - at(lo))


def _derived(metric: str, agg: str, q: float | None) -> Callable[[int, int], object]:
    """call_count is 1 per call and error_count 0/1, so their avg/min/max/percentiles follow
    from the number of calls n and of errors e alone."""
    if metric == "call_count":
        one = 1.0 if agg in ("avg", "pct") else 1
        return lambda n, e: one if n else None
    if agg == "avg":
        return lambda n, e: e / n if n else None
    if agg == "min":
        return lambda n, e: int(e == n) if n else None
    if agg == "max":
        return lambda n, e: int(e > 0) if n else None
    assert q is not None  # what remains is a percentile, which has one
    return lambda n, e: _zero_one_percentile(n, e, q / 100)


def _call_output(key: str, name: str, metric: str, agg: str, q: float | None) -> Output:
    if metric == "latency_ms":
        return Output(key, Metric(name=name, agg=_column_agg(agg, LATENCY, (), q)))
    if agg in ("sum", "count"):
        counted = Count(ERROR, (True,)) if metric == "error_count" and agg == "sum" else Count()
        return Output(key, Metric(name=name, agg=counted))
    return Output(key, derive=_derived(metric, "pct" if q is not None else agg, q))


def _usage_output(key: str, name: str, metric: str, agg: str, q: float | None) -> Output:
    # the declared metric's columns: the column, then those added to it row by row
    column, *plus = CALL_USAGE.metric(USAGE_VALUES[metric]).agg.columns()
    return Output(key, Metric(name=name, agg=_column_agg(agg, column, tuple(plus), q)))


@dataclass(frozen=True)
class Section:
    """The engine metrics one bucket list needs, and how each bucket is rendered."""

    outputs: tuple[Output, ...]

    @cached_property
    def metrics(self) -> list[Metric]:
        hidden = [Metric(name=ROWS, agg=Count()), Metric(name=ERRORS, agg=Count(ERROR, (True,)))]
        own = [o.metric for o in self.outputs if o.metric]
        needs_errors = any(o.derive for o in self.outputs)
        return own + hidden[:2 if needs_errors else 1]

    @cached_property
    def _positions(self) -> tuple[int, int | None, list[tuple[str, int, Callable | None]]]:
        """Where each output reads in a row of ``metrics``' values, worked out once: the
        buckets are rendered positionally, without a dict of names per bucket."""
        at = {m.name: i for i, m in enumerate(self.metrics)}
        plan = [(o.key, at[o.metric.name] if o.metric else -1, o.derive) for o in self.outputs]
        return at[ROWS], at.get(ERRORS), plan

    def render(self, values: Sequence) -> dict:
        """One bucket from its values, in the order of ``metrics``."""
        rows_at, errors_at, plan = self._positions
        calls = values[rows_at]
        errors = 0 if errors_at is None else values[errors_at]
        bucket = {key: values[at] if derive is None else derive(calls, errors)
                  for key, at, derive in plan}
        bucket["count"] = calls
        return bucket


def _section(wanted: Sequence[Wanted], make) -> Section:
    """Outputs in request order; engine metrics get short SQL-safe names (m0, m1, ...)."""
    outputs: list[Output] = []
    for w in wanted:
        asked: list[tuple[str, str | None, float | None]] = [
            (f"{agg}_{w.metric}", agg, None) for agg in w.aggregations]
        asked += [(f"p{percentile_label(q)}_{w.metric}", None, q) for q in w.percentiles]
        outputs += [make(key, f"m{len(outputs) + i}", w.metric, agg, q)
                    for i, (key, agg, q) in enumerate(asked)]
    return Section(tuple(outputs))


def call_section(specs) -> Section:
    return _section(merge_specs(specs), _call_output)


def usage_section(specs) -> Section:
    return _section(merge_specs(specs), _usage_output)
