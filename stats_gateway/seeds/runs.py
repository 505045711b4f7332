"""Runflow's ``GET /v1/runs-stats``, byte-compatible, served from the ``runs`` domain.

``GET /v1/runs-stats?start=<date-time>&end=<date-time>`` with ``Authorization: Bearer <key>``
(the key needs ``read``) answers ``{timeline, by_flow, by_source}`` for the key's org, in
the seed's snake_case shape. Choices where the Runflow seed is silent:

* **Range.** ``start`` and ``end`` are both required and both inclusive. They are ISO-8601
  date-times (``2026-01-31T00:00:00``, an optional fraction of any length (RFC 3339;
  digits past microseconds are cut, not rounded), ``Z`` or an offset such as ``+02:00``); a
  value without an offset is UTC. A bare date is refused (it would be
  ambiguous as an inclusive ``end``). ``end`` must not be before ``start`` (equal is one
  instant). Both must lie in 2000-01-01 .. 2099-12-31 UTC and the range may span at most
  10,000 UTC days. Other query parameters are ignored, as Runflow's server does.
* **Errors** use the seed's ``{code, message, errors}`` envelope (``errors`` is null unless
  fields are at fault), checked in this order: 401 ``UNAUTHORIZED`` (missing, unknown or
  revoked key), 403 ``PERMISSION_DENIED`` (key without ``read``), 403
  ``ORGANIZATION_MEMBERSHIP_REQUIRED`` (an ``X-Organization-Id`` that is not the key's org;
  foreign and nonexistent ids answer alike; the same UUID in another spelling matches),
  422 ``VALIDATION_ERROR`` with ``errors: [{field, message}]`` naming every bad parameter.
  A database outage or a query past the statement timeout is 503 ``SERVICE_UNAVAILABLE``
  (with ``Retry-After``), another method than GET or HEAD 405 ``METHOD_NOT_ALLOWED`` (with
  ``Allow``), and anything unexpected 500 ``INTERNAL_ERROR`` whose message carries the
  request id; the traceback stays in the log.
* **timeline**: one point per UTC day from the day of ``start`` to the day of ``end``,
  zero-filled, in order.
* **spend** (timeline and by_flow) is an exact decimal string in plain notation: no
  exponent, no trailing zeros, ``"0"`` when nothing was spent (``"12.5"``, ``"0.000001"``).
* **by_flow**: the top 10 targets by runs (ties: spend, higher first, then the
  ``target_type:flow_slug`` key in code-point order). Targets whose type the key may not
  read (``flows:read`` / ``models:read`` / ``comfyui-workflows:read``) are dropped in the
  query itself, so a restricted key still gets up to 10 readable rows. ``flow_name`` is the
  newest ``targetName`` sent with the target's runs in range, else the slug.
  ``avg_duration_ms`` is the mean over runs that reported a duration, rounded to 2 decimals,
  and ``0`` when none did (the seed requires a number).
* **by_source**: always the three sources in the seed's order ``api``, ``playground``,
  ``other``, including those without runs. ``pct`` is the share of all runs in range
  (whatever the key's resource scopes), rounded half-up to 2 decimals, so the three may
  add up to 100 ± 0.01; every ``pct`` is 0 when there are no runs.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from collections.abc import Sequence
from typing import Annotated, Literal, cast, get_args

import msgspec
import psycopg
from litestar import Request, Response, get
from litestar.exceptions import HTTPException
from litestar.types import ExceptionHandlersMap
from litestar.openapi.spec.enums import OpenAPIFormat
from litestar.params import KwargDefinition
from psycopg_pool import PoolTimeout

from domains.runs import DOMAIN as RUNS, SOURCES
from stats_gateway.auth import Caller
from stats_gateway.core.domain import Domain
from stats_gateway.core.engine import StatsEngine, gather_all
from stats_gateway.core.errors import ApiError, Problem
from stats_gateway.core.restriction import UNRESTRICTED, Restriction
from stats_gateway.core.request import BreakdownRequest, Filter, Scope, StatsRequest
from stats_gateway.core.timebuckets import BUCKET_SIZES, MAX_BUCKETS, BucketPlan, make_plan
from stats_gateway.http.common import JSON, authorized, engine_of, query_params
from stats_gateway.seeds.fields import field_filter
from stats_gateway.http.errors import EXCEPTION_HANDLERS, answer_errors_in_shape, log, request_id
from stats_gateway.http.openapi import (
    error_responses, header_parameter, operation_class, query_parameter,
)

TOP_TARGETS = 10
READ_SCOPE = {"flow": "flows:read", "model": "models:read", "comfyui": "comfyui-workflows:read"}
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)  # exclusive
_DATE_TIME = re.compile(
    r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d(:\d\d(\.\d+)?)?([Zz]|[+-]\d\d(:?\d\d)?)?")
_FRACTION = re.compile(r"(\.\d{6})\d+")  # RFC 3339 allows any length; Python reads 6
_CENT = Decimal("0.01")


# --- the seed's wire shapes (field names exactly as in its OpenAPI) --------------------

# the seed's own constraints, so the OpenAPI document carries them (issue 12)
Spend = Annotated[str, msgspec.Meta(pattern=r"^(?!^[-+.]*$)[+-]?0*\d*\.?\d*$")]
Day = Annotated[str, KwargDefinition(format=OpenAPIFormat.DATE)]  # Litestar reads this one
RunTargetTypeCodeLiteral = Literal["model", "flow", "comfyui"]
Source = Literal["api", "playground", "other"]
assert set(get_args(Source)) == set(SOURCES), "the seed's sources are the domain's"


class UsageDataPoint(msgspec.Struct, frozen=True, kw_only=True):
    """One UTC day in the timeline."""

    date: Day
    runs: int
    spend: Spend


class UsageByFlow(msgspec.Struct, frozen=True, kw_only=True):
    """Aggregate for one target (flow, model, or comfyui workflow)."""

    flow_slug: str
    flow_name: str
    runs: int
    spend: Spend
    avg_duration_ms: float
    target_type: RunTargetTypeCodeLiteral


class UsageBySource(msgspec.Struct, frozen=True, kw_only=True):
    source: Source
    runs: int
    pct: float


class RunStatsResponse(msgspec.Struct, frozen=True, kw_only=True):
    timeline: list[UsageDataPoint]
    by_flow: list[UsageByFlow]
    by_source: list[UsageBySource]


class RunflowErrorResponse(msgspec.Struct, frozen=True, kw_only=True):
    """The seed's ``ErrorResponse``."""

    code: str
    message: str
    errors: list[dict] | None


_encoder = msgspec.json.Encoder()


def _json(body: msgspec.Struct, status: int = 200, headers: dict | None = None) -> Response:
    return Response(content=_encoder.encode(body), status_code=status, media_type=JSON,
                    headers=headers)


# --- errors in the seed's envelope -----------------------------------------------------

_SEED_CODES = {"unauthorized": "UNAUTHORIZED", "forbidden": "PERMISSION_DENIED"}
_STATUS_CODES = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "PERMISSION_DENIED",
                 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "PAYLOAD_TOO_LARGE",
                 429: "RATE_LIMITED"}


def _error(status: int, code: str, message: str, problems: Sequence[Problem] = (),
           headers: dict | None = None) -> Response:
    errors = [{"field": p.field, "message": p.message} for p in problems] or None
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else headers
    return _json(RunflowErrorResponse(code=code, message=message, errors=errors), status, headers)


def seed_error(request: Request, exc: Exception) -> Response:
    """Every failure inside this endpoint, in the seed's envelope (never problem+json)."""
    if isinstance(exc, ApiError):
        code = _SEED_CODES.get(exc.error_code, exc.error_code.upper())
        return _error(exc.status, code, exc.message, exc.problems)
    if isinstance(exc, HTTPException) and exc.status_code < 500:
        detail = exc.detail if isinstance(exc.detail, str) else "request refused"
        return _error(exc.status_code, _STATUS_CODES.get(exc.status_code, "BAD_REQUEST"), detail)
    rid = request_id(request)
    if isinstance(exc, psycopg.errors.QueryCanceled):
        log.warning("query_timeout", error=str(exc).strip(), request_id=rid)
        return _error(503, "SERVICE_UNAVAILABLE", "the query took longer than the gateway "
                      "allows; retry later or ask for a shorter range", headers={"Retry-After": "5"})
    if isinstance(exc, (PoolTimeout, psycopg.OperationalError)):
        log.warning("database_unavailable", error=type(exc).__name__, request_id=rid)
        return _error(503, "SERVICE_UNAVAILABLE", "the database is unavailable; retry shortly",
                      headers={"Retry-After": "2"})
    log.exception("unhandled_error", request_id=rid, exc_info=exc)
    return _error(500, "INTERNAL_ERROR",
                  f"internal error; quote request id {rid} when reporting it")


# every class the app maps (its handlers would win by MRO), and anything else
SEED_EXCEPTION_HANDLERS: ExceptionHandlersMap = {cls: seed_error for cls in (*EXCEPTION_HANDLERS, Exception)}
answer_errors_in_shape("/v1/runs-stats", seed_error)  # the router's 405 (http/errors.py)


# --- request ---------------------------------------------------------------------------

def parse_date_time(value: str) -> datetime | None:
    """An ISO-8601 date-time as UTC (no offset: UTC), or None when it is not one."""
    if len(value) > 100 or not _DATE_TIME.fullmatch(value):
        return None
    try:
        parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", value.upper(), count=1))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00 is before year 1 in UTC: out of range
        return (datetime.min if parsed.year == 1 else datetime.max).replace(tzinfo=UTC)


def read_range(params: dict[str, list[str]]) -> tuple[datetime, datetime]:
    """(start, end), both inclusive, or a 422 naming every bad parameter."""
    problems: list[Problem] = []
    bounds: dict[str, datetime] = {}
    for name in ("start", "end"):
        values = params.get(name) or []
        if not values:
            problems.append(Problem(name, "is required (ISO-8601 date-time)"))
        elif len(values) > 1:
            problems.append(Problem(name, "give this parameter once"))
        elif (instant := parse_date_time(values[0])) is None:
            problems.append(Problem(name, "must be an ISO-8601 date-time, e.g. "
                                    "2026-01-31T00:00:00Z (no offset means UTC; encode '+' "
                                    "in an offset as %2B)"))
        elif not EARLIEST <= instant < LATEST:
            problems.append(Problem(name, "must be from 2000-01-01 to 2099-12-31 (UTC)"))
        else:
            bounds[name] = instant
    start, end = bounds.get("start"), bounds.get("end")
    if start is not None and end is not None:
        if end < start:
            problems.append(Problem("end", "must not be before start"))
        elif (days := (end.date() - start.date()).days + 1) > MAX_BUCKETS:
            problems.append(Problem("end", f"the range spans {days} days; at most {MAX_BUCKETS}"))
    if problems:
        raise ApiError(422, "VALIDATION_ERROR", "invalid query parameters", problems)
    assert start is not None and end is not None  # else a problem was listed
    return start, end


def check_organization(caller: Caller, header: str | None) -> None:
    """An ``X-Organization-Id`` must name the key's own org; any other id gets one answer."""
    if header is None:
        return
    try:
        same = uuid.UUID(header.strip()) == uuid.UUID(caller.org_id)
    except ValueError:
        same = False
    if not same:
        raise ApiError(403, "ORGANIZATION_MEMBERSHIP_REQUIRED",
                       "the API key does not belong to this organization")


# --- response --------------------------------------------------------------------------

def decimal_text(value: Decimal) -> str:
    """Plain notation, no exponent: the engine already dropped trailing zeros."""
    return format(value, "f")


def percent(part: int, whole: int) -> float:
    """``part`` as a percentage of ``whole``, rounded half-up to 2 decimals, exactly."""
    if not whole:
        return 0.0
    return float((Decimal(part * 100) / Decimal(whole)).quantize(_CENT, ROUND_HALF_UP))


async def timeline(engine: StatsEngine, org_id: str, domain: Domain, plan: BucketPlan,
                   restriction: Restriction = UNRESTRICTED):
    request = StatsRequest(scope=Scope("org", None), window=None, plan=plan, filters=())
    metrics = [domain.metric("runs"), domain.metric("spend")]
    values = await engine.series_values(org_id, domain, request, metrics, restriction)
    return [UsageDataPoint(date=day.astimezone(UTC).date().isoformat(), runs=v["runs"],
                           spend=decimal_text(v["spend"])) for day, v in values]


def _breakdown(domain: Domain, by: str, plan: BucketPlan, metrics: tuple[str, ...], limit: int,
               filters: tuple[Filter, ...] = (), then_by: tuple[str, ...] = ()):
    return BreakdownRequest(scope=Scope("org", None), window=None, plan=plan, filters=filters,
                            dimension=domain.declared_dimension(by), metrics=metrics,
                            include_series=False, limit=limit, offset=0, sort="runs",
                            descending=True, then_by=then_by)


async def top_targets(engine: StatsEngine, caller: Caller, domain: Domain, plan: BucketPlan):
    """The top targets among the types the key may read (filtered in SQL, then ranked)."""
    readable = [kind for kind, scope_name in READ_SCOPE.items() if caller.may(scope_name)]
    if not readable:
        return []
    request = _breakdown(domain, "targets", plan, ("runs", "spend", "avgDurationMs"),
                         TOP_TARGETS, (field_filter(domain, "targetType", readable, "any"),),
                         then_by=("spend",))
    entities, _ = await engine.breakdown_values(caller.org_id, domain, request,
                                                caller.restriction)
    rows = []
    for e in entities:
        slug, avg = e.attributes["targetSlug"], e.totals["avgDurationMs"]
        rows.append(UsageByFlow(
            flow_slug=slug, flow_name=e.name or slug, runs=e.totals["runs"],
            spend=decimal_text(e.totals["spend"]),
            avg_duration_ms=0.0 if avg is None else round(avg, 2),
            target_type=e.attributes["targetType"]))
    return rows


async def source_split(engine: StatsEngine, org_id: str, domain: Domain, plan: BucketPlan,
                       restriction: Restriction = UNRESTRICTED):
    request = _breakdown(domain, "sources", plan, ("runs",), len(SOURCES))
    entities, _ = await engine.breakdown_values(org_id, domain, request, restriction)
    runs = {e.entity_id: e.totals["runs"] for e in entities}
    whole = sum(runs.values())
    return [UsageBySource(source=cast(Source, s), runs=runs.get(s, 0), pct=percent(runs.get(s, 0), whole))
            for s in SOURCES]


_RANGE_DOC = (" bound (inclusive): ISO-8601 date-time, no offset means UTC, a fraction of "
              "any length; 2000-01-01 .. 2099-12-31 (UTC), at most 10,000 days apart.")
_BOUNDED_INSTANT = {"type": "string", "format": "date-time",
                    "formatMinimum": "2000-01-01T00:00:00Z",
                    "formatExclusiveMaximum": "2100-01-01T00:00:00Z"}
_PARAMETERS = [  # documented only: read_range reads them raw and reports every problem
    query_parameter("start", _BOUNDED_INSTANT, "Lower" + _RANGE_DOC, required=True),
    query_parameter("end", _BOUNDED_INSTANT, "Upper" + _RANGE_DOC + " Not before `start`.",
                    required=True),
    header_parameter("X-Organization-Id", {"type": "string"},
                     "Optional: must be the key's own org id (403 otherwise)."),
]


@get("/v1/runs-stats", name="runflow-runs-stats", operation_id="listRunsStats",
     tags=["runflow"], summary="Aggregate run usage for the current org over a date range",
     description=__doc__, exception_handlers=SEED_EXCEPTION_HANDLERS,
     operation_class=operation_class(_PARAMETERS),
     responses=error_responses((401, 403, 422, 429, 500, 503), RunflowErrorResponse, JSON, {
         401: "Unauthorized", 403: "Forbidden: inspect `code`", 422: "Validation error",
         500: "Internal error (the message carries the request id)"}))
async def runs_stats(request: Request) -> Response[RunStatsResponse]:
    """Timeline, top targets and source split for the key's org over [start, end]."""
    async with authorized(request, "read") as access:
        caller = access.caller
        check_organization(caller, request.headers.get("x-organization-id"))
        start, end = read_range(query_params(request))
        engine, domain = access.engine(engine_of(request)), RUNS
        # UTC days, with the inclusive end turned into the engine's exclusive one
        plan = make_plan(start, end + timedelta(microseconds=1), BUCKET_SIZES["1d"])
        # three independent queries: at once where the pool has room (as a series'
        # sketches are), one after the other otherwise
        days, flows, sources = await gather_all(
            [timeline(engine, caller.org_id, domain, plan, caller.restriction),
             top_targets(engine, caller, domain, plan),
             source_split(engine, caller.org_id, domain, plan, caller.restriction)],
            at_once=engine.db.can_run_at_once(3))
        body = RunStatsResponse(timeline=days, by_flow=flows, by_source=sources)
    return _json(body)


route_handlers: list = [runs_stats]
