"""The benchmarked query shapes, each asked three ways: the gateway's HTTP endpoint, plain
SQL on the raw events in PostgreSQL, and the same SQL in DuckDB.

The plain SQL is written here by hand, as someone without the gateway would write it (no
rollups, no engine helpers), so the comparison also checks the engine's answers. One text
per shape serves both databases: ``Dialect`` fills in the few functions they spell
differently (``date_bin``/``time_bucket``, ``percentile_cont``/``quantile_cont``, …) and
the placeholders (``@name``: ``%(name)s`` for psycopg, ``$name`` for DuckDB).

Every way is reduced to one ``Answer``: keys in the order the answer gives them (bucket
starts, entity ids, …) and a tuple of values per key, plus exact extras (the entity
count). Values are compared by kind (``Shape.kinds``):

* ``x`` exactly (integers, exact decimals, names, and floats that are the same value both
  ways, such as a maximum);
* ``f`` floats computed the same way from exact parts (a mean: numeric sum / count): equal
  to 1e-9 relative, as DuckDB may round the last bit differently;
* ``p`` approximate latency percentiles of the gateway (log-bucket histograms) against
  PostgreSQL's exact ``percentile_cont``: within (γ-1)/(γ+1) = 1/21 = 4.76% relative for
  γ = 1.1, the documented bound (errors up to 4.7614% occur: the bound is tight);
* ``d`` distinct counts (``activeConversations``, ``conversationsCount``), which the
  gateway may answer approximately (HyperLogLog sketches): within 3% relative, or 3 for
  counts under 100 (the engine's documented bound, max(3% of n, 3): at small counts the
  error is whole register collisions).

The shapes (``--shapes`` keys): ``series``, ``models``, ``users``, ``users-offset``,
``include-series``, ``workspace``, ``runs-stats``, ``calls-series``, ``call-stats``,
``unaligned-5m``, ``ai-series``, ``query``, ``ai-models-ranked``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from bench.data import CALLS_OPS, CALLS_PROJECT, WORKSPACE

ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)  # a UTC midnight: buckets of 5m, 1h from midnight
BREAKDOWN_LIMIT = 50  # the gateway's default page
RUNS_TOP = 10
RUNS_SOURCES = ("api", "playground", "other")
GAMMA = 1.1  # the gateway's log-bucket histograms: an estimate within (γ-1)/(γ+1) = 4.76%
TOLERANCE = {"f": 1e-9, "p": (GAMMA - 1) / (GAMMA + 1), "d": 0.03}
ABSOLUTE = {"d": 3}  # and at least this much off (distinct counts: max(3% of n, 3))
USERS_OFFSET = 10_000


# --- the two SQL dialects ---------------------------------------------------------------


@dataclass(frozen=True)
class Dialect:
    name: str

    @property
    def pg(self) -> bool:
        return self.name == "pg"

    def text(self, template: str) -> str:
        """``@name`` placeholders as the driver wants them."""
        return re.sub(r"@(\w+)", r"%(\1)s" if self.pg else r"$\1", template)

    def bin(self, seconds: int, expr: str) -> str:
        """The start of the fixed ``seconds`` bucket holding ``expr``, from @origin."""
        fn = "date_bin" if self.pg else "time_bucket"
        return f"{fn}(INTERVAL '{seconds} seconds', {expr}, @origin)"

    def trunc(self, unit: str, expr: str) -> str:
        """Calendar truncation in UTC (ISO weeks from Monday)."""
        if self.pg:
            return f"date_trunc('{unit}', {expr}, 'UTC')"
        return f"date_trunc('{unit}', {expr})::TIMESTAMP"

    def epoch(self, expr: str) -> str:
        return f"extract(epoch FROM {expr})::bigint" if self.pg else f"epoch({expr})::BIGINT"

    def exact_sum(self, column: str) -> str:
        """A sum of doubles in exact decimal arithmetic (as the gateway sums means)."""
        return f"sum({column}::numeric)" if self.pg else f"sum({column}::DECIMAL(38, 6))"

    def percentiles(self, qs: tuple[float, ...], column: str) -> str:
        """Exact interpolated percentiles (numpy's default) as an array."""
        listed = ", ".join(map(str, qs))
        if self.pg:
            return f"percentile_cont(ARRAY[{listed}]) WITHIN GROUP (ORDER BY {column})"
        return f"quantile_cont({column}, [{listed}])"

    def c(self, expr: str) -> str:
        """Code-point order (DuckDB compares strings bytewise already)."""
        return f'{expr} COLLATE "C"' if self.pg else expr

    def day_text(self, expr: str) -> str:
        if self.pg:
            return f"to_char({expr} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
        return f"strftime({expr}, '%Y-%m-%d')"

    def params(self, values: dict, text: str) -> dict:
        """The values ``text`` (from ``self.text``) uses; DuckDB refuses any other, and
        holds naive UTC timestamps."""
        if self.pg:
            return values
        used = set(re.findall(r"\$(\w+)", text))
        return {k: v.astimezone(UTC).replace(tzinfo=None) if isinstance(v, datetime) else v
                for k, v in values.items() if k in used}


PG, DUCK = Dialect("pg"), Dialect("duckdb")


# --- answers ----------------------------------------------------------------------------


@dataclass
class Answer:
    keys: list  # in the answer's order
    values: dict  # key -> tuple of values
    extra: tuple = ()  # compared exactly (e.g. the entity count)


def _close(kind: str, mine, exact) -> bool:
    if mine is None or exact is None:
        return mine is None and exact is None
    if kind == "x":
        return mine == exact
    tolerance = TOLERANCE[kind]
    exact, mine = float(exact), float(mine)
    return abs(mine - exact) <= max(tolerance * abs(exact) * (1 + 1e-9) + 1e-9,
                                    ABSOLUTE.get(kind, 0))


def unix(value) -> int | None:
    """Whole unix seconds of a timestamp from either database (DuckDB's are naive UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() // 1)


def mean(total, n) -> float | None:
    """As the engine reads a mean from its parts: float(sum) / float(n)."""
    return float(total) / float(n) if n else None


# --- shapes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # with its query string
    body: bytes | None = None


@dataclass(frozen=True)
class Context:
    """What a dataset gives the shapes to ask with."""

    org_id: str
    users_offset: int  # the users-offset shape's page offset


@dataclass
class Shape:
    key: str
    label: str
    domain: str
    kinds: str  # one kind per value (``Answer.values``); see the module doc
    engine: bool = False  # whether the engine SQL diagnostic applies (one SQL statement)
    explicit_range: bool = False  # the shape names its own start/end (else: a window)

    def request(self, ctx: Context, now: datetime) -> Request:
        raise NotImplementedError

    def bounds(self, request: Request, body: dict, now: datetime) -> tuple[datetime, datetime]:
        """[start, end) the answer covers: the gateway's meta by default."""
        meta = body["meta"]
        return datetime.fromtimestamp(meta["start"], UTC), datetime.fromtimestamp(meta["end"], UTC)

    def from_body(self, body: dict) -> Answer:
        raise NotImplementedError

    def sql(self, d: Dialect) -> str:
        raise NotImplementedError

    def params(self, ctx: Context, start: datetime, end: datetime) -> dict:
        return {"org": ctx.org_id, "start": start, "end": end, "origin": ORIGIN}

    def from_rows(self, rows: list[tuple]) -> Answer:
        raise NotImplementedError

    def kinds_of(self, key) -> str:
        return self.kinds

    def differences(self, gateway: Answer, exact: Answer, limit: int = 5) -> list[str]:
        """Human-readable differences (empty: the same answer within the kinds' tolerance)."""
        found = []
        if gateway.extra != exact.extra:
            found.append(f"{gateway.extra} != {exact.extra}")
        if gateway.keys != exact.keys:
            missing = [k for k in exact.keys if k not in gateway.values][:3]
            extra = [k for k in gateway.keys if k not in exact.values][:3]
            found.append(f"keys differ ({len(gateway.keys)} vs {len(exact.keys)}; "
                         f"only in SQL {missing}, only in gateway {extra})"
                         if missing or extra else "keys in a different order")
        for key in gateway.keys:
            if key not in exact.values:
                continue
            mine, theirs = gateway.values[key], exact.values[key]
            kinds = self.kinds_of(key)
            if len(mine) != len(theirs) or not all(
                    _close(k, a, b) for k, a, b in zip(kinds, mine, theirs)):
                found.append(f"{key}: {mine} != {theirs}")
        return found[:limit]


def _query(path: str, params: dict[str, str]) -> str:
    return path + "?" + "&".join(f"{k}={v}" for k, v in params.items())


def _grid(d: Dialect, step: str) -> str:
    """Every bucket start intersecting [@start, @end), as ``grid(bucket)``."""
    if step == "1w":
        first, last, every = (d.trunc("week", "@start"),
                              d.trunc("week", "@end - INTERVAL '1 microsecond'"),
                              "INTERVAL '7 days'")
    else:
        seconds = int(step)
        first, last, every = (d.bin(seconds, "@start"),
                              d.bin(seconds, "@end - INTERVAL '1 microsecond'"),
                              f"INTERVAL '{seconds} seconds'")
    return f"SELECT * FROM generate_series({first}, {last}, {every}) AS g(bucket)"


def _bucket(d: Dialect, step: str, column: str = "ts") -> str:
    return d.trunc("week", column) if step == "1w" else d.bin(int(step), column)


# The series' value columns: (aggregate over the bucket's events, value for an empty bucket)
PC_SERIES = [("sum(tokens_in)", "0"), ("sum(tokens_out)", "0"), ("count(*)", "0")]


@dataclass
class Series(Shape):
    """``GET /v2/stats/<domain>`` as a zero-filled bucket series."""

    path: str = ""
    query: dict = field(default_factory=dict)
    step: str = "3600"  # seconds, or "1w" (calendar weeks)
    table: str = ""
    columns: tuple = ()  # response metric names, in order
    select: tuple = ()  # (SQL aggregate, or a function of the Dialect giving it; the SQL
    #                    value of an empty bucket) per selected column
    unaligned: timedelta | None = None  # explicit start/end over this span, off the grid
    primary: str | None = None  # checked: summary.total is the sum of this metric

    def request(self, ctx: Context, now: datetime) -> Request:
        params = dict(self.query)
        if self.unaligned is not None:
            start, end = self._range(now)
            params.update(start=str(int(start.timestamp())), end=str(int(end.timestamp())))
        return Request("GET", _query(self.path, params))

    def _range(self, now: datetime) -> tuple[datetime, datetime]:
        """A range whose ends are 137 s and 211 s past a 5-minute boundary."""
        seconds = int(now.timestamp()) // 300 * 300
        end = seconds - 300 + 211
        start = seconds - int(self.unaligned.total_seconds()) + 137
        return datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)

    def from_body(self, body: dict) -> Answer:
        points = body["series"]
        return Answer([p["ts"] for p in points],
                      {p["ts"]: tuple(p[c] for c in self.columns) for p in points})

    def sql(self, d: Dialect) -> str:
        aggs = ",\n           ".join(f"{expr(d) if callable(expr) else expr} AS v{i}"
                                     for i, (expr, _) in enumerate(self.select))
        outs = ", ".join(f"coalesce(v{i}, {empty})" if empty != "NULL" else f"v{i}"
                         for i, (_, empty) in enumerate(self.select))
        return d.text(f"""
WITH grid AS ({_grid(d, self.step)}),
agg AS (
    SELECT {_bucket(d, self.step)} AS bucket,
           {aggs}
    FROM {self.table}
    WHERE org_id = @org AND ts >= @start AND ts < @end
    GROUP BY 1
)
SELECT {d.epoch("bucket")}, {outs}
FROM grid LEFT JOIN agg USING (bucket) ORDER BY bucket""")

    def from_rows(self, rows: list[tuple]) -> Answer:
        values = {row[0]: self.finish(row[1:]) for row in rows}
        return Answer([row[0] for row in rows], values)

    def finish(self, row: tuple) -> tuple:
        """The response's values from the selected columns."""
        return tuple(int(v) if isinstance(v, Decimal) else v for v in row)


@dataclass
class AiSeries(Series):
    """The ai series: sums, requests, distinct conversations, mean and percentile latency."""

    def finish(self, row: tuple) -> tuple:
        *sums, requests, conversations, lat_sum, lat_n, pcts = row
        return (*(int(v) for v in sums), requests, conversations, mean(lat_sum, lat_n),
                *(pcts or (None,) * 4))


@dataclass
class CallsSeries(Series):
    def finish(self, row: tuple) -> tuple:
        calls, errors, lat_sum, lat_n, lat_max, pcts = row
        return (calls, errors, mean(lat_sum, lat_n), lat_max, *(pcts or (None,) * 4))


def page_answer(body: dict, columns: tuple) -> Answer:
    """A breakdown page: its entity ids in order, each one's totals of ``columns``, and
    the count of all entities."""
    entities = body["entities"]
    return Answer([e["entityId"] for e in entities],
                  {e["entityId"]: tuple(e["totals"][c] for c in columns) for e in entities},
                  (body["meta"]["totalEntities"],))


@dataclass
class Breakdown(Shape):
    """``GET /v2/stats/private-chat/breakdown/<by>``: one page of entities."""

    path: str = ""
    query: dict = field(default_factory=dict)
    column: str = ""  # the dimension's column
    columns: tuple = ()  # totals' metric names, in order
    select: tuple = ()  # SQL aggregates, in ``columns`` order
    sort: str = "count(*)"  # the SQL of the sort metric
    where: str = ""  # more conditions (scope)
    offset_from_context: bool = False

    def request(self, ctx: Context, now: datetime) -> Request:
        params = dict(self.query)
        if self.offset_from_context:
            params["offset"] = str(ctx.users_offset)
        return Request("GET", _query(self.path, params))

    def params(self, ctx: Context, start: datetime, end: datetime) -> dict:
        offset = ctx.users_offset if self.offset_from_context else 0
        return {"org": ctx.org_id, "start": start, "end": end, "limit": BREAKDOWN_LIMIT,
                "offset": offset, "workspace": WORKSPACE}

    def from_body(self, body: dict) -> Answer:
        return page_answer(body, self.columns)

    def sql(self, d: Dialect) -> str:
        values = ", ".join(self.select)
        return d.text(f"""
SELECT {self.column}, {values}, count(*) OVER ()
FROM events_private_chat
WHERE org_id = @org AND ts >= @start AND ts < @end AND {self.column} IS NOT NULL{self.where}
GROUP BY {self.column}
ORDER BY {self.sort} DESC, {d.c(self.column)}
LIMIT @limit OFFSET @offset""")

    def from_rows(self, rows: list[tuple]) -> Answer:
        values = {row[0]: tuple(unix(v) if isinstance(v, datetime) else
                                int(v) if isinstance(v, Decimal) else v for v in row[1:-1])
                  for row in rows}
        return Answer([row[0] for row in rows], values, (rows[0][-1] if rows else 0,))


@dataclass
class RankedByEstimate(Shape):
    """``GET /v2/stats/ai/breakdown/models?sort=activeConversations`` over a year: every
    ai total per model, ranked by its distinct conversations. The gateway ranks by the
    estimates it shows (within 3%), plain SQL by the exact counts, so the models are
    compared as a set, and the gateway's order must be its own values' (descending, ties
    by id). Keys: model ids."""

    path: str = "/v2/stats/ai/breakdown/models"
    query: dict = field(default_factory=dict)
    columns: tuple = ()  # totals' metric names, in order
    select: tuple = ()  # SQL aggregates (or functions of the Dialect), the latency's last
    rank_by: str = "activeConversations"

    def request(self, ctx: Context, now: datetime) -> Request:
        return Request("GET", _query(self.path, self.query))

    def from_body(self, body: dict) -> Answer:
        return page_answer(body, self.columns)

    def sql(self, d: Dialect) -> str:
        values = ", ".join(expr(d) if callable(expr) else expr for expr in self.select)
        return d.text(f"""
SELECT model, {values}, count(*) OVER ()
FROM events_ai
WHERE org_id = @org AND ts >= @start AND ts < @end AND model IS NOT NULL
GROUP BY model
ORDER BY {d.c("model")}""")

    def from_rows(self, rows: list[tuple]) -> Answer:
        values = {}
        for model, *sums, requests, conversations, lat_sum, lat_n, pcts, _ in rows:
            values[model] = (*(int(v) for v in sums), requests, conversations,
                             mean(lat_sum, lat_n), *(pcts or (None,) * 4))
        return Answer([row[0] for row in rows], values, (rows[0][-1] if rows else 0,))

    def differences(self, gateway: Answer, exact: Answer, limit: int = 5) -> list[str]:
        at = self.columns.index(self.rank_by)
        ranked = sorted(gateway.keys, key=lambda k: (-gateway.values[k][at], k))
        found = [] if gateway.keys == ranked else [
            f"not in the order of its own {self.rank_by}: {gateway.keys} (expected {ranked})"]
        as_set = Answer(sorted(gateway.keys), gateway.values, gateway.extra)
        return (found + super().differences(as_set, exact, limit))[:limit]


@dataclass
class BreakdownWithSeries(Shape):
    """A models breakdown with ``includeSeries=true``: totals and a zero-filled hourly
    series per entity. Keys: ``(entity, None)`` for the totals, ``(entity, ts)`` per point."""

    path: str = ""
    query: dict = field(default_factory=dict)

    def request(self, ctx: Context, now: datetime) -> Request:
        return Request("GET", _query(self.path, self.query))

    def from_body(self, body: dict) -> Answer:
        keys, values = [], {}
        for e in body["entities"]:
            t = e["totals"]
            keys.append((e["entityId"], None))
            values[keys[-1]] = (t["tokensIn"], t["tokensOut"], t["requests"])
            for p in e["series"] or ():
                keys.append((e["entityId"], p["ts"]))
                values[keys[-1]] = (p["tokensIn"], p["tokensOut"], p["requests"])
        return Answer(keys, values, (body["meta"]["totalEntities"],))

    def params(self, ctx: Context, start: datetime, end: datetime) -> dict:
        return {"org": ctx.org_id, "start": start, "end": end, "origin": ORIGIN,
                "limit": BREAKDOWN_LIMIT}

    def sql(self, d: Dialect) -> str:
        window = "org_id = @org AND ts >= @start AND ts < @end AND model IS NOT NULL"
        return d.text(f"""
WITH top AS (
    SELECT model, sum(tokens_in) AS tokens_in, sum(tokens_out) AS tokens_out,
           count(*) AS requests, count(*) OVER () AS entities
    FROM events_private_chat WHERE {window}
    GROUP BY model ORDER BY requests DESC, {d.c("model")} LIMIT @limit
), ranked AS (
    SELECT *, row_number() OVER (ORDER BY requests DESC, {d.c("model")}) AS rank FROM top
), grid AS ({_grid(d, "3600")}),
agg AS (
    SELECT model, {d.bin(3600, "ts")} AS bucket, sum(tokens_in) AS tokens_in,
           sum(tokens_out) AS tokens_out, count(*) AS requests
    FROM events_private_chat WHERE {window} AND model IN (SELECT model FROM top)
    GROUP BY 1, 2
)
SELECT model, NULL AS ts, tokens_in, tokens_out, requests, entities, rank FROM ranked
UNION ALL
SELECT r.model, {d.epoch("g.bucket")}, coalesce(a.tokens_in, 0), coalesce(a.tokens_out, 0),
       coalesce(a.requests, 0), r.entities, r.rank
FROM ranked AS r CROSS JOIN grid AS g
LEFT JOIN agg AS a ON a.model = r.model AND a.bucket = g.bucket
ORDER BY 7, 2 NULLS FIRST""")

    def from_rows(self, rows: list[tuple]) -> Answer:
        keys = [(row[0], row[1]) for row in rows]
        values = {(row[0], row[1]): (int(row[2]), int(row[3]), row[4]) for row in rows}
        return Answer(keys, values, (rows[0][5] if rows else 0,))


QUERY_MODELS = ("gpt-4o", "claude-sonnet-4")  # the query shape's IN filter
QUERY_LIMIT = 1000


@dataclass
class GroupedQuery(Shape):
    """``POST /v2/query/ai``: tokens and requests per (model, workspace) and day over 365
    days, for two models (an IN filter); the first page of 1,000 rows in the gateway's
    order (tokensIn descending, then model, workspace and day ascending) and the count of
    all rows. Keys: ``(day, model, workspace)``."""

    def _body(self) -> dict:
        return {"metrics": ["tokensIn", "tokensOut", "requests"],
                "groupBy": ["models", "workspaces"], "window": "365d",
                "timeBucketSize": "1d", "limit": QUERY_LIMIT,
                "filters": [{"field": "model", "op": "in", "values": list(QUERY_MODELS)}]}

    def request(self, ctx: Context, now: datetime) -> Request:
        return Request("POST", "/v2/query/ai", json.dumps(self._body()).encode())

    def from_body(self, body: dict) -> Answer:
        rows = body["rows"]
        keys = [(r["time"], r["models"], r["workspaces"]) for r in rows]
        return Answer(keys, {k: (r["tokensIn"], r["tokensOut"], r["requests"])
                             for k, r in zip(keys, rows)}, (body["meta"]["totalRows"],))

    def params(self, ctx: Context, start: datetime, end: datetime) -> dict:
        return {"org": ctx.org_id, "start": start, "end": end, "origin": ORIGIN,
                "models": list(QUERY_MODELS), "limit": QUERY_LIMIT}

    def sql(self, d: Dialect) -> str:
        models = "model = ANY(@models)" if d.pg else "list_contains(@models, model)"
        return d.text(f"""
SELECT {d.epoch(d.bin(86400, "ts"))} AS day, model, workspace_id,
       coalesce(sum(tokens_in), 0) AS tokens_in, coalesce(sum(tokens_out), 0) AS tokens_out,
       count(*) AS requests, count(*) OVER () AS all_rows
FROM events_ai
WHERE org_id = @org AND ts >= @start AND ts < @end AND {models}
GROUP BY 1, 2, 3
ORDER BY tokens_in DESC, {d.c("model")}, {d.c("workspace_id")} NULLS LAST, 1
LIMIT @limit""")

    def from_rows(self, rows: list[tuple]) -> Answer:
        keys = [(int(r[0]), r[1], r[2]) for r in rows]
        return Answer(keys, {k: (int(r[3]), int(r[4]), r[5]) for k, r in zip(keys, rows)},
                      (rows[0][6] if rows else 0,))


def runflow_text(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def percent(part: int, whole: int) -> float:
    """The documented ``pct``: part / whole as a percentage, half-up to 2 decimals."""
    if not whole:
        return 0.0
    return float((Decimal(part * 100) / Decimal(whole)).quantize(Decimal("0.01"), ROUND_HALF_UP))


@dataclass
class RunsStats(Shape):
    """``GET /v1/runs-stats`` over the last 365 days (both ends inclusive): a daily
    timeline, the top 10 targets, the split by source. Keys ``("day", date)``,
    ``("flow", type:slug)``, ``("source", name)``."""

    span: timedelta = timedelta(days=365)

    def request(self, ctx: Context, now: datetime) -> Request:
        start, end = self._range(now)
        return Request("GET", _query("/v1/runs-stats",
                                     {"start": runflow_text(start), "end": runflow_text(end)}))

    def _range(self, now: datetime) -> tuple[datetime, datetime]:
        end = now.replace(microsecond=0)
        return end - self.span, end

    def bounds(self, request, body, now):
        return self._range(now)

    def kinds_of(self, key) -> str:
        return {"day": "xx", "flow": "xxxf", "source": "xx"}[key[0]]

    def from_body(self, body: dict) -> Answer:
        keys, values = [], {}
        for p in body["timeline"]:
            keys.append(("day", p["date"]))
            values[keys[-1]] = (p["runs"], Decimal(p["spend"]))
        for f in body["by_flow"]:
            keys.append(("flow", f"{f['target_type']}:{f['flow_slug']}"))
            values[keys[-1]] = (f["flow_name"], f["runs"], Decimal(f["spend"]),
                                f["avg_duration_ms"])
        for s in body["by_source"]:
            keys.append(("source", s["source"]))
            values[keys[-1]] = (s["runs"], s["pct"])
        return Answer(keys, values)

    def sql(self, d: Dialect) -> str:
        key = "target_type || ':' || target_slug"
        return d.text(f"""
WITH ev AS (
    SELECT * FROM events_runs WHERE org_id = @org AND ts >= @start AND ts <= @end
), days AS (
    SELECT * FROM generate_series({d.trunc("day", "@start")}, {d.trunc("day", "@end")},
                                  INTERVAL '1 day') AS g(day)
), daily AS (
    SELECT {d.trunc("day", "ts")} AS day, count(*) AS runs, sum(spend) AS spend
    FROM ev GROUP BY 1
), targets AS (
    SELECT {key} AS target, count(*) AS runs, sum(spend) AS spend,
           {d.exact_sum("duration_ms")} AS duration_sum, count(duration_ms) AS durations,
           (array_agg(target_name ORDER BY ts DESC, event_id DESC)
               FILTER (WHERE target_name IS NOT NULL))[1] AS name
    FROM ev GROUP BY 1
    ORDER BY runs DESC, spend DESC, {d.c(f"({key})")} LIMIT {RUNS_TOP}
)
SELECT 1 AS part, row_number() OVER (ORDER BY day) AS n, {d.day_text("day")} AS key,
       NULL AS name, coalesce(daily.runs, 0) AS runs, coalesce(daily.spend, 0) AS spend,
       NULL AS duration_sum, NULL AS durations
FROM days LEFT JOIN daily USING (day)
UNION ALL
SELECT 2, row_number() OVER (ORDER BY runs DESC, spend DESC, {d.c("target")}), target, name,
       runs, spend, duration_sum, durations
FROM targets
UNION ALL
SELECT 3, 0, source, NULL, count(*), NULL, NULL, NULL FROM ev GROUP BY source
ORDER BY 1, 2""")

    def from_rows(self, rows: list[tuple]) -> Answer:
        keys, values, sources = [], {}, {}
        for part, _, key, name, runs, spend, duration_sum, durations in rows:
            if part == 1:
                keys.append(("day", key))
                values[keys[-1]] = (runs, Decimal(spend))
            elif part == 2:
                average = mean(duration_sum, durations)
                keys.append(("flow", key))
                values[keys[-1]] = (name or key.split(":", 1)[1], runs, Decimal(spend),
                                    0.0 if average is None else round(average, 2))
            else:
                sources[key] = runs
        whole = sum(sources.values())
        for source in RUNS_SOURCES:
            keys.append(("source", source))
            values[keys[-1]] = (sources.get(source, 0), percent(sources.get(source, 0), whole))
        return Answer(keys, values)


CALL_PERCENTILES = (50, 95, 99)


@dataclass
class CallStats(Shape):
    """``POST /calls/stats``: one project's trace roots of two ops (a root op and a child
    op, which ``trace_roots_only`` leaves out), 30 days in hourly buckets: mean, max and
    three exact percentiles of latency, errors and calls per bucket."""

    span: timedelta = timedelta(days=30)

    def _range(self, now: datetime) -> tuple[datetime, datetime]:
        end = now.replace(microsecond=0)
        return end - self.span, end

    def request(self, ctx: Context, now: datetime) -> Request:
        start, end = self._range(now)
        body = {"project_id": CALLS_PROJECT, "start": runflow_text(start),
                "end": runflow_text(end), "granularity": 3600,
                "call_metrics": [{"metric": "latency_ms", "aggregations": ["avg", "max"],
                                  "percentiles": list(CALL_PERCENTILES)},
                                 {"metric": "error_count", "aggregations": ["sum"]}],
                "filter": {"op_names": list(CALLS_OPS), "trace_roots_only": True}}
        return Request("POST", "/calls/stats", json.dumps(body).encode())

    def bounds(self, request, body, now):
        return self._range(now)

    def params(self, ctx: Context, start: datetime, end: datetime) -> dict:
        return {"org": ctx.org_id, "start": start, "end": end, "origin": ORIGIN,
                "project": CALLS_PROJECT}

    def from_body(self, body: dict) -> Answer:
        keys, values = [], {}
        for b in body["call_buckets"]:
            ts = int(datetime.fromisoformat(b["timestamp"].replace("Z", "+00:00")).timestamp())
            keys.append(ts)
            values[ts] = (b["count"], b["avg_latency_ms"], b["max_latency_ms"],
                          *(b[f"p{q}_latency_ms"] for q in CALL_PERCENTILES),
                          b["sum_error_count"])
        return Answer(keys, values)

    def sql(self, d: Dialect) -> str:
        ops = ", ".join(f"'{op}'" for op in CALLS_OPS)
        qs = tuple(q / 100 for q in CALL_PERCENTILES)
        return d.text(f"""
WITH grid AS ({_grid(d, "3600")}),
agg AS (
    SELECT {d.bin(3600, "ts")} AS bucket, count(*) AS calls,
           {d.exact_sum("latency_ms")} AS latency_sum, count(latency_ms) AS latencies,
           max(latency_ms) AS latency_max, {d.percentiles(qs, "latency_ms")} AS pcts,
           count(*) FILTER (WHERE error) AS errors
    FROM events_calls
    WHERE org_id = @org AND ts >= @start AND ts < @end AND project_id = @project
      AND op_name IN ({ops}) AND parent_id IS NULL
    GROUP BY 1
)
SELECT {d.epoch("bucket")}, coalesce(calls, 0), latency_sum, latencies, latency_max, pcts,
       coalesce(errors, 0)
FROM grid LEFT JOIN agg USING (bucket) ORDER BY bucket""")

    def from_rows(self, rows: list[tuple]) -> Answer:
        values = {}
        for ts, calls, latency_sum, latencies, latency_max, pcts, errors in rows:
            values[ts] = (calls, mean(latency_sum, latencies), latency_max,
                          *(pcts or (None,) * len(CALL_PERCENTILES)), errors)
        return Answer([row[0] for row in rows], values)


# --- the shapes benchmarked -------------------------------------------------------------

PC = "/v2/stats/private-chat"
MODEL_TOTALS = ("sum(tokens_in)", "sum(tokens_out)", "count(*)")
LATENCY_PCTS = (0.5, 0.9, 0.95, 0.99)
P_NAMES = ("latencyMsP50", "latencyMsP90", "latencyMsP95", "latencyMsP99")

SHAPES: tuple[Shape, ...] = (
    Series("series", "private-chat series 30d/1h", "private-chat", "xxx", engine=True,
           path=PC, query={"scope": "org", "window": "30d", "timeBucketSize": "1h"},
           table="events_private_chat", columns=("tokensIn", "tokensOut", "requests"),
           select=tuple(PC_SERIES), primary="requests"),
    Breakdown("models", "private-chat models 365d", "private-chat", "xxx", engine=True,
              path=PC + "/breakdown/models", query={"scope": "org", "window": "365d"},
              column="model", columns=("tokensIn", "tokensOut", "requests"),
              select=MODEL_TOTALS),
    Breakdown("users", "private-chat users 365d by tokensOut", "private-chat", "xxxdx",
              engine=True, path=PC + "/breakdown/users",
              query={"scope": "org", "window": "365d", "sort": "tokensOut"},
              column="user_id",
              columns=("tokensIn", "tokensOut", "requests", "conversationsCount",
                       "lastActiveAt"),
              select=(*MODEL_TOTALS, "count(DISTINCT conversation_id)", "max(ts)"),
              sort="sum(tokens_out)"),
    Breakdown("users-offset", "private-chat users 365d by tokensOut, offset", "private-chat",
              "xxxdx", engine=True, path=PC + "/breakdown/users",
              query={"scope": "org", "window": "365d", "sort": "tokensOut"},
              column="user_id",
              columns=("tokensIn", "tokensOut", "requests", "conversationsCount",
                       "lastActiveAt"),
              select=(*MODEL_TOTALS, "count(DISTINCT conversation_id)", "max(ts)"),
              sort="sum(tokens_out)", offset_from_context=True),
    BreakdownWithSeries("include-series", "private-chat models 30d/1h includeSeries",
                        "private-chat", "xxx", path=PC + "/breakdown/models",
                        query={"scope": "org", "window": "30d", "timeBucketSize": "1h",
                               "includeSeries": "true"}),
    Breakdown("workspace", "private-chat models 365d, workspace scope", "private-chat",
              "xxx", engine=True, path=PC + "/breakdown/models",
              query={"scope": "workspace", "id": WORKSPACE, "window": "365d"},
              column="model", columns=("tokensIn", "tokensOut", "requests"),
              select=MODEL_TOTALS, where=" AND workspace_id = @workspace"),
    RunsStats("runs-stats", "runs-stats 365d", "runs", ""),
    CallsSeries("calls-series", "calls series 30d/1h, latency percentiles", "calls",
                "xxfxpppp", path="/v2/stats/calls",
                query={"scope": "org", "window": "30d", "timeBucketSize": "1h"},
                table="events_calls",
                columns=("callCount", "errorCount", "latencyMs", "latencyMsMax", *P_NAMES),
                select=(("count(*)", "0"), ("count(*) FILTER (WHERE error)", "0"),
                        (lambda d: d.exact_sum("latency_ms"), "NULL"), ("count(latency_ms)", "0"),
                        ("max(latency_ms)", "NULL"),
                        (lambda d: d.percentiles(LATENCY_PCTS, "latency_ms"), "NULL")),
                primary="callCount"),
    CallStats("call-stats", "POST /calls/stats 30d/1h, roots of 2 ops, 3 percentiles",
              "calls", "xfxfffx", explicit_range=True),
    Series("unaligned-5m", "private-chat series 7d/5m, unaligned range", "private-chat",
           "xxx", engine=True, path=PC, query={"scope": "org", "timeBucketSize": "5m"},
           step="300", table="events_private_chat",
           columns=("tokensIn", "tokensOut", "requests"), select=tuple(PC_SERIES),
           unaligned=timedelta(days=7), primary="requests", explicit_range=True),
    GroupedQuery("query", "POST /v2/query: ai by model x workspace x day, 365d, IN filter",
                 "ai", "xxx"),
    RankedByEstimate("ai-models-ranked", "ai models 365d by activeConversations", "ai",
                     "xxxxxdfpppp", query={"scope": "org", "window": "365d",
                                           "sort": "activeConversations"},
                     columns=("tokensIn", "tokensOut", "policyTokensIn", "policyTokensOut",
                              "requests", "activeConversations", "latencyMs", *P_NAMES),
                     select=("sum(tokens_in)", "sum(tokens_out)", "sum(policy_tokens_in)",
                             "sum(policy_tokens_out)", "count(*)",
                             "count(DISTINCT conversation_id)",
                             lambda d: d.exact_sum("latency_ms"), "count(latency_ms)",
                             lambda d: d.percentiles(LATENCY_PCTS, "latency_ms"))),
    AiSeries("ai-series", "ai series 365d (1w), activeConversations", "ai", "xxxxxdfpppp",
             path="/v2/stats/ai", query={"scope": "org", "window": "365d"}, step="1w",
             table="events_ai",
             columns=("tokensIn", "tokensOut", "policyTokensIn", "policyTokensOut",
                      "requests", "activeConversations", "latencyMs", *P_NAMES),
             select=(("sum(tokens_in)", "0"), ("sum(tokens_out)", "0"),
                     ("sum(policy_tokens_in)", "0"), ("sum(policy_tokens_out)", "0"),
                     ("count(*)", "0"), ("count(DISTINCT conversation_id)", "0"),
                     (lambda d: d.exact_sum("latency_ms"), "NULL"), ("count(latency_ms)", "0"),
                     (lambda d: d.percentiles(LATENCY_PCTS, "latency_ms"), "NULL")),
             primary="requests"),
)
SHAPE_BY_KEY = {s.key: s for s in SHAPES}
