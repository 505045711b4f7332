"""The two benchmarked questions, each asked three ways: the gateway's HTTP endpoint,
plain SQL on the raw events in PostgreSQL, and the same SQL in DuckDB.

The plain SQL is written here by hand, as someone without the gateway would write it
(no rollups, no engine helpers), so the comparison also checks the engine's answers.
Every way is reduced to the same plain values, so the answers can be compared exactly:
a series is ``[(bucket start unix s, tokensIn, tokensOut, requests), ...]`` with empty
buckets as zeros; a breakdown is ``({model: (tokensIn, tokensOut, requests)}, entities)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class Query:
    key: str  # "series" | "breakdown"
    label: str
    path: str
    params: dict[str, str]

    @property
    def url(self) -> str:
        return self.path + "?" + "&".join(f"{k}={v}" for k, v in self.params.items())


SERIES = Query("series", "series 30d/1h", "/v2/stats/private-chat",
               {"scope": "org", "window": "30d", "timeBucketSize": "1h"})
BREAKDOWN = Query("breakdown", "breakdown 365d by model", "/v2/stats/private-chat/breakdown/models",
                  {"scope": "org", "window": "365d"})
QUERIES = (SERIES, BREAKDOWN)
BREAKDOWN_LIMIT = 50  # the gateway's default page

ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)  # any UTC midnight: hourly buckets from midnight

# --- PostgreSQL, raw events -------------------------------------------------------------

PG_SERIES = """
WITH grid AS (
    SELECT generate_series(date_bin('1 hour', %(start)s::timestamptz, %(origin)s),
                           date_bin('1 hour', %(end)s::timestamptz - interval '1 microsecond',
                                    %(origin)s),
                           interval '1 hour') AS bucket
), agg AS (
    SELECT date_bin('1 hour', ts, %(origin)s) AS bucket,
           sum(tokens_in) AS tokens_in, sum(tokens_out) AS tokens_out, count(*) AS requests
    FROM events_private_chat
    WHERE org_id = %(org)s AND ts >= %(start)s AND ts < %(end)s
    GROUP BY 1
)
SELECT extract(epoch FROM bucket)::bigint, coalesce(tokens_in, 0), coalesce(tokens_out, 0),
       coalesce(requests, 0)
FROM grid LEFT JOIN agg USING (bucket) ORDER BY bucket
"""

PG_BREAKDOWN = """
SELECT model, sum(tokens_in), sum(tokens_out), count(*) AS requests, count(*) OVER ()
FROM events_private_chat
WHERE org_id = %(org)s AND ts >= %(start)s AND ts < %(end)s AND model IS NOT NULL
GROUP BY model
ORDER BY requests DESC, model
LIMIT %(limit)s
"""

# --- DuckDB, the same events exported once (ts as UTC timestamps) -----------------------

DUCK_SERIES = """
WITH grid AS (
    SELECT generate_series AS bucket
    FROM generate_series(time_bucket(INTERVAL 1 HOUR, $start, $origin),
                         time_bucket(INTERVAL 1 HOUR, $end - INTERVAL 1 MICROSECOND, $origin),
                         INTERVAL 1 HOUR)
), agg AS (
    SELECT time_bucket(INTERVAL 1 HOUR, ts, $origin) AS bucket,
           sum(tokens_in) AS tokens_in, sum(tokens_out) AS tokens_out, count(*) AS requests
    FROM events
    WHERE org_id = $org AND ts >= $start AND ts < $end
    GROUP BY 1
)
SELECT epoch(bucket)::BIGINT, coalesce(tokens_in, 0), coalesce(tokens_out, 0),
       coalesce(requests, 0)
FROM grid LEFT JOIN agg USING (bucket) ORDER BY bucket
"""

DUCK_BREAKDOWN = """
SELECT model, sum(tokens_in), sum(tokens_out), count(*) AS requests, count(*) OVER ()
FROM events
WHERE org_id = $org AND ts >= $start AND ts < $end AND model IS NOT NULL
GROUP BY model
ORDER BY requests DESC, model
LIMIT $limit
"""


@dataclass(frozen=True)
class Bounds:
    """The range one gateway answer covered (its ``meta.start``/``meta.end``)."""

    start: datetime
    end: datetime

    @classmethod
    def of(cls, body: dict) -> Bounds:
        meta = body["meta"]
        return cls(datetime.fromtimestamp(meta["start"], UTC),
                   datetime.fromtimestamp(meta["end"], UTC))


def pg_params(query: Query, org_id: str, bounds: Bounds) -> dict:
    params = {"org": org_id, "start": bounds.start, "end": bounds.end}
    if query.key == "series":
        return {**params, "origin": ORIGIN}
    return {**params, "limit": BREAKDOWN_LIMIT}


def duck_params(query: Query, org_id: str, bounds: Bounds) -> dict:
    """DuckDB holds naive UTC timestamps."""
    naive = {"org": org_id, "start": bounds.start.replace(tzinfo=None),
             "end": bounds.end.replace(tzinfo=None)}
    if query.key == "series":
        return {**naive, "origin": ORIGIN.replace(tzinfo=None)}
    return {**naive, "limit": BREAKDOWN_LIMIT}


# --- one shape for every answer ---------------------------------------------------------


def from_rows(query: Query, rows: list[tuple]):
    """Plain values from SQL rows (PostgreSQL or DuckDB)."""
    if query.key == "series":
        return [tuple(int(v) for v in row) for row in rows]
    entities = {row[0]: (int(row[1]), int(row[2]), int(row[3])) for row in rows}
    return entities, int(rows[0][4]) if rows else 0


def from_body(query: Query, body: dict):
    """Plain values from a gateway response body."""
    if query.key == "series":
        return [(p["ts"], p["tokensIn"], p["tokensOut"], p["requests"]) for p in body["series"]]
    entities = {e["entityId"]: (e["totals"]["tokensIn"], e["totals"]["tokensOut"],
                                e["totals"]["requests"]) for e in body["entities"]}
    return entities, body["meta"]["totalEntities"]


def differences(query: Query, expected, actual, limit: int = 5) -> list[str]:
    """Human-readable differences between two answers (empty: identical)."""
    if query.key == "series":
        found = [f"length {len(expected)} != {len(actual)}"] if len(expected) != len(actual) else []
        found += [f"bucket {a[0]}: {a[1:]} != {b[1:]}" if a[0] == b[0] else f"bucket {a[0]} != {b[0]}"
                  for a, b in zip(expected, actual) if a != b]
        return found[:limit]
    (mine, n_mine), (theirs, n_theirs) = expected, actual
    found = [f"entities {n_mine} != {n_theirs}"] if n_mine != n_theirs else []
    found += [f"{model}: {mine.get(model)} != {theirs.get(model)}"
              for model in sorted(set(mine) | set(theirs)) if mine.get(model) != theirs.get(model)]
    return found[:limit]
