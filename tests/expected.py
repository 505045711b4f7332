"""Independent reference computations for the stats gateway tests.

Everything here is derived from the API contract (bucket rules, metric semantics, summary
statistics) using only the standard library: datetime + zoneinfo for buckets, plain loops
for metrics, ``statistics`` for the summary. What each metric means (its aggregation kind
and the event fields it reads) and which metrics a view serves are read from the domain
declarations (``domains``), so a metric is declared once; the values are computed here,
with nothing from the engine. ``tests/test_oracle.py`` pins the meaning of every metric
that existed when this was introduced against hand-written references.
"""

from __future__ import annotations

import bisect
import calendar
import math
import statistics
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

UTC = timezone.utc

SIZES = ("1m", "5m", "10m", "15m", "30m", "1h", "6h", "12h", "1d", "1w", "1mo")
FIXED_SECONDS = {"1m": 60, "5m": 300, "10m": 600, "15m": 900, "30m": 1800, "1h": 3600}
WINDOWS = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
    "180d": timedelta(days=180),
    "365d": timedelta(days=365),
}
# What the brief states the auto size is for each window (in UTC).
AUTO_FOR_WINDOW = {"24h": "10m", "7d": "1h", "30d": "6h", "90d": "12h", "180d": "1d",
                   "365d": "1w"}
MAX_BUCKETS = 10_000
AUTO_TARGET = 200


# --- time ------------------------------------------------------------------------------


def parse_ts(value) -> datetime:
    """An event's ``ts`` (RFC 3339 with offset, or unix seconds) as an aware UTC datetime."""
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, (int, float, Decimal)):
        whole = int(value)
        frac = Decimal(str(value)) - whole
        return datetime.fromtimestamp(whole, UTC) + timedelta(microseconds=int(frac * 10**6))
    parsed = datetime.fromisoformat(value.replace("z", "Z"))
    assert parsed.tzinfo is not None, value
    return parsed.astimezone(UTC)


def unix(dt: datetime) -> int:
    """Unix seconds (floor) of an aware datetime."""
    return math.floor(dt.timestamp())


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def rfc3339(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_to_utc(naive: datetime, zone: ZoneInfo) -> datetime:
    """The first instant whose local wall-clock time is ``naive`` or later.

    That is where a bucket starting at that wall-clock time begins: for a time that occurs
    twice (fall back) its first occurrence; for a time skipped by a DST gap, the end of
    the gap (the first instant after it).
    """
    first = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    candidates = [t for t in (first, second)
                  if t.astimezone(zone).replace(tzinfo=None) == naive]
    if candidates:
        return min(candidates)
    # in a gap: walk to the first instant at or after the wall time (gaps are <= 2h)
    t = min(first, second).replace(second=0, microsecond=0)
    while t.astimezone(zone).replace(tzinfo=None) < naive:
        t += timedelta(minutes=1)
    return t


def _add_month(naive: datetime) -> datetime:
    year, month = (naive.year + 1, 1) if naive.month == 12 else (naive.year, naive.month + 1)
    return naive.replace(year=year, month=month, day=1)


def _calendar_floor(naive: datetime, size: str) -> datetime:
    day = naive.replace(hour=0, minute=0, second=0, microsecond=0)
    if size == "6h":
        return day.replace(hour=naive.hour - naive.hour % 6)
    if size == "12h":
        return day.replace(hour=naive.hour - naive.hour % 12)
    if size == "1d":
        return day
    if size == "1w":
        return day - timedelta(days=day.weekday())
    if size == "1mo":
        return day.replace(day=1)
    raise ValueError(size)


def _calendar_next(naive: datetime, size: str) -> datetime:
    if size == "6h":
        return naive + timedelta(hours=6)
    if size == "12h":
        return naive + timedelta(hours=12)
    if size == "1d":
        return naive + timedelta(days=1)
    if size == "1w":
        return naive + timedelta(days=7)
    if size == "1mo":
        return _add_month(naive)
    raise ValueError(size)


def bucket_edges(start: datetime, end: datetime, size: str, tz: str = "UTC") -> list[datetime]:
    """Starts (UTC) of every bucket intersecting [start, end), then the end of the last one.

    Fixed sizes: consecutive spans of exactly the size, one boundary at local midnight of
    the start's local day. Calendar sizes: local wall-clock 00/06/12/18 (6h), 00/12 (12h),
    local days, ISO weeks from Monday, calendar months.
    """
    assert end > start
    zone = ZoneInfo(tz)
    edges: list[datetime] = []
    if size in FIXED_SECONDS:
        step = timedelta(seconds=FIXED_SECONDS[size])
        local = start.astimezone(zone)
        midnight = local_to_utc(datetime(local.year, local.month, local.day), zone)
        k = math.floor((start - midnight) / step)
        b = midnight + k * step
        while b < end:
            edges.append(b)
            b = b + step
        edges.append(b)
        return edges
    wall = _calendar_floor(start.astimezone(zone).replace(tzinfo=None), size)
    b = local_to_utc(wall, zone)
    while b < end:
        edges.append(b)
        wall = _calendar_next(wall, size)
        b = local_to_utc(wall, zone)
    edges.append(b)
    assert all(x < y for x, y in zip(edges, edges[1:]))
    return edges


def bucket_count(start: datetime, end: datetime, size: str, tz: str = "UTC") -> int:
    return len(bucket_edges(start, end, size, tz)) - 1


def count_fast(start: datetime, end: datetime, size: str, tz: str = "UTC") -> int:
    """Bucket count without listing them (for huge ranges), cross-checked on small ones."""
    zone = ZoneInfo(tz)
    if size in FIXED_SECONDS:
        step = FIXED_SECONDS[size]
        local = start.astimezone(zone)
        midnight = local_to_utc(datetime(local.year, local.month, local.day), zone)
        first = midnight + timedelta(seconds=step * math.floor((start - midnight).total_seconds() / step))
        return math.ceil((end - first).total_seconds() / step)
    if size == "1mo":
        a = start.astimezone(zone)
        z = (end - timedelta(microseconds=1)).astimezone(zone)
        return (z.year - a.year) * 12 + z.month - a.month + 1
    return bucket_count(start, end, size, tz)


def auto_size(start: datetime, end: datetime, tz: str = "UTC") -> str:
    """Smallest size giving at most 200 buckets."""
    for size in SIZES:
        if count_fast(start, end, size, tz) <= AUTO_TARGET:
            return size
    return "1mo"


def sizes_that_fit(start: datetime, end: datetime, tz: str = "UTC") -> list[str]:
    return [s for s in SIZES if count_fast(start, end, s, tz) <= MAX_BUCKETS]


# --- metrics -----------------------------------------------------------------------------

VIOLATING = ("log", "alert", "block")
# The documented bound of the approximate percentiles (log-bucket histograms, gamma 1.1)
PERCENTILE_ERROR = (1.1 - 1) / (1.1 + 1)


class Approx:
    """A reference value the answer may miss by ``rel`` of its size plus ``abs``: what the
    approximate percentiles promise. ``exact`` is the exact value, computed here."""

    def __init__(self, exact: float, rel: float = PERCENTILE_ERROR, abs: float = 0.0):
        self.exact, self.rel, self.abs = exact, rel, abs

    def __repr__(self) -> str:
        return f"Approx({self.exact!r}, rel={self.rel:.4g}, abs={self.abs:.4g})"


def _approx_percentile(field, q):
    """The exact interpolated percentile, which the approximate one must stay near."""
    def f(evs):
        exact = percentile_cont([float(e[field]) for e in evs if e.get(field) is not None], q)
        return None if exact is None else Approx(exact)
    return f


def _latency_percentiles():
    return {f"latencyMsP{q}": _approx_percentile("latencyMs", q / 100) for q in (50, 90, 95, 99)}


LATENCY_PERCENTILES = tuple(_latency_percentiles())


def _sum(field):
    return lambda evs: sum(e.get(field, 0) for e in evs)


def _count(pred=None):
    return lambda evs: sum(1 for e in evs if pred is None or pred(e))


def _mean(field, *plus):
    def value(e):
        return float(sum(dec(e.get(p, 0)) for p in (field, *plus))) if plus else float(e[field])

    def f(evs):
        values = [value(e) for e in evs if e.get(field) is not None]
        return math.fsum(values) / len(values) if values else None
    return f


def _distinct(field):
    return lambda evs: len({e[field] for e in evs if e.get(field) is not None})


def _latest(evs):
    return max((unix(parse_ts(e["ts"])) for e in evs), default=None)


def _credits(*kinds):
    return lambda evs: sum((Decimal(str(e["amount"])) for e in evs if e["kind"] in kinds),
                           Decimal(0))


METRICS: dict[str, dict] = {}  # domain -> metric -> reference computation (see below)
NON_ADDITIVE: set[str] = set()  # metrics whose buckets do not add up to the range's value
APPROXIMATE: set[str] = set()  # approximate percentiles: breakdowns cannot sort by them
SERIES_VIEWS: dict = {}  # (domain, view path) -> (metrics of each point, default summary metric)
BREAKDOWN_METRICS: dict = {}  # domain -> (breakdown metrics before extras, default sort)
FILTERS: dict = {}  # domain -> its filter parameters (declared)
# (domain, by) -> (event field grouped by, event field carrying the display name or None)
DIMENSIONS = {
    ("storage", "workspaces"): ("workspaceId", "workspaceName"),
    ("storage", "repos"): ("repoId", "repoName"),
    ("storage", "buckets"): ("bucketId", "bucketName"),
    ("storage", "nodes"): ("nodeId", "nodeName"),
    ("storage", "providers"): ("endpoint", None),
    ("ai", "workspaces"): ("workspaceId", "workspaceName"),
    ("ai", "repos"): ("repoId", "repoName"),
    ("ai", "models"): ("model", None),
    ("ai", "providers"): ("provider", None),
    ("ai", "nodes"): ("nodeId", "nodeName"),
    ("ai", "aiConfigs"): ("aiLlmId", "aiLlmName"),
    ("private-chat", "models"): ("model", None),
    ("private-chat", "users"): ("userId", "userName"),
    ("policies", "rules"): ("ruleId", "ruleName"),
    ("policies", "users"): ("userId", "userName"),
    ("credits", "workspaces"): ("workspaceId", "workspaceName"),
    ("credits", "repos"): ("repoId", "repoName"),
    ("credits", "models"): ("model", None),
    ("credits", "providers"): ("provider", None),
    ("credits", "buckets"): ("bucketId", "bucketName"),
}
EXTRA_METRICS: dict = {}  # (domain, by) -> metrics only that breakdown adds (declared)


def breakdown_metrics(domain: str, by: str) -> tuple[str, ...]:
    return BREAKDOWN_METRICS[domain][0] + EXTRA_METRICS.get((domain, by), ())


# --- selecting events ------------------------------------------------------------------


def in_range(events, start: datetime, end: datetime):
    return [e for e in events if start <= parse_ts(e["ts"]) < end]


def select(events, scope: str = "org", scope_id: str | None = None, filters=None):
    out = []
    for e in events:
        if scope == "workspace" and e.get("workspaceId") != scope_id:
            continue
        if scope == "repo" and e.get("repoId") != scope_id:
            continue
        if filters and any(e.get(k) != v for k, v in filters.items()):
            continue
        out.append(e)
    return out


def compute(domain: str, metrics, events) -> dict:
    return {m: METRICS[domain][m](events) for m in metrics}


def group_by_bucket(events, start, end, size, tz="UTC"):
    edges = bucket_edges(start, end, size, tz)
    groups = [[] for _ in range(len(edges) - 1)]
    for e in in_range(events, start, end):
        t = parse_ts(e["ts"])
        i = bisect.bisect_right(edges, t) - 1
        assert 0 <= i < len(groups), (t, edges[0], edges[-1])
        groups[i].append(e)
    return edges, groups


def expected_series(domain, metrics, events, start, end, size, tz="UTC") -> list[dict]:
    edges, groups = group_by_bucket(events, start, end, size, tz)
    return [{"ts": unix(edges[i]), **compute(domain, metrics, g)} for i, g in enumerate(groups)]


def expected_summary(domain, metric, series: list[dict], events_in_range) -> dict:
    if metric in APPROXIMATE:
        return _approximate_summary(domain, metric, series, events_in_range)
    values = [p[metric] for p in series]
    if metric in NON_ADDITIVE:
        total = METRICS[domain][metric](events_in_range)
    else:
        total = sum(values, Decimal(0) if domain == "credits" else 0)
    return {"total": total, **_spread(values)}


def _spread(values) -> dict:
    """The summary's statistics of the non-null bucket values."""
    present = [v for v in values if v is not None]
    if not present:
        return {"avg": None, "stdDev": None, "min": None, "max": None,
                "p10": None, "p50": None, "p90": None}
    floats = [float(v) for v in present]
    if len(floats) >= 2:
        q = statistics.quantiles(floats, n=10, method="inclusive")
        p10, p50, p90 = q[0], q[4], q[8]
    else:
        p10 = p50 = p90 = floats[0]
    return {"avg": statistics.fmean(floats), "stdDev": statistics.pstdev(floats),
            "min": min(present), "max": max(present), "p10": p10, "p50": p50, "p90": p90}


def _approximate_summary(domain, metric, series: list[dict], events_in_range) -> dict:
    """The summary of approximate bucket values, from the exact ones. Each value within
    ``r`` of its exact (non-negative) value keeps the mean, extremes and interpolated
    quantiles within ``r`` (order statistics move together); the standard deviation moves
    by at most ``r`` times the root mean square of the exact values. ``total`` is the
    percentile over the whole range."""
    exact = [p[metric].exact for p in series if p[metric] is not None]
    spread = {k: None if v is None else Approx(v) for k, v in _spread(exact).items()}
    if exact:
        rms = math.sqrt(math.fsum(v * v for v in exact) / len(exact))
        spread["stdDev"] = Approx(spread["stdDev"].exact, rel=0.0, abs=PERCENTILE_ERROR * rms)
    return {"total": METRICS[domain][metric](events_in_range), **spread}


def expected_entities(domain, by, events_in_range) -> dict[str, dict]:
    field, _ = DIMENSIONS[(domain, by)]
    groups = defaultdict(list)
    for e in events_in_range:
        if e.get(field) is not None:
            groups[e[field]].append(e)
    metrics = breakdown_metrics(domain, by)
    return {k: compute(domain, metrics, g) for k, g in groups.items()}


def order_entities(totals: dict[str, dict], sort: str, descending: bool) -> list[str]:
    """Sort metric (nulls last), then entity id ascending."""
    with_value = [k for k in totals if totals[k][sort] is not None]
    nulls = sorted(k for k in totals if totals[k][sort] is None)
    # stable sorts: id ascending first, then by value
    with_value.sort()
    with_value.sort(key=lambda k: totals[k][sort], reverse=descending)
    return with_value + nulls


def latest_names(all_events, id_field: str, name_field: str) -> dict[str, str]:
    """Per id, the name carried by the event with the greatest ts."""
    best: dict[str, tuple[datetime, str]] = {}
    for e in all_events:
        if e.get(id_field) is None or e.get(name_field) is None:
            continue
        t = parse_ts(e["ts"])
        old = best.get(e[id_field])
        if old is None or t > old[0]:
            best[e[id_field]] = (t, e[name_field])
    return {k: v[1] for k, v in best.items()}


# --- comparing ---------------------------------------------------------------------------


def assert_matches(actual, expected, where: str = "$") -> None:
    """Deep comparison: exact key sets, exact ints/decimals (type-checked), floats ~1e-9."""
    if expected is None:
        assert actual is None, f"{where}: expected null, got {actual!r}"
    elif isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected object, got {actual!r}"
        assert set(actual) == set(expected), \
            f"{where}: keys {sorted(actual)} != expected {sorted(expected)}"
        for k in expected:
            assert_matches(actual[k], expected[k], f"{where}.{k}")
    elif isinstance(expected, (list, tuple)):
        assert isinstance(actual, list), f"{where}: expected list, got {actual!r}"
        assert len(actual) == len(expected), \
            f"{where}: length {len(actual)} != expected {len(expected)}"
        for i, (a, x) in enumerate(zip(actual, expected)):
            assert_matches(a, x, f"{where}[{i}]")
    elif isinstance(expected, Approx):
        assert isinstance(actual, (int, float, Decimal)) and not isinstance(actual, bool), \
            f"{where}: expected number ~{expected!r}, got {actual!r}"
        allowed = (expected.rel * abs(expected.exact) + expected.abs) * (1 + 1e-9) + 1e-12
        assert abs(float(actual) - expected.exact) <= allowed, \
            f"{where}: {actual!r} is further than allowed from {expected!r}"
    elif isinstance(expected, bool) or isinstance(expected, str):
        assert actual == expected, f"{where}: {actual!r} != expected {expected!r}"
    elif isinstance(expected, Decimal):
        assert isinstance(actual, (int, Decimal)) and not isinstance(actual, bool), \
            f"{where}: expected an exact number, got {actual!r}"
        assert Decimal(actual) == expected, f"{where}: {actual!r} != expected {expected}"
    elif isinstance(expected, int):
        assert isinstance(actual, int) and not isinstance(actual, bool), \
            f"{where}: expected integer {expected}, got {actual!r}"
        assert actual == expected, f"{where}: {actual!r} != expected {expected!r}"
    elif isinstance(expected, float):
        assert isinstance(actual, (int, float, Decimal)) and not isinstance(actual, bool), \
            f"{where}: expected number ~{expected}, got {actual!r}"
        a = float(actual)
        assert math.isclose(a, expected, rel_tol=1e-9, abs_tol=1e-9), \
            f"{where}: {a!r} != expected ~{expected!r}"
    else:
        raise TypeError(f"{where}: cannot compare {type(expected)}")


def month_length_hours(year: int, month: int, tz: str) -> float:
    zone = ZoneInfo(tz)
    a = datetime(year, month, 1, tzinfo=zone)
    days = calendar.monthrange(year, month)[1]
    b = datetime(year, month, days, tzinfo=zone) + timedelta(days=1)
    return (b.astimezone(UTC) - a.astimezone(UTC)).total_seconds() / 3600


# --- the newer domains: runs, model-usage, workflow-cu, calls, call-usage ----------------
# Their metrics add exact decimal sums, sums of two fields, ratios, maxima and exact
# percentiles; their breakdowns add composite keys, names and attributes taken from the
# newest event, and percentage shares. Reference values assume ``with_defaults`` events.

# field defaults (stored when a field is absent): each domain's declared ones
DEFAULTS: dict[str, dict] = {}


def with_defaults(domain: str, events) -> list[dict]:
    """Copies of the events with every absent defaulted field filled in."""
    return [{**DEFAULTS[domain], **{k: v for k, v in e.items() if v is not None}}
            for e in events]


def dec(value) -> Decimal:
    """An exact decimal from an event value (int, Decimal or decimal string)."""
    return Decimal(str(value))


def _dec_sum(*fields, where=None):
    return lambda evs: sum((dec(e.get(f, 0)) for e in evs if where is None or where(e)
                            for f in fields), Decimal(0))


def _int_sum(*fields, where=None):
    return lambda evs: sum(e.get(f, 0) for e in evs if where is None or where(e) for f in fields)


def _max(field):
    return lambda evs: max((float(e[field]) for e in evs if e.get(field) is not None),
                           default=None)


def _extremum(pick, field, typed):
    return lambda evs: pick((typed(e[field]) for e in evs if e.get(field) is not None),
                            default=None)


def percentile_cont(values, q: float):
    """PostgreSQL's ``percentile_cont``: linear interpolation between the sorted values at
    position ``q * (n - 1)``; None without values."""
    ordered = sorted(values)
    if not ordered:
        return None
    pos = q * (len(ordered) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _ratio(numerator, denominator, scale):
    """``scale * sum(numerator) / sum(denominator)``; None when the denominator sums to 0."""
    def f(evs):
        den = sum(dec(e.get(denominator, 0)) for e in evs)
        if not den:
            return None
        return float(sum((dec(e.get(numerator, 0)) for e in evs), Decimal(0))) / float(den) * scale
    return f


def _billing(kind):
    return lambda e: e["billing"] == kind


# --- what each declared metric means, computed over events ----------------------------


def _among(value, values) -> bool:
    """``value`` is one of ``values`` (a bool is not a number here: True is not 1)."""
    return any(type(value) is type(v) and value == v for v in values)


def _typed(kind: str):
    """Values of a stored column's kind as the API returns them."""
    return {"BIGINT": int, "DECIMAL": dec}.get(kind, float)


def reference(domain, metric):
    """The reference computation of a declared metric, from its aggregation kind and the
    event fields behind its columns (a function of the events it covers)."""
    agg, names = metric.agg, {f.column: f.name for f in domain.all_fields}
    kinds = {f.column: f.type.name for f in domain.all_fields}
    kind = type(agg).__name__
    where = None
    if getattr(agg, "where_column", None):
        wf, values = names[agg.where_column], agg.values
        where = lambda e: _among(e.get(wf), values)  # noqa: E731
    if kind == "Count":
        if agg.column is None:
            return _count()
        field, values = names[agg.column], agg.values
        return _count((lambda e: _among(e.get(field), values)) if values
                      else (lambda e: e.get(field) is not None))
    if kind == "Sum":
        fields = [names[c] for c in (agg.column, *agg.plus)]
        make = _dec_sum if kinds[agg.column] == "DECIMAL" else _int_sum
        return make(*fields, where=where)
    if kind == "Mean":
        return _mean(names[agg.column], *(names[c] for c in agg.plus))
    if kind in ("Max", "Min"):
        return _extremum(max if kind == "Max" else min, names[agg.column],
                         _typed(kinds[agg.column]))
    if kind == "Ratio":
        return _ratio(names[agg.numerator], names[agg.denominator], agg.scale)
    if kind == "DistinctCount":
        return _distinct(names[agg.column])
    if kind == "LatestTime":
        return _latest
    if kind == "ApproxPercentile":
        return _approx_percentile(names[agg.column], agg.q)
    if kind == "Percentile":
        field, q = names[agg.column], agg.q
        return lambda evs: percentile_cont(
            [float(e[field]) for e in evs if e.get(field) is not None], q)
    raise NotImplementedError(f"no reference for {kind} ({domain.name}.{metric.name})")


ADDITIVE_KINDS = ("Sum", "Count")  # a bucket's value adds up with its neighbours'


def declared_oracle(domain) -> None:
    """Enrol a declared domain: its metrics' references, views and field defaults."""
    METRICS[domain.name] = {m.name: reference(domain, m) for m in domain.metrics}
    for m in domain.metrics:
        kind = type(m.agg).__name__
        if kind not in ADDITIVE_KINDS:
            NON_ADDITIVE.add(m.name)
        if kind == "ApproxPercentile":
            APPROXIMATE.add(m.name)
    for view in domain.series:
        SERIES_VIEWS[(domain.name, view.path)] = (view.metrics, view.primary)
    BREAKDOWN_METRICS[domain.name] = (domain.breakdown.metrics, domain.breakdown.primary)
    DEFAULTS.setdefault(domain.name, {f.name: f.default for f in domain.fields
                                      if f.default is not None})
    FILTERS[domain.name] = tuple(f.param for f in domain.filters)
    older = {d for d, _ in DIMENSIONS}
    for d in domain.dimensions:
        if d.extra_metrics:
            EXTRA_METRICS[(domain.name, d.by)] = d.extra_metrics
        if domain.name not in older:
            NEW_DIMENSIONS[(domain.name, d.by)] = declared_dimension(domain, d)




class NewDimension:
    """A breakdown of a newer domain: the event fields of its (composite) key; where the
    name comes from (``catalogue``: the newest name sent with the id, over all the org's
    events; ``column``: the newest non-null value among the events counted); attributes
    as (name, field, latest) where latest means the newest counted event's value (null
    included) and otherwise the largest; and the metric ``pct`` shares, if any."""

    def __init__(self, *key, catalogue=None, column=None, attributes=(), share=None):
        self.key, self.catalogue, self.column = key, catalogue, column
        self.attributes, self.share = tuple(attributes), share

    def __eq__(self, other) -> bool:
        return isinstance(other, NewDimension) and vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"NewDimension({vars(self)})"


def declared_dimension(domain, dim) -> NewDimension:
    """A breakdown as its declaration means it: the event fields behind its columns, the
    field carrying its names (a catalogue's, or a name column's), its attributes, its share."""
    field = {f.column: f for f in domain.all_fields}
    return NewDimension(
        *(field[c].name for c in dim.columns),
        catalogue=field[dim.columns[0]].name_field if dim.names_kind else None,
        column=field[dim.name_column].name if dim.name_column else None,
        attributes=tuple((a.name, field[a.column].name, a.latest) for a in dim.attributes),
        share=dim.share_of)


# (domain, by) -> NewDimension: every breakdown of a domain the older tables (DIMENSIONS)
# do not describe, read from its declaration
NEW_DIMENSIONS: dict = {}


def entity_key(e: dict, fields) -> str | None:
    """The entity id: the key fields' values joined with ':'; None if one is missing."""
    values = [e.get(f) for f in fields]
    return None if any(v is None for v in values) else ":".join(str(v) for v in values)


def group_entities(events, fields) -> dict[str, list[dict]]:
    groups = defaultdict(list)
    for e in events:
        key = entity_key(e, fields)
        if key is not None:
            groups[key].append(e)
    return dict(groups)


def newest(events) -> dict:
    """The event with the greatest ts (tests keep ts unique)."""
    return max(events, key=lambda e: parse_ts(e["ts"]))


def share_pcts(totals: dict[str, dict], metric: str) -> dict[str, float]:
    """Each entity's percentage of the metric summed over all entities (0 when that is 0)."""
    whole = sum(float(t[metric]) for t in totals.values())
    return {k: float(t[metric]) * 100 / whole if whole else 0.0 for k, t in totals.items()}


def expected_new_entities(domain: str, by: str, counted, org_events) -> dict[str, dict]:
    """Per entity id: ``entityName``, attributes, ``pct`` (if shared) and ``totals``, from the
    counted events (range, scope and filters applied) and, for names (a catalogue's or a
    name column's: the newest ever sent), all the org's events the key may see."""
    dim = NEW_DIMENSIONS[(domain, by)]
    groups = group_entities(counted, dim.key)
    metrics = BREAKDOWN_METRICS[domain][0]
    totals = {k: compute(domain, metrics, g) for k, g in groups.items()}
    if dim.catalogue:
        names = latest_names(org_events, dim.key[0], dim.catalogue)
    elif dim.column:  # the newest name ever sent with the id, as a catalogue's
        everywhere = group_entities(org_events, dim.key)
        names = {k: newest(named)[dim.column] for k, g in everywhere.items()
                 if (named := [e for e in g if e.get(dim.column) is not None])}
    else:
        names = {}
    pcts = share_pcts(totals, dim.share) if dim.share else {}
    out = {}
    for k, g in groups.items():
        entity = {"entityName": names.get(k)}
        for name, field, latest in dim.attributes:
            values = [e.get(field) for e in g if e.get(field) is not None]
            entity[name] = newest(g).get(field) if latest else max(values, default=None)
        if dim.share:
            entity["pct"] = pcts[k]
        entity["totals"] = totals[k]
        out[k] = entity
    return out


def _enrol_declared() -> None:
    from domains import DOMAINS
    for domain in DOMAINS:
        declared_oracle(domain)


_enrol_declared()
NEW_METRICS = {domain: tuple(metrics) for domain, metrics in METRICS.items()}
