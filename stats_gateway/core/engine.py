"""The engine: parsed request -> SQL -> envelope. Knows domains and PostgreSQL, not HTTP."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from stats_gateway.core.domain import (
    Count, DistinctCount, Domain, LatestTime, Mean, Metric, Sum,
)
from stats_gateway.core.envelopes import (
    BreakdownMeta, BreakdownSummary, ResourceFilterMeta, SeriesMeta, breakdown_types,
    metric_type, series_types,
)
from stats_gateway.core.errors import ApiError, not_found
from stats_gateway.core.request import (
    BreakdownRequest, SeriesRequest, StatsRequest, parse_breakdown, parse_series,
)
from stats_gateway.core.sql import (
    BUCKET, ENTITY, Sql, breakdown_sql, entity_series_sql, series_sql, totals_sql,
)
from stats_gateway.core.summary import additive_total, summarize


def exact_decimal(value: Decimal) -> Decimal:
    """Drop trailing zeros without switching to exponent notation (12.500000 -> 12.5)."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def finalize(domain: Domain, metric: Metric, row: Mapping[str, object]) -> object:
    """A metric's value from its parts in one aggregated row (NULL parts: empty bucket)."""
    agg = metric.agg
    if isinstance(agg, Mean):
        total, n = row.get(f"{metric.name}__sum"), row.get(f"{metric.name}__n")
        return float(total) / n if n else None
    value = row.get(metric.name)
    if isinstance(agg, LatestTime):
        return int(value.timestamp()) if value is not None else None
    if isinstance(agg, (Count, DistinctCount)):
        return int(value or 0)
    if isinstance(agg, Sum):
        kind = metric_type(domain, metric)
        if kind is Decimal:
            return exact_decimal(Decimal(value or 0))
        return kind(value or 0)
    raise TypeError(agg)


def _meta_fields(request: StatsRequest, scope_id: str) -> dict:
    """The StatsMeta fields shared by both envelopes."""
    filters = [ResourceFilterMeta(type=f.param, id=f.value) for f in request.filters]
    return dict(start=_ts(request.plan.start), end=_ts(request.plan.end),
                scope=request.scope.kind, scope_id=scope_id, window=request.window,
                time_bucket_size=request.plan.size.name, timezone=request.plan.timezone,
                resource_filter=filters[0] if len(filters) == 1 else None,
                resource_filters=filters)


def _ts(value: datetime) -> int:
    return int(value.timestamp())


class StatsEngine:
    def __init__(self, pool: AsyncConnectionPool, domains: Sequence[Domain]):
        self.pool = pool
        self.domains = {d.name: d for d in domains}

    def domain(self, name: str) -> Domain:
        domain = self.domains.get(name)
        if domain is None:
            raise not_found("domain")
        return domain

    async def _fetch(self, sql: Sql) -> list[dict]:
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(sql.text, sql.params)
            return await cur.fetchall()

    async def _check_scope(self, org_id: str, request: StatsRequest) -> str:
        """The scope id to report; 404 (the same for foreign and missing ids) otherwise."""
        scope = request.scope
        if scope.kind == "org":
            if scope.id is not None and scope.id != org_id:
                raise not_found("org")
            return org_id
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT 1 FROM entities WHERE org_id = %(org)s AND kind = %(kind)s "
                "AND id = %(id)s", {"org": org_id, "kind": scope.kind, "id": scope.id})
            if await cur.fetchone() is None:
                raise not_found(scope.kind)
        return scope.id

    async def series(self, org_id: str, domain_name: str, view_path: str,
                     params: Mapping[str, Sequence[str]], now: datetime | None = None):
        domain = self.domain(domain_name)
        view = domain.series_view(view_path)
        if view is None:
            raise not_found("endpoint")
        request = parse_series(domain, view, params, now or datetime.now(UTC))
        scope_id = await self._check_scope(org_id, request)
        rows = await self._fetch(series_sql(domain, request, view.metrics, org_id))
        types = series_types(domain, view.path)
        metrics = [domain.metric(name) for name in view.metrics]
        points = [types.point(ts=_ts(row[BUCKET]),
                              **{m.name: finalize(domain, m, row) for m in metrics})
                  for row in rows]
        summary_metric = domain.metric(request.metric)
        values = [getattr(point, summary_metric.name) for point in points]
        if summary_metric.agg.additive:
            total = additive_total(values)
        else:
            (row,) = await self._fetch(totals_sql(domain, request, [request.metric], org_id))
            total = finalize(domain, summary_metric, row)
        meta = SeriesMeta(**_meta_fields(request, scope_id), metric=request.metric)
        return types.response(success=True, meta=meta, summary=summarize(values, total),
                              series=points)

    async def breakdown(self, org_id: str, domain_name: str, by: str,
                        params: Mapping[str, Sequence[str]], now: datetime | None = None):
        domain = self.domain(domain_name)
        dimension = domain.dimension(by)
        if dimension is None:
            raise ApiError(404, "not_found", f"unknown breakdown {by!r} for {domain.name}; "
                           f"available: {', '.join(d.by for d in domain.dimensions)}")
        request = parse_breakdown(domain, dimension, params, now or datetime.now(UTC))
        scope_id = await self._check_scope(org_id, request)
        rows = await self._fetch(breakdown_sql(domain, request, org_id))
        types = breakdown_types(domain, by)
        metrics = [domain.metric(name) for name in request.metrics]
        series_by_entity = {}
        if request.include_series and rows:
            ids = [row[ENTITY] for row in rows]
            for row in await self._fetch(entity_series_sql(domain, request, org_id, ids)):
                point = types.point(ts=_ts(row[BUCKET]),
                                    **{m.name: finalize(domain, m, row) for m in metrics})
                series_by_entity.setdefault(row[ENTITY], []).append(point)
        entities = [
            types.entity(
                entityId=row[ENTITY], entityName=row["entity_name"],
                **{out: row[f"attr__{out}"] for out, _ in dimension.attributes},
                totals=types.totals(**{m.name: finalize(domain, m, row) for m in metrics}),
                series=series_by_entity.get(row[ENTITY], []) if request.include_series else None)
            for row in rows]
        total_entities = rows[0]["total_entities"] if rows else await self._count_entities(
            domain, request, org_id)
        meta = BreakdownMeta(
            **_meta_fields(request, scope_id), breakdown_by=by,
            includes_series=request.include_series, limit=request.limit,
            offset=request.offset, total_entities=total_entities, sort=request.sort,
            order="desc" if request.descending else "asc")
        return types.response(success=True, meta=meta,
                              summary=BreakdownSummary(total=total_entities), entities=entities)

    async def _count_entities(self, domain: Domain, request: BreakdownRequest,
                              org_id: str) -> int:
        """Entity count when the page is empty (an offset past the end)."""
        if request.offset == 0:
            return 0
        first_page = BreakdownRequest(**{**request.__dict__, "offset": 0, "limit": 1})
        rows = await self._fetch(breakdown_sql(domain, first_page, org_id))
        return rows[0]["total_entities"] if rows else 0
