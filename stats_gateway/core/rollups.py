"""Rollups: pre-aggregated metric parts per (org, UTC time slot, cube of columns).

Every domain gets one rollup table per cube and grain. Cubes are the empty cube (no
columns: whole-org series), one per breakdown dimension, and one per scope column
(workspace, repo); grains are 15 minutes, 1 hour and 1 day, aligned in UTC. A row holds
the mergeable parts of every mergeable metric (counts, sums, mean and ratio parts,
minima, maxima, newest time) for the events of one slot and one combination of values.

Rollups are written in the ingest transaction from exactly the events that transaction
inserted, so they are never behind and a retried batch adds nothing. The planner uses
them only where they give the very answer the raw events give: every metric mergeable,
every column the query needs (scope, filters, dimension) in the cube, and every bucket
boundary on the grain. The range is then cut into the coarsest aligned segments (days,
then hours, then quarter hours) with raw events only for the unaligned ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from stats_gateway.core.domain import (
    ApproxPercentile, Count, Dimension, Domain, FieldType, LatestTime, Max, Mean, Metric, Min,
    Ratio, Sum,
)
from stats_gateway.core.request import StatsRequest
from stats_gateway.core.timebuckets import BucketPlan

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
GRAINS: tuple[tuple[str, timedelta], ...] = (
    ("1d", timedelta(days=1)), ("1h", timedelta(hours=1)), ("15m", timedelta(minutes=15)))
# ApproxPercentile has no parts here: its bin counts live in the histogram rollups
# (``histogram_rollups``), which share these cubes and grains
_MERGEABLE = (Count, Sum, Mean, Ratio, Min, Max, LatestTime, ApproxPercentile)


@dataclass(frozen=True)
class Rollup:
    domain: Domain
    columns: tuple[str, ...]
    grain: str
    step: timedelta

    @property
    def table(self) -> str:
        cube = "_".join(self.columns) or "all"
        return f"ru_{self.domain.table.removeprefix('events_')}_{self.grain}_{cube}"[:63]


@dataclass(frozen=True)
class Segment:
    """``[start, end)`` answered from ``rollup`` (None: from raw events)."""

    start: datetime
    end: datetime
    rollup: Rollup | None


def mergeable(metric: Metric) -> bool:
    return isinstance(metric.agg, _MERGEABLE)


def rollup_metrics(domain: Domain) -> list[Metric]:
    return [m for m in domain.metrics if mergeable(m)]


def cubes(domain: Domain) -> list[tuple[str, ...]]:
    """The empty cube, one per dimension and one per scope column, without repeats."""
    found: list[tuple[str, ...]] = [(), ("workspace_id",), ("repo_id",)]
    for dim in domain.dimensions:
        if dim.columns not in found:
            found.append(dim.columns)
    return found


def domain_rollups(domain: Domain) -> list[Rollup]:
    """Every rollup of a domain, the finest grain of each cube first (coarser grains are
    rebuilt from it)."""
    return [Rollup(domain, cube, name, step) for cube in cubes(domain)
            for name, step in reversed(GRAINS)]


def finest_rollup(rollup: Rollup) -> Rollup:
    name, step = GRAINS[-1]
    return Rollup(rollup.domain, rollup.columns, name, step)


def _micros(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


def aligned(instant: datetime, step: timedelta) -> bool:
    return _micros(instant - EPOCH) % _micros(step) == 0


def floor_to(instant: datetime, step: timedelta) -> datetime:
    return instant - timedelta(microseconds=_micros(instant - EPOCH) % _micros(step))


def ceil_to(instant: datetime, step: timedelta) -> datetime:
    floor = floor_to(instant, step)
    return floor if floor == instant else floor + step


def _grid_fits(plan: BucketPlan, step: timedelta) -> bool:
    """Every query bucket boundary is on the grain, so no slot straddles two buckets."""
    if plan.size.is_fixed:
        return _micros(plan.size.step) % _micros(step) == 0 and aligned(plan.origin, step)
    return all(aligned(start, step) for start in plan.calendar_starts)


def needed_columns(request: StatsRequest, dimension: Dimension | None) -> set[str] | None:
    """Columns a query reads besides time; None if a filter is not a plain equality."""
    columns = set(dimension.columns) if dimension else set()
    if request.scope.kind == "workspace":
        columns.add("workspace_id")
    elif request.scope.kind == "repo":
        columns.add("repo_id")
    for flt in request.filters:
        if flt.op not in ("eq", "any"):
            return None
        columns.add(flt.column)
    return columns


def plan_segments(domain: Domain, request: StatsRequest, metrics: list[Metric],
                  dimension: Dimension | None, by_bucket: bool = True) -> list[Segment]:
    """The cheapest exact way to read ``[start, end)``: rollup segments plus raw ends.

    Without time buckets (totals, breakdowns) any grain fits; with them, a grain must
    divide every bucket boundary."""
    plan = request.plan
    raw = [Segment(plan.start, plan.end, None)]
    columns = needed_columns(request, dimension)
    stored = rollup_metrics(domain)  # ad-hoc metrics (not declared) have no rollup parts
    if columns is None or not all(m in stored for m in metrics):
        return raw
    list_columns = {f.column for f in domain.stored_fields if f.type is FieldType.TEXT_LIST}
    fitting = [cube for cube in cubes(domain) if columns <= set(cube)]
    if not fitting or columns & list_columns:
        return raw
    cube = min(fitting, key=len)  # the fewest columns: the fewest rows
    grains = [Rollup(domain, cube, name, step) for name, step in GRAINS
              if not by_bucket or _grid_fits(plan, step)]
    return _cut(plan.start, plan.end, grains)


def _cut(start: datetime, end: datetime, rollups: list[Rollup]) -> list[Segment]:
    if start >= end:
        return []
    if not rollups:
        return [Segment(start, end, None)]
    first, finer = rollups[0], rollups[1:]
    a, b = ceil_to(start, first.step), floor_to(end, first.step)
    if a >= b:
        return _cut(start, end, finer)
    return _cut(start, a, finer) + [Segment(a, b, first)] + _cut(b, end, finer)


def rollup_table_names(domain: Domain) -> list[str]:
    """Every table holding the domain's pre-aggregated data (metric and sketch rollups):
    what storage accounting adds up."""
    from stats_gateway.core.histogram_rollups import histogram_rollups
    return [r.table for r in domain_rollups(domain)] + [h.table for h in histogram_rollups(domain)]
