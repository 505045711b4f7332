"""Rollups: pre-aggregated metric parts per (org, UTC time slot, declared cube).

A domain declares its cubes (``Domain.rollups``, like Cube's pre-aggregations) or gets
``default_cubes``: one small *scope* cube (workspace, repo) at fine grains for whole-org,
workspace and repo series; one shared *main* cube over every low-cardinality dimension and
filter column together (the Druid/Pinot "rollup at ingest" model), which answers any
scope, filter and group-by over those columns by aggregating it; and one cube per
high-cardinality dimension (users, conversations, traces…) with the scope columns, at a
day, a 30-day and a 90-day grain, so a year-long breakdown of 100k users reads a few slots
per user instead of every event. A row holds the mergeable parts of every mergeable
metric (counts, sums, mean and ratio parts, minima, maxima, newest time) for the events of
one slot and one combination of values.

Rollups are written in the ingest transaction from exactly the events that transaction
inserted (aggregated from the batch itself, never re-read), so they are never behind and
a retried batch adds nothing. The planner uses them only where they give the very answer
the raw events give: every metric mergeable, every column the query needs (scope, filters,
dimension) in the cube, and every bucket boundary on the grain. Among the cubes that fit it
takes the one with the fewest columns and cuts the range into its coarsest aligned
segments; the ends left over go to the next cube that fits (its grains may be finer), and
raw events answer only what no cube does. A range ending now may read its tail from one
open slot running past its end, checked in the statement to hold no later event
(``TailGuard``, ``_with_open_tail``).

The *org* cube (no column) holds a row per slot: a whole-org series reads it row for row.
It is merged from the scope cube's rows (``source_rollup``), at ingest and at rebuild.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING

from stats_gateway.core.domain import Cube, Dimension, Domain, FieldType, Metric
from stats_gateway.core.request import StatsRequest
from stats_gateway.core.timebuckets import BucketPlan

if TYPE_CHECKING:
    from stats_gateway.core.sqlterms import Params

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
# 7-day slots start on Mondays, so they are ISO weeks: the default bucket of long windows
WEEK_ORIGIN = datetime(2000, 1, 3, tzinfo=UTC)
GRAIN_STEPS: dict[str, timedelta] = {
    "5m": timedelta(minutes=5), "15m": timedelta(minutes=15), "1h": timedelta(hours=1),
    "1d": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30),
    "90d": timedelta(days=90)}
GRAIN_ORIGINS: dict[str, datetime] = {"7d": WEEK_ORIGIN}  # others: EPOCH
SKETCH_MIN_STEP = timedelta(hours=1)  # histograms and distinct sketches: grains of 1h and up
OPEN_SLOT_MIN_STEP = timedelta(days=1)  # a range's tail read from one open slot: see plan_segments
OPEN_SLOT_RECENT = timedelta(minutes=1)  # ... when the range ends no earlier than this ago
SCOPE_COLUMNS = ("workspace_id", "repo_id")
_CACHE = 256  # (domain, cube) pairs: a few dozen in practice


@dataclass(frozen=True)
class Rollup:
    """One cube at one grain: one table."""

    domain: Domain
    cube: Cube
    grain: str

    @property
    def columns(self) -> tuple[str, ...]:
        return self.cube.columns

    @property
    def step(self) -> timedelta:
        return GRAIN_STEPS[self.grain]

    @property
    def origin(self) -> datetime:
        """Where its slots start (``date_bin``'s origin)."""
        return GRAIN_ORIGINS.get(self.grain, EPOCH)

    def slot_sql(self, time: str, p: Params) -> str:
        """SQL: the start of the slot of this grain that ``time`` (SQL) falls in, the grain
        and its origin as ``p``'s values ``grain`` and ``epoch``."""
        return (f"date_bin({p(self.step, 'grain').get_sql()}, {time}, "
                f"{p(self.origin, 'epoch').get_sql()})")

    @cached_property
    def table(self) -> str:
        """Named after the cube, the grain and a digest of what it holds, so a changed
        declaration gets a new table, built beside the old one (``db/migrate.py``)."""
        short = self.domain.table.removeprefix("events_")
        return f"ru_{short}_{self.cube.name}_{self.grain}"[:56] + "_" + self.digest

    @cached_property
    def metrics(self) -> tuple[Metric, ...]:
        return cube_metrics(self.domain, self.cube)

    @cached_property
    def digest(self) -> str:
        parts = [f"{name}:{kind}" for name, kind in part_types(self)]
        text = f"{self.columns}|{self.grain}|{parts}"
        if self.origin != EPOCH:
            text += f"|{self.origin.isoformat()}"
        return hashlib.sha256(text.encode()).hexdigest()[:6]

    @property
    def has_sketches(self) -> bool:
        if not self.cube.sketches:
            return False
        if self.cube.sketch_grains is not None:
            return self.grain in self.cube.sketch_grains
        return self.step >= SKETCH_MIN_STEP


def part_types(rollup: Rollup) -> list[tuple[str, str]]:
    """(part name, SQL type) for every part the rollup's rows keep."""
    types = {f.column: f.type.sql_type for f in rollup.domain.stored_fields}
    return [pt for m in rollup.metrics for pt in m.agg.part_types(m.name, types)]


@dataclass(frozen=True)
class TailGuard:
    """The condition under which a segment of a range's tail is read: whether the
    domain's events of the org hold any in ``[after, until)`` (after the range's end, in
    the open slot: ``plan_segments``). Checked once per statement, in the statement's own
    snapshot, so the open slot and its stand-ins never both count, nor neither."""

    after: datetime  # the range's end
    until: datetime  # the open slot's end
    when_events: bool  # True: the stand-ins (read only if such events exist)


@dataclass(frozen=True)
class Segment:
    """``[start, end)`` answered from ``rollup`` (None: from raw events), unconditionally
    or only as ``guard`` says (the range's tail: ``plan_segments``)."""

    start: datetime
    end: datetime
    rollup: Rollup | None
    guard: TailGuard | None = None

    @property
    def open(self) -> bool:
        """The open slot: one rollup slot running past the range's end (``end``)."""
        return self.guard is not None and not self.guard.when_events


def mergeable(metric: Metric) -> bool:
    """Rollups can answer it (an approximate percentile: from the histogram rollups)."""
    return metric.agg.mergeable


def rollup_metrics(domain: Domain) -> list[Metric]:
    return [m for m in domain.metrics if mergeable(m)]


@lru_cache(maxsize=_CACHE)  # domains hash by identity, cubes by value: once, not per request
def cube_sketched(domain: Domain, cube: Cube) -> tuple[Metric, ...]:
    """The sketched metrics (histograms, distinct counts) a cube with sketches keeps: those
    of a series view or of every breakdown, and those a breakdown of this cube's own
    columns adds. Others are answered from raw events."""
    if not cube.sketches:
        return ()
    everywhere = {n for view in domain.series for n in view.metrics} | set(domain.breakdown.metrics)
    own = {n for dim in domain.dimensions if set(dim.columns) <= set(cube.columns)
           for n in dim.extra_metrics}
    return tuple(m for m in domain.metrics
                 if m.agg.sketch is not None and m.name in everywhere | own)


@lru_cache(maxsize=_CACHE)
def cube_metrics(domain: Domain, cube: Cube) -> tuple[Metric, ...]:
    """What a cube's rows keep: every mergeable metric, and the attributes of the
    dimensions whose columns it holds (the only breakdowns it can serve)."""
    attributes = {m.name: m for dim in domain.dimensions if set(dim.columns) <= set(cube.columns)
                  for m in dim.attribute_metrics}
    return (*rollup_metrics(domain), *attributes.values())


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def default_cubes(domain: Domain) -> tuple[Cube, ...]:
    """The scope and org cubes, the main cube of every low-cardinality column that
    dimensions and filters read, and one cube per high-cardinality dimension; none finer
    than the domain's ``finest_grain``."""
    high = {f.column for f in domain.stored_fields
            if f.high_cardinality or f.type is FieldType.TEXT_LIST}
    finest = GRAIN_STEPS.get(domain.finest_grain, GRAIN_STEPS["5m"])

    def kept(*grains: str) -> tuple[str, ...]:
        return tuple(g for g in grains if GRAIN_STEPS[g] >= finest)

    cubes = [Cube(name="scope", columns=SCOPE_COLUMNS, grains=kept("5m", "1h", "1d", "7d")),
             # whole-org series, the first thing a dashboard shows: one row per slot, read
             # as it is (no GROUP BY where the bucket is the grain), merged from the scope
             # cube's rows at ingest and at rebuild (``source_rollup``), never from raw
             # events; sketches by the hour, day and week (percentiles and distinct counts
             # of a month by the hour, of a year by the week): one histogram and one
             # sketch per slot, where the scope cube's are one per project and slot
             Cube(name="org", columns=(), grains=kept("5m", "1h", "1d", "7d"),
                  sketch_grains=kept("1h", "1d", "7d"))]
    low = [c for d in domain.dimensions for c in d.columns]
    low += [f.column for f in domain.filters]
    main = tuple(dict.fromkeys(c for c in low if c not in high and c not in SCOPE_COLUMNS))
    if main:
        # its rows multiply the cardinalities of its columns: hours and coarser only, and
        # sketches (histogram bins, distinct registers per row) by the day only; weeks
        # (ISO, the default bucket of long windows) read a seventh of the days' rows
        cubes.append(Cube(name="main", columns=SCOPE_COLUMNS + main,
                          grains=kept("1h", "1d", "7d"), sketch_grains=kept("1d")))
    for dim in domain.dimensions:
        if set(dim.columns) & high:
            columns = tuple(dict.fromkeys(dim.columns + SCOPE_COLUMNS))
            # sketches per entity only where the breakdown shows a distinct count: a
            # latency histogram per thread or run would outweigh the events themselves.
            # 90 days (three 30-day slots): a year of an entity reads 3 slots and the
            # 30-day and daily edges instead of 12 and the edges (users breakdown of a
            # year at 2M events: 192k rows read, 132k with them); sketches stay at days
            # and 30 days: a third sketch upsert per ingest batch would cost more than it
            # saves the distinct counts of a page of 50 entities
            distinct = any(domain.metric(name).agg.sketch == "distinct"
                           for name in domain.breakdown_metrics(dim))
            cubes.append(Cube(name=_snake(dim.by), columns=columns,
                              grains=kept("1d", "30d", "90d"), sketches=distinct,
                              sketch_grains=kept("1d", "30d")))
    return tuple(cubes)


@lru_cache(maxsize=_CACHE)
def cubes(domain: Domain) -> tuple[Cube, ...]:
    return domain.rollups if domain.rollups is not None else default_cubes(domain)


def domain_rollups(domain: Domain) -> list[Rollup]:
    """Every rollup of a domain, each cube's grains finest first (coarser grains can be
    rebuilt from the finest)."""
    return [rollup for cube in cubes(domain) for rollup in domain_rollups_of(domain, cube)]


def finest_rollup(rollup: Rollup) -> Rollup:
    return domain_rollups_of(rollup.domain, rollup.cube)[0]


def divides(finer: Rollup, coarser: Rollup) -> bool:
    """Every slot of ``coarser`` is made of whole slots of ``finer``."""
    return (_micros(coarser.step) % _micros(finer.step) == 0
            and aligned(coarser.origin, finer.step, finer.origin))


@lru_cache(maxsize=_CACHE)
def source_rollup(rollup: Rollup) -> Rollup | None:
    """The rollup whose rows ``rollup``'s are merged from, exactly, when it is rebuilt
    (None: from raw events). A coarser grain merges its cube's finest; a cube's finest
    grain merges the coarsest rollup of an earlier-declared cube that holds its columns
    and parts on a grid dividing its own (the org cube's from the scope cube's), so a new
    cube needs no raw event either (retention may have dropped them: ``db/migrate.py``)."""
    finest = finest_rollup(rollup)
    if finest != rollup:
        return finest
    return earlier_cube_source(rollup, lambda r: set(rollup.metrics) <= set(r.metrics))


def earlier_cube_source(rollup: Rollup, keeps: Callable[[Rollup], bool],
                        cube_keeps: Callable[[Cube], bool] = lambda cube: True,
                        ) -> Rollup | None:
    """The coarsest rollup, on a grid dividing ``rollup``'s, of the first cube declared
    before ``rollup``'s that holds its columns, ``cube_keeps`` accepts and has such a
    rollup that ``keeps`` accepts (what ``rollup``'s rows need: its parts, its sketches);
    None if no cube does. Metric rollups and sketch twins look for their sources so."""
    for cube in cubes(rollup.domain):
        if cube == rollup.cube:
            return None
        if not set(rollup.columns) <= set(cube.columns) or not cube_keeps(cube):
            continue
        fits = [r for r in domain_rollups_of(rollup.domain, cube)
                if divides(r, rollup) and keeps(r)]
        if fits:
            return fits[-1]
    return None


def root_rollup(rollup: Rollup) -> Rollup:
    """The end of ``rollup``'s chain of sources: the rollup built from raw events, whose
    rows of a batch every rollup of that chain merges at ingest (``rollup_sql.py``)."""
    source = source_rollup(rollup)
    return rollup if source is None else root_rollup(source)


def _micros(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


def aligned(instant: datetime, step: timedelta, origin: datetime = EPOCH) -> bool:
    return _micros(instant - origin) % _micros(step) == 0


def floor_to(instant: datetime, step: timedelta, origin: datetime = EPOCH) -> datetime:
    return instant - timedelta(microseconds=_micros(instant - origin) % _micros(step))


def ceil_to(instant: datetime, step: timedelta, origin: datetime = EPOCH) -> datetime:
    floor = floor_to(instant, step, origin)
    return floor if floor == instant else floor + step


def _on_every_grain(instant: datetime, rollups: list[Rollup], snap) -> datetime:
    """Snap ``instant`` (``ceil_to`` or ``floor_to``) to each rollup's grid in turn until no
    grid moves it: grains need not share an origin (7-day slots start on Mondays, 30-day
    ones do not), so one pass may not do."""
    while True:
        moved = instant
        for rollup in rollups:
            moved = snap(moved, rollup.step, rollup.origin)
        if moved == instant:
            return instant
        instant = moved


def ceil_to_every(instant: datetime, rollups: list[Rollup]) -> datetime:
    """The first instant at or after ``instant`` that starts a slot of every rollup."""
    return _on_every_grain(instant, rollups, ceil_to)


def floor_to_every(instant: datetime, rollups: list[Rollup]) -> datetime:
    """The last instant at or before ``instant`` that starts a slot of every rollup."""
    return _on_every_grain(instant, rollups, floor_to)


def _grid_fits(plan: BucketPlan, rollup: Rollup) -> bool:
    """Every query bucket boundary is on the grain, so no slot straddles two buckets."""
    step, origin = rollup.step, rollup.origin
    if plan.size.is_fixed:
        return (_micros(plan.size.step) % _micros(step) == 0
                and aligned(plan.origin, step, origin))
    grid = plan.calendar_grid
    if grid is None:
        return True
    first, spacing = grid
    return aligned(first, step, origin) and spacing % _micros(step) == 0


def needed_columns(request: StatsRequest, dimension: Dimension | None) -> set[str] | None:
    """Columns a query reads besides time; None if a filter is one no cube answers."""
    columns = set(dimension.columns) if dimension else set()
    if request.scope.kind == "workspace":
        columns.add("workspace_id")
    elif request.scope.kind == "repo":
        columns.add("repo_id")
    for flt in request.filters:
        if not flt.operator.rollable:
            return None
        columns.update(flt.columns)
    return columns


def plan_segments(domain: Domain, request: StatsRequest, metrics: list[Metric],
                  dimension: Dimension | None, by_bucket: bool = True,
                  sketches: bool = False) -> list[Segment]:
    """The cheapest exact way to read ``[start, end)``: rollup segments plus raw ends.

    Without time buckets (totals, breakdowns) any grain fits; with them, a grain must
    divide every bucket boundary. ``sketches``: plan for the histogram and distinct-count
    rollups, which exist only at the grains of ``Rollup.has_sketches``."""
    plan = request.plan
    segments = [Segment(plan.start, plan.end, None)]
    columns = needed_columns(request, dimension)
    # a range ending now (a window): events after its end are rare, so its tail may be
    # one open slot; after an older end there are usually some (the guard would fail)
    open_at = plan.end if plan.end >= datetime.now(UTC) - OPEN_SLOT_RECENT else None
    for cube in _cubes_by_size(domain):
        # ad-hoc metrics (not declared) have no rollup parts
        kept = cube_sketched(domain, cube) if sketches else cube_metrics(domain, cube)
        if columns is None or not columns <= set(cube.columns) or not set(metrics) <= set(kept):
            continue
        grains = [r for r in reversed(domain_rollups_of(domain, cube))
                  if (not sketches or r.has_sketches)
                  and (not by_bucket or _grid_fits(plan, r))]
        # the smallest cube that fits takes what its grains can; what is left (the ends)
        # goes to the next one, whose grains may be finer (the org cube keeps sketches by
        # the day, the scope cube by the hour), and raw events take the rest
        segments = [piece for seg in segments for piece in _pieces(seg, grains, open_at)]
    return _kept_raw(segments, request.raw_from)


def _pieces(seg: Segment, grains: list[Rollup], open_at: datetime | None) -> list[Segment]:
    """``seg`` cut by a cube's ``grains``: a rollup segment stays as it is; raw events
    ending at ``open_at`` (a recent range's end; None: no open slot) may end in an open
    slot; any other raw segment, a stand-in included (it keeps its guard), is cut."""
    if seg.rollup is not None:
        return [seg]
    if seg.guard is None and seg.end == open_at:
        return _with_open_tail(seg.start, seg.end, grains)
    return _cut(seg.start, seg.end, grains, seg.guard)


def _with_open_tail(start: datetime, end: datetime, rollups: list[Rollup]) -> list[Segment]:
    """``_cut``, but the tail after the last slot boundary of the coarsest grain that has
    one in ``[start, end)`` is that grain's one open slot, which runs past ``end``: exact
    when no event lies in the slot after ``end`` (a range ending now: only events sent
    with a future time), and its rows are never more than those of the finer slots and
    raw events that cut the tail otherwise (a year of users: a 90-day slot's rows instead
    of up to 89 days' and today's events). Those stand in for it, each read only when such
    events exist (``TailGuard``); the statement reads one set or the other. Buckets: a
    grain that fits divides them, so the open slot lies in the last one. Slots of a day
    and more only: an hour's tail is a few raw events, cheaper than the guard's probes
    (the 30-day hourly series: 3.0 -> 3.3 ms with an hourly open slot, 2M events)."""
    for rollup in rollups:  # coarsest first
        boundary = floor_to(end, rollup.step, rollup.origin)
        if rollup.step >= OPEN_SLOT_MIN_STEP and start <= boundary < end:
            until = boundary + rollup.step
            return (_cut(start, boundary, rollups)
                    + [Segment(boundary, end, rollup, TailGuard(end, until, False))]
                    + _cut(boundary, end, rollups, TailGuard(end, until, True)))
    return _cut(start, end, rollups)


def _kept_raw(segments: list[Segment], raw_from: datetime | None) -> list[Segment]:
    """The segments without the raw events retention dropped (before ``raw_from``): those
    ranges are answered by rollup segments only, never read as if they held no event
    (docs/retention.md; the answer warns, ``core/warnings.py``)."""
    if raw_from is None or not segments or segments[0].start >= raw_from:
        return segments
    return [replace(s, start=max(s.start, raw_from)) if s.rollup is None else s
            for s in segments if s.rollup is not None or s.end > raw_from]


def entity_columns(rollup: Rollup) -> tuple[str, ...]:
    """The cube's high-cardinality columns (users, threads…): a page of a breakdown, its
    series and its distinct counts ask for a few of their values over every slot, which
    an index by time would answer by reading every entity's rows of the range."""
    high = rollup.domain.high_cardinality_columns
    return tuple(c for c in rollup.columns if c in high)


def entity_index(table: str, rollup: Rollup) -> list[tuple[str, str]]:
    """(name, ``CREATE INDEX``) by (org, entity, time) for a rollup table (or its sketch
    twin) of a cube with high-cardinality columns; none for the others. Named after the
    table with ``e`` for its ``r`` (unique as the tables are, and as short: no truncation)."""
    columns = entity_columns(rollup)
    if not columns:
        return []
    name = f"e{table[1:]}"
    return [(name, f"CREATE INDEX IF NOT EXISTS {name} ON {table} "
                   f"(org_id, {', '.join(columns)}, slot_ts)")]


@lru_cache(maxsize=_CACHE)
def _cubes_by_size(domain: Domain) -> tuple[Cube, ...]:
    """The cubes in the order the planner tries them: those without high-cardinality
    columns first (each such column multiplies the rows), then the fewest columns."""
    high = domain.high_cardinality_columns
    return tuple(sorted(cubes(domain), key=lambda c: (len(high & set(c.columns)),
                                                      len(c.columns))))


@lru_cache(maxsize=_CACHE)
def domain_rollups_of(domain: Domain, cube: Cube) -> tuple[Rollup, ...]:
    """One cube's rollups, finest grain first (the same objects every time, so their
    names and digests are worked out once)."""
    return tuple(Rollup(domain, cube, grain)
                 for grain in sorted(cube.grains, key=GRAIN_STEPS.__getitem__))


def _cut(start: datetime, end: datetime, rollups: list[Rollup],
         guard: TailGuard | None = None) -> list[Segment]:
    if start >= end:
        return []
    if not rollups:
        return [Segment(start, end, None, guard)]
    first, finer = rollups[0], rollups[1:]
    a, b = ceil_to(start, first.step, first.origin), floor_to(end, first.step, first.origin)
    if a >= b:
        return _cut(start, end, finer, guard)
    return (_cut(start, a, finer, guard) + [Segment(a, b, first, guard)]
            + _cut(b, end, finer, guard))


def rollup_table_names(domain: Domain) -> list[str]:
    """Every table holding the domain's pre-aggregated data (metric and sketch rollups):
    what storage accounting adds up."""
    from stats_gateway.core.rollup_sql import sketch_rollups
    return [r.table for r in domain_rollups(domain)] + [t.table for t in sketch_rollups(domain)]
