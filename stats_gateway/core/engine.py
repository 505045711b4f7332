"""The engine: request -> SQL -> values -> envelope. Knows domains and PostgreSQL, not HTTP.

Two layers: ``series``/``breakdown`` parse the unified query parameters and build the
shared envelopes; the ``*_values`` methods take an already-built request and return plain
values, for adapters that answer in another API's shape (the seed-compatible endpoints).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from copy import copy
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, TypeVar

import msgspec
from msgspec import UNSET, UnsetType
from psycopg.errors import NumericValueOutOfRange

from stats_gateway.core.database import Database, TenantSession
from stats_gateway.core.domain import Dimension, Domain, Metric
from stats_gateway.core.envelopes import (
    BreakdownMeta, BreakdownSummary, PreviousRange, ResourceFilterMeta, SeriesMeta, Summary,
    breakdown_types,
    series_types,
)
from stats_gateway.core.errors import ApiError, Problem, bad_request, not_found
from stats_gateway.core.explain import PAGE_IDS, Explanation, explanation
from stats_gateway.core.filters import Filter
from stats_gateway.core.query import (
    QueryBody, QueryMeta, QueryOrderMeta, QueryResponse, parse_query,
)
from stats_gateway.core.warnings import request_warnings
from stats_gateway.core.distinct import estimate_ranking_segments, estimate_ranking_sql
from stats_gateway.core.sketches import SKETCHES, sketched
from stats_gateway.core.request import (
    EARLIEST, LATEST, BreakdownRequest, Scope, SeriesRequest, StatsRequest, parse_breakdown,
    parse_series,
)
from stats_gateway.core.sql import (
    BUCKET, ENTITY, Grouping, Sql, breakdown_sql, bucket_keys, entity_series_sql,
    QUERY_TOTAL, TIME, group_key, grouped_series_sql, integral_in_sql, query_sql,
    series_parts_columns, series_parts_sql, totals_sql,
)
from stats_gateway.core.restriction import UNRESTRICTED, Restriction
from stats_gateway.core.summary import additive_total, summarize

R = TypeVar("R", bound=StatsRequest)
RAW_FROM = ("SELECT raw_from FROM raw_horizons "
            "WHERE org_id = %(org)s AND domain = %(domain)s")
NOTHING_EXPIRED = EARLIEST  # ingest takes no ts before it: no raw event has expired


Finalizer = Callable[[Mapping[str, Any]], Any]


async def gather_all(awaitables: Sequence[Coroutine[Any, Any, Any]], at_once: bool = True,
                     ) -> list:
    """Await all, at once if ``at_once`` (each query on a pool connection of its own) or
    one after the other; the first failure cancels the others and is raised as itself,
    as a single query's would be (one after the other, those not yet started are closed:
    never awaited, each would warn)."""
    if not at_once or len(awaitables) <= 1:
        done = []
        for i, awaitable in enumerate(awaitables):
            try:
                done.append(await awaitable)
            except BaseException:
                for rest in awaitables[i + 1:]:
                    rest.close()
                raise
        return done
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(a) for a in awaitables]
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


def finalizer(domain: Domain, metric: Metric) -> Finalizer:
    """How a metric's value is read from its parts in an aggregated row (NULL parts: an
    empty bucket). Worked out once per query, then applied to every row."""
    return metric.agg.finalizer(domain, metric.name)


def finalize(domain: Domain, metric: Metric, row: Mapping[str, object]) -> object:
    """A metric's value from its parts in one aggregated row."""
    return finalizer(domain, metric)(row)


def _parts(metrics: Sequence[Metric]) -> list[Metric]:
    """The metrics the metric query computes: all but the sketched ones (approximate
    percentiles, distinct counts), so they do not send the other metrics to raw events."""
    return [m for m in metrics if not sketched(m)]


def _finalizers(domain: Domain, metrics: Sequence[Metric]) -> list[tuple[str, Finalizer]]:
    return [(m.name, finalizer(domain, m)) for m in metrics]


def _values(finalizers: list[tuple[str, Finalizer]], row: Mapping[str, object],
            percentiles: Mapping[str, object] | None = None) -> dict[str, Any]:
    """Each metric's value from an aggregated row plus the group's approximate percentiles
    (absent: no values in the group, so null)."""
    merged = {**row, **percentiles} if percentiles else row
    return {name: read(merged) for name, read in finalizers}


def _narrow_points(domain: Domain, rows: Sequence[tuple], metrics: Sequence[Metric],
                   parts: Sequence[Metric], sketch_values: Mapping[tuple, Mapping],
                   ids: Sequence[str], keys: Sequence[int]) -> dict[str, list[tuple]]:
    """Per entity of ``ids``, its point ``(ts, each metric's value...)`` at every bucket
    start of ``keys``, from ``entity_series_sql``'s narrow tuples ``(entity, ts, each
    part's final value...)`` (buckets holding events only) and the sketched metrics'
    values per (bucket, entity). Rows are filed per entity by their bucket's unix second,
    so a point costs one int lookup; with nothing sketched and the metrics in the parts'
    order a point is its row's tail as it came (a 30-day hourly page of 50 users is 36k
    points, 32k with events: 39-46 -> 21-23 ms in process, alternated; the walk this
    replaces built an (entity, ts) key, a concatenation and a pick per point)."""
    rows_of: dict[str, dict[int, tuple]] = {entity: {} for entity in ids}
    for row in rows:
        filed = rows_of.get(row[0])
        if filed is not None:
            filed[row[1]] = row
    no_events = tuple(finalizer(domain, m)({}) for m in parts)  # what the grid join gave
    at = {m.name: i for i, m in enumerate(parts)}
    others = [m for m in metrics if m.name not in at]
    if not others and [m.name for m in metrics] == list(at):
        zeros = [(ts, *no_events) for ts in keys]  # tuples: every entity may share them
        return {entity: [hit[1:] if (hit := filed.get(ts)) is not None else zero
                         for ts, zero in zip(keys, zeros)]
                for entity, filed in rows_of.items()}
    reads = [finalizer(domain, m) for m in others]
    # a row (entity, ts, parts...) + the sketched values: ts, then each metric in order
    pick = itemgetter(1, *[2 + at[m.name] if m.name in at else 2 + len(parts) + others.index(m)
                           for m in metrics])
    empty = tuple(read({}) for read in reads)
    sketched_of: dict[str, dict[int, tuple]] = {entity: {} for entity in ids}
    stamps: dict[datetime, int] = {}  # a page's entities share their buckets
    for (bucket, entity), values in sketch_values.items():
        ts = stamps.get(bucket)
        if ts is None:
            ts = stamps[bucket] = _ts(bucket)
        if (filed := sketched_of.get(entity)) is not None:
            filed[ts] = tuple(read(values) for read in reads)
    return {entity: [pick((filed.get(ts) or (entity, ts, *no_events))
                          + sketched.get(ts, empty)) for ts in keys]
            for (entity, filed), sketched in zip(rows_of.items(), sketched_of.values())}


def _final_in_sql(domain: Domain, metrics: Sequence[Metric]) -> bool:
    """Whether the database can send every metric's final value as a bigint (none is
    sketched, each is a count or an integral sum): rows are then the answer as it is sent."""
    return all(not sketched(m) and integral_in_sql(domain, m) for m in metrics)


def _ts(value: datetime) -> int:
    return int(value.timestamp())


def _filter_text(value: object) -> str:
    """A filter's value as the caller wrote it: ``id`` is text whatever the column type."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(map(_filter_text, value))
    return str(value)


def _filter_meta(flt: Filter) -> ResourceFilterMeta:
    """A filter as the response's meta echoes it: one equality as Flashback has it, any
    other with its operator and values."""
    if flt.operator.pins:
        return ResourceFilterMeta(type=flt.param, id=_filter_text(flt.value))
    values = flt.value if isinstance(flt.value, (list, tuple)) else [flt.value]
    return ResourceFilterMeta(type=flt.param, id=_filter_text(values),
                              operator=flt.operator.meta_name,
                              ids=[_filter_text(v) for v in values])


def _meta_fields(request: StatsRequest, scope_id: str) -> dict:
    """The StatsMeta fields shared by both envelopes."""
    filters = [_filter_meta(f) for f in request.filters]
    return dict(start=_ts(request.plan.start), end=_ts(request.plan.end),
                scope=request.scope.kind, scope_id=scope_id, window=request.window,
                time_bucket_size=request.plan.size.name, timezone=request.plan.timezone,
                resource_filter=filters[0] if len(filters) == 1 else None,
                resource_filters=filters, warnings=request_warnings(request) or UNSET)


def breakdown_sql_metrics(domain: Domain, request: BreakdownRequest,
                          by_estimate: bool = False) -> list[str]:
    """The metrics a breakdown's own query computes: all but the sketched ones, which are
    asked for the page's entities only, unless the page is sorted (or shared out) by one,
    which then needs it in SQL (exact, from raw events). ``by_estimate``: the page is
    ranked by its distinct count's estimate (``estimate_ranking_sql``), whose rows hold
    that estimate for the page."""
    ordering = set() if by_estimate else _ordering_metrics(request)
    return [name for name in request.metrics
            if not sketched(domain.metric(name)) or name in ordering]


def _ordering_metrics(request: BreakdownRequest) -> set[str | None]:
    """The metrics a page's order depends on: the sort, its ties and the share."""
    return {request.sort, *request.then_by, request.dimension.share_of}


def only_entities(request: BreakdownRequest, ids: Sequence[str]) -> BreakdownRequest:
    """``request`` narrowed to the entities ``ids``, all of them on one page, without
    series or the rest: what a page's follow-up totals ask for."""
    dim = request.dimension
    return replace(request, offset=0, limit=max(len(ids), 1), include_series=False,
                   include_other=False,
                   filters=(*request.filters, Filter(dim.by, dim.columns, list(ids), "any")))


def ranking_metrics(domain: Domain, request: BreakdownRequest,
                    in_sql: Sequence[str]) -> list[str] | None:
    """The metrics that order a page of a high-cardinality dimension (sort, then-by,
    share), when others remain: the page is found with these alone, and the others are
    computed for its entities only (``StatsEngine._page_totals``). Aggregating one sum
    per user instead of four over a year of 20k users: 135 -> 95 ms (PostgreSQL 15, 2M
    events). None: one query computes every metric (a dimension of few entities, where a
    second query would cost more than it saves)."""
    dim = request.dimension
    if len(dim.columns) != 1 or dim.columns[0] not in domain.high_cardinality_columns:
        return None  # (an entity of several columns is found by an expression, no index)
    ordering = _ordering_metrics(request)
    ranking = [name for name in in_sql if name in ordering]
    return ranking if len(ranking) < len(in_sql) else None


_PAGE_OWN = frozenset({"total_entities", "share_total"})  # what only the page query knows


def _sketches_beside_ranking(domain: Domain, request: BreakdownRequest, by_estimate: bool,
                             sketched_after: Sequence[Metric]) -> bool:
    """Whether a page ranked by a distinct count's estimate gets its other sketched
    metrics (percentiles, other distinct counts) for every entity, beside the ranking,
    instead of for its own entities after it. So where the dimension has few entities
    (models, not users): a sketch statement reads the cube's rows of the range whatever
    entities it keeps, so it costs about the same for all of them, and the two long
    statements overlap instead of following each other (ai models by
    ``activeConversations`` over a year at 10M events: the ranking 555 ms, then the
    percentiles 330 ms). The price: every entity's percentile rows are read, not the
    page's; a dimension declared of few entities that holds thousands (a large org's
    repos) pays for reading those rows in Python."""
    return by_estimate and domain.has_few_entities(request.dimension) and bool(sketched_after)


async def _ready(value):
    """``value`` as an awaitable, to sit among queries still to run."""
    return value


@dataclass(frozen=True)
class EntityValues:
    """One breakdown entity as plain values."""

    entity_id: str
    name: str | None
    attributes: dict[str, Any]  # values of the declared types (text, numbers, times)
    totals: dict[str, Any]  # each metric's value: int, Decimal, float or None
    share_pct: float | None  # percentage of the dimension's share_of metric, if declared
    series: list[tuple] | None  # points: (ts, each metric's value...) in request order


class StatsEngine:
    """Answers over ``db``, its one door to the database (core/database.py)."""

    def __init__(self, db: Database, domains: Sequence[Domain], *, use_rollups: bool = True):
        self.db = db
        self.domains = {d.name: d for d in domains}
        self.use_rollups = use_rollups  # off: every answer from raw events (tests, bench)

    def in_session(self, session: TenantSession) -> StatsEngine:
        """This engine for one request: its queries run in ``session`` (its org only, its
        cached key re-checked by the first of them). Shares everything else."""
        bound = copy(self)
        bound.db = self.db.in_session(session)
        return bound

    @property
    def pool(self):
        """The connection pool under the database, when it has one (readiness, metrics,
        tests); the engine itself only ever goes through ``db``."""
        return getattr(self.db, "pool", None)

    async def _gather(self, awaitables: Sequence[Coroutine[Any, Any, Any]]) -> list:
        """A request's independent queries (its metrics, each kind of sketch, a page's
        series): at once when the database has room for them, one after the other
        otherwise (``Database.can_run_at_once``)."""
        return await gather_all(awaitables,
                                at_once=self.db.can_run_at_once(len(awaitables)))

    def domain(self, name: str) -> Domain:
        domain = self.domains.get(name)
        if domain is None:
            raise not_found("domain")
        return domain

    async def _fetch(self, org_id: str, sql: Sql) -> list[Any]:
        """Rows of one query, run as ``org_id`` (row-level security: db/tenant.py)."""
        return await self.db.fetch(org_id, sql.text, sql.params, tuples=sql.tuples)

    async def _fetch_narrow(self, org_id: str, build: Callable[[bool], Sql]) -> list[Any]:
        """Rows of the statement ``build(narrow=True)`` builds (integral sums added as
        bigints: ``core/sql.py``'s ``narrowed``), or, where a rollup slot's sum passed
        bigint, of ``build(False)``: the same values, added as numerics."""
        try:
            return await self._fetch(org_id, build(True))
        except NumericValueOutOfRange:
            return await self._fetch(org_id, build(False))

    def _page_ids(self, rows: Sequence[Mapping]) -> list[str]:
        """A breakdown page's entity ids, which its follow-up queries (series, sketched
        metrics) ask about."""
        return [row[ENTITY] for row in rows]

    # --- explain: the same path, recorded instead of run --------------------------------

    async def explain(self, org_id: str,
                      answer: Callable[[StatsEngine], Awaitable[object]]) -> Explanation:
        """The statements ``answer`` (any use of an engine: a /v2 envelope, a seed
        endpoint's values) would send, with the planner's segments, without running a
        data query (``core/explain.py``)."""
        recording = _RecordingEngine(self)
        await answer(recording)
        return explanation(recording.recorded)

    async def explain_url(self, org_id: str, path: str, params: Mapping[str, Sequence[str]],
                          body: bytes | None = None, now: datetime | None = None,
                          restriction: Restriction = UNRESTRICTED) -> Explanation:
        """``explain`` for a /v2 request given as its path and query parameters (and a
        /v2/query body): ``stats-gateway explain <url>``."""
        parts = path.strip("/").split("/")
        if parts[:2] == ["v2", "stats"] and len(parts) in (3, 4):
            view = parts[3] if len(parts) == 4 else ""
            return await self.explain(org_id, lambda e: e.series(
                org_id, parts[2], view, params, now, restriction))
        if parts[:2] == ["v2", "stats"] and len(parts) == 5 and parts[3] == "breakdown":
            return await self.explain(org_id, lambda e: e.breakdown(
                org_id, parts[2], parts[4], params, now, restriction))
        if parts[:2] == ["v2", "query"] and len(parts) == 3:
            if not body:
                raise bad_request([Problem("body", "a /v2/query request needs its JSON body")],
                                  "no query body")
            try:
                query = msgspec.json.decode(body, type=QueryBody)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                raise bad_request([Problem("body", str(exc))], "not a query") from None
            return await self.explain(org_id, lambda e: e.query(
                org_id, parts[2], query, 0, now, restriction))
        raise ApiError(404, "not_found", f"cannot explain {path!r}: give a /v2/stats/<domain>"
                       "[/<view>], /v2/stats/<domain>/breakdown/<by> or /v2/query/<domain> path")

    async def check_scope(self, org_id: str, request: StatsRequest,
                          restriction: Restriction = UNRESTRICTED) -> str:
        """The scope id to report; 404 (the same for foreign, missing and, for a restricted
        key, disallowed ids) otherwise."""
        scope = request.scope
        if scope.kind == "org":
            if scope.id is not None and scope.id != org_id:
                raise not_found("org")
            return org_id
        if scope.id is None:  # the parser requires one for a workspace or repo scope
            raise not_found(scope.kind)
        possible, condition, params = restriction.scope_condition(scope.kind, scope.id)
        if not possible or not await self.db.fetch(
                org_id, "SELECT 1 FROM entities e WHERE e.org_id = %(org)s "
                "AND e.kind = %(kind)s AND e.id = %(id)s" + condition,
                {"org": org_id, "kind": scope.kind, "id": scope.id, **params}):
            raise not_found(scope.kind)
        return scope.id

    async def with_horizon(self, org_id: str, domain: Domain, request: R) -> R:
        """``request`` knowing from when the org's raw events of ``domain`` are kept
        (``raw_horizons``, written by retention: docs/retention.md), looked up once."""
        if request.raw_from is not None:
            return request
        rows = await self.db.fetch(org_id, RAW_FROM, {"org": org_id, "domain": domain.name},
                                   tuples=True)
        return replace(request, raw_from=rows[0][0] if rows else NOTHING_EXPIRED)

    async def _percentiles(self, org_id: str, domain: Domain, request: StatsRequest,
                           metrics: Sequence[Metric], grouping: Grouping) -> dict[tuple, dict]:
        """The sketched metrics (approximate percentiles, distinct counts) per group key,
        each kind of sketch from a query of its own (the metric query has no parts for
        them); the kinds' queries run at once, on connections of their own."""
        async def one(sketch, chosen) -> dict[tuple, dict]:
            rows = await self._fetch(org_id, sketch.sql(domain, request, chosen, org_id,
                                                        grouping, self.use_rollups))
            return sketch.values(rows, chosen, grouping)

        queries = [one(sketch, chosen) for sketch in SKETCHES
                   if (chosen := [m for m in metrics if sketch.picks(m)])]
        found: dict[tuple, dict] = {}
        for values_by_key in await self._gather(queries):
            for key, values in values_by_key.items():
                found.setdefault(key, {}).update(values)
        return found

    # --- plain values, for any response shape ------------------------------------------

    async def series_values(self, org_id: str, domain: Domain, request: StatsRequest,
                            metrics: Sequence[Metric], restriction: Restriction = UNRESTRICTED,
                            ) -> list[tuple[datetime, dict]]:
        """Every bucket in range, in order, with each metric's value."""
        rows = await self.series_rows(org_id, domain, request, metrics, restriction)
        names = [m.name for m in metrics]
        return [(datetime.fromtimestamp(row[0], UTC), dict(zip(names, row[1:])))
                for row in rows]

    async def series_rows(self, org_id: str, domain: Domain, request: StatsRequest,
                          metrics: Sequence[Metric], restriction: Restriction = UNRESTRICTED,
                          ) -> list[tuple]:
        """Every bucket in range, in order, as ``(bucket start in unix seconds, each
        metric's value in the order of metrics...)``: for callers that render many
        buckets (no datetime, no dict of names per bucket)."""
        request = await self.with_horizon(org_id, domain, request)
        return await self._bucket_rows(org_id, domain, restriction.apply(request), metrics)

    async def _series_parts(self, org_id: str, domain: Domain, request: StatsRequest,
                            parts: Sequence[Metric]) -> tuple[list[tuple], bool]:
        """The metric query's rows, and whether they are narrow (bigint sums)."""
        try:
            return await self._fetch(org_id, series_parts_sql(
                domain, request, parts, org_id, self.use_rollups)), True
        except NumericValueOutOfRange:  # a sum past bigint: ask for it as numeric
            return await self._fetch(org_id, series_parts_sql(
                domain, request, parts, org_id, self.use_rollups, narrow=False)), False

    async def _bucket_rows(self, org_id: str, domain: Domain, request: StatsRequest,
                           metrics: Sequence[Metric]) -> list[tuple]:
        """``(bucket start in unix seconds, each metric's value...)`` for every bucket in
        range, in order: the series' hot path. The database answers counts and integral
        sums final (``series_parts_sql``), so when every metric is one, a row is already
        the answer; otherwise the finalizers read the parts."""
        parts = _parts(metrics)
        sketches = (self._percentiles(org_id, domain, request, metrics, Grouping(by_bucket=True))
                    if any(map(sketched, metrics)) else None)
        if sketches is None:
            rows, narrow = await self._series_parts(org_id, domain, request, parts)
            sketch_values: dict[tuple, dict] = {}
        else:
            (rows, narrow), sketch_values = await self._gather(
                [self._series_parts(org_id, domain, request, parts), sketches])
        found = {row[0]: row for row in rows}
        keys = bucket_keys(request.plan)
        finalizers = _finalizers(domain, metrics)
        empty = tuple(read({}) for _, read in finalizers)
        if narrow and _final_in_sql(domain, metrics):
            return [found.get(key) or (key, *empty) for key in keys]
        percentiles = {_ts(bucket): values for (bucket,), values in sketch_values.items()}
        columns = series_parts_columns(domain, parts, narrow)
        reads = [read for _, read in finalizers]  # (a tuple per bucket, no dict of names)
        out = []
        for key in keys:
            row = found.get(key)
            parts_of = dict(zip(columns, row)) if row is not None else {}
            if (sketched_of := percentiles.get(key)) is not None:
                parts_of.update(sketched_of)
            out.append((key, *[read(parts_of) for read in reads]))
        return out

    async def total_values(self, org_id: str, domain: Domain, request: StatsRequest,
                           metrics: Sequence[Metric], restriction: Restriction = UNRESTRICTED,
                           ) -> dict:
        """Each metric over the whole range."""
        request = restriction.apply(await self.with_horizon(org_id, domain, request))
        parts = _parts(metrics)
        async def metric_row() -> dict:
            if not parts:  # a SELECT of nothing is not SQL
                return {}
            rows = await self._fetch_narrow(org_id, lambda narrow: totals_sql(
                domain, request, parts, org_id, self.use_rollups, narrow))
            return rows[0] if rows else {}  # one row always (none only when explaining)

        row, found = await self._gather(
            [metric_row(), self._percentiles(org_id, domain, request, metrics, Grouping())])
        return _values(_finalizers(domain, metrics), row, found.get(()))

    async def grouped_series_values(self, org_id: str, domain: Domain, request: StatsRequest,
                                    metrics: Sequence[Metric], dimension: Dimension,
                                    restriction: Restriction = UNRESTRICTED,
                                    ) -> list[tuple[datetime, str, dict]]:
        """(bucket, entity id, values) only where events exist, by bucket then entity."""
        request = restriction.apply(await self.with_horizon(org_id, domain, request))
        rows, found = await self._gather([
            self._fetch_narrow(org_id, lambda narrow: grouped_series_sql(
                domain, request, _parts(metrics), dimension, org_id, self.use_rollups, narrow)),
            self._percentiles(org_id, domain, request, metrics,
                              Grouping(by_bucket=True, dimension=dimension))])
        finalizers = _finalizers(domain, metrics)
        return [(row[BUCKET], row[ENTITY],
                 _values(finalizers, row, found.get((row[BUCKET], row[ENTITY]))))
                for row in rows]

    async def _page_series(self, org_id: str, domain: Domain, request: BreakdownRequest,
                           ids: list[str], metrics: Sequence[Metric]) -> dict[str, list[tuple]]:
        """Each page entity's zero-filled points, ``(ts, each metric's value...)`` in the
        order of ``metrics``. When every metric is a count or an integral sum, the database
        sends the points as they are sent on (``entity_series_sql``'s narrow tuples: a
        30-day hourly page is thousands of points); otherwise the finalizers read parts."""
        parts = _parts(metrics)
        names = [m.name for m in parts]
        series: dict[str, list[tuple]] = {}
        by_bucket = Grouping(by_bucket=True, dimension=request.dimension, entity_ids=ids)
        if all(integral_in_sql(domain, m) for m in parts):
            asked: list[Coroutine[Any, Any, Any]] = [self._fetch(org_id, entity_series_sql(
                domain, request, org_id, ids, self.use_rollups, names, narrow=True))]
            if len(parts) < len(metrics):  # sketched metrics: from a query of their own
                asked.append(self._percentiles(org_id, domain, request, metrics, by_bucket))
            try:
                rows, *sketch_values = await self._gather(asked)
            except NumericValueOutOfRange:  # a sum past bigint: read the parts below
                pass
            else:
                return _narrow_points(domain, rows, metrics, parts,
                                      sketch_values[0] if sketch_values else {}, ids,
                                      bucket_keys(request.plan))
        rows, sketch_values = await self._gather([
            self._fetch(org_id, entity_series_sql(domain, request, org_id, ids,
                                                  self.use_rollups, names)),
            self._percentiles(org_id, domain, request, metrics, by_bucket)])
        finalizers = _finalizers(domain, metrics)
        stamps: dict[datetime, int] = {}  # a page's entities share their buckets
        for row in rows:
            bucket, entity = row[BUCKET], row[ENTITY]
            ts = stamps.get(bucket)
            if ts is None:
                ts = stamps[bucket] = _ts(bucket)
            values = _values(finalizers, row, sketch_values.get((bucket, entity)))
            series.setdefault(entity, []).append((ts, *values.values()))
        return series

    async def breakdown_values(self, org_id: str, domain: Domain, request: BreakdownRequest,
                               restriction: Restriction = UNRESTRICTED,
                               ) -> tuple[list[EntityValues], int]:
        """One page of entities and the number of entities in all."""
        request = restriction.apply(await self.with_horizon(org_id, domain, request))
        dim = request.dimension
        metrics = [domain.metric(name) for name in request.metrics]
        by_estimate = estimate_ranking_segments(domain, request, self.use_rollups)
        in_sql = breakdown_sql_metrics(domain, request, by_estimate is not None)
        # ranked by an estimate: the ranking rows hold it, so it is not asked again
        ranked = {request.sort} if by_estimate is not None else set()
        on_the_side = [m for m in metrics if m.name not in in_sql and m.name not in ranked]
        ranking = ranking_metrics(domain, request, in_sql)
        totals_after = ranking is not None or by_estimate is not None

        def page_sql(page: BreakdownRequest) -> Callable[[bool], Sql]:
            """The statement that finds the page: ranked by an estimate, by the ranking
            metrics alone, or with every metric at once."""
            if by_estimate is not None:
                return lambda narrow: estimate_ranking_sql(domain, page, org_id, by_estimate)
            return lambda narrow: breakdown_sql(domain, page, org_id, self.use_rollups,
                                                ranking or in_sql, narrow,
                                                attributes=not ranking)

        finalizers = _finalizers(domain, metrics)
        if _sketches_beside_ranking(domain, request, by_estimate is not None, on_the_side):
            rows, early = await self._gather([
                self._fetch_narrow(org_id, page_sql(request)),
                self._percentiles(org_id, domain, request, on_the_side, Grouping(dimension=dim))])
            ids = self._page_ids(rows)
            asked: list[Coroutine[Any, Any, Any]] = [_ready(early)]
        else:
            rows = await self._fetch_narrow(org_id, page_sql(request))
            ids = self._page_ids(rows)
            # the page's other totals, sketched metrics and series: at once where the pool
            # has room
            asked = [self._percentiles(org_id, domain, request, on_the_side if ids else [],
                                       Grouping(dimension=dim, entity_ids=ids))]
        if totals_after and ids:
            asked.append(self._page_totals(org_id, domain, request, in_sql, rows, ids))
        if request.include_series and ids:
            asked.append(self._page_series(org_id, domain, request, ids, metrics))
        found, *more = await self._gather(asked)
        if totals_after and ids:
            rows = more.pop(0)
        series: dict[str, list[tuple]] = more.pop(0) if more else {}
        share = request.dimension.share_of and domain.metric(request.dimension.share_of)
        entities = []
        for row in rows:
            totals = _values(finalizers, row, found.get((row[ENTITY],)))
            pct = None
            if share:
                whole = row["share_total"]
                pct = float(totals[share.name] or 0) * 100 / float(whole) if whole else 0.0
            entities.append(EntityValues(
                entity_id=row[ENTITY], name=row["entity_name"],
                attributes={a.name: row[f"attr__{a.name}"] for a in request.dimension.attributes},
                totals=totals, share_pct=pct,
                series=series.get(row[ENTITY], []) if request.include_series else None))
        if rows:
            total = rows[0]["total_entities"]
        elif request.offset:  # a page past the end: count on the first page
            first = await self._fetch_narrow(org_id,
                                             page_sql(replace(request, offset=0, limit=1)))
            total = first[0]["total_entities"] if first else 0
        else:
            total = 0
        return entities, total

    async def _page_totals(self, org_id: str, domain: Domain, request: BreakdownRequest,
                           in_sql: Sequence[str], page: Sequence[Mapping],
                           ids: Sequence[str]) -> list[dict]:
        """The page found by its ranking metrics alone (``ranking_metrics``), with every
        metric of ``in_sql``, its attributes and names: computed for the page's entities
        only (the entity indexes of their cube), in the page's order; its count of entities
        and share as the page query found them. An entity gone meanwhile (erased) keeps
        only its ranking metrics."""
        only_page = only_entities(request, ids)
        found = await self._fetch_narrow(org_id, lambda narrow: breakdown_sql(
            domain, only_page, org_id, self.use_rollups, in_sql, narrow))
        by_id = {row[ENTITY]: row for row in found}
        return [{**row, **{k: v for k, v in by_id.get(row[ENTITY], {}).items()
                           if k not in _PAGE_OWN}} for row in page]

    # --- the unified /v2 envelopes ----------------------------------------------------

    async def series(self, org_id: str, domain_name: str, view_path: str,
                     params: Mapping[str, Sequence[str]], now: datetime | None = None,
                     restriction: Restriction = UNRESTRICTED):
        """The series envelope for raw query parameters (parsed here)."""
        domain = self.domain(domain_name)
        view = domain.series_view(view_path)
        if view is None:
            raise not_found("endpoint")
        request = parse_series(domain, view, params, now or datetime.now(UTC))
        return await self.answer_series(org_id, domain, request, restriction)

    async def answer_series(self, org_id: str, domain: Domain, request: SeriesRequest,
                            restriction: Restriction = UNRESTRICTED):
        """The series envelope for an already parsed request (the HTTP layer parses once,
        to price the request, and hands the result here)."""
        scope_id = await self.check_scope(org_id, request, restriction)
        request = await self.with_horizon(org_id, domain, request)
        types = series_types(domain, request.view.path)  # looked up once per request
        earlier = request.previous() if request.compare else None
        asked = [self._series_body(org_id, domain, request, restriction, types.point)]
        if earlier is not None:
            asked.append(self._series_body(org_id, domain, earlier, restriction, types.point))
        (points, summary), *before = await self._gather(asked)
        previous = UNSET
        if earlier is not None:
            previous = types.previous(start=_ts(earlier.plan.start), end=_ts(earlier.plan.end),
                                      summary=before[0][1], series=before[0][0])
        meta = SeriesMeta(**_meta_fields(request, scope_id), metric=request.metric)
        return types.response(success=True, meta=meta, summary=summary, series=points,
                              previous=previous)

    async def _series_body(self, org_id: str, domain: Domain, request: SeriesRequest,
                           restriction: Restriction, point: type) -> tuple[list, Summary]:
        """A series' points (``point``: positional, ``(ts, *view.metrics)``) and summary."""
        view = request.view
        metrics = [domain.metric(name) for name in view.metrics]
        rows = await self._bucket_rows(org_id, domain, restriction.apply(request), metrics)
        points = [point(*row) for row in rows]
        summary_metric = domain.metric(request.metric)
        at = 1 + view.metrics.index(request.metric)
        bucket_values = [row[at] for row in rows]
        if summary_metric.agg.additive:
            total = additive_total(bucket_values)
        else:
            total = (await self.total_values(org_id, domain, request, [summary_metric],
                                             restriction))[summary_metric.name]
        return points, summarize(bucket_values, total)

    async def breakdown(self, org_id: str, domain_name: str, by: str,
                        params: Mapping[str, Sequence[str]], now: datetime | None = None,
                        restriction: Restriction = UNRESTRICTED):
        domain = self.domain(domain_name)
        dimension = domain.dimension(by)
        if dimension is None:
            raise ApiError(404, "not_found", f"unknown breakdown {by!r} for {domain.name}; "
                           f"available: {', '.join(d.by for d in domain.dimensions)}")
        request = parse_breakdown(domain, dimension, params, now or datetime.now(UTC))
        return await self.answer_breakdown(org_id, domain, request, restriction)

    async def answer_breakdown(self, org_id: str, domain: Domain, request: BreakdownRequest,
                               restriction: Restriction = UNRESTRICTED):
        """The breakdown envelope for an already parsed request (see ``answer_series``)."""
        dimension = request.dimension
        by = dimension.by
        scope_id = await self.check_scope(org_id, request, restriction)
        request = await self.with_horizon(org_id, domain, request)
        entities, total = await self.breakdown_values(org_id, domain, request, restriction)
        if dimension.name_column and entities:
            entities = await self._newest_names(org_id, domain, request, entities, restriction)
        types = breakdown_types(domain, by)
        before: dict[str, dict] = {}
        previous: PreviousRange | UnsetType = UNSET
        if request.compare:
            earlier = request.previous()
            before = await self.previous_totals(org_id, domain, earlier,
                                                [e.entity_id for e in entities], restriction)
            previous = PreviousRange(start=_ts(earlier.plan.start), end=_ts(earlier.plan.end))
        shaped = [
            types.entity(
                entityId=e.entity_id, entityName=e.name, **e.attributes,
                **({"pct": e.share_pct} if dimension.share_of else {}),
                totals=types.totals(**e.totals),
                series=None if e.series is None else
                [types.point(*point) for point in e.series],
                previousTotals=types.totals(**before[e.entity_id]) if before else UNSET)
            for e in entities]
        meta = BreakdownMeta(
            **_meta_fields(request, scope_id), breakdown_by=by,
            includes_series=request.include_series, limit=request.limit,
            offset=request.offset, total_entities=total, sort=request.sort,
            order="desc" if request.descending else "asc")
        rest = {}
        if request.include_other:
            other, unattributed = await self.rest_values(
                org_id, domain, request, [e.entity_id for e in entities], restriction)
            rest = {"other": types.rest(entities=total - len(entities),
                                        totals=types.totals(**other)),
                    "unattributed": types.rest(entities=0,
                                               totals=types.totals(**unattributed))}
        return types.response(success=True, meta=meta, summary=BreakdownSummary(total=total),
                              entities=shaped, previous=previous, **rest)

    async def _newest_names(self, org_id: str, domain: Domain, request: BreakdownRequest,
                            entities: list[EntityValues], restriction: Restriction,
                            ) -> list[EntityValues]:
        """The page's entities named by the newest name each was ever sent with (in any
        range, scope or filter the key may see), as the catalogue names every other
        dimension's entities: a name read from an event column (``name_column``) would
        otherwise be the newest *in the range*, and null where no event in range had one.
        The seed endpoints keep their own rule (the range's newest)."""
        dim = request.dimension
        ids = [e.entity_id for e in entities]
        ever = replace(request, scope=Scope("org", None), window=None, compare=None,
                       plan=replace(request.plan, start=EARLIEST, end=LATEST),
                       filters=(Filter(dim.by, dim.columns, ids, "any"),), offset=0,
                       limit=len(ids), include_series=False, include_other=False)
        found, _ = await self.breakdown_values(org_id, domain, ever, restriction)
        names = {e.entity_id: e.name for e in found}
        return [replace(e, name=names.get(e.entity_id, e.name)) for e in entities]

    async def query(self, org_id: str, domain_name: str, body: QueryBody, offset: int = 0,
                    now: datetime | None = None, restriction: Restriction = UNRESTRICTED,
                    ) -> tuple[QueryResponse, int | None]:
        """``POST /v2/query/<domain>`` (``core/query.py``): one page of rows from
        ``offset``, and the offset of the next page (None: this is the last)."""
        domain = self.domain(domain_name)
        request = parse_query(domain, body, now or datetime.now(UTC))
        scope_id = await self.check_scope(org_id, request, restriction)
        request = await self.with_horizon(org_id, domain, request)
        limited = restriction.apply(request)
        metrics = list(request.metrics)
        grouping = Grouping(by_bucket=request.by_bucket, group_by=request.group_by)
        parts = _parts(metrics)

        def page_sql(limit: int, at: int) -> Callable[[bool], Sql]:
            return lambda narrow: query_sql(domain, limited, parts, grouping, request.order,
                                            org_id, limit, at, self.use_rollups, narrow)

        rows, sketched_values = await self._gather(
            [self._fetch_narrow(org_id, page_sql(request.limit, offset)),
             self._percentiles(org_id, domain, limited, metrics, grouping)])
        if rows:
            total = rows[0][QUERY_TOTAL]
        elif offset:  # past the end: count on the first page
            first = await self._fetch_narrow(org_id, page_sql(1, 0))
            total = first[0][QUERY_TOTAL] if first else 0
        else:
            total = 0
        names = grouping.key_names
        finalizers = _finalizers(domain, metrics)
        page = []
        for row in rows:
            item: dict[str, object] = {}
            if request.by_bucket:
                item[TIME] = _ts(row[BUCKET])
            for i, dim in enumerate(request.group_by):
                item[dim.by] = row[group_key(i)]
            key = tuple(row[name] for name in names)
            item.update(_values(finalizers, row, sketched_values.get(key)))
            page.append(item)
        following = offset + len(rows) if offset + len(rows) < total else None
        meta = QueryMeta(
            domain=domain.name, start=_ts(request.plan.start), end=_ts(request.plan.end),
            scope=request.scope.kind, scope_id=scope_id, window=request.window,
            time_bucket_size=request.plan.size.name if request.by_bucket else None,
            timezone=request.plan.timezone, group_by=[d.by for d in request.group_by],
            metrics=[m.name for m in metrics],
            resource_filters=[_filter_meta(f) for f in request.filters],
            order_by=[QueryOrderMeta(by=by, direction="desc" if desc else "asc")
                      for by, desc in request.order],
            limit=request.limit, total_rows=total,
            warnings=request_warnings(request) or UNSET)
        return QueryResponse(success=True, meta=meta, rows=page, next_cursor=None), following

    async def previous_totals(self, org_id: str, domain: Domain, earlier: BreakdownRequest,
                              ids: Sequence[str], restriction: Restriction = UNRESTRICTED,
                              ) -> dict[str, dict]:
        """Per entity of ``ids``: its totals over ``earlier`` (the request's
        ``previous()``, for ``compare=previous``), the empty totals (zeros, nulls) where it
        had no events then."""
        earlier = only_entities(earlier, ids)
        found, _ = await self.breakdown_values(org_id, domain, earlier, restriction)
        by_id = {e.entity_id: e.totals for e in found}
        metrics = [domain.metric(name) for name in earlier.metrics]
        empty = _values(_finalizers(domain, metrics), {}, None)
        return {entity_id: by_id.get(entity_id, empty) for entity_id in ids}

    async def rest_values(self, org_id: str, domain: Domain, request: BreakdownRequest,
                          page_ids: Sequence[str], restriction: Restriction = UNRESTRICTED,
                          ) -> tuple[dict, dict]:
        """The totals a page leaves out: ``other``, the events of every entity not on the
        page (before it or after it), and ``unattributed``, the events without the
        dimension. With the page they add up to the whole range's totals, each metric
        computed over its own events (so means and distinct counts too are exact for
        their part, not differences)."""
        dim = request.dimension
        metrics = [domain.metric(name) for name in request.metrics]
        other = replace(request, filters=(*request.filters,
                                          Filter(dim.by, dim.columns, False, "is_null"),
                                          Filter(dim.by, dim.columns, list(page_ids), "none")))
        unattributed = replace(request, filters=(*request.filters,
                                                 Filter(dim.by, dim.columns, True, "is_null")))
        return tuple(await self._gather([
            self.total_values(org_id, domain, other, metrics, restriction),
            self.total_values(org_id, domain, unattributed, metrics, restriction)]))


class _RecordingEngine(StatsEngine):
    """An engine whose data door records each statement and finds no rows: ``explain``.
    Scope checks still run (``check_scope`` is not a data query)."""

    def __init__(self, engine: StatsEngine):
        super().__init__(engine.db, list(engine.domains.values()),
                         use_rollups=engine.use_rollups)
        self.recorded: list[tuple[Sql, str]] = []

    async def _gather(self, awaitables: Sequence[Coroutine[Any, Any, Any]]) -> list:
        return await gather_all(awaitables, at_once=False)  # in order: a stable listing

    async def _fetch(self, org_id: str, sql: Sql) -> list[Any]:
        self.recorded.append((sql, self._events_table(sql)))
        return []

    def _events_table(self, sql: Sql) -> str:
        """The events table a raw segment reads: the domain whose table the text names."""
        for domain in self.domains.values():
            if f'"{domain.table}"' in sql.text:
                return domain.table
        return "events"

    def _page_ids(self, rows: Sequence[Mapping]) -> list[str]:
        return [PAGE_IDS]
