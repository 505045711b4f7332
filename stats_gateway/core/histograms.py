"""Approximate percentiles (``ApproxPercentile``) from mergeable log-bucket histograms.

A value ``v > 0`` falls in bin ``ceil(ln v / ln GAMMA)``, that is ``(GAMMA^(i-1), GAMMA^i]``;
zero (and anything not positive) falls in ``ZERO_BIN``. A bin's estimate is
``2 GAMMA^i / (GAMMA + 1)``, within ``MAX_RELATIVE_ERROR`` = (GAMMA - 1) / (GAMMA + 1),
about 4.76%, of every value in it (zero is exact). Bin counts add up, so a histogram of a
bucket is the sum of the histograms of its rollup slots and raw ends.

A percentile uses the exact rule (``percentile_cont``: interpolate between the order
statistics at ``floor``/``ceil`` of ``q (n - 1)``) with each order statistic replaced by
its bin's estimate. The true order statistic lies in that very bin, and interpolation of
non-negative values keeps a relative bound, so the answer is within 4.76% of the exact
percentile.

Queries return ``(hist_column, [bucket_ts], [entity_id], hist_bin, hist_n)`` rows for the
histogrammed columns, read through the same segment planner as the metric parts: rollup
slots (``rh_*`` tables, see ``histogram_rollups``) plus raw ends. The engine turns the
summed counts into percentiles in Python.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping, Sequence

from pypika import Field, PostgreSQLQuery, Table
from pypika import functions as fn
from pypika.terms import Term

from stats_gateway.core.domain import Domain, Metric
from stats_gateway.core.request import StatsRequest
from stats_gateway.core.rollups import Rollup, Segment, plan_segments
from stats_gateway.core.sketch_twins import twin_table
from stats_gateway.core.sql import Grouping, Params, Raw, Sql, _aggregate_from

GAMMA = 1.1
ZERO_BIN = -(2**31)  # below every real bin (the smallest positive double is bin -7816)
MAX_RELATIVE_ERROR = (GAMMA - 1) / (GAMMA + 1)
_TOP_BIN = math.ceil(math.log(sys.float_info.max) / math.log(GAMMA))  # the largest value's bin
HIST_COLUMN, HIST_BIN, HIST_N = "hist_column", "hist_bin", "hist_n"


def is_histogram(metric: Metric) -> bool:
    return metric.agg.sketch == "histogram"


def histogram_columns(metrics: Iterable[Metric]) -> tuple[str, ...]:
    """The columns the histogram metrics read, each once, in order."""
    return tuple(dict.fromkeys(m.agg.column for m in metrics if is_histogram(m)))


def histogram_table(rollup: Rollup) -> str:
    """The histogram twin of a metric rollup: ``rh_`` instead of ``ru_``."""
    return twin_table("rh_", rollup)


def bin_term(value: Term, p: Params, alias: str | None = None) -> Term:
    """SQL: the bin of a value; NULL for NULL, NaN and infinity (not counted)."""
    return Raw("CASE WHEN ({0})::float8 <= 0 THEN {1}::int "
               "WHEN ({0})::float8 < 'Infinity'::float8 "
               "THEN ceil(ln(({0})::float8) / ln({2}::float8))::int END",
               value, p(ZERO_BIN, "zero_bin"), p(GAMMA, "gamma"), alias=alias)


def estimate(bin_index: int) -> float:
    """The value standing for every value of a bin: its relative midpoint."""
    if bin_index == ZERO_BIN:
        return 0.0
    # a bin past the largest double's can only be a hand-edited row: answer, don't overflow
    top = GAMMA ** (min(bin_index, _TOP_BIN) - 1) * (2 * GAMMA / (GAMMA + 1))
    return min(top, sys.float_info.max)


def percentile(counts: Mapping[int, int], q: float) -> float | None:
    """Percentile ``q`` of the values counted per bin; None without values."""
    counts = {b: n for b, n in counts.items() if n > 0}  # (only a hand edit makes any <= 0)
    n = sum(counts.values())
    if n == 0:
        return None
    position = q * (n - 1)
    low, high = math.floor(position), math.ceil(position)
    ranks, seen = {}, 0  # rank (0-based) -> estimate, for the two ranks needed
    for bin_index in sorted(counts):
        seen += counts[bin_index]
        for rank in (low, high):
            if rank not in ranks and rank < seen:
                ranks[rank] = estimate(bin_index)
        if high in ranks:
            break
    return ranks[low] + (ranks[high] - ranks[low]) * (position - low)


# --- reading counts ------------------------------------------------------------------


def _segment_sql(domain: Domain, request: StatsRequest, column: str, org_id: str, p: Params,
                 grouping: Grouping, seg: Segment) -> str:
    """One segment's (keys, hist_bin, hist_n) rows: bins computed from raw events, or
    the counts of a histogram rollup."""
    if seg.rollup is None:
        events = Table(domain.table)
        q = _aggregate_from(events, events.ts, [fn.Count("*").as_(HIST_N)], request, org_id,
                            p, seg.start, seg.end, grouping,
                            extra_keys=[bin_term(events.field(column), p, HIST_BIN)])
        q = q.where(bin_term(events.field(column), p).notnull())
    else:
        table = Table(histogram_table(seg.rollup))
        q = _aggregate_from(table, table.slot_ts, [fn.Sum(table.field(HIST_N)).as_(HIST_N)],
                            request, org_id, p, seg.start, seg.end, grouping,
                            extra_keys=[table.field(HIST_BIN)])
        q = q.where(table.field(HIST_COLUMN) == p(column))
    return q.get_sql()


def histogram_sql(domain: Domain, request: StatsRequest, metrics: Sequence[Metric],
                  org_id: str, grouping: Grouping, use_rollups: bool) -> Sql:
    """Summed bin counts of every column the histogram ``metrics`` read, per group.

    Segments come from ``plan_segments``: declared metrics read the histogram rollups
    wherever the metric rollups would be exact; undeclared ones read raw events."""
    p = Params()
    chosen = [m for m in metrics if is_histogram(m)]
    segments = (plan_segments(domain, request, chosen, grouping.dimension, grouping.by_bucket,
                              sketches=True) if use_rollups else [])
    if not segments:
        segments = [Segment(request.plan.start, request.plan.end, None)]
    keys = grouping.key_fields
    selects = []
    for column in histogram_columns(chosen):
        union = " UNION ALL ".join(
            f"({_segment_sql(domain, request, column, org_id, p, grouping, seg)})"
            for seg in segments)
        rows = Table("partials")
        label = Raw("{0}::text", p(column), alias=HIST_COLUMN)
        outer = (PostgreSQLQuery.from_(rows)
                 .select(label, *keys, Field(HIST_BIN), fn.Sum(rows.field(HIST_N)).as_(HIST_N))
                 .groupby(*keys, Field(HIST_BIN)))
        selects.append(outer.get_sql().replace('FROM "partials"', f"FROM ({union}) AS partials",
                                               1))
    return Sql(" UNION ALL ".join(f"({s})" for s in selects), p.values)


def group_percentiles(rows: Iterable[Mapping], metrics: Sequence[Metric],
                      grouping: Grouping) -> dict[tuple, dict[str, float | None]]:
    """Per group key ((bucket,), (entity,), (bucket, entity) or ()): each histogram
    metric's percentile from the summed counts of its column."""
    names = grouping.key_names
    counts: dict[tuple, dict[str, dict[int, int]]] = {}
    for row in rows:
        key = tuple(row[name] for name in names)
        bins = counts.setdefault(key, {}).setdefault(row[HIST_COLUMN], {})
        bins[row[HIST_BIN]] = bins.get(row[HIST_BIN], 0) + int(row[HIST_N])
    chosen = [m for m in metrics if is_histogram(m)]
    return {key: {m.name: percentile(by_column.get(m.agg.column, {}), m.agg.q)
                  for m in chosen}
            for key, by_column in counts.items()}
