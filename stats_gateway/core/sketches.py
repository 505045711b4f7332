"""Metrics answered by a query of their own, from mergeable sketches: approximate
percentiles (log-bucket histograms, ``histograms.py``) and distinct counts (HyperLogLog,
``distinct.py``).

Their parts cannot be kept in the metric rollups' rows, so the metric query leaves them
out (a request that asks for one never drags its other metrics to raw events) and each
kind of sketch answers them per group key, to be merged into the rows' values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from stats_gateway.core.distinct import distinct_sql, group_distincts, is_distinct
from stats_gateway.core.domain import Domain, Metric
from stats_gateway.core.histograms import group_percentiles, histogram_sql, is_histogram
from stats_gateway.core.request import StatsRequest
from stats_gateway.core.sql import Grouping, Sql


@dataclass(frozen=True)
class Sketch:
    """One kind of sketch: which metrics it answers, its SQL and how rows become values."""

    picks: Callable[[Metric], bool]
    sql: Callable[[Domain, StatsRequest, Sequence[Metric], str, Grouping, bool], Sql]
    values: Callable[[Iterable[Mapping], Sequence[Metric], Grouping], dict[tuple, dict]]


SKETCHES = (Sketch(is_histogram, histogram_sql, group_percentiles),
            Sketch(is_distinct, distinct_sql, group_distincts))


def sketched(metric: Metric) -> bool:
    return any(sketch.picks(metric) for sketch in SKETCHES)
