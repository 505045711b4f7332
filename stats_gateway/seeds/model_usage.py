"""Runtype's ``GET /v1/model-usage``: requests, tokens and cost per model, in Runtype's shape.

Served from the ``model-usage`` domain (``POST /v2/ingest/model-usage``); the response is
exactly the seed's ``{meta, summary, usageByModel, timeSeries}``.

Authentication. ``Authorization: <apiKey>`` as in Runtype's example, or
``Authorization: Bearer <apiKey>``; the key needs the ``read`` permission. Every query is
confined to the key's org.

Parameters (all optional; unknown or repeated parameters are refused):

* ``period``: ``today``, ``yesterday``, ``last_7_days``, ``last_30_days``,
  ``current_month``, ``last_month``, ``current_year``. Every preset ends today, except
  ``yesterday`` and ``last_month``: ``last_7_days`` is the 7 days ending today, today
  included (on 2024-05-07: 2024-05-01..2024-05-07); ``last_30_days`` likewise 30 days;
  ``current_month`` and ``current_year`` run from the 1st of the month / 1 January to
  today (to date, no future days); ``last_month`` is the whole previous calendar month.
* ``startDate``, ``endDate``: ``YYYY-MM-DD``, both days inclusive, between 2000-01-01
  and 2099-12-31. ``startDate`` alone runs to today; ``endDate`` alone is refused.
  Giving ``period`` together with either date is refused (400), never silently resolved.
* Nothing given: ``last_7_days`` (``meta.period`` says so). With explicit dates
  ``meta.period`` is ``null``.
* ``granularity``: ``hour``, ``day`` (default), ``week``, ``month``.
* ``modelConfigId``: only requests made under that model configuration. An id that is
  unknown, or only known to another org, simply matches nothing.
* ``timezone`` (our addition): an IANA name, default ``UTC``. Days, "today" and the
  presets are counted in that zone; a day runs from local midnight to local midnight.

Series. ``timeSeries`` lists every bucket that intersects the date range, zero-filled, in
order; only events inside the range count, so the buckets add up to ``summary``.
``date`` is ``YYYY-MM-DD`` for ``day``; for ``week`` the Monday starting the ISO week;
for ``month`` the 1st of the month (the first week or month may start before
``startDate``). For ``hour`` it is the hour's start as a UTC timestamp
(``2024-05-01T13:00:00Z``); hours are counted from local midnight, so in a zone such as
Asia/Kolkata they read ``…T18:30:00Z``, and a day with a DST change has 23 or 25 of them.
A series may have at most 10,000 buckets (e.g. ``hour`` over more than ~416 days, or
``day`` over more than ~27 years): such a request gets 400 naming the granularities that
fit.

Values. Money (``totalCost``, ``platformCost``, ``userCost``, ``cost``) is the exact
decimal sum of the events' costs, written as a JSON number without trailing zeros.
``platform*`` and ``user*`` split cost and tokens by the events' ``billing``.
``usageByModel`` holds every model with at least one request in range (no top-N), keyed
by ``modelId`` and ordered by ``requestCount`` descending, then ``modelId``.
``avgCostPerRequest`` is ``totalCost / requestCount`` rounded half-up to 6 decimal places
(the precision costs are stored with; Runtype's example shows 4, which would turn the
per-request cost of cheap models into 0). ``modelName`` is the newest name sent for the
model in range, else the ``modelId``; ``provider`` is the newest event's provider, or
``null``. ``meta.dataSource`` is always ``"stats-gateway-postgres"``.

Errors. Every error of this endpoint, 400 included, is ``application/json``::

    {"error": {"code": "invalid_parameters", "message": "invalid query parameters",
               "details": [{"field": "period", "message": "must be one of: today, …"}]}}

``code`` is ``invalid_parameters`` (400; ``details`` lists every problem at once),
``unauthorized`` (401; the same body for a missing, malformed, unknown, revoked or
expired key), ``forbidden`` (403: the key lacks ``read``), ``service_unavailable`` (503:
the database is unreachable, or a query ran past the statement timeout; with
``Retry-After``) or ``internal_error`` (500: no traceback; quote the ``X-Request-Id``
response header); ``method_not_allowed`` (405, with ``Allow: GET, HEAD, OPTIONS``) for
any other method. ``details`` is empty except for 400. The body carries no request id,
so equal errors have equal bodies; the id is in ``X-Request-Id``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import psycopg
from litestar import Request, Response, get
from litestar.exceptions import HTTPException
from litestar.types import ExceptionHandlersMap
from psycopg_pool import PoolTimeout

from domains.model_usage import DOMAIN
from stats_gateway.core.aggregations import exact_decimal
from stats_gateway.core.engine import EntityValues, StatsEngine
from stats_gateway.core.errors import ApiError, Problem, bad_request
from stats_gateway.core.request import (
    BreakdownRequest, Filter, ParamReader, Scope, StatsRequest, parse_timezone, storable_text,
)
from stats_gateway.core.timebuckets import (
    BUCKET_SIZES, MAX_BUCKETS, BucketPlan, count_buckets, make_plan,
)
from stats_gateway.http.common import JSON, authorized, engine_of, json_response, query_params
from stats_gateway.seeds.fields import field_filter
from stats_gateway.http.errors import (
    EXCEPTION_HANDLERS as APP_HANDLERS, answer_errors_in_shape, log, request_id,
)
from stats_gateway.http.openapi import (
    BARE_KEY, BEARER, error_responses, operation_class, query_parameter,
)
from stats_gateway.model import Model

PATH = "/v1/model-usage"
DATA_SOURCE = "stats-gateway-postgres"
PERIODS = ("today", "yesterday", "last_7_days", "last_30_days", "current_month",
           "last_month", "current_year")
DEFAULT_PERIOD = "last_7_days"
GRANULARITIES = {"hour": "1h", "day": "1d", "week": "1w", "month": "1mo"}
DEFAULT_GRANULARITY = "day"
PARAMS = ("period", "startDate", "endDate", "granularity", "modelConfigId", "timezone")
EARLIEST, LATEST = date(2000, 1, 1), date(2099, 12, 31)
AVG_PLACES = Decimal("0.000001")
MODELS_PAGE = 1000
SUMMARY_METRICS = ("requests", "tokens", "cost", "platformCost", "platformTokens",
                   "userCost", "userTokens")
_DATE = re.compile(r"\d{4}-\d\d-\d\d")


# --- wire shapes (camelCase, in the seed's field order) --------------------------------

class Meta(Model):
    end_date: str
    start_date: str
    data_source: str
    granularity: str
    period: str | None


class Summary(Model):
    total_cost: Decimal
    total_requests: int
    total_tokens: int
    platform_cost: Decimal
    platform_tokens: int
    user_cost: Decimal
    user_tokens: int


class ModelUsage(Model):
    avg_cost_per_request: Decimal
    model_id: str
    provider: str | None
    request_count: int
    total_cost: Decimal
    total_tokens: int
    model_name: str


class Point(Model):
    cost: Decimal
    date: str
    requests: int
    tokens: int


class ModelUsageResponse(Model):
    meta: Meta
    summary: Summary
    usage_by_model: dict[str, ModelUsage]
    time_series: list[Point]


class ErrorDetail(Model):
    field: str
    message: str


class ErrorInfo(Model):
    code: str
    message: str
    details: list[ErrorDetail]


class ErrorBody(Model):
    error: ErrorInfo


# --- parameters -------------------------------------------------------------------------

@dataclass(frozen=True)
class UsageQuery:
    start_date: date
    end_date: date
    period: str | None
    granularity: str
    timezone: str
    plan: BucketPlan
    filters: tuple[Filter, ...]


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The instant (UTC) a local day begins (the earlier one if midnight repeats)."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def period_dates(period: str, today: date) -> tuple[date, date]:
    """First and last day (both inclusive) of a preset, counted from ``today``."""
    month_start = today.replace(day=1)
    if period == "today":
        return today, today
    if period == "yesterday":
        return today - timedelta(days=1), today - timedelta(days=1)
    if period == "last_7_days":
        return today - timedelta(days=6), today
    if period == "last_30_days":
        return today - timedelta(days=29), today
    if period == "current_month":
        return month_start, today
    if period == "last_month":
        last_day = month_start - timedelta(days=1)
        return last_day.replace(day=1), last_day
    if period == "current_year":
        return date(today.year, 1, 1), today
    raise ValueError(period)


class _Problems(ParamReader):
    """The gateway's parameter reader, plus Runtype's ``YYYY-MM-DD`` days."""

    def __init__(self, params: dict[str, list[str]]):
        super().__init__(params, PARAMS)

    def day(self, name: str) -> date | None:
        text = self.get(name)
        if text is None:
            return None
        try:
            value = date.fromisoformat(text) if _DATE.fullmatch(text) else None
        except ValueError:
            value = None
        if value is None:
            self.fail(name, "must be a date YYYY-MM-DD, e.g. 2024-05-01")
        elif not EARLIEST <= value <= LATEST:
            self.fail(name, f"must be between {EARLIEST} and {LATEST}")
            value = None
        return value


def parse_query(params: dict[str, list[str]], now: datetime) -> UsageQuery:
    """The validated query, or 400 listing every problem."""
    r = _Problems(params)
    tz_name, tz_problem = parse_timezone(r.get("timezone"))
    if tz_problem:
        r.fail("timezone", tz_problem)
    granularity = r.get("granularity")
    granularity = DEFAULT_GRANULARITY if granularity is None else granularity
    if granularity not in GRANULARITIES:
        r.fail("granularity", f"must be one of: {', '.join(GRANULARITIES)}")
    period = r.get("period")
    if period is not None and period not in PERIODS:
        r.fail("period", f"must be one of: {', '.join(PERIODS)}")
    given_start, given_end = "startDate" in params, "endDate" in params
    start, end = r.day("startDate"), r.day("endDate")
    today = now.astimezone(ZoneInfo(tz_name)).date()

    if period is not None and (given_start or given_end):
        r.fail("period", "give either period or startDate/endDate, not both")
    elif given_end and not given_start:
        r.fail("startDate", "is required when endDate is given")
    elif not given_start:
        period = period or DEFAULT_PERIOD
        if period in PERIODS:
            start, end = period_dates(period, today)
    elif not given_end and start is not None:
        end = today
        if start > today:
            r.fail("startDate", f"must not be after today ({today}) when endDate is omitted")
    if given_start and given_end and start and end and end < start:
        r.fail("endDate", "must not be before startDate")

    filters = []
    config = r.get("modelConfigId")
    if config is not None:
        if problem := storable_text(config):
            r.fail("modelConfigId", problem)
        filters.append(field_filter(DOMAIN, "modelConfigId", config))

    plan = None
    if start and end and start <= end and not tz_problem and granularity in GRANULARITIES:
        zone = ZoneInfo(tz_name)
        first, after = day_start(start, zone), day_start(end + timedelta(days=1), zone)
        size = BUCKET_SIZES[GRANULARITIES[granularity]]
        buckets = count_buckets(first, after, size, zone)
        if buckets > MAX_BUCKETS:
            fit = [g for g, s in GRANULARITIES.items()
                   if count_buckets(first, after, BUCKET_SIZES[s], zone) <= MAX_BUCKETS]
            r.fail("granularity", f"{granularity} from {start} to {end} gives {buckets:,} "
                   f"buckets, more than {MAX_BUCKETS:,}; granularities that fit: "
                   + (", ".join(fit) if fit else "none (narrow the date range)"))
        plan = make_plan(first, after, size, tz_name)
    if r.problems:
        raise bad_request(r.problems)
    assert start is not None and end is not None and plan is not None  # else a problem
    return UsageQuery(start_date=start, end_date=end, period=period, granularity=granularity,
                      timezone=tz_name, plan=plan, filters=tuple(filters))


# --- engine -----------------------------------------------------------------------------

async def all_models(engine: StatsEngine, org_id: str, request: BreakdownRequest,
                     ) -> list[EntityValues]:
    """Every model in range, page by page (no top-N)."""
    domain = DOMAIN
    models: list[EntityValues] = []
    while True:
        page, total = await engine.breakdown_values(org_id, domain, request)
        models += page
        if len(page) < request.limit or len(models) >= total:
            return models
        request = replace(request, offset=request.offset + request.limit)


async def all_of(*coroutines):
    """Their results, run concurrently; if one fails the others are cancelled, not orphaned."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        return await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()


def avg_cost(cost: Decimal, requests: int) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 60  # never too few digits for numeric(20,6) sums
        return exact_decimal((cost / requests).quantize(AVG_PLACES, rounding=ROUND_HALF_UP))


def bucket_label(bucket: datetime, query: UsageQuery) -> str:
    if query.granularity == "hour":
        return bucket.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return bucket.astimezone(ZoneInfo(query.timezone)).date().isoformat()


async def model_usage_response(engine: StatsEngine, org_id: str, query: UsageQuery,
                               ) -> ModelUsageResponse:
    domain = DOMAIN
    metric = domain.metric
    base = StatsRequest(scope=Scope("org", None), window=None, plan=query.plan,
                        filters=query.filters)
    by_model = BreakdownRequest(
        scope=base.scope, window=None, plan=base.plan, filters=base.filters,
        dimension=domain.declared_dimension("models"), metrics=("requests", "tokens", "cost"),
        include_series=False, limit=MODELS_PAGE, offset=0, sort="requests", descending=True)
    series, totals, models = await all_of(
        engine.series_values(org_id, domain, base,
                             [metric("requests"), metric("tokens"), metric("cost")]),
        engine.total_values(org_id, domain, base, [metric(n) for n in SUMMARY_METRICS]),
        all_models(engine, org_id, by_model))
    return ModelUsageResponse(
        meta=Meta(end_date=query.end_date.isoformat(), start_date=query.start_date.isoformat(),
                  data_source=DATA_SOURCE, granularity=query.granularity, period=query.period),
        summary=Summary(
            total_cost=totals["cost"], total_requests=totals["requests"],
            total_tokens=totals["tokens"], platform_cost=totals["platformCost"],
            platform_tokens=totals["platformTokens"], user_cost=totals["userCost"],
            user_tokens=totals["userTokens"]),
        usage_by_model={
            m.entity_id: ModelUsage(
                avg_cost_per_request=avg_cost(m.totals["cost"], m.totals["requests"]),
                model_id=m.entity_id, provider=m.attributes.get("provider"),
                request_count=m.totals["requests"], total_cost=m.totals["cost"],
                total_tokens=m.totals["tokens"], model_name=m.name or m.entity_id)
            for m in models},
        time_series=[Point(cost=values["cost"], date=bucket_label(bucket, query),
                           requests=values["requests"], tokens=values["tokens"])
                     for bucket, values in series])


# --- errors: Runtype-style JSON bodies for every failure of this endpoint -----------------

_encoder = msgspec.json.Encoder()
_UNAUTHORIZED = "a valid API key is required: Authorization: <apiKey> or Bearer <apiKey>"
_CODES = {400: "invalid_parameters", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 503: "service_unavailable"}


def error_response(status: int, code: str, message: str,
                   problems: list[Problem] | tuple = ()) -> Response:
    body = ErrorBody(error=ErrorInfo(code=code, message=message, details=[
        ErrorDetail(field=p.field, message=p.message) for p in problems]))
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Response(content=_encoder.encode(body), status_code=status, media_type=JSON,
                    headers=headers)


def _api_error(request: Request, exc: ApiError) -> Response:
    if exc.status == 401:
        return error_response(401, "unauthorized", _UNAUTHORIZED)
    return error_response(exc.status, exc.error_code, exc.message, exc.problems)


def _http_error(request: Request, exc: HTTPException) -> Response:
    if exc.status_code >= 500:
        return _unexpected(request, exc)
    detail = exc.detail if isinstance(exc.detail, str) else "request refused"
    return error_response(exc.status_code, _CODES.get(exc.status_code, "bad_request"), detail)


def _database_down(request: Request, exc: Exception) -> Response:
    log.warning("database_unavailable", error=type(exc).__name__, request_id=request_id(request))
    response = error_response(503, "service_unavailable",
                              "the database is unavailable; retry shortly")
    response.headers["Retry-After"] = "2"
    return response


def _query_timeout(request: Request, exc: Exception) -> Response:
    """``statement_timeout`` cancelled the query: 503 here too, never problem+json."""
    log.warning("query_timeout", error=str(exc).strip(), request_id=request_id(request))
    response = error_response(503, "service_unavailable", "the query took longer than the "
                              "gateway allows; retry later or ask for a shorter range")
    response.headers["Retry-After"] = "5"
    return response


def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled_error", request_id=request_id(request), exc_info=exc)
    return error_response(500, "internal_error", "internal error; quote the X-Request-Id "
                          "response header when reporting it")


_HANDLERS: dict[type, Callable[[Request, Any], Response]] = {
    ApiError: _api_error,
    HTTPException: _http_error,
    PoolTimeout: _database_down,
    psycopg.errors.QueryCanceled: _query_timeout,  # before its base, OperationalError
    psycopg.OperationalError: _database_down,
    Exception: _unexpected,
}


def seed_error(request: Request, exc: Exception) -> Response:
    """Any exception in this endpoint's envelope, by the most specific class it is."""
    return next(_HANDLERS[cls] for cls in type(exc).__mro__ if cls in _HANDLERS)(request, exc)


# every class the app maps too: Litestar picks the most specific class across the app's and
# the route's handlers, so a class only the app named (a query timeout) would answer in
# problem+json
EXCEPTION_HANDLERS: ExceptionHandlersMap = {cls: seed_error for cls in (*APP_HANDLERS, *_HANDLERS)}
answer_errors_in_shape(PATH, seed_error)  # the router's 405 (http/errors.py)
_ERROR_SPECS = error_responses((400, 401, 403, 429, 500, 503), ErrorBody, JSON, {
    400: "Invalid parameters (every problem listed)", 401: "Unauthorized Error",
    403: "Forbidden Error", 500: "Internal Server Error", 503: "Service Unavailable Error"})
_DAY = {"type": "string", "format": "date", "formatMinimum": "2000-01-01",
        "formatMaximum": "2099-12-31"}
_RULES = {  # across parameters (http/openapi.py: x-parameter-rules)
    "description": "`period` or explicit dates, never both; `endDate` needs `startDate` "
                   "and may not be before it.",
    "type": "object",
    "not": {"required": ["period"], "anyOf": [{"required": ["startDate"]},
                                              {"required": ["endDate"]}]},
    "dependentRequired": {"endDate": ["startDate"]},
}
_PARAMETERS = [  # documented only: parse_query reads them raw and reports every problem
    query_parameter("period", {"type": "string", "enum": list(PERIODS)},
                    f"A preset range (default {DEFAULT_PERIOD}); not with startDate/endDate."),
    query_parameter("startDate", _DAY, "First day (inclusive), YYYY-MM-DD."),
    query_parameter("endDate", _DAY, "Last day (inclusive), YYYY-MM-DD; needs startDate."),
    query_parameter("granularity", {"type": "string", "enum": list(GRANULARITIES),
                                    "default": DEFAULT_GRANULARITY}, "Bucket size."),
    query_parameter("modelConfigId", {"type": "string", "minLength": 1, "maxLength": 200},
                    "Only requests made under this model configuration."),
    query_parameter("timezone", {"type": "string", "minLength": 1, "maxLength": 64,
                                 "default": "UTC"}, "IANA time zone days are counted in."),
]


@get(PATH, name="runtype-model-usage", operation_id="RuntypeModelUsage", tags=["model-usage"],
     summary="Get model usage statistics (Runtype)", description=__doc__,
     exception_handlers=EXCEPTION_HANDLERS, responses=_ERROR_SPECS,
     operation_class=operation_class(_PARAMETERS, parameter_rules=_RULES),
     security=[{BEARER: []}, {BARE_KEY: []}])
async def model_usage(request: Request) -> Response[ModelUsageResponse]:
    async with authorized(request, "read", bare=True) as access:
        query = parse_query(query_params(request), datetime.now(UTC))
        # a key limited to workspaces/repos sees only those (core/restriction.py)
        query = replace(query, filters=query.filters + access.caller.restriction.filters())
        body = await model_usage_response(access.engine(engine_of(request)), access.org_id,
                                          query)
    return json_response(body)


route_handlers: list = [model_usage]  # other methods: the router's 405, in this shape
