"""``GET /v1/organizations/{orgId}/cu/usage-by-workflow``: CU per workflow, in the seed's shape.

Served by the ``workflow-cu`` domain's ``workflows`` breakdown. Choices where the seed is
silent:

* **Auth.** ``Authorization: Bearer <key>`` with the ``read`` permission (resource scopes
  do not narrow this endpoint). ``orgId`` must be the key's org id exactly as the gateway
  prints it (lowercase UUID); any other value, whether another org's id or one that does not
  exist, gets the same 404. Checks run in this order: key (401/403), ``orgId`` (404), query
  (400).
* **Range.** ``from`` and ``to`` are required whole unix milliseconds and the range is
  ``[from, to)``: a run at exactly ``from`` counts, one at exactly ``to`` does not (run
  times keep microseconds, so a run 1 µs before ``to`` counts). Both must lie between
  2000-01-01 (946684800000) and 2100-01-01 (4102444800000), and ``to`` must be after
  ``from``. There is no other limit on the span: no time buckets are built. Each parameter
  may be given once, and other parameters are refused (a misspelt one never widens the
  answer silently). A value that looks like unix seconds gets a hint.
* **Envelope.** Success is ``{"code": 0, "data": {"workflows": [...]}, "message":
  "successfully", "requestId": ...}``; ``requestId`` is the gateway's request id, also sent
  as the ``X-Request-Id`` header. Every error of this endpoint, unexpected ones included,
  has the same four keys: ``code`` is the HTTP status (400, 401, 403, 404, 405 with
  ``Allow``, 500, 503 with ``Retry-After``, a query timeout included),
  ``data`` is ``null`` and ``message`` says what is wrong; for a 400 it lists every problem
  (``invalid query parameters: from is required; to must be ...``), as the envelope has no
  field for a list. A 500 returns only the request id; the traceback stays in the log.
* **Workflows.** Every workflow with at least one run in range, ordered by ``totalCu``
  descending, ties by ``workflowId`` ascending (code-point order). Fields:

  * ``runCount``: runs in range. ``totalCu``: exact decimal sum of ``cu`` (JSON number).
  * ``cuPerHour``: ``3,600,000 * sum(cu) / sum(durationMs)`` over the runs in range (runs
    without a duration add CU but no time), unrounded; ``0`` when the runs report no
    running time at all.
  * ``estimatedCostPerRun``: the mean ``estimatedCost`` of the runs that report one, rounded
    half up to a whole number of the smallest currency unit (2.5 -> 3); ``0`` when none
    reports one. Exact while the workflow's summed cost in range stays below 2^52.
  * ``isStream``, ``status``, ``triggerType``: those of the newest run in range; ``status``
    and ``triggerType`` are ``""`` when that run did not report them. Which of two runs
    with the very same ``ts`` is newest is unspecified.
  * ``workflowName``: the newest ``workflowName`` given by a run in range (a run without
    one keeps the name), else ``workflowId``.
* **Size.** All workflows are returned, read from the engine in pages of 500. A range with
  more than 10,000 workflows is refused with 400 (narrow ``from``/``to``) rather than cut
  short silently. Pages are separate queries: a concurrent ingest may move a workflow
  between pages, so a workflow is listed at most once (first page wins).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

import msgspec
from litestar import Request, Response, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import KwargDefinition, PathParameter, QueryParameter

from domains.workflow_cu import DOMAIN
from stats_gateway.core.engine import EntityValues, StatsEngine
from stats_gateway.core.errors import ApiError, Problem, bad_request, not_found
from stats_gateway.core.restriction import UNRESTRICTED, Restriction
from stats_gateway.core.request import MAX_LIMIT, BreakdownRequest, Scope
from stats_gateway.core.timebuckets import fixed_size, make_plan
from stats_gateway.http.common import authorized, engine_of, json_response, query_params
from stats_gateway.http.errors import (
    EXCEPTION_HANDLERS, answer_errors_in_shape, handle_unexpected, request_id,
)
from stats_gateway.http.openapi import operation_class

PATH = "/v1/organizations/{orgId:str}/cu/usage-by-workflow"
PARAMS = ("from", "to")
EARLIEST_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
LATEST_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z
MAX_WORKFLOWS = 10_000
PAGE_SIZE = MAX_LIMIT
METRICS = ("runCount", "totalCu", "cuPerHour", "estimatedCostPerRun")
_WHOLE = re.compile(r"-?[0-9]+")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_JSON_NUMBER = KwargDefinition(schema_extra={"type": "number"})  # exact, written as a number


# --- wire shapes: the seed's names, exactly ----------------------------------------------


class WorkflowUsage(msgspec.Struct, frozen=True, kw_only=True):
    cuPerHour: float
    estimatedCostPerRun: int
    isStream: bool
    runCount: int
    status: str
    totalCu: Annotated[Decimal, _JSON_NUMBER]
    triggerType: str
    workflowId: str
    workflowName: str


class UsageByWorkflowData(msgspec.Struct, frozen=True, kw_only=True):
    workflows: list[WorkflowUsage]


class UsageByWorkflowResponse(msgspec.Struct, frozen=True, kw_only=True):
    code: int
    data: UsageByWorkflowData
    message: str
    requestId: str


class UsageByWorkflowError(msgspec.Struct, frozen=True, kw_only=True):
    code: int  # the HTTP status
    data: None
    message: str
    requestId: str


# --- query -------------------------------------------------------------------------------


def _millis(params: Mapping[str, Sequence[str]], name: str, problems: list[Problem]) -> int | None:
    values = params.get(name) or []
    if not values:
        problems.append(Problem(name, "is required (unix milliseconds)"))
        return None
    if len(values) > 1:
        problems.append(Problem(name, "must be given once"))
        return None
    if not _WHOLE.fullmatch(values[0]):
        problems.append(Problem(name, "must be a whole number of unix milliseconds"))
        return None
    ms = int(values[0]) if len(values[0]) <= 20 else LATEST_MS + 1  # no giant int parsing
    if not EARLIEST_MS <= ms <= LATEST_MS:
        hint = (" (this looks like unix seconds, not milliseconds)"
                if EARLIEST_MS // 1000 <= ms <= LATEST_MS // 1000 else "")
        problems.append(Problem(name, f"must be unix milliseconds from {EARLIEST_MS} "
                                      f"(2000-01-01) to {LATEST_MS} (2100-01-01){hint}"))
        return None
    return ms


def parse_range(params: Mapping[str, Sequence[str]]) -> tuple[datetime, datetime]:
    """``[from, to)`` as UTC instants, or a 400 listing every problem."""
    problems = [Problem(name, f"is not a parameter (allowed: {', '.join(PARAMS)})")
                for name in params if name not in PARAMS]
    start, end = (_millis(params, name, problems) for name in PARAMS)
    if start is not None and end is not None and end <= start:
        problems.append(Problem("to", "must be after from"))
    if problems:
        raise bad_request(problems)
    assert start is not None and end is not None  # else _millis listed a problem
    return _EPOCH + timedelta(milliseconds=start), _EPOCH + timedelta(milliseconds=end)


# --- values ------------------------------------------------------------------------------


async def workflow_entities(engine: StatsEngine, org_id: str, start: datetime,
                            end: datetime, restriction: Restriction = UNRESTRICTED,
                            ) -> list[EntityValues]:
    """Every workflow with runs in ``[start, end)``, by totalCu desc then workflowId."""
    domain = DOMAIN
    request = BreakdownRequest(
        scope=Scope("org", None), window=None,
        plan=make_plan(start, end, fixed_size(86_400)),  # no series: the size is unused
        filters=(), dimension=domain.declared_dimension("workflows"), metrics=METRICS,
        include_series=False, limit=PAGE_SIZE, offset=0, sort="totalCu", descending=True)
    found: dict[str, EntityValues] = {}
    while True:
        page, total = await engine.breakdown_values(org_id, domain, request, restriction)
        if total > MAX_WORKFLOWS:
            raise ApiError(400, "invalid_parameters",
                           f"{total} workflows ran in this range, more than the "
                           f"{MAX_WORKFLOWS} one answer may list; narrow from/to")
        for entity in page:
            found.setdefault(entity.entity_id, entity)
        request = replace(request, offset=request.offset + len(page))
        if len(page) < PAGE_SIZE or request.offset >= total:
            return list(found.values())


def _half_up(mean: float | None) -> int:
    if mean is None:
        return 0
    return int(Decimal(mean).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def workflow_usage(entity: EntityValues) -> WorkflowUsage:
    totals, attrs = entity.totals, entity.attributes
    return WorkflowUsage(
        cuPerHour=float(totals["cuPerHour"] or 0),
        estimatedCostPerRun=_half_up(totals["estimatedCostPerRun"]),
        isStream=attrs["isStream"] is True,
        runCount=totals["runCount"],
        status=attrs["status"] or "",
        totalCu=totals["totalCu"],
        triggerType=attrs["triggerType"] or "",
        workflowId=entity.entity_id,
        workflowName=entity.name or entity.entity_id)


# --- errors ------------------------------------------------------------------------------


def seed_error(request: Request, exc: Exception) -> Response:
    """Any exception as the seed's envelope. The gateway's own handler decides the status
    and message (and logs 5xx), so both envelopes always agree."""
    handler = next((EXCEPTION_HANDLERS[cls] for cls in type(exc).__mro__
                    if cls in EXCEPTION_HANDLERS), handle_unexpected)
    problem = handler(request, exc)
    body = msgspec.json.decode(problem.content)
    message = body["message"]
    if body["errors"]:
        message += ": " + "; ".join(f"{e['field']} {e['message']}" for e in body["errors"])
    status = problem.status_code or 500  # the gateway's handlers always set one
    error = UsageByWorkflowError(code=status, data=None, message=message,
                                 requestId=request_id(request) or "")
    response = json_response(error, status)
    response.headers.update(problem.headers)
    return response


answer_errors_in_shape(r"/v1/organizations/[^/]+/cu/usage-by-workflow", seed_error)  # 405

_ERRORS = {
    400: "invalid from/to (every problem listed in message), or too many workflows",
    401: "missing or invalid API key",
    403: "the key lacks the read permission",
    404: "no such organization (foreign and unknown ids answer alike)",
    429: "rate limited: retry after Retry-After seconds",
    500: "internal error; only the request id is returned",
    503: "the database is unavailable",
}


# --- the route ---------------------------------------------------------------------------


def _ms_param(name: str, doc: str):
    # Documented for OpenAPI only: the values are read raw by parse_range, which reports
    # every problem at once (and repeated values) in the seed's envelope.
    return QueryParameter(name=name, required=True, description=doc,
                          schema_extra={"type": "integer", "format": "int64", "one_of": None,
                                        "minimum": EARLIEST_MS, "maximum": LATEST_MS})


@get(PATH, name="workflow-cu-usage-by-workflow", operation_id="WorkflowCuUsageByWorkflow",
     tags=["workflow-cu"], summary="Get per-workflow CU cost breakdown for a time period",
     description=__doc__,
     exception_handlers={cls: seed_error for cls in EXCEPTION_HANDLERS},
     responses={status: ResponseSpec(data_container=UsageByWorkflowError, description=text,
                                   generate_examples=False)
                for status, text in _ERRORS.items()},
     operation_class=operation_class())  # the response headers
async def usage_by_workflow(
    request: Request, orgId: Annotated[str, PathParameter(description="Organization ID")],
    from_: Annotated[str | None, _ms_param("from", "Start time (unix ms), inclusive")] = None,
    to: Annotated[str | None, _ms_param("to", "End time (unix ms), exclusive")] = None,
) -> Response[UsageByWorkflowResponse]:
    async with authorized(request, "read") as access:
        if orgId != access.org_id:
            raise not_found("organization")
        start, end = parse_range(query_params(request))
        entities = await workflow_entities(access.engine(engine_of(request)), access.org_id,
                                           start, end, access.caller.restriction)
    return json_response(UsageByWorkflowResponse(
        code=0, data=UsageByWorkflowData(workflows=[workflow_usage(e) for e in entities]),
        message="successfully", requestId=request_id(request) or ""))


route_handlers: list = [usage_by_workflow]
