"""SQL for series and breakdowns, built with pypika from a domain and a parsed request.

Every value travels as a named placeholder (``%(p0)s``): pypika would inline values given
to functions and paste time-zone names unescaped, so nothing it renders comes from a user.
Identifiers come only from validated domain declarations.

Because no value is in the text, the text depends only on the request's *shape* (domain,
metrics, fixed or calendar buckets, scope kind, filter columns and operators, the rollup
segments' tables): each builder caches it per shape (``lru_cache``) and fills in the
values per request. Building it with pypika took about 1 ms per request.

The series envelope reads ``series_parts_sql``: only buckets holding events (the grid of
empty ones is ``bucket_keys``, built in Python), unordered, segments merged only where two
of them share a bucket, and counts and integral sums answered as bigints (see there).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from pypika import Field, Order, Parameter, PostgreSQLQuery, Table
from pypika.terms import Term

from stats_gateway.core.domain import Dimension, Domain, Metric
from stats_gateway.core.filters import OPERATORS, entity_key
from stats_gateway.core.request import BreakdownRequest, StatsRequest
from stats_gateway.core.sqlterms import AnyOf, EventsAfter, Params, Raw, Sql, ref
from stats_gateway.core.rollups import Rollup, Segment, plan_segments
from stats_gateway.core.timebuckets import BucketPlan

BUCKET = "bucket_ts"
ENTITY = "entity_id"


def part_names(metric: Metric) -> tuple[str, ...]:
    """Column aliases holding a metric's parts (none for an approximate percentile: its
    histogram counts come from a query of their own, ``histograms``)."""
    return metric.agg.part_names(metric.name)


def metric_terms(metric: Metric, table: Table, p: Params) -> list[Term]:
    """The metric's parts computed from the rows of ``table`` (raw events)."""
    return metric.agg.terms(metric.name, table, p)


def sort_term(metric: Metric) -> Term:
    """Expression over an aggregated row (by part alias) that orders by the metric."""
    return metric.agg.sort_term(metric.name)


def key_term(dimension: Dimension, table: Table) -> Term:
    """The entity id: the column, or a composite key's values joined with ':'."""
    return entity_key([table.field(c) for c in dimension.columns])


def bucket_term(fixed: bool, time: Term) -> Term:
    """The start of the query bucket holding ``time`` (an event's ``ts`` or a rollup slot's
    start), as timestamptz: ``date_bin`` for fixed sizes, the calendar starts otherwise."""
    if fixed:
        return Raw("date_bin({0}, {1}, {2})", ref("step"), time, ref("origin"))
    starts = ref("starts")
    return Raw("({0}::timestamptz[])[width_bucket({1}, {0}::timestamptz[])]", starts, time)


def bucket_values(plan: BucketPlan) -> dict[str, object]:
    """The values of ``bucket_term``'s and ``grid_sql``'s placeholders."""
    if plan.size.is_fixed:
        return {"step": plan.size.step, "origin": plan.origin}
    return {"starts": plan.calendar_starts}


def grid_sql(fixed: bool) -> str:
    """SELECT of every bucket start intersecting [start, end), in order."""
    if not fixed:
        return f"SELECT unnest(%(starts)s::timestamptz[]) AS {BUCKET}"
    last = "(%(end)s::timestamptz - interval '1 microsecond')"
    return (f"SELECT generate_series(date_bin(%(step)s, %(start)s::timestamptz, %(origin)s), "
            f"date_bin(%(step)s, {last}, %(origin)s), %(step)s) AS {BUCKET}")


_US = timedelta(microseconds=1)
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _unix_us(instant: datetime) -> int:
    return (instant - _UNIX_EPOCH) // _US


def bucket_keys(plan: BucketPlan) -> list[int]:
    """Every bucket start of ``grid_sql``, in order, as whole unix seconds (floored, as
    ``series_parts_sql`` reports them): the grid is built here, not in the database."""
    if not plan.size.is_fixed:
        return [_unix_us(start) // 1_000_000 for start in plan.calendar_starts]
    origin, step = _unix_us(plan.origin), plan.size.step // _US
    first = origin + (_unix_us(plan.start) - origin) // step * step
    last = origin + (_unix_us(plan.end) - 1 - origin) // step * step
    if first % 1_000_000 == 0 and step % 1_000_000 == 0:
        return list(range(first // 1_000_000, last // 1_000_000 + 1, step // 1_000_000))
    return [start // 1_000_000 for start in range(first, last + 1, step)]


# --- what a query's text depends on: its shape -------------------------------------------
#
# Every value a request brings (org, range, cut points, bucket step and origin, scope id,
# filter values, entity ids, page) is a *named* placeholder, filled from the request by the
# ``*_values`` functions; the text is built from a hashable shape alone (domain, metrics,
# bucket kind, scope kind, filter columns and operators, rollup segments), so it is built
# by pypika once per shape and cached. Anonymous placeholders (``p0``…) hold constants of
# the declarations (``Count(values=…)``, a percentile's ``q``), cached with the text.


@dataclass(frozen=True)
class FilterShape:
    columns: tuple[str, ...]  # one column, or an entity's composite key
    op: str
    is_null: bool | None = None  # only ``is_null`` filters: their value is in the text


@dataclass(frozen=True)
class Where:
    """The WHERE clause of a request beyond org and time, without its values."""

    scope: str
    filters: tuple[FilterShape, ...]


def where_of(request: StatsRequest) -> Where:
    return Where(request.scope.kind, tuple(
        FilterShape(f.columns, f.op, bool(f.value) if f.op == "is_null" else None)
        for f in request.filters))


def where_values(request: StatsRequest, org_id: str) -> dict[str, object]:
    """The values of ``_source``'s placeholders, but for time."""
    values: dict[str, object] = {"org": org_id}
    if request.scope.kind in ("workspace", "repo"):
        values["scope_id"] = request.scope.id
    for i, flt in enumerate(request.filters):
        value = flt.operator.placeholder_value(flt.value)
        if value is not None:
            values[f"filter{i}"] = value
    return values


def filter_criterion(flt: FilterShape, table: Table, value: Parameter) -> Term:
    """One filter's condition (``core/filters.py``)."""
    return OPERATORS[flt.op].criterion([table.field(c) for c in flt.columns], value,
                                       flt.is_null)


def _source(table: Table, time: Field, where: Where, start: str, end: str):
    """FROM ``table`` WHERE org, ``start <= time < end`` (placeholder names), scope and
    resource filters."""
    q = (PostgreSQLQuery.from_(table)
         .where(table.org_id == ref("org"))
         .where(time >= ref(start)).where(time < ref(end)))
    if where.scope == "workspace":
        q = q.where(table.workspace_id == ref("scope_id"))
    elif where.scope == "repo":
        q = q.where(table.repo_id == ref("scope_id"))
    for i, flt in enumerate(where.filters):
        q = q.where(filter_criterion(flt, table, ref(f"filter{i}")))
    return q


def _metric_terms(metrics: Sequence[Metric], table, p) -> list[Term]:
    return [t for metric in metrics for t in metric_terms(metric, table, p)]


def merge_terms(metrics: Sequence[Metric], rows: Table,
                as_bigint: frozenset[str] = frozenset()) -> list[Term]:
    """Re-aggregate partial rows into the same parts: exact for every mergeable metric;
    the parts of the metrics named in ``as_bigint`` added as bigints (``narrowed``)."""
    return [term for metric in metrics
            for term in metric.agg.merge_terms(metric.name, rows, metric.name in as_bigint)]


def narrowed(domain: Domain, metrics: Sequence[Metric], narrow: bool) -> frozenset[str]:
    """The metrics a ``narrow`` statement merges as bigints: the integral ones (counts, and
    sums, minima and maxima of bigint columns). A statement built ``narrow`` may fail with
    NumericValueOutOfRange, where a rollup slot's sum passed bigint; the engine then asks
    again with ``narrow=False`` (``StatsEngine._fetch_narrow``): exact either way."""
    return frozenset(m.name for m in metrics if narrow and m.agg.integral(domain))


TIME = "time"  # a /v2/query row's bucket, and its name in orderBy


def group_key(i: int) -> str:
    """The column of a /v2/query group's ``i``-th grouped dimension."""
    return f"g{i}"


@dataclass(frozen=True)
class Grouping:
    """What one aggregate query groups by and adds."""

    by_bucket: bool = False
    dimension: Dimension | None = None
    entity_ids: Sequence[str] | None = None
    # /v2/query: several dimensions at once, keys ``g0``, ``g1``… (absent values kept as a
    # group of their own, where a breakdown's ``dimension`` leaves them out)
    group_by: tuple[Dimension, ...] = ()

    @property
    def key_names(self) -> list[str]:
        """The columns of a group's key, in order: the bucket, the entity, the groups."""
        return ([BUCKET] if self.by_bucket else []) + (
            [ENTITY] if self.dimension is not None else []) + [
            group_key(i) for i in range(len(self.group_by))]

    @property
    def planned_dimension(self) -> Dimension | None:
        """What the planner must find in a cube: the dimension's columns, or every
        grouped dimension's."""
        if not self.group_by:
            return self.dimension
        columns = tuple(dict.fromkeys(c for d in self.group_by for c in d.columns))
        return Dimension(by="+".join(d.by for d in self.group_by), column=columns)

    @property
    def key_fields(self) -> list[Field]:
        return [Field(name) for name in self.key_names]


def _grouped_select(table: Table, time: Field, values: list[Term], where: Where, fixed: bool,
                    grouping: Grouping, start: str, end: str, extra_keys: Sequence[Term] = (),
                    whole_slots: bool = False, grouped: bool = True):
    """One grouped SELECT over ``table`` for ``[start, end)``; ``extra_keys`` are further
    terms to select and group by (a histogram's bin). ``whole_slots``: a rollup whose slots
    are the buckets themselves, one row each, read as they are (no GROUP BY).
    ``grouped=False``: each row with its keys, no GROUP BY, for a caller that groups the
    rows of every segment together once (``values`` must then be plain columns)."""
    q = _source(table, time, where, start, end)
    select, group = [], []
    if grouping.by_bucket:
        bucket = time if whole_slots else bucket_term(fixed, time)
        select.append(bucket.as_(BUCKET))
        group.append(bucket)
    if grouping.dimension is not None:
        key = key_term(grouping.dimension, table)
        for column in grouping.dimension.columns:
            q = q.where(table.field(column).notnull())
        if grouping.entity_ids is not None:
            q = q.where(AnyOf(key, ref("entities")))
        select.append(key.as_(ENTITY))
        group += [table.field(c) for c in grouping.dimension.columns]
    for i, dimension in enumerate(grouping.group_by):
        key = key_term(dimension, table)
        select.append(key.as_(group_key(i)))
        group += [table.field(c) for c in dimension.columns]
    select += extra_keys
    group += extra_keys
    q = q.select(*select, *values)
    return q.groupby(*group) if group and grouped and not whole_slots else q


def sketch_segment(domain: Domain, table: Table, time: Field, values: list[Term],
                   where: Where, fixed: bool, grouping: Grouping, i: int, cut: Cut,
                   extra_keys: Sequence[Term] = (), grouped: bool = True):
    """``_grouped_select`` over segment ``i`` of a sketch statement (histogram counts,
    distinct registers), whose text is cached per shape: the segment's bounds (``s<i>``,
    ``e<i>``) and its tail guard's (``ga<i>``, ``gu<i>``) are placeholders, filled by
    ``sketch_values``."""
    q = _grouped_select(table, time, values, where, fixed, grouping, f"s{i}", f"e{i}",
                        extra_keys, grouped=grouped)
    if cut.guarded is None:
        return q
    return q.where(EventsAfter(domain.table, ref("org"), ref(f"ga{i}"), ref(f"gu{i}"),
                               cut.guarded))


def sketch_values(request: StatsRequest, org_id: str, segments: Sequence[Segment],
                  grouping: Grouping) -> dict[str, object]:
    """The values of a sketch statement's placeholders (``sketch_segment``)."""
    values = where_values(request, org_id)
    if grouping.by_bucket:
        values.update(bucket_values(request.plan))
    if grouping.entity_ids is not None:
        values["entities"] = grouping.entity_ids
    for i, seg in enumerate(segments):
        values[f"s{i}"], values[f"e{i}"] = seg.start, seg.end
        if seg.guard is not None:
            values[f"ga{i}"], values[f"gu{i}"] = seg.guard.after, seg.guard.until
    return values


def grouping_shape(grouping: Grouping) -> Grouping:
    """The grouping as a statement's text depends on it, hashable: the entity ids are a
    placeholder's value (``sketch_values``), only their presence shapes the text."""
    return grouping if grouping.entity_ids is None else replace(grouping, entity_ids=())


# --- rollup segments as a shape ----------------------------------------------------------


@dataclass(frozen=True)
class Cut:
    """One segment of the planned range, without its bounds (placeholders ``start``,
    ``t1``, …, ``end``, filled by ``cut_values``)."""

    rollup: Rollup | None  # None: raw events
    whole_slots: bool = False  # each slot is one bucket, one row: no re-grouping
    alone: bool = False  # no other segment reaches into its buckets: no merging
    guarded: bool | None = None  # a tail's: read only if events follow the range (True)
    #                             or only if none do (False: the open slot, up to ``end``)


def cut_of(seg: Segment, whole_slots: bool = False, alone: bool = False) -> Cut:
    """The segment as its statement's text depends on it: source, shape and guard."""
    return Cut(seg.rollup, whole_slots, alone,
               None if seg.guard is None else seg.guard.when_events)


def _upper(cuts: Sequence[Cut], i: int) -> str:
    """Segment ``i``'s upper bound: the next one's start, or the range's end (the open
    slot ends there, though its stand-ins follow it)."""
    return "end" if cuts[i].guarded is False else _bound(i + 1, len(cuts))


def _guarded(domain: Domain, cut: Cut, q):
    """``q`` read only as the cut's tail guard says (``TailGuard``)."""
    if cut.guarded is None:
        return q
    return q.where(EventsAfter(domain.table, ref("org"), ref("end"), ref("guard_until"),
                               cut.guarded))


def _bound(i: int, n: int) -> str:
    return "start" if i == 0 else "end" if i == n else f"t{i}"


def _planned(domain: Domain, request: StatsRequest, metrics: Sequence[Metric],
             grouping: Grouping, use_rollups: bool) -> list[Segment]:
    """The rollup segments of the range; [] when raw events answer it in one pass."""
    if not use_rollups:
        return []
    segments = plan_segments(domain, request, list(metrics), grouping.planned_dimension,
                             grouping.by_bucket)
    return [] if all(seg.rollup is None for seg in segments) else segments


def reads(request: StatsRequest, segments: Sequence[Segment]) -> tuple[Segment, ...]:
    """What a statement reads, for ``Sql.segments``: the planned segments, or the whole
    range from raw events when the planner found no rollup (``_planned`` gives [])."""
    return tuple(segments) or (Segment(request.plan.start, request.plan.end, None),)


def cut_values(request: StatsRequest, segments: Sequence[Segment]) -> dict[str, object]:
    values: dict[str, object] = {"start": request.plan.start, "end": request.plan.end}
    for i, seg in enumerate(segments[1:], 1):
        values[f"t{i}"] = seg.start
    for seg in segments:
        if seg.guard is not None:
            values["guard_until"] = seg.guard.until
    return values


def _equal_columns(request: StatsRequest) -> set[str]:
    """Columns the request pins to one value."""
    # (a composite key's equality is not counted, as before: its columns were one tuple)
    pinned = {f.columns[0] for f in request.filters if f.operator.pins and len(f.columns) == 1}
    if request.scope.kind in ("workspace", "repo"):
        pinned.add(f"{request.scope.kind}_id")
    return pinned


def _series_cuts(request: StatsRequest, segments: Sequence[Segment]) -> tuple[Cut, ...]:
    """Segments for a zero-filled series: which read whole slots, which stand alone."""
    plan = request.plan
    boundary: Callable[[datetime], bool]
    if plan.size.is_fixed:
        def boundary(t: datetime) -> bool:
            return (t - plan.origin) % plan.size.step == timedelta(0)
    else:
        boundary = set(plan.calendar_starts).__contains__
    pinned = _equal_columns(request)
    cuts = []
    for i, seg in enumerate(segments):
        whole = (seg.rollup is not None and plan.size.is_fixed
                 and seg.rollup.step == plan.size.step and set(seg.rollup.columns) <= pinned)
        alone = ((i == 0 or boundary(seg.start))
                 and (i == len(segments) - 1 or boundary(seg.end)))
        cuts.append(cut_of(seg, whole, alone))
    return tuple(cuts)


def _segment_select(domain: Domain, metrics: Sequence[Metric], where: Where, fixed: bool,
                    grouping: Grouping, cut: Cut, start: str, end: str, p: Params,
                    narrow: bool = False, merged: bool = False):
    """One segment's rows of parts. ``merged``: the caller groups every segment's rows
    together (``_merged``), so a rollup's rows go as they are, grouped once there instead
    of twice (a year of users in 90-day, 30-day and daily slots: 166 -> 137 ms, 2M
    events)."""
    if cut.rollup is None:
        events = Table(domain.table)
        values = _metric_terms(metrics, events, p)
        return _guarded(domain, cut, _grouped_select(events, events.ts, values, where, fixed,
                                                     grouping, start, end))
    table = Table(cut.rollup.table)
    as_they_are = cut.whole_slots or merged
    if as_they_are:
        values = [table.field(part).as_(part) for m in metrics for part in part_names(m)]
    else:
        values = merge_terms(metrics, table, narrowed(domain, metrics, narrow))
    return _guarded(domain, cut, _grouped_select(
        table, table.slot_ts, values, where, fixed, grouping, start, end,
        whole_slots=cut.whole_slots, grouped=not as_they_are))


def _merged(metrics: Sequence[Metric], grouping: Grouping, selects: Sequence[str],
            as_bigint: frozenset[str] = frozenset()) -> str:
    """One row per group key from the partial rows of several segments (``merge_terms``)."""
    rows = Table("partials")
    keys = grouping.key_fields
    outer = PostgreSQLQuery.from_(rows).select(*keys, *merge_terms(metrics, rows, as_bigint))
    outer = outer.groupby(*keys) if keys else outer
    union = " UNION ALL ".join(f"({sql})" for sql in selects)
    return outer.get_sql().replace('FROM "partials"', f"FROM ({union}) AS partials", 1)


def _aggregate_text(domain: Domain, metrics: Sequence[Metric], where: Where, fixed: bool,
                    grouping: Grouping, cuts: Sequence[Cut], p: Params,
                    narrow: bool = False) -> str:
    """Rows of [bucket_ts] [entity_id] [attr__*] and metric parts, one per group: from raw
    events in one pass (no cuts), or from every segment, merged (``narrowed``)."""
    if not cuts:
        return _segment_select(domain, metrics, where, fixed, grouping, Cut(None), "start",
                               "end", p).get_sql()
    return _merged(metrics, grouping, [
        _segment_select(domain, metrics, where, fixed, grouping, cut, _bound(i, len(cuts)),
                        _upper(cuts, i), p, narrow, merged=True).get_sql()
        for i, cut in enumerate(cuts)], narrowed(domain, metrics, narrow))


def _values(request: StatsRequest, org_id: str, segments: Sequence[Segment], buckets: bool,
            ) -> dict[str, object]:
    values = {**where_values(request, org_id), **cut_values(request, segments)}
    if buckets:
        values.update(bucket_values(request.plan))
    return values


_CACHE = 1024  # shapes per builder; a domain has a few dozen in practice


def integral_in_sql(domain: Domain, metric: Metric) -> bool:
    """Whether ``series_parts_sql`` answers the metric's final value as a bigint: counts,
    sums, minima and maxima of bigint columns, and the newest event's time (unix seconds)."""
    return metric.agg.integral(domain)


def _final_term(domain: Domain, metric: Metric, narrow: bool) -> list[str]:
    if not narrow or not integral_in_sql(domain, metric):
        return [f'"{part}"' for part in part_names(metric)]
    return [metric.agg.final_sql(metric.name)]


def series_parts_columns(domain: Domain, metrics: Sequence[Metric], narrow: bool) -> list[str]:
    """The names of ``series_parts_sql``'s columns, in order."""
    return [BUCKET] + [name for metric in metrics for name in (
        (metric.name,) if narrow and integral_in_sql(domain, metric) else part_names(metric))]


@lru_cache(maxsize=_CACHE)
def _series_parts_text(domain: Domain, metrics: tuple[Metric, ...], where: Where, fixed: bool,
                       cuts: tuple[Cut, ...], narrow: bool) -> tuple[str, dict]:
    p = Params()
    grouping = Grouping(by_bucket=True)
    if not cuts:
        selects = [_aggregate_text(domain, metrics, where, fixed, grouping, (), p)]
    else:
        alone: list[str] = []
        shared: list[str] = []
        merging = sum(not cut.alone for cut in cuts) > 1
        for i, cut in enumerate(cuts):
            sql = _segment_select(domain, metrics, where, fixed, grouping, cut,
                                  _bound(i, len(cuts)), _upper(cuts, i), p,
                                  narrow, merged=merging and not cut.alone).get_sql()
            (alone if cut.alone else shared).append(sql)
        selects = alone + ([_merged(metrics, grouping, shared, narrowed(domain, metrics, narrow))]
                           if merging else shared)
    union = " UNION ALL ".join(f"({sql})" for sql in selects)
    columns = [f'floor(extract(epoch FROM "{BUCKET}"))::int8 AS "{BUCKET}"']
    columns += [term for metric in metrics for term in _final_term(domain, metric, narrow)]
    return f"SELECT {', '.join(columns)} FROM ({union}) AS parts", p.values


def series_parts_sql(domain: Domain, request: StatsRequest, metrics: Sequence[Metric],
                     org_id: str, use_rollups: bool = True, narrow: bool = True) -> Sql:
    """Tuples ``(bucket start in unix seconds, values…)``, in no order, one per bucket
    holding events (``bucket_keys`` gives the others): for each metric its final value
    where ``narrow`` and ``integral_in_sql`` (a bigint; a value past bigint fails with
    NumericValueOutOfRange: ask again with ``narrow=False``), else its parts.

    Cheap for the database and for Python: no grid to join, no sort, segments whose buckets no other segment touches are not merged, a rollup whose
    slots are the buckets is read row for row, and bigints decode faster than numerics
    and timestamps."""
    segments = _planned(domain, request, metrics, Grouping(by_bucket=True), use_rollups)
    text, constants = _series_parts_text(domain, tuple(metrics), where_of(request),
                                         request.plan.size.is_fixed,
                                         _series_cuts(request, segments), narrow)
    return Sql(text, {**constants, **_values(request, org_id, segments, True)}, tuples=True,
               purpose="series metrics", segments=reads(request, segments))


@lru_cache(maxsize=_CACHE)
def _totals_text(domain: Domain, metrics: tuple[Metric, ...], where: Where, fixed: bool,
                 cuts: tuple[Cut, ...], narrow: bool) -> tuple[str, dict]:
    p = Params()
    return _aggregate_text(domain, metrics, where, fixed, Grouping(), cuts, p, narrow), p.values


def totals_sql(domain: Domain, request: StatsRequest, metrics: Sequence[Metric],
               org_id: str, use_rollups: bool = True, narrow: bool = False) -> Sql:
    """One row: every metric over the whole range (``narrow``: see ``narrowed``)."""
    segments = _planned(domain, request, metrics, Grouping(), use_rollups)
    text, constants = _totals_text(domain, tuple(metrics), where_of(request),
                                   request.plan.size.is_fixed,
                                   tuple(map(cut_of, segments)), narrow)
    return Sql(text, {**constants, **_values(request, org_id, segments, False)},
               purpose="totals", segments=reads(request, segments))


@lru_cache(maxsize=_CACHE)
def _grouped_series_text(domain: Domain, metrics: tuple[Metric, ...], dimension: Dimension,
                         where: Where, fixed: bool, cuts: tuple[Cut, ...],
                         narrow: bool) -> tuple[str, dict]:
    p = Params()
    agg = _aggregate_text(domain, metrics, where, fixed,
                          Grouping(by_bucket=True, dimension=dimension), cuts, p, narrow)
    # an output alias cannot appear inside an ORDER BY expression (COLLATE): order outside
    return (f"SELECT * FROM ({agg}) AS grouped ORDER BY {BUCKET}, {ENTITY} COLLATE \"C\"",
            p.values)


def grouped_series_sql(domain: Domain, request: StatsRequest, metrics: Sequence[Metric],
                       dimension: Dimension, org_id: str, use_rollups: bool = True,
                       narrow: bool = False) -> Sql:
    """Sparse (bucket, entity) rows, only where events exist, ordered by bucket then entity
    (``narrow``: see ``narrowed``)."""
    grouping = Grouping(by_bucket=True, dimension=dimension)
    segments = _planned(domain, request, metrics, grouping, use_rollups)
    text, constants = _grouped_series_text(domain, tuple(metrics), dimension, where_of(request),
                                           request.plan.size.is_fixed,
                                           tuple(map(cut_of, segments)), narrow)
    return Sql(text, {**constants, **_values(request, org_id, segments, True)},
               purpose="grouped series", segments=reads(request, segments))


@lru_cache(maxsize=_CACHE)
def _breakdown_text(domain: Domain, dim: Dimension, metric_names: tuple[str, ...],
                    sort: str | None,
                    descending: bool, then_by: tuple[str, ...], where: Where, fixed: bool,
                    cuts: tuple[Cut, ...], narrow: bool,
                    attributes: bool = True) -> tuple[str, dict]:
    p = Params()
    metrics = [domain.metric(name) for name in metric_names]
    metrics += list(dim.attribute_metrics) if attributes else []
    agg = _aggregate_text(domain, metrics, where, fixed, Grouping(dimension=dim), cuts, p,
                          narrow)
    return paged_text(domain, dim, sort, descending, then_by, agg, p, attributes), p.values


def paged_text(domain: Domain, dim: Dimension, sort: str | None, descending: bool,
               then_by: Sequence[str], agg: str, p: Params, attributes: bool,
               counted: bool = False) -> str:
    """One page of ``agg``'s rows (one per entity, a column or parts per metric) in the
    request's order, with the count of all entities, the share total and each page
    entity's display name: the page first, names after, so only its entities are looked
    up. ``sort`` None: by entity id alone (a page's follow-up totals, which another
    statement ordered). ``counted``: ``agg`` has a ``total_entities`` column already
    (its rows are not every entity of the range)."""
    order = (Order.desc if descending else Order.asc).value
    extra = [] if counted else ["count(*) OVER () AS total_entities"]
    if dim.share_of:
        share = sort_term(domain.metric(dim.share_of)).get_sql(quote_char='"')
        extra.append(f"sum({share}) OVER () AS share_total")
    ordering = [sort_term(domain.metric(name)).get_sql(quote_char='"') + f" {order} NULLS LAST"
                for name in ([sort, *then_by] if sort is not None else [])]
    ordering.append(f'"{ENTITY}" COLLATE "C"')  # code-point order, whatever the locale
    order_by = ", ".join(ordering)
    page = (f"SELECT {', '.join(['agg.*', *extra])} FROM agg ORDER BY {order_by} "
            f"LIMIT %(limit)s OFFSET %(offset)s")
    if dim.name_column and attributes:
        name, join = '"attr___name"', ""
    elif dim.name_column:
        name, join = "NULL::text", ""
    elif dim.names_kind:
        name = "e.name"
        join = (f" LEFT JOIN entities e ON e.org_id = %(org)s AND "
                f"e.kind = {p(dim.names_kind).get_sql()} AND e.id = page.\"{ENTITY}\"")
    else:
        name, join = "NULL::text", ""
    outer = f"SELECT page.*, {name} AS entity_name FROM page{join} ORDER BY {order_by}"
    return f"WITH agg AS ({agg}), page AS ({page}) {outer}"


def breakdown_sql(domain: Domain, request: BreakdownRequest, org_id: str,
                  use_rollups: bool = True, metric_names: Sequence[str] | None = None,
                  narrow: bool = False, attributes: bool = True) -> Sql:
    """One page of entities with totals, display name and the count of all entities;
    ``metric_names``: the metrics to compute (default: the request's); ``narrow``: see
    ``narrowed``; ``attributes``: the dimension's attributes too (and the name where
    an attribute holds it)."""
    dim = request.dimension
    names = tuple(request.metrics if metric_names is None else metric_names)
    metrics = [domain.metric(name) for name in names]
    metrics += list(dim.attribute_metrics) if attributes else []
    segments = _planned(domain, request, metrics, Grouping(dimension=dim), use_rollups)
    text, constants = _breakdown_text(
        domain, dim, names, request.sort if request.sort in names else None,
        request.descending,
        tuple(request.then_by), where_of(request), request.plan.size.is_fixed,
        tuple(map(cut_of, segments)), narrow, attributes)
    return Sql(text, {**constants, **_values(request, org_id, segments, False),
                      "limit": request.limit, "offset": request.offset},
               purpose="breakdown page", segments=reads(request, segments))


@lru_cache(maxsize=_CACHE)
def _entity_series_text(domain: Domain, metric_names: tuple[str, ...], dim: Dimension,
                        where: Where, fixed: bool, cuts: tuple[Cut, ...],
                        narrow: bool = False) -> tuple[str, dict]:
    p = Params()
    metrics = [domain.metric(name) for name in metric_names]
    grouping = Grouping(by_bucket=True, dimension=dim, entity_ids=[])
    agg = _aggregate_text(domain, metrics, where, fixed, grouping, cuts, p, narrow)
    if narrow:  # only the points holding events: the engine fills the others in
        columns = ", ".join(
            [f'"{ENTITY}"', f'floor(extract(epoch FROM "{BUCKET}"))::int8 AS "{BUCKET}"']
            + [metric.agg.final_sql(metric.name) for metric in metrics])
        return f"WITH agg AS ({agg}) SELECT {columns} FROM agg", p.values
    text = (f"WITH grid AS ({grid_sql(fixed)}), agg AS ({agg}) "
            f"SELECT * FROM unnest(%(entities)s::text[]) AS k({ENTITY}) CROSS JOIN "
            f"grid LEFT JOIN agg USING ({ENTITY}, {BUCKET}) ORDER BY {ENTITY}, {BUCKET}")
    return text, p.values


def entity_series_sql(domain: Domain, request: BreakdownRequest, org_id: str,
                      entity_ids: list[str], use_rollups: bool = True,
                      metric_names: Sequence[str] | None = None, narrow: bool = False) -> Sql:
    """Zero-filled per-entity series for the listed entities: (entity, bucket) rows.

    ``narrow`` (every metric ``integral_in_sql``): tuples ``(entity, bucket start in unix
    seconds, each metric's final value as a bigint)``, a point as it is sent, so Python
    neither finalizes nor converts a value (a value past bigint fails with
    NumericValueOutOfRange: ask again without ``narrow``), in no order and only for the
    buckets holding events (the engine fills in the others: joining the page to the grid
    and sorting cost a 30-day hourly page of 5 models 8 of its 20 ms); otherwise rows of
    parts for every entity and bucket."""
    names = tuple(request.metrics if metric_names is None else metric_names)
    metrics = [domain.metric(name) for name in names]
    grouping = Grouping(by_bucket=True, dimension=request.dimension, entity_ids=entity_ids)
    segments = _planned(domain, request, metrics, grouping, use_rollups)
    text, constants = _entity_series_text(domain, names, request.dimension,
                                          where_of(request), request.plan.size.is_fixed,
                                          tuple(map(cut_of, segments)), narrow)
    return Sql(text, {**constants, **_values(request, org_id, segments, True),
                      "entities": entity_ids}, tuples=narrow,
               purpose="page series", segments=reads(request, segments))


QUERY_TOTAL = "query_total_rows"


def query_sql(domain: Domain, request: StatsRequest, metrics: Sequence[Metric],
              grouping: Grouping, order: Sequence[tuple[str, bool]], org_id: str,
              limit: int, offset: int, use_rollups: bool = True, narrow: bool = False) -> Sql:
    """/v2/query: one page of groups (bucket and grouped dimensions) with their metric
    parts and the count of all groups (``query_total_rows``), ordered by ``order`` (a
    metric, a grouped dimension's ``by`` or ``time``; descending?), then by every grouped
    dimension and the bucket, ascending, absent values last: a total order, so pages
    neither lose nor repeat a group. Read from the smallest cube holding every grouped and
    filtered column, else raw events (``narrow``: see ``narrowed``)."""
    segments = _planned(domain, request, metrics, grouping, use_rollups)
    p = Params()
    # nothing to select (only sketched metrics, asked on their own, over the whole range):
    # one row of no column, the range's one group
    agg = (_aggregate_text(domain, metrics, where_of(request), request.plan.size.is_fixed,
                           grouping, tuple(map(cut_of, segments)), p, narrow)
           if metrics or grouping.key_names else "SELECT")
    keys = {TIME: f'"{BUCKET}"'}  # entity ids in code-point order, as a breakdown's
    keys.update((d.by, f'"{group_key(i)}" COLLATE "C"') for i, d in enumerate(grouping.group_by))
    by_metric = {m.name: m for m in metrics}
    ordering = []
    for name, descending in order:
        term = (sort_term(by_metric[name]).get_sql(quote_char='"') if name in by_metric
                else keys[name])
        ordering.append(f"{term} {'DESC' if descending else 'ASC'} NULLS LAST")
    ordering += [f"{keys[d.by]} ASC NULLS LAST" for d in grouping.group_by]
    if grouping.by_bucket:
        ordering.append(f'"{BUCKET}" ASC')
    order_by = f"ORDER BY {', '.join(ordering)} " if ordering else ""  # not ORDER BY NULL
    text = (f"SELECT agg.*, count(*) OVER () AS {QUERY_TOTAL} FROM ({agg}) AS agg "
            f"{order_by}LIMIT %(query_limit)s OFFSET %(query_offset)s")
    return Sql(text, {**p.values, **_values(request, org_id, segments, grouping.by_bucket),
                      "query_limit": limit, "query_offset": offset},
               purpose="query page", segments=reads(request, segments))
