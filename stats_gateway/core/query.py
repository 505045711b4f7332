"""``POST /v2/query/<domain>``: any of a domain's metrics, grouped by any subset of its
dimensions (and by time bucket when ``timeBucketSize`` is given), filtered with the list
operators, ordered, and paged with a cursor. One JSON body instead of query parameters,
like Cube's ``/load`` or Langfuse's metrics API; the answer is the shared envelope style
(``success``, ``meta``, ``rows``, ``nextCursor``).

Rules (written here because the issue leaves them open):

* ``groupBy`` names dimensions as the breakdowns do (``models``, ``users``…). A row's
  value for a dimension is the entity id (``flow:my-slug`` for a composite key), or
  ``null`` for the events that do not carry it: unlike a breakdown, nothing is left out,
  so the rows of any grouping add up to the same totals.
* ``filters``: ``{"field": <a filter parameter>, "op": "eq"|"in"|"nin", "values": [...]}``,
  the operators of ``core/filters.py`` (``nin`` keeps events without the field).
* Rows are ordered by ``orderBy`` (metrics or grouped dimensions, or ``time``), then by
  every grouped dimension and the time, ascending, so the order is total and pages never
  lose or repeat a row. Default: the first metric that can order rows, descending (none:
  the grouped dimensions and the time alone). Absent values sort last. The database sorts
  and pages (``sql.query_sql``); a sketched metric (a percentile, a distinct count) cannot
  order rows.
* Every combination is answered from the rollups when a cube holds every grouped and
  filtered column (the planner picks the smallest, as for breakdowns), else from raw
  events; a query grouping by two high-cardinality dimensions at once reads raw events
  (no cube holds both), at the cost of a scan of the range.
* ``cursor`` is opaque and signed (``http/query.py``): a cursor from another org, another
  key or another query is refused (400).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import msgspec

from stats_gateway.core.domain import Dimension, Domain, Metric, sortable
from stats_gateway.core.envelopes import MetaWarning, ResourceFilterMeta
from stats_gateway.core.errors import Problem, bad_request
from stats_gateway.core.sketches import sketched
from stats_gateway.core.sql import TIME
from stats_gateway.model import Model
from stats_gateway.core.request import (
    COMMON_PARAMS, ParamReader, StatsRequest, _read_common, filter_params,
)

MAX_QUERY_LIMIT = 1_000


class QueryModel(Model, forbid_unknown_fields=True):
    """A query body's parts: a misspelt field is refused, never ignored."""


class QueryFilter(QueryModel):
    field: str
    values: list[str]
    op: Literal["eq", "in", "nin"] = "in"


class QueryOrder(QueryModel):
    by: str
    direction: Literal["asc", "desc"] = "desc"


class QueryBody(QueryModel):
    """What ``POST /v2/query/<domain>`` takes."""

    metrics: list[str]
    group_by: list[str] = msgspec.field(default_factory=list)
    filters: list[QueryFilter] = msgspec.field(default_factory=list)
    scope: str = "org"
    id: str | None = None
    window: str | None = None
    start: str | None = None
    end: str | None = None
    time_bucket_size: str | None = None
    timezone: str | None = None
    order_by: list[QueryOrder] = msgspec.field(default_factory=list)
    limit: int = 100
    cursor: str | None = None


@dataclass(frozen=True)
class QueryRequest(StatsRequest):
    metrics: tuple[Metric, ...]
    group_by: tuple[Dimension, ...]
    by_bucket: bool
    order: tuple[tuple[str, bool], ...]  # (metric, dimension or "time"; descending)
    limit: int


def _as_params(body: QueryBody, domain: Domain, problems: list[Problem],
               ) -> dict[str, list[str]]:
    """The body's range, scope and filters as the query parameters the series take, so
    one reader validates both."""
    params: dict[str, list[str]] = {"scope": [body.scope]}
    for name, value in (("id", body.id), ("window", body.window), ("start", body.start),
                        ("end", body.end), ("timeBucketSize", body.time_bucket_size),
                        ("timezone", body.timezone)):
        if value is not None:
            params[name] = [value]
    known = {f.param for f in domain.filters}
    for i, flt in enumerate(body.filters):
        where = f"filters[{i}]"
        if flt.field not in known:
            problems.append(Problem(f"{where}.field", "unknown filter; available: "
                                    + ", ".join(sorted(known))))
            continue
        if not flt.values:
            problems.append(Problem(f"{where}.values", "give at least one value"))
            continue
        if flt.op == "eq" and len(flt.values) != 1:
            problems.append(Problem(f"{where}.values", "eq takes one value (in: several)"))
            continue
        name = f"{flt.field}!" if flt.op == "nin" else flt.field
        params.setdefault(name, []).extend(flt.values)
    return params


def parse_query(domain: Domain, body: QueryBody, now: datetime) -> QueryRequest:
    """The validated query, every problem reported at once."""
    problems: list[Problem] = []
    params = _as_params(body, domain, problems)
    r = ParamReader(params, COMMON_PARAMS + filter_params(domain))
    scope, window, plan, filters, _ = _read_common(r, domain, now)
    problems += r.problems
    metrics = []
    if not body.metrics:
        problems.append(Problem("metrics", "give at least one metric"))
    names = {m.name for m in domain.metrics}
    for name in dict.fromkeys(body.metrics):
        if name not in names:
            problems.append(Problem("metrics", f"unknown metric {name!r}; available: "
                                    + ", ".join(m.name for m in domain.metrics)))
        else:
            metrics.append(domain.metric(name))
    dims = []
    for name in body.group_by:
        dim = domain.dimension(name)
        if dim is None:
            problems.append(Problem("groupBy", f"unknown dimension {name!r}; available: "
                                    + ", ".join(d.by for d in domain.dimensions)))
        elif dim in dims:
            problems.append(Problem("groupBy", f"{name!r} is given twice"))
        else:
            dims.append(dim)
    by_bucket = body.time_bucket_size is not None
    orderable = {m.name for m in metrics if sortable(m) and not sketched(m)} | {
        d.by for d in dims} | (
        {TIME} if by_bucket else set())
    order = []
    for i, item in enumerate(body.order_by):
        if item.by not in orderable:
            problems.append(Problem(f"orderBy[{i}].by", "must be one of: "
                                    + ", ".join(sorted(orderable))))
        order.append((item.by, item.direction == "desc"))
    first_orderable = next((m.name for m in metrics if m.name in orderable), None)
    if not body.order_by and first_orderable is not None:
        order.append((first_orderable, True))
    if not 1 <= body.limit <= MAX_QUERY_LIMIT:
        problems.append(Problem("limit", f"must be a whole number from 1 to {MAX_QUERY_LIMIT}"))
    if problems:
        raise bad_request(problems)
    return QueryRequest(scope=scope, window=window, plan=plan, filters=filters,
                        metrics=tuple(metrics), group_by=tuple(dims), by_bucket=by_bucket,
                        order=tuple(order), limit=body.limit)


class QueryOrderMeta(Model):
    by: str
    direction: str


class QueryMeta(Model):
    """What the rows answer: the query as understood."""

    domain: str
    start: int
    end: int
    scope: str
    scope_id: str | None
    window: str | None
    time_bucket_size: str | None  # null: one row per group over the whole range
    timezone: str
    group_by: list[str]
    metrics: list[str]
    resource_filters: list[ResourceFilterMeta]
    order_by: list[QueryOrderMeta]
    limit: int
    total_rows: int
    warnings: list[MetaWarning] | msgspec.UnsetType = msgspec.UNSET


class QueryResponse(Model):
    success: bool
    meta: QueryMeta
    rows: list[dict[str, Any]]  # time (if bucketed), each grouped dimension, each metric
    next_cursor: str | None


def fingerprint(domain: Domain, body: QueryBody) -> str:
    """What a cursor is bound to: the query without its cursor and page size."""
    same = msgspec.structs.replace(body, cursor=None, limit=0)
    return domain.name + ":" + msgspec.json.encode(same).decode()
