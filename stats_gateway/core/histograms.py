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

Queries read the counts through the same segment planner as the metric parts (rollup
slots, ``rh_*`` tables of bin and count arrays, see ``histogram_rollups``, plus raw
ends); the database sends each group's bins and counts as two arrays in bin order (added
up, or as the rollup stores them where a group has few rows: ``histogram_sql``); Python
adds up a group's arrays, walks their running count to the bins of the two order
statistics and interpolates between their estimates (``_interpolated``).
"""

from __future__ import annotations

import math
import sys
from bisect import bisect_right
from functools import lru_cache
from itertools import accumulate
from collections.abc import Iterable, Mapping, Sequence
from typing import cast

from pypika import Field, PostgreSQLQuery, Table
from pypika import functions as fn
from pypika.terms import Term

from stats_gateway.core.aggregations import ApproxPercentile
from stats_gateway.core.domain import Domain, Metric
from stats_gateway.core.request import StatsRequest
from stats_gateway.core.rollups import Rollup, Segment, plan_segments
from stats_gateway.core.sketch_twins import twin_table
from stats_gateway.core.sql import (
    BUCKET, Cut, Grouping, Params, Raw, Sql, Where, cut_of, grouping_shape, sketch_segment,
    sketch_values, where_of,
)
from stats_gateway.core.timebuckets import BucketPlan

GAMMA = 1.1
ZERO_BIN = -(2**31)  # below every real bin (the smallest positive double is bin -7816)
MAX_RELATIVE_ERROR = (GAMMA - 1) / (GAMMA + 1)
_TOP_BIN = math.ceil(math.log(sys.float_info.max) / math.log(GAMMA))  # the largest value's bin
HIST_COLUMN, HIST_BIN, HIST_N = "hist_column", "hist_bin", "hist_n"
HIST_BINS, HIST_COUNTS = "hist_bins", "hist_counts"


def is_histogram(metric: Metric) -> bool:
    return metric.agg.sketch == "histogram"


def percentile_of(metric: Metric) -> ApproxPercentile:
    """A histogram metric's aggregation (``is_histogram``: only ApproxPercentile has that
    sketch), typed as such."""
    return cast(ApproxPercentile, metric.agg)


def histogram_columns(metrics: Iterable[Metric]) -> tuple[str, ...]:
    """The columns the histogram metrics read, each once, in order."""
    return tuple(dict.fromkeys(percentile_of(m).column for m in metrics if is_histogram(m)))


def histogram_table(rollup: Rollup) -> str:
    """The histogram twin of a metric rollup: ``rh_`` instead of ``ru_``."""
    return twin_table("rh_", rollup)


def bin_term(value: Term, p: Params, alias: str | None = None) -> Term:
    """SQL: the bin of a value; NULL for NULL, NaN and infinity (not counted)."""
    return Raw("CASE WHEN ({0})::float8 <= 0 THEN {1}::int "
               "WHEN ({0})::float8 < 'Infinity'::float8 "
               "THEN ceil(ln(({0})::float8) / ln({2}::float8))::int END",
               value, p(ZERO_BIN, "zero_bin"), p(GAMMA, "gamma"), alias=alias)


@lru_cache(maxsize=1 << 15)  # real bins: whole numbers between about -7,800 and 7,500
def estimate(bin_index: int) -> float:
    """The value standing for every value of a bin: its relative midpoint (remembered: a
    30-day hourly series with four percentiles asks for about 4,000, of few bins)."""
    if bin_index == ZERO_BIN:
        return 0.0
    # a bin past the largest double's can only be a hand-edited row: answer, don't overflow
    top = GAMMA ** (min(bin_index, _TOP_BIN) - 1) * (2 * GAMMA / (GAMMA + 1))
    return min(top, sys.float_info.max)


# --- reading counts ------------------------------------------------------------------


def _segment_sql(domain: Domain, column: str, where: Where, fixed: bool, grouping: Grouping,
                 i: int, cut: Cut, p: Params, unpacked: bool) -> str:
    """Segment ``i``'s counts. From raw events: (keys, hist_bin, hist_n) rows, a bin once
    per group. From a histogram rollup: its rows as they are (a group may have several:
    one per cube row and slot), as (keys, hist_bins, hist_counts) arrays, or, ``unpacked``,
    as one (keys, hist_bin, hist_n) row per bin."""
    if cut.rollup is None:
        events = Table(domain.table)
        q = sketch_segment(domain, events, events.ts, [fn.Count("*").as_(HIST_N)], where,
                           fixed, grouping, i, cut,
                           extra_keys=[bin_term(events.field(column), p, HIST_BIN)])
        q = q.where(bin_term(events.field(column), p).notnull())
        return q.get_sql()
    table = Table(histogram_table(cut.rollup))
    q = sketch_segment(domain, table, table.slot_ts,
                       [table.field(HIST_BINS), table.field(HIST_COUNTS)], where, fixed,
                       grouping, i, cut, grouped=False)
    stored = q.where(table.field(HIST_COLUMN) == p(column)).get_sql()
    if not unpacked:
        return stored
    keys = "".join(f's."{name}", ' for name in grouping.key_names)
    return (f"SELECT {keys}u.{HIST_BIN}, u.{HIST_N} FROM ({stored}) AS s "
            f"CROSS JOIN LATERAL unnest(s.{HIST_BINS}, s.{HIST_COUNTS}) AS u({HIST_BIN}, {HIST_N})")


def _bins_repeat_often(grouping: Grouping, segments: Sequence[Segment],
                       plan: BucketPlan) -> bool:
    """Whether a group gathers its bins from many rows, so the database adds them up
    before it sends them: always but in a series (buckets only) whose rollup segments
    are slots of its buckets' size (or one bucket at most: the ends), where a bucket's
    counts are one rollup row per cube row in the slot (a calendar week's nominal step
    is the 7-day slot the planner uses only where it is the week). A year by model from
    daily rows repeats each bin hundreds of times: added up, the arrays sent stay a few
    hundred long."""
    if grouping.key_names != [BUCKET]:
        return True
    step = plan.size.step
    return any(seg.rollup is not None and seg.rollup.step != step
               and seg.end - seg.start > step for seg in segments)


def _bins_select(column: str, bins: str, key_sql: Sequence[str], p: Params) -> str:
    """Per group: its bins and their counts, two arrays in bin order, from ``bins`` (rows
    of (group, bin, count), a bin once per group). The walk to the order statistics is
    Python's: the database's running window sums over every (group, bin) row cost 40%
    more on a 30-day hourly series of calls (51 -> 30 ms, measured)."""
    keys = ", ".join(key_sql)
    label = p(column).get_sql()
    return (f"SELECT {label}::text AS {HIST_COLUMN}, {keys + ', ' if keys else ''}"
            f"array_agg({HIST_BIN} ORDER BY {HIST_BIN}) AS {HIST_BINS}, "
            f"array_agg({HIST_N} ORDER BY {HIST_BIN}) AS {HIST_COUNTS} "
            f"FROM ({bins}) AS b WHERE {HIST_N} > 0" + (f" GROUP BY {keys}" if keys else ""))


def _labelled(column: str, stored: str, key_sql: Sequence[str], p: Params) -> str:
    """A rollup segment's arrays as ``_bins_select`` gives them, unchanged."""
    keys = "".join(f"s.{k}, " for k in key_sql)
    return (f"SELECT {p(column).get_sql()}::text AS {HIST_COLUMN}, {keys}"
            f"s.{HIST_BINS}, s.{HIST_COUNTS} FROM ({stored}) AS s")


def histogram_sql(domain: Domain, request: StatsRequest, metrics: Sequence[Metric],
                  org_id: str, grouping: Grouping, use_rollups: bool) -> Sql:
    """Per group and histogrammed column: its bins and their counts (``hist_bins``,
    ``hist_counts``: arrays in bin order), in one row or, for a series read from slots of
    its buckets' size, in several (one per segment and cube row, as stored: the database
    sends the rollup's arrays as they are, and ``group_percentiles`` adds them up).

    Segments come from ``plan_segments``: declared metrics read the histogram rollups
    wherever the metric rollups would be exact; undeclared ones read raw events. The text
    is built once per shape (``_histogram_text``); a 7-day hourly series with percentiles
    spent about 1.4 ms of its 5 ms in pypika building it per request."""
    chosen = [m for m in metrics if is_histogram(m)]
    segments = (plan_segments(domain, request, chosen, grouping.planned_dimension,
                              grouping.by_bucket,
                              sketches=True) if use_rollups else [])
    if not segments:
        segments = [Segment(request.plan.start, request.plan.end, None)]
    text, constants = _histogram_text(
        domain, histogram_columns(chosen), where_of(request), request.plan.size.is_fixed,
        grouping_shape(grouping), tuple(map(cut_of, segments)),
        _bins_repeat_often(grouping, segments, request.plan))
    return Sql(text, {**constants, **sketch_values(request, org_id, segments, grouping)},
               purpose="percentiles", segments=tuple(segments))


@lru_cache(maxsize=1024)
def _histogram_text(domain: Domain, columns: tuple[str, ...], where: Where, fixed: bool,
                    grouping: Grouping, cuts: tuple[Cut, ...],
                    repeat_often: bool) -> tuple[str, dict]:
    p = Params()
    keys = grouping.key_fields
    key_sql = [k.get_sql(quote_char='"') for k in keys]
    selects = []
    for column in columns:
        if repeat_often:
            union = " UNION ALL ".join(
                f"({_segment_sql(domain, column, where, fixed, grouping, i, cut, p, True)})"
                for i, cut in enumerate(cuts))
            rows = Table("partials")
            summed = (PostgreSQLQuery.from_(rows)
                      .select(*keys, Field(HIST_BIN),
                              Raw("sum({0})::int8", rows.field(HIST_N), alias=HIST_N))
                      .groupby(*keys, Field(HIST_BIN)))
            union = summed.get_sql().replace('FROM "partials"', f"FROM ({union}) AS partials", 1)
            selects.append(_bins_select(column, union, key_sql, p))
            continue
        for i, cut in enumerate(cuts):
            one = _segment_sql(domain, column, where, fixed, grouping, i, cut, p, False)
            selects.append(_bins_select(column, one, key_sql, p) if cut.rollup is None
                           else _labelled(column, one, key_sql, p))
    return " UNION ALL ".join(f"({s})" for s in selects), p.values


def _added(parts: Sequence[tuple[Sequence[int], Sequence[int]]]) -> tuple[list[int], list[int]]:
    """Several histograms of one group (bins in order, counts) as one."""
    total: dict[int, int] = {}
    for bins, counts in parts:
        for b, n in zip(bins, counts):
            total[b] = total.get(b, 0) + n
    bins = sorted(total)
    return bins, [total[b] for b in bins]


def _interpolated(bins: Sequence[int], running: Sequence[int], q: float) -> float:
    """The percentile (``percentile_cont``'s rule over bin estimates): the order
    statistics at ``floor`` and ``ceil`` of ``q (n - 1)`` (0-based) lie in the first bins
    whose running count passes them."""
    position = q * (running[-1] - 1)
    below = math.floor(position)
    low = estimate(bins[bisect_right(running, below)])
    if position == below:  # an order statistic itself: nothing to interpolate
        return low
    high = estimate(bins[bisect_right(running, below + 1)])
    return low + (high - low) * (position - below)


def group_percentiles(rows: Iterable[Mapping], metrics: Sequence[Metric],
                      grouping: Grouping) -> dict[tuple, dict[str, float | None]]:
    """Per group key ((bucket,), (entity,), (bucket, entity) or ()): each histogram
    metric's percentile from its column's bins and counts, added up where a group has
    several rows (None where its column has no value in the group)."""
    names = grouping.key_names
    asked: dict[str, list[tuple[str, float]]] = {}  # column -> (metric, q), worked out once
    for m in metrics:
        if is_histogram(m):
            agg = percentile_of(m)
            asked.setdefault(agg.column, []).append((m.name, float(agg.q)))
    unset = dict.fromkeys(name for pairs in asked.values() for name, _ in pairs)
    histograms: dict[tuple, list[tuple[Sequence[int], Sequence[int]]]] = {}
    for row in rows:
        bins = row[HIST_BINS]
        if not bins:  # the one row of an ungrouped query over no values
            continue
        key = tuple(row[name] for name in names)
        histograms.setdefault((row[HIST_COLUMN], key), []).append((bins, row[HIST_COUNTS]))
    found: dict[tuple, dict[str, float | None]] = {}
    for (column, key), parts in histograms.items():
        bins, counts = parts[0] if len(parts) == 1 else _added(parts)
        running = list(accumulate(counts))
        values = found.get(key)
        if values is None:
            values = found[key] = dict(unset)
        for name, q in asked[column]:
            values[name] = _interpolated(bins, running, q)
    return found
