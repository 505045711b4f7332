"""Turn raw query parameters into a validated stats request, reporting every problem at once.

HTTP-agnostic: takes ``{name: [values]}``. Unknown parameters are refused rather than
ignored, so a misspelt filter never silently widens a query.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Self, overload
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from stats_gateway.core.domain import Dimension, Domain, FieldType, SeriesView, sortable
from stats_gateway.core.errors import Problem, bad_request
from stats_gateway.core.filters import Filter
from stats_gateway.core.timebuckets import (
    BUCKET_SIZES, MAX_BUCKETS, WINDOWS, BucketPlan, auto_bucket_size, count_buckets,
    local_midnight, sizes_that_fit,
)

SCOPES = ("org", "workspace", "repo")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_OFFSET = 1_000_000
MAX_FILTER_VALUE = 200
MAX_FILTER_VALUES = 100  # values of one repeated filter parameter (an IN list)
# a breakdown with includeSeries returns up to limit x buckets points: bounded, so one
# request cannot ask for limit 500 x 10,000 buckets (five million points)
MAX_SERIES_POINTS = 100_000
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
_TZ_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$")

COMMON_PARAMS = ("scope", "id", "window", "start", "end", "timeBucketSize", "timezone",
                 "compare")
COMPARES = ("previous",)
SERIES_PARAMS = COMMON_PARAMS + ("metric",)
BREAKDOWN_PARAMS = COMMON_PARAMS + ("includeSeries", "includeOther", "limit", "offset", "sort",
                                   "order")


@dataclass(frozen=True)
class Scope:
    kind: str  # org | workspace | repo
    id: str | None  # None for org without an explicit id


@dataclass(frozen=True)
class StatsRequest:
    scope: Scope
    window: str | None
    plan: BucketPlan
    filters: tuple[Filter, ...]
    compare: str | None = field(default=None, kw_only=True)  # "previous": add that range
    # from when the org's raw events of the domain are kept (docs/retention.md): the
    # planner reads earlier ranges from rollups only; None: not looked up yet
    raw_from: datetime | None = field(default=None, kw_only=True)

    def previous(self) -> Self:
        """The same request over the range of equal length just before this one, bucketed
        from its own start (``compare=previous``: point i answers point i)."""
        plan = self.plan
        start = plan.start - (plan.end - plan.start)
        return replace(self, window=None, compare=None,
                       plan=replace(plan, start=start, end=plan.start,
                                    origin=local_midnight(start, ZoneInfo(plan.timezone))))


@dataclass(frozen=True)
class SeriesRequest(StatsRequest):
    view: SeriesView
    metric: str  # the one the summary describes


@dataclass(frozen=True)
class BreakdownRequest(StatsRequest):
    dimension: Dimension
    metrics: tuple[str, ...]
    include_series: bool
    limit: int
    offset: int
    sort: str
    descending: bool
    then_by: tuple[str, ...] = ()  # tie-breaking metrics (same direction), before entityId
    include_other: bool = False  # add ``other`` and ``unattributed``: the page reconciles


class ParamReader:
    """Reads single-valued query parameters, collecting every problem before answering."""

    def __init__(self, params: Mapping[str, Sequence[str]], allowed: Sequence[str]):
        self.params = params
        self.problems: list[Problem] = []
        for name in params:
            if name not in allowed:
                self.problems.append(Problem(name, f"unknown parameter; allowed: {', '.join(allowed)}"))

    def get(self, name: str) -> str | None:
        values = self.params.get(name)
        if not values:
            return None
        if len(values) > 1:
            self.fail(name, "give this parameter once")
        return values[0]

    def values(self, name: str) -> list[str]:
        """Every value of a parameter that may repeat."""
        return list(self.params.get(name) or ())

    def fail(self, name: str, message: str) -> None:
        self.problems.append(Problem(name, message))

    @overload
    def choice(self, name: str, options: Sequence[str], default: str) -> str: ...
    @overload
    def choice(self, name: str, options: Sequence[str], default: None = None) -> str | None: ...

    def choice(self, name: str, options: Sequence[str], default: str | None = None) -> str | None:
        value = self.get(name)
        if value is None:
            return default
        if value not in options:
            self.fail(name, f"must be one of: {', '.join(options)}")
            return default
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.get(name)
        if value is None:
            return default
        if not re.fullmatch(r"\d{1,9}", value) or not low <= int(value) <= high:
            self.fail(name, f"must be a whole number from {low} to {high}")
            return default
        return int(value)

    def instant(self, name: str) -> datetime | None:
        value = self.get(name)
        if value is None:
            return None
        parsed = parse_instant(value)
        if parsed is None:
            self.fail(name, "must be unix seconds or an RFC 3339 time with an offset, "
                            "e.g. 2026-01-31T00:00:00Z")
        return parsed


def storable_text(value: str, max_length: int = MAX_FILTER_VALUE) -> str | None:
    """Problem with a text value PostgreSQL would refuse or we bound, or None."""
    if not 1 <= len(value) <= max_length:
        return f"must be 1 to {max_length} characters"
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text"
    return None


def parse_instant(value: str) -> datetime | None:
    """Unix seconds or RFC 3339 with an explicit offset; None when it is neither."""
    if re.fullmatch(r"-?\d{1,12}", value):
        try:
            return datetime.fromtimestamp(int(value), UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if len(value) > 100 or not re.fullmatch(
            r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|z|[+-]\d\d:\d\d)", value):
        return None
    # RFC 3339 allows a fraction of any length; Python reads microseconds: cut the rest
    value = re.sub(r"(\.\d{6})\d+", r"\1", value, count=1)
    try:
        return datetime.fromisoformat(value.replace("z", "Z")).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def parse_timezone(value: str | None) -> tuple[str, str | None]:
    """(zone name, problem or None)."""
    if value is None:
        return "UTC", None
    if len(value) > 64 or not _TZ_NAME.match(value):
        return "UTC", "must be an IANA time zone name, e.g. Europe/Berlin"
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC", "unknown IANA time zone"
    return value, None


def filter_params(domain: Domain) -> tuple[str, ...]:
    """The query parameters of a domain's filters: ``param`` and its negation ``param!``."""
    return tuple(name for f in domain.filters for name in (f.param, f"{f.param}!"))


def _read_filters(r: ParamReader, domain: Domain) -> tuple[Filter, ...]:
    """Each resource filter given (``core/filters.py`` states the rule): once -> ``eq``,
    repeated -> any of the values, ``param!=`` (repeatable) -> none of them."""
    types = {f.column: f.type for f in domain.stored_fields}
    found = []
    for flt in domain.filters:
        kind = types[flt.column]
        for name, negated in ((flt.param, False), (f"{flt.param}!", True)):
            given = r.values(name)
            if not given:
                continue
            values: list[Any] = list(dict.fromkeys(
                v for v in given if _filter_value_ok(r, name, kind, v)))
            if len(given) > MAX_FILTER_VALUES:
                r.fail(name, f"give at most {MAX_FILTER_VALUES} values")
            if kind is FieldType.BOOL:
                values = [v == "true" for v in values]
            if not values:
                continue
            value: Any
            if kind is FieldType.TEXT_LIST:
                op, value = ("overlaps_none" if negated else "overlaps"), values
            elif negated:
                op, value = "none", values
            elif len(values) == 1:
                op, value = "eq", values[0]
            else:
                op, value = "any", values
            found.append(Filter(flt.param, flt.column, value, op))
    return tuple(found)


def _filter_value_ok(r: ParamReader, name: str, kind: FieldType, value: str) -> bool:
    if kind is FieldType.BOOL:
        if value not in ("true", "false"):
            r.fail(name, "must be true or false")
            return False
        return True
    if problem := storable_text(value):
        r.fail(name, problem)
        return False
    return True


def _read_common(r: ParamReader, domain: Domain, now: datetime):
    scope_kind = r.choice("scope", SCOPES)
    if scope_kind is None and "scope" not in r.params:
        r.fail("scope", "is required: org, workspace or repo")
    scope_id = r.get("id")
    if scope_id is not None and (problem := storable_text(scope_id)):
        r.fail("id", problem)
    if scope_kind in ("workspace", "repo") and scope_id is None:
        r.fail("id", f"is required when scope is {scope_kind}")

    window = r.choice("window", tuple(WINDOWS))
    start, end = r.instant("start"), r.instant("end")
    now = now.replace(microsecond=0)
    if window is not None:
        if "start" in r.params or "end" in r.params:
            r.fail("window", "give either window or start/end, not both")
        start, end = now - WINDOWS[window], now
    elif "window" not in r.params:
        if "start" not in r.params:
            r.fail("window", f"is required unless start is given: {', '.join(WINDOWS)}")
        end = end or now
    if start is not None and end is not None:
        if start < EARLIEST:
            r.fail("start", "must not be before 2000-01-01")
        if end > LATEST:
            r.fail("end", "must not be after 2100-01-01")
        if end <= start:
            r.fail("end", "must be after start")

    tz_name, tz_problem = parse_timezone(r.get("timezone"))
    if tz_problem:
        r.fail("timezone", tz_problem)
    size_name = r.choice("timeBucketSize", tuple(BUCKET_SIZES))

    filters = _read_filters(r, domain)

    plan = None
    if (start is not None and end is not None and EARLIEST <= start < end <= LATEST
            and not tz_problem):
        zone = ZoneInfo(tz_name)
        size = BUCKET_SIZES[size_name] if size_name else auto_bucket_size(start, end, zone)
        if count_buckets(start, end, size, zone) > MAX_BUCKETS:
            fit = sizes_that_fit(start, end, zone)
            r.fail("timeBucketSize",
                   f"{size.name} buckets would exceed {MAX_BUCKETS} buckets; sizes that fit: "
                   + (", ".join(fit) if fit else "none (narrow the range)"))
        plan = BucketPlan(start=start, end=end, size=size, timezone=tz_name,
                          origin=local_midnight(start, zone))
    scope = Scope(scope_kind or "org", scope_id)
    compare = r.choice("compare", COMPARES)
    if compare and plan is not None and plan.start - (plan.end - plan.start) < EARLIEST:
        r.fail("compare", "the previous range would start before 2000-01-01")
    return scope, window, plan, tuple(filters), compare


def parse_series(domain: Domain, view: SeriesView, params: Mapping[str, Sequence[str]],
                 now: datetime) -> SeriesRequest:
    allowed = SERIES_PARAMS + filter_params(domain)
    r = ParamReader(params, allowed)
    scope, window, plan, filters, compare = _read_common(r, domain, now)
    metric = r.choice("metric", view.metrics, view.primary)
    if r.problems:
        raise bad_request(r.problems)
    return SeriesRequest(scope=scope, window=window, plan=plan, filters=filters,
                         view=view, metric=metric, compare=compare)


def _read_sort(r: ParamReader, domain: Domain, metrics: tuple[str, ...]) -> str:
    """The sort metric; approximate percentiles are computed after the query and cannot
    order entities in SQL, so they are refused with the list of those that can."""
    can_sort = tuple(name for name in metrics if sortable(domain.metric(name)))
    value = r.get("sort")
    if value is None:
        return domain.breakdown.primary
    if value not in can_sort:
        why = "is an approximate percentile and cannot sort; " if value in metrics else ""
        r.fail("sort", f"{why}must be one of: {', '.join(can_sort)}")
        return domain.breakdown.primary
    return value


def parse_breakdown(domain: Domain, dimension: Dimension,
                    params: Mapping[str, Sequence[str]], now: datetime) -> BreakdownRequest:
    allowed = BREAKDOWN_PARAMS + filter_params(domain)
    r = ParamReader(params, allowed)
    scope, window, plan, filters, compare = _read_common(r, domain, now)
    metrics = domain.breakdown_metrics(dimension)
    include = r.choice("includeSeries", ("true", "false"), "false") == "true"
    include_other = r.choice("includeOther", ("true", "false"), "false") == "true"
    limit = r.integer("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = r.integer("offset", 0, 0, MAX_OFFSET)
    sort = _read_sort(r, domain, metrics)
    order = r.choice("order", ("asc", "desc"), "desc")
    if include and plan is not None:
        buckets = count_buckets(plan.start, plan.end, plan.size, ZoneInfo(plan.timezone))
        if limit * buckets > MAX_SERIES_POINTS:
            r.fail("limit", f"includeSeries with limit {limit} and {buckets} buckets would "
                   f"return up to {limit * buckets} points, more than {MAX_SERIES_POINTS}; "
                   f"use limit {max(1, MAX_SERIES_POINTS // buckets)} or less, coarser "
                   "buckets or a shorter range")
    if r.problems:
        raise bad_request(r.problems)
    return BreakdownRequest(scope=scope, window=window, plan=plan, filters=filters,
                            dimension=dimension, metrics=metrics, include_series=include,
                            limit=limit, offset=offset, sort=sort, descending=order == "desc",
                            include_other=include_other, compare=compare)
