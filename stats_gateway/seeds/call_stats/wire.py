"""The request body of ``POST /calls/stats`` in Weave's own snake_case names, and its checks.

msgspec stops at the first error, so ``read_body`` walks the body against the Structs
field by field and item by item, and reports every problem at once in FastAPI's
``{"loc", "msg", "type"}`` form.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Literal, Union, dataclass_transform, get_args, get_origin

import msgspec
from msgspec import Meta

from stats_gateway.core.request import parse_timezone

MAX_LIST = 1000  # items in any list of the body
MAX_PERCENTILES = 20  # distinct percentiles per metric
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)

UsageMetricName = Literal["input_tokens", "output_tokens", "total_tokens", "input_cost",
                          "output_cost", "total_cost"]
CallMetricName = Literal["latency_ms", "call_count", "error_count"]
AggregationName = Literal["sum", "avg", "min", "max", "count"]
Percent = Annotated[float, Meta(ge=0, le=100)]  # as Weave: 0 <= p <= 100
Text = Annotated[str, Meta(min_length=1, max_length=200, pattern="^[^\x00]*$")]


# for type checkers: subclasses inherit frozen and kw_only (msgspec applies them at run time)
@dataclass_transform(frozen_default=True, kw_only_default=True, field_specifiers=(msgspec.field,))
class Body(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """Base of the wire Structs: field names exactly as Weave spells them."""


class UsageMetricSpec(Body):
    metric: UsageMetricName
    aggregations: list[AggregationName] | None = None
    percentiles: list[Percent] | None = None


class CallMetricSpec(Body):
    metric: CallMetricName
    aggregations: list[AggregationName] | None = None
    percentiles: list[Percent] | None = None


class CallsFilter(Body):
    op_names: list[Text] | None = None
    input_refs: list[Text] | None = None
    output_refs: list[Text] | None = None
    parent_ids: list[Text] | None = None
    trace_ids: list[Text] | None = None
    call_ids: list[Text] | None = None
    thread_ids: list[Text] | None = None
    turn_ids: list[Text] | None = None
    trace_roots_only: bool | None = None
    wb_user_ids: list[Text] | None = None
    wb_run_ids: list[Text] | None = None


class CallStatsRequest(Body):
    project_id: Text
    start: datetime
    end: datetime | None = None
    granularity: Annotated[int, Meta(ge=1, le=2**31 - 1)] | None = None
    usage_metrics: list[UsageMetricSpec] | None = None
    call_metrics: list[CallMetricSpec] | None = None
    filter: CallsFilter | None = None
    timezone: str | None = "UTC"


@dataclass(frozen=True)
class Problem:
    """One FastAPI-style validation error: where in the body, what, and its kind."""

    loc: tuple[str | int, ...]
    msg: str
    type: str

    def as_json(self) -> dict:
        return {"loc": ["body", *self.loc], "msg": self.msg, "type": self.type}


class BodyInvalid(Exception):
    """The body failed validation; ``problems`` lists every reason."""

    def __init__(self, problems: list[Problem]):
        super().__init__(f"{len(problems)} problem(s) in the request body")
        self.problems = problems


def _without_none(tp) -> tuple[object, bool]:
    """(the type without ``None``, whether ``None`` was allowed)."""
    if get_origin(tp) is Union or type(tp).__name__ == "UnionType":
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) < len(get_args(tp)):
            return (args[0] if len(args) == 1 else Union[tuple(args)]), True
    return tp, False


@cache
def _fields(tp: type[msgspec.Struct]) -> tuple[msgspec.structs.FieldInfo, ...]:
    """A Struct's fields, resolved once: ``msgspec.structs.fields`` evaluates the type
    hints on every call (a ninth of a ``/calls/stats`` request's time in Python)."""
    return msgspec.structs.fields(tp)


def _kind(value) -> str:
    return {dict: "object", list: "array", str: "str", bool: "bool", int: "int",
            float: "float", type(None): "null"}.get(type(value), type(value).__name__)


def problems_in(value, tp, loc: tuple = ()) -> list[Problem]:
    """Every way ``value`` (decoded JSON) fails to be a ``tp``, walking Structs and lists."""
    tp, nullable = _without_none(tp)
    if value is None:
        return [] if nullable else [Problem(loc, "Input should not be null", "type_error")]
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        if not isinstance(value, dict):
            return [Problem(loc, f"Expected `object`, got `{_kind(value)}`", "type_error")]
        fields = _fields(tp)
        known = {f.encode_name for f in fields}
        found = [Problem(loc + (key,), "Extra inputs are not permitted", "extra_forbidden")
                 for key in value if key not in known]
        for f in fields:
            if f.encode_name in value:
                found += problems_in(value[f.encode_name], f.type, loc + (f.encode_name,))
            elif f.required:
                found.append(Problem(loc + (f.encode_name,), "Field required", "missing"))
        return found
    if get_origin(tp) is list:
        if not isinstance(value, list):
            return [Problem(loc, f"Expected `array`, got `{_kind(value)}`", "type_error")]
        if len(value) > MAX_LIST:
            return [Problem(loc, f"List should have at most {MAX_LIST} items", "too_long")]
        (item,) = get_args(tp)
        return [p for i, v in enumerate(value) for p in problems_in(v, item, loc + (i,))]
    try:
        msgspec.convert(value, tp)
    except msgspec.ValidationError as exc:
        return [Problem(loc, str(exc), _problem_type(str(exc)))]
    return []


def _problem_type(message: str) -> str:
    if "got `" in message:
        return "type_error"
    if message.startswith("Invalid enum value"):
        return "enum"
    if message.startswith("Invalid RFC3339"):
        return "datetime_parsing"
    return "value_error"  # a bound, length or pattern


def _as_utc(value: datetime) -> datetime:
    """Weave documents these times as UTC: a time without an offset is taken as UTC. One
    whose offset moves it past year 1 or 9999 (0001-01-01T00:00+01:00) becomes the
    calendar's first or last instant, so the range checks refuse it (not a 500)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return (datetime.min if value.year == 1 else datetime.max).replace(tzinfo=UTC)


def _meaning_problems(body: dict, now: datetime, skip: set) -> list[Problem]:
    """Checks beyond types, on the top-level fields not in ``skip`` (those with type errors)."""
    found: list[Problem] = []
    start = end = None
    if "start" not in skip and isinstance(body.get("start"), str):
        start = _as_utc(msgspec.convert(body["start"], datetime))
        if start < EARLIEST:
            found.append(Problem(("start",), "must not be before 2000-01-01", "value_error"))
    if "end" not in skip:
        if body.get("end") is None:
            end = now
        else:
            end = _as_utc(msgspec.convert(body["end"], datetime))
            if end > LATEST:
                found.append(Problem(("end",), "must not be after 2100-01-01", "value_error"))
    if start is not None and end is not None and end <= start:
        if body.get("end") is None:
            found.append(Problem(("start",), "must be before end (now, when end is omitted)",
                                 "value_error"))
        else:
            found.append(Problem(("end",), "must be after start", "value_error"))
    if "timezone" not in skip and isinstance(body.get("timezone"), str):
        _, problem = parse_timezone(body["timezone"])
        if problem:
            found.append(Problem(("timezone",), problem, "value_error"))
    for section in ("usage_metrics", "call_metrics"):
        if section in skip:
            continue
        for i, spec in enumerate(body.get(section) or ()):
            if len(set(spec.get("percentiles") or ())) > MAX_PERCENTILES:
                found.append(Problem((section, i, "percentiles"),
                                     f"at most {MAX_PERCENTILES} distinct percentiles",
                                     "too_long"))
    return found


def read_body(raw: bytes, now: datetime) -> CallStatsRequest:
    """The validated request with ``end`` resolved (``now`` when omitted), or
    ``BodyInvalid`` listing every problem."""
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise BodyInvalid([Problem((), f"JSON decode error: {exc}", "json_invalid")]) from None
    except RecursionError:
        raise BodyInvalid([Problem((), "JSON decode error: nested too deeply",
                                   "json_invalid")]) from None
    problems = problems_in(body, CallStatsRequest)
    if isinstance(body, dict):  # type errors hide meaning errors only where they are
        problems += _meaning_problems(body, now, {p.loc[0] for p in problems if p.loc})
    if problems:
        raise BodyInvalid(problems)
    request = msgspec.convert(body, CallStatsRequest)
    return msgspec.structs.replace(
        request, start=_as_utc(request.start),
        end=now if request.end is None else _as_utc(request.end),
        timezone=request.timezone or "UTC")
