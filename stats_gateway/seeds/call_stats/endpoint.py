"""``POST /calls/stats``: the validated body -> two engine queries -> Weave's response."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from litestar import Request, Response, post

from domains.call_usage import DOMAIN as CALL_USAGE
from domains.calls import DOMAIN as CALLS
from stats_gateway.core.envelopes import MetaWarning
from stats_gateway.core.request import Filter, Scope, StatsRequest
from stats_gateway.seeds.fields import column_of, dimension_of, field_filter
from stats_gateway.core.engine import StatsEngine
from stats_gateway.http.admission import Cost
from stats_gateway.http.common import JSON, admitted, authorized, json_response
from stats_gateway.http.openapi import (
    BASIC, BEARER, error_responses, inline_json_schema, operation_class,
)
from stats_gateway.seeds.call_stats.buckets import bucket_count, granularity_of, resolve_plan
from stats_gateway.seeds.call_stats.errors import CALL_STATS_HANDLERS, ErrorDetail
from stats_gateway.seeds.call_stats.metrics import Section, call_section, usage_section
from stats_gateway.seeds.call_stats.wire import (
    CallMetricSpec, CallsFilter, CallStatsRequest, read_body,
)

# CallsFilter list field -> (the calls' event field, filter op); trace_roots_only is
# "parentId is null". Both domains hold these fields (their shared CALL_FIELDS).
LIST_FILTERS = {
    "op_names": ("opName", "any"),
    "input_refs": ("inputRefs", "overlaps"),
    "output_refs": ("outputRefs", "overlaps"),
    "parent_ids": ("parentId", "any"),
    "trace_ids": ("traceId", "any"),
    "call_ids": ("callId", "any"),
    "thread_ids": ("threadId", "any"),
    "turn_ids": ("turnId", "any"),
    "wb_user_ids": ("wbUserId", "any"),
    "wb_run_ids": ("wbRunId", "any"),
}
assert set(LIST_FILTERS) | {"trace_roots_only"} == set(CallsFilter.__struct_fields__), \
    "every CallsFilter field must become a filter"
assert all(column_of(CALLS, f) == column_of(CALL_USAGE, f)
           for f in ("projectId", "parentId", *(f for f, _ in LIST_FILTERS.values()))), \
    "one filter serves both domains"
BY_MODEL = dimension_of(CALL_USAGE, "models")
DEFAULT_CALL_METRICS = [CallMetricSpec(metric="call_count", aggregations=["sum"])]


class CallStatsResponse(msgspec.Struct, kw_only=True):
    start: str
    end: str
    granularity: int
    timezone: str
    usage_buckets: list[dict[str, Any]]
    call_buckets: list[dict[str, Any]]


def engine_filters(body: CallStatsRequest) -> tuple[Filter, ...]:
    filters = [field_filter(CALLS, "projectId", body.project_id, param="project_id")]
    flt = body.filter or CallsFilter()
    for name, (field, op) in LIST_FILTERS.items():
        values = getattr(flt, name)
        if values:  # an empty list constrains nothing, as in Weave
            filters.append(field_filter(CALLS, field, list(values), op, param=name))
    if flt.trace_roots_only:
        filters.append(field_filter(CALLS, "parentId", True, "is_null",
                                    param="trace_roots_only"))
    return tuple(filters)


def utc_text(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def local_text(seconds: int, zone: ZoneInfo) -> str:
    """A bucket start (unix seconds) in the request's zone, so its alignment reads at a
    glance."""
    return datetime.fromtimestamp(seconds, zone).isoformat(timespec="seconds").replace(
        "+00:00", "Z")


async def _call_buckets(engine: StatsEngine, org_id: str, stats: StatsRequest,
                        section: Section, zone: ZoneInfo) -> list[dict]:
    if not section.outputs:
        return []
    rows = await engine.series_rows(org_id, CALLS, stats, section.metrics)
    return [{"timestamp": local_text(row[0], zone), **section.render(row[1:])} for row in rows]


async def _usage_buckets(engine: StatsEngine, org_id: str, stats: StatsRequest,
                         section: Section, zone: ZoneInfo) -> list[dict]:
    if not section.outputs:
        return []
    rows = await engine.grouped_series_values(org_id, CALL_USAGE, stats,
                                              section.metrics, BY_MODEL)
    names = [m.name for m in section.metrics]
    return [{"timestamp": local_text(int(ts.timestamp()), zone), "model": model,
             **section.render([values[name] for name in names])}
            for ts, model, values in rows]


async def call_stats(request: Request) -> Response[CallStatsResponse]:
    async with authorized(request, "read", basic=True) as access:
        caller = access.caller
        body = read_body(await request.body(), datetime.now(UTC).replace(microsecond=0))
        end, timezone = body.end, body.timezone
        assert end is not None and timezone is not None  # read_body resolves both
        plan = resolve_plan(body.start, end, body.granularity, timezone)
        stats = caller.restriction.apply(  # a key limited to workspaces/repos sees only those
            StatsRequest(scope=Scope("org", None), window=None, plan=plan,
                         filters=engine_filters(body)))
        nothing_asked = body.usage_metrics is None and body.call_metrics is None
        calls = call_section(DEFAULT_CALL_METRICS if nothing_asked else body.call_metrics or ())
        usage = usage_section(body.usage_metrics or ())
        zone = ZoneInfo(timezone)
        # priced like the /v2 endpoints (http/admission.py): a point per bucket and list
        cost = Cost(bucket_count(plan) * (bool(calls.outputs) + bool(usage.outputs) or 1))
        granularity = granularity_of(plan)
        warnings = [] if body.granularity in (None, granularity) else [MetaWarning(
            code="granularity_widened",
            message=f"granularity {body.granularity} s would give more than 10,000 buckets "
                    f"over this range; answered with {granularity} s")]

        async def answer(engine: StatsEngine) -> Response:
            usage_buckets, call_buckets = await asyncio.gather(
                _usage_buckets(engine, caller.org_id, stats, usage, zone),
                _call_buckets(engine, caller.org_id, stats, calls, zone))
            return json_response(CallStatsResponse(
                start=utc_text(body.start), end=utc_text(end),
                granularity=granularity, timezone=timezone,
                usage_buckets=usage_buckets, call_buckets=call_buckets), warnings=warnings)

        return await admitted(request, access, cost, answer)


def _body_schema() -> dict:
    schema = inline_json_schema(CallStatsRequest)
    for name in ("start", "end"):  # RFC 3339; msgspec leaves the format out
        prop = schema["properties"][name]
        for option in prop.get("anyOf", [prop]):
            if option.get("type") == "string":
                option["format"] = "date-time"
    return schema


route = post("/calls/stats", name="weave-call-stats", operation_id="WeaveCallStats",
             tags=["seeds"], summary="W&B Weave call stats (usage by model, call metrics)",
             status_code=200, exception_handlers=CALL_STATS_HANDLERS,
             operation_class=operation_class(request_body=_body_schema()),
             security=[{BEARER: []}, {BASIC: []}],
             responses=error_responses((400, 401, 403, 413, 422, 429, 500, 503), ErrorDetail, JSON, {
                 400: "Costs more than the key's whole point budget (docs/security.md: admission by "
                      "cost)",
                 422: "Invalid body: every problem as FastAPI's {loc, msg, type}",
                 500: "Internal error: the message carries only the request id"}))(call_stats)
