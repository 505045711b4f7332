"""SQL for series and breakdowns, built with pypika from a domain and a parsed request.

Every value travels as a named placeholder (``%(p0)s``): pypika would inline values given
to functions and paste time-zone names unescaped, so nothing it renders comes from a user.
Identifiers come only from validated domain declarations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pypika import Field, Order, Parameter, PostgreSQLQuery, Table
from pypika import functions as fn
from pypika.terms import Criterion, Term

from stats_gateway.core.domain import (
    ApproxPercentile, Attribute, Count, Dimension, DistinctCount, Domain, LatestTime, Max, Mean,
    Metric, Min, Percentile, Ratio, Sum,
)
from stats_gateway.core.request import BreakdownRequest, StatsRequest
from stats_gateway.core.rollups import plan_segments
from stats_gateway.core.timebuckets import BucketPlan

BUCKET = "bucket_ts"
ENTITY = "entity_id"


@dataclass
class Params:
    """Named placeholders and their values, allocated as the query is built."""

    values: dict[str, object] = field(default_factory=dict)

    def __call__(self, value: object, name: str | None = None) -> Parameter:
        name = name or f"p{len(self.values)}"
        self.values[name] = value
        return Parameter(f"%({name})s")


class Raw(Term):
    """A fixed SQL fragment of our own (never user text), with its own sub-terms."""

    def __init__(self, template: str, *terms: Term, alias: str | None = None):
        super().__init__(alias=alias)
        self.template, self.terms = template, terms

    def get_sql(self, **kw) -> str:
        kw = {**kw, "with_alias": False}
        sql = self.template.format(*(t.get_sql(**kw) for t in self.terms))
        return f'{sql} "{self.alias}"' if self.alias else sql


class AnyOf(Criterion):
    """``column = ANY(%(p)s)``: one array placeholder instead of inlined IN lists."""

    def __init__(self, column: Field, values: Parameter):
        super().__init__()
        self.column, self.values = column, values

    def get_sql(self, **kw) -> str:
        return f"{self.column.get_sql(**kw)} = ANY({self.values.get_sql(**kw)})"


def part_names(metric: Metric) -> tuple[str, ...]:
    """Column aliases holding a metric's mergeable parts (none for an approximate
    percentile: its histogram counts come from a query of their own, ``histograms``)."""
    if isinstance(metric.agg, ApproxPercentile):
        return ()
    if isinstance(metric.agg, Mean):
        return (f"{metric.name}__sum", f"{metric.name}__n")
    if isinstance(metric.agg, Ratio):
        return (f"{metric.name}__num", f"{metric.name}__den")
    return (metric.name,)


def value_term(agg, table: Table) -> Term:
    """The per-event value an aggregation reads: its column, plus its ``plus`` columns."""
    added = table.field(agg.column)
    for column in getattr(agg, "plus", ()):
        added = added + table.field(column)
    return added


def metric_terms(metric: Metric, table: Table, p: Params) -> list[Term]:
    agg = metric.agg
    if isinstance(agg, ApproxPercentile):
        return []  # not parts: see part_names
    if isinstance(agg, Count):
        if agg.column and not agg.values:
            return [fn.Count(table.field(agg.column)).as_(metric.name)]  # non-null values
        term = fn.Count("*")
        if agg.column:
            term = term.filter(AnyOf(table.field(agg.column), p(list(agg.values))))
        return [term.as_(metric.name)]
    if isinstance(agg, Sum):
        term = fn.Sum(value_term(agg, table))
        if agg.where_column:
            term = term.filter(AnyOf(table.field(agg.where_column), p(list(agg.values))))
        return [term.as_(metric.name)]
    if isinstance(agg, Mean):  # summed as numeric: exact, so any grouping sums alike
        value = value_term(agg, table)
        return [Raw("sum(({0})::numeric)", value, alias=f"{metric.name}__sum"),
                fn.Count(value).as_(f"{metric.name}__n")]
    if isinstance(agg, Ratio):
        num, den = part_names(metric)
        return [fn.Sum(table.field(agg.numerator)).as_(num),
                fn.Sum(table.field(agg.denominator)).as_(den)]
    if isinstance(agg, Min):
        return [fn.Min(value_term(agg, table)).as_(metric.name)]
    if isinstance(agg, Max):
        return [fn.Max(value_term(agg, table)).as_(metric.name)]
    if isinstance(agg, Percentile):
        return [Raw("percentile_cont({0}) WITHIN GROUP (ORDER BY {1})", p(agg.q),
                    value_term(agg, table), alias=metric.name)]
    if isinstance(agg, DistinctCount):
        return [fn.Count(table.field(agg.column)).distinct().as_(metric.name)]
    if isinstance(agg, LatestTime):
        return [fn.Max(table.ts).as_(metric.name)]
    raise TypeError(agg)


def sort_term(metric: Metric) -> Term:
    """Expression over an aggregated row (by part alias) that orders by the metric."""
    if isinstance(metric.agg, (Mean, Ratio)):
        s, n = part_names(metric)
        return Raw('("{0}"::float8 / NULLIF("{1}", 0))'.format(s, n))
    if isinstance(metric.agg, Sum):  # a filtered sum over no matching rows is 0, not null
        return Raw('COALESCE("{0}", 0)'.format(metric.name))
    return Field(metric.name)


def key_term(dimension: Dimension, table: Table) -> Term:
    """The entity id: the column, or a composite key's values joined with ':'."""
    fields = [table.field(c) for c in dimension.columns]
    if len(fields) == 1:
        return fields[0]
    return Raw("concat_ws(':', " + ", ".join("{%d}" % i for i in range(len(fields))) + ")",
               *fields)


def attribute_term(attr, table: Table, skip_nulls: bool = False) -> Term:
    """An attribute's value per entity: the newest event's (ties: the larger event id, so
    the answer is stable), optionally the newest non-null one; or the largest value."""
    alias = f"attr__{attr.name}"
    if attr.latest:
        known = " FILTER (WHERE {0} IS NOT NULL)" if skip_nulls else ""
        return Raw("(array_agg({0} ORDER BY {1} DESC, {2} DESC)" + known + ")[1]",
                   table.field(attr.column), table.ts, table.event_id, alias=alias)
    return fn.Max(table.field(attr.column)).as_(alias)


def bucket_term(plan: BucketPlan, time: Term, p: Params) -> Term:
    """The start of the query bucket holding ``time`` (an event's ``ts`` or a rollup slot's
    start), as timestamptz."""
    if plan.size.is_fixed:
        return Raw("date_bin({0}, {1}, {2})", p(plan.size.step, "step"), time,
                   p(plan.origin, "origin"))
    starts = p(plan.calendar_starts, "starts")
    return Raw("({0}::timestamptz[])[width_bucket({1}, {0}::timestamptz[])]", starts, time)


def grid_sql(plan: BucketPlan, p: Params) -> str:
    """SELECT of every bucket start intersecting [start, end), in order."""
    if not plan.size.is_fixed:
        return f"SELECT unnest({p(plan.calendar_starts, 'starts').get_sql()}::timestamptz[]) AS {BUCKET}"
    start, end = p(plan.start, "start").get_sql(), p(plan.end, "end").get_sql()
    step, origin = p(plan.size.step, "step").get_sql(), p(plan.origin, "origin").get_sql()
    last = f"({end}::timestamptz - interval '1 microsecond')"
    return (f"SELECT generate_series(date_bin({step}, {start}::timestamptz, {origin}), "
            f"date_bin({step}, {last}, {origin}), {step}) AS {BUCKET}")


def filter_criterion(flt, table: Table, p: Params, name: str) -> Criterion:
    """One filter: equality, membership (``any``), list overlap, or ``is_null``."""
    column = table.field(flt.column)
    if flt.op == "eq":
        return column == p(flt.value, name)
    if flt.op == "any":
        return AnyOf(column, p(list(flt.value), name))
    if flt.op == "overlaps":
        return Raw("({0} && {1}::text[])", column, p(list(flt.value), name))
    if flt.op == "is_null":
        return column.isnull() if flt.value else column.notnull()
    raise ValueError(flt.op)


def _source(table: Table, time: Field, request: StatsRequest, org_id: str, p: Params,
            start, end):
    """FROM ``table`` WHERE org, ``start <= time < end``, scope and resource filters."""
    q = (PostgreSQLQuery.from_(table)
         .where(table.org_id == p(org_id, "org"))
         .where(time >= p(start)).where(time < p(end)))
    if request.scope.kind == "workspace":
        q = q.where(table.workspace_id == p(request.scope.id, "scope_id"))
    elif request.scope.kind == "repo":
        q = q.where(table.repo_id == p(request.scope.id, "scope_id"))
    for i, flt in enumerate(request.filters):
        q = q.where(filter_criterion(flt, table, p, f"filter{i}"))
    return q


def _metric_terms(metrics: Sequence[Metric], table, p) -> list[Term]:
    return [t for metric in metrics for t in metric_terms(metric, table, p)]


@dataclass(frozen=True)
class Sql:
    text: str
    params: dict[str, object]


def merge_terms(metrics: Sequence[Metric], rows: Table) -> list[Term]:
    """Re-aggregate partial rows: sums of counts, sums and parts; min of minima; max of
    maxima and newest times. Exact for every mergeable metric."""
    terms = []
    for metric in metrics:
        merge = (fn.Min if isinstance(metric.agg, Min)
                 else fn.Max if isinstance(metric.agg, (Max, LatestTime)) else fn.Sum)
        terms += [merge(rows.field(part)).as_(part) for part in part_names(metric)]
    return terms


@dataclass(frozen=True)
class Grouping:
    """What one aggregate query groups by and adds."""

    by_bucket: bool = False
    dimension: Dimension | None = None
    entity_ids: list[str] | None = None
    attributes: tuple = ()  # attribute terms over the raw table (forces raw events)


def _aggregate_from(table: Table, time: Field, values: list[Term], request: StatsRequest,
                    org_id: str, p: Params, start, end, grouping: Grouping,
                    extra_keys: Sequence[Term] = ()):
    """One grouped SELECT over ``table`` for ``[start, end)``; ``extra_keys`` are further
    terms to select and group by (a histogram's bin)."""
    q = _source(table, time, request, org_id, p, start, end)
    select, group = [], []
    if grouping.by_bucket:
        bucket = bucket_term(request.plan, time, p)
        select.append(bucket.as_(BUCKET))
        group.append(bucket)
    if grouping.dimension is not None:
        key = key_term(grouping.dimension, table)
        for column in grouping.dimension.columns:
            q = q.where(table.field(column).notnull())
        if grouping.entity_ids is not None:
            q = q.where(AnyOf(key, p(grouping.entity_ids, "entities")))
        select.append(key.as_(ENTITY))
        group += [table.field(c) for c in grouping.dimension.columns]
    select += extra_keys
    group += extra_keys
    q = q.select(*select, *values)
    return q.groupby(*group) if group else q


def aggregate_sql(domain: Domain, request: StatsRequest, metrics: Sequence[Metric],
                  org_id: str, p: Params, grouping: Grouping, use_rollups: bool) -> str:
    """Rows of [bucket_ts] [entity_id] [attr__*] and metric parts, one per group.

    From raw events, or (where ``plan_segments`` finds it exact) from rollup segments and
    raw ends, merged into the same rows.
    """
    segments = (plan_segments(domain, request, list(metrics), grouping.dimension,
                              grouping.by_bucket)
                if use_rollups and not grouping.attributes else [])
    events = Table(domain.table)
    if all(seg.rollup is None for seg in segments):  # one pass over raw events
        values = list(grouping.attributes) + _metric_terms(metrics, events, p)
        return _aggregate_from(events, events.ts, values, request, org_id, p,
                               request.plan.start, request.plan.end, grouping).get_sql()
    partials = []
    for seg in segments:
        if seg.rollup is None:
            table, time, values = events, events.ts, _metric_terms(metrics, events, p)
        else:
            table = Table(seg.rollup.table)
            time, values = table.slot_ts, merge_terms(metrics, table)
        partials.append(_aggregate_from(table, time, values, request, org_id, p, seg.start,
                                        seg.end, grouping).get_sql())
    rows = Table("partials")
    keys = ([Field(BUCKET)] if grouping.by_bucket else []) + (
        [Field(ENTITY)] if grouping.dimension is not None else [])
    outer = PostgreSQLQuery.from_(rows).select(*keys, *merge_terms(metrics, rows))
    outer = outer.groupby(*keys) if keys else outer
    union = " UNION ALL ".join(f"({sql})" for sql in partials)
    return outer.get_sql().replace('FROM "partials"', f"FROM ({union}) AS partials", 1)


def series_sql(domain: Domain, request: StatsRequest, metrics: Sequence[Metric],
               org_id: str, use_rollups: bool = True) -> Sql:
    """One row per bucket in range (empty buckets have NULL parts), ordered by time."""
    p = Params()
    agg = aggregate_sql(domain, request, metrics, org_id, p, Grouping(by_bucket=True),
                        use_rollups)
    text = (f"WITH grid AS ({grid_sql(request.plan, p)}), agg AS ({agg}) "
            f"SELECT * FROM grid LEFT JOIN agg USING ({BUCKET}) ORDER BY {BUCKET}")
    return Sql(text, p.values)


def totals_sql(domain: Domain, request: StatsRequest, metrics: Sequence[Metric],
               org_id: str, use_rollups: bool = True) -> Sql:
    """One row: every metric over the whole range."""
    p = Params()
    return Sql(aggregate_sql(domain, request, metrics, org_id, p, Grouping(), use_rollups),
               p.values)


def grouped_series_sql(domain: Domain, request: StatsRequest, metrics: Sequence[Metric],
                       dimension: Dimension, org_id: str, use_rollups: bool = True) -> Sql:
    """Sparse (bucket, entity) rows, only where events exist, ordered by bucket then entity."""
    p = Params()
    agg = aggregate_sql(domain, request, metrics, org_id, p,
                        Grouping(by_bucket=True, dimension=dimension), use_rollups)
    # an output alias cannot appear inside an ORDER BY expression (COLLATE): order outside
    return Sql(f"SELECT * FROM ({agg}) AS grouped "
               f"ORDER BY {BUCKET}, {ENTITY} COLLATE \"C\"", p.values)


def breakdown_sql(domain: Domain, request: BreakdownRequest, org_id: str,
                  use_rollups: bool = True) -> Sql:
    """One page of entities with totals, display name and the count of all entities."""
    p = Params()
    dim = request.dimension
    metrics = [domain.metric(name) for name in request.metrics]
    events = Table(domain.table)
    attrs = [attribute_term(attr, events) for attr in dim.attributes]
    if dim.name_column:
        # the newest name given, as with the entity catalogue: a run without one keeps it
        attrs.append(attribute_term(Attribute("_name", dim.name_column, latest=True), events,
                                    skip_nulls=True))
    agg = aggregate_sql(domain, request, metrics, org_id, p,
                        Grouping(dimension=dim, attributes=tuple(attrs)), use_rollups)
    aggregated = Table("agg")
    order = Order.desc if request.descending else Order.asc
    sort = sort_term(domain.metric(request.sort)).get_sql(quote_char='"')
    extra = [Raw("count(*) OVER ()", alias="total_entities")]
    if dim.share_of:
        share = sort_term(domain.metric(dim.share_of)).get_sql(quote_char='"')
        extra.append(Raw(f"sum({share}) OVER ()", alias="share_total"))
    names = Table("entities")
    outer = PostgreSQLQuery.from_(aggregated)
    if dim.name_column:
        name = Raw('"agg"."attr___name"')  # a Raw: pypika drops fields of a starred table
    elif dim.names_kind:
        outer = outer.left_join(names).on(
            (names.org_id == p(org_id, "org")) & (names.kind == p(dim.names_kind, "kind"))
            & (names.id == aggregated.field(ENTITY)))
        name = names.name
    else:
        name = Raw("NULL::text")
    outer = (outer.select(aggregated.star, name.as_("entity_name"), *extra)
             .orderby(Raw(f"{sort} {order.value} NULLS LAST")))
    for tie in request.then_by:
        tie_sql = sort_term(domain.metric(tie)).get_sql(quote_char='"')
        outer = outer.orderby(Raw(f"{tie_sql} {order.value} NULLS LAST"))
    outer = (outer.orderby(Raw(f'"agg"."{ENTITY}" COLLATE "C"'))  # code-point order, any locale
             .limit(p(request.limit, "limit")).offset(p(request.offset, "offset")))
    return Sql(f"WITH agg AS ({agg}) {outer.get_sql()}", p.values)


def entity_series_sql(domain: Domain, request: BreakdownRequest, org_id: str,
                      entity_ids: list[str], use_rollups: bool = True) -> Sql:
    """Zero-fillable per-entity series for the listed entities: (entity, bucket) rows."""
    p = Params()
    metrics = [domain.metric(name) for name in request.metrics]
    grouping = Grouping(by_bucket=True, dimension=request.dimension, entity_ids=entity_ids)
    agg = aggregate_sql(domain, request, metrics, org_id, p, grouping, use_rollups)
    text = (f"WITH grid AS ({grid_sql(request.plan, p)}), agg AS ({agg}) "
            f"SELECT * FROM unnest(%(entities)s::text[]) AS k({ENTITY}) CROSS JOIN grid "
            f"LEFT JOIN agg USING ({ENTITY}, {BUCKET}) ORDER BY {ENTITY}, {BUCKET}")
    return Sql(text, p.values)
