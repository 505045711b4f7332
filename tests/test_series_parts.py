"""The series hot path (``series_parts_sql`` + ``StatsEngine._bucket_rows``): SQL text built
once per request shape with every request value a placeholder, bigint answers with an
exact fallback past bigint, and rollup segments read without merging where that is exact."""

from __future__ import annotations

from dataclasses import replace

import pytest
from datetime import datetime, timedelta

from domains.private_chat import DOMAIN as PRIVATE_CHAT
from expected import UTC, unix, utc
from stats_gateway.core.domain import Cube
from stats_gateway.core.request import Filter, Scope, StatsRequest
from stats_gateway.core.sql import bucket_keys, series_parts_sql
from stats_gateway.core.timebuckets import BUCKET_SIZES, make_plan
from support import ingest, ok, rollup_of
from stats_gateway.core.rollup_sql import rebuild_sql, rollup_ddl
from stats_gateway.core.rollups import domain_rollups
from stats_gateway.core.ingest import MAX_INTEGER

BIG = MAX_INTEGER  # the largest integer a single event may carry
N_BIG = 1025  # events of BIG in one hour: their sum passes 2^63 - 1
METRICS = [PRIVATE_CHAT.metric(name) for name in ("tokensIn", "tokensOut", "requests")]


def _request(start: datetime, end: datetime, size: str = "1h", tz: str = "UTC",
             scope: Scope = Scope("org", None), filters=()) -> StatsRequest:
    return StatsRequest(scope=scope, window=None, plan=make_plan(start, end, BUCKET_SIZES[size], tz),
                        filters=tuple(filters))


def test_sums_past_bigint_answer_exactly(client, new_org):
    """1,025 events of the largest integer in one hour: the bucket's sum no longer fits a
    bigint, so the database refuses the narrow answer and the engine asks again for
    numerics."""
    org = new_org()
    hour = utc(2026, 3, 2, 10)
    events = [{"eventId": f"big-{i}", "ts": (hour + timedelta(seconds=3 * i)).isoformat(),
               "model": "m1", "userId": "u1", "tokensIn": BIG, "tokensOut": i}
              for i in range(N_BIG)]
    assert N_BIG * BIG > 2**63 - 1
    events.append({"eventId": "small", "ts": (hour + timedelta(hours=2)).isoformat(),
                   "model": "m1", "userId": "u1", "tokensIn": 5, "tokensOut": 6})
    ingest(client, org, "private-chat", events)
    params = {"scope": "org", "start": str(unix(hour - timedelta(hours=1))),
              "end": str(unix(hour + timedelta(hours=3, minutes=30))), "timeBucketSize": "1h",
              "metric": "tokensIn"}
    body = ok(client, "/v2/stats/private-chat", org.headers, params)
    got = {p["ts"]: (p["tokensIn"], p["tokensOut"], p["requests"]) for p in body["series"]}
    assert got == {unix(hour - timedelta(hours=1)): (0, 0, 0),
                   unix(hour): (N_BIG * BIG, sum(range(N_BIG)), N_BIG),
                   unix(hour + timedelta(hours=1)): (0, 0, 0),
                   unix(hour + timedelta(hours=2)): (5, 6, 1),
                   unix(hour + timedelta(hours=3)): (0, 0, 0)}
    assert body["summary"]["total"] == N_BIG * BIG + 5
    assert body["summary"]["max"] == N_BIG * BIG


def test_sql_text_depends_on_the_request_shape_only():
    """Same shape, other values: the very same text (cached), the values as parameters."""
    a = _request(utc(2026, 1, 5, 3, 17, 9), utc(2026, 2, 4, 3, 17, 9))
    b = _request(utc(2026, 4, 1, 8, 40, 1), utc(2026, 5, 1, 8, 40, 1))
    sql_a = series_parts_sql(PRIVATE_CHAT, a, METRICS, "00000000-0000-0000-0000-00000000000a")
    sql_b = series_parts_sql(PRIVATE_CHAT, b, METRICS, "00000000-0000-0000-0000-00000000000b")
    assert sql_a.text == sql_b.text and sql_a.text is sql_b.text  # built once
    assert sql_a.params["org"].endswith("a") and sql_b.params["org"].endswith("b")
    assert (sql_a.params["start"], sql_a.params["end"]) == (a.plan.start, a.plan.end)
    assert (sql_b.params["start"], sql_b.params["end"]) == (b.plan.start, b.plan.end)
    assert "2026" not in sql_a.text and "0000" not in sql_a.text  # no value in the text
    # the cut points between raw ends, 5-minute slots and hours are parameters too
    assert sql_a.params["t1"] == utc(2026, 1, 5, 3, 20) and sql_b.params["t1"] == utc(2026, 4, 1, 8, 45)
    assert sql_a.params["t2"] == utc(2026, 1, 5, 4) and sql_b.params["t2"] == utc(2026, 4, 1, 9)
    # a filter changes the shape (another text), its value is a parameter
    filtered = _request(a.plan.start, a.plan.end, filters=[Filter("model", "model", "gpt-x")])
    sql_f = series_parts_sql(PRIVATE_CHAT, filtered, METRICS, "org")
    assert sql_f.text != sql_a.text and "gpt-x" not in sql_f.text
    assert "gpt-x" in sql_f.params.values()


def test_hourly_rollup_rows_are_read_as_they_are():
    """1h buckets read from an hourly rollup whose every key column the request pins to one
    value: its rows are the buckets (no GROUP BY over them), and only the finer slots and
    raw ends around them are merged. A cube with a column the request leaves free keeps
    several rows per hour, which must be grouped."""
    whole = replace(PRIVATE_CHAT, rollups=(
        Cube(name="whole", columns=(), grains=("15m", "1h")),
        Cube(name="workspaces", columns=("workspace_id",), grains=("15m", "1h"))))
    request = _request(utc(2026, 1, 5, 3, 17, 9), utc(2026, 2, 4, 3, 17, 9))
    text = series_parts_sql(whole, request, METRICS, "org").text
    hourly = next(part for part in text.split(" UNION ALL ")
                  if rollup_of(whole, "whole", "1h").table in part)
    assert "GROUP BY" not in hourly
    assert text.count(rollup_of(whole, "whole", "15m").table) == 2
    assert "GROUP BY \"bucket_ts\"" in text
    # with a workspace scope the column-less cube no longer fits: the workspace cube's
    # slots are still one row per hour for one workspace
    scoped = _request(request.plan.start, request.plan.end, scope=Scope("workspace", "w1"))
    text = series_parts_sql(whole, scoped, METRICS, "org").text
    hourly = next(part for part in text.split(" UNION ALL ")
                  if rollup_of(whole, "workspaces", "1h").table in part)
    assert "GROUP BY" not in hourly
    # 6h buckets: an hourly slot is not a bucket, and the first and last buckets take
    # 15-minute slots and raw events too: the hourly rows go to the merge as they are,
    # binned to their bucket, and are grouped there once with the others
    coarse = _request(request.plan.start, request.plan.end, size="6h")
    text = series_parts_sql(whole, coarse, METRICS, "org").text
    hourly = next(part for part in text.split(" UNION ALL ")
                  if rollup_of(whole, "whole", "1h").table in part)
    assert "GROUP BY" not in hourly and "date_bin(" in hourly
    assert text.count('GROUP BY "bucket_ts"') == 1
    # the default cubes: the whole org reads the column-less org cube row for row; the
    # scope cube holds (workspace, repo), so a workspace's or a repo's hour has a row per
    # pair, grouped into the bucket
    text = series_parts_sql(PRIVATE_CHAT, request, METRICS, "org").text
    hourly = next(part for part in text.split(" UNION ALL ")
                  if rollup_of(PRIVATE_CHAT, "org", "1h").table in part)
    assert "GROUP BY" not in hourly
    assert rollup_of(PRIVATE_CHAT, "scope", "1h").table not in text
    for scope in (Scope("workspace", "w1"), Scope("repo", "r1")):
        req = _request(request.plan.start, request.plan.end, scope=scope)
        text = series_parts_sql(PRIVATE_CHAT, req, METRICS, "org").text
        hourly = next(part for part in text.split(" UNION ALL ")
                      if rollup_of(PRIVATE_CHAT, "scope", "1h").table in part)
        assert "GROUP BY" in hourly, scope


def test_slots_read_row_for_row_give_the_events_sums(client, db, new_org):
    """The row-for-row read is exact: the SQL of a domain declaring a column-less cube, run
    over that cube's tables (built and filled from the org's events here, in a transaction
    rolled back afterwards), gives each hour's sums; so does the declared domain's grouped
    read of its scope cube, over events of several workspaces and repos."""
    org = new_org()
    hour = utc(2026, 3, 9, 10)
    events = [{"eventId": f"ws-{i}", "ts": (hour + timedelta(minutes=13 * i)).isoformat(),
               "model": "m1", "userId": "u1", "tokensIn": i, "tokensOut": 1,
               **({"workspaceId": "w1", "repoId": f"r{i % 2}"} if i % 3 else {})}
              for i in range(30)]
    ingest(client, org, "private-chat", events)
    # unaligned ends: raw events, quarter hours (5-minute slots for the scope cube), hours
    start, end = hour + timedelta(minutes=7), hour + timedelta(hours=6, minutes=22)
    request = _request(start, end)
    want: dict = {}
    for e in events:
        t = datetime.fromisoformat(e["ts"])
        if not start <= t < end:
            continue
        bucket = unix(t.replace(minute=0, second=0))
        n_in, n_out, n = want.get(bucket, (0, 0, 0))
        want[bucket] = (n_in + e["tokensIn"], n_out + e["tokensOut"], n + 1)
    assert len(want) == 7 and want[unix(hour)][2] == 4  # the 10:00 event is left out
    whole = replace(PRIVATE_CHAT, rollups=(Cube(name="whole", columns=(),
                                                grains=("15m", "1h")),))

    def rows_of(domain) -> dict:
        sql = series_parts_sql(domain, request, METRICS, org.id)
        return {row[0]: tuple(int(v) for v in row[1:])
                for row in db.execute(sql.text, sql.params).fetchall()}

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback):
        with db.transaction():
            for rollup in domain_rollups(whole):
                db.execute(rollup_ddl(rollup))
                for statement in rebuild_sql(rollup, org.id):
                    db.execute(statement.text, statement.params)
            text = series_parts_sql(whole, request, METRICS, org.id).text
            hourly = next(part for part in text.split(" UNION ALL ")
                          if rollup_of(whole, "whole", "1h").table in part)
            assert "GROUP BY" not in hourly  # this is the row-for-row read
            from_whole = rows_of(whole)
            raise Rollback
    from_scope = rows_of(PRIVATE_CHAT)
    assert from_whole == want  # buckets cut by the range's ends: only events inside it
    assert from_scope == want


def test_bucket_keys_are_the_grid():
    """The Python grid: every bucket start from the first (holding start) to the last
    (holding end - 1 us), fixed sizes from local midnight, calendar ones as planned."""
    fixed = _request(utc(2026, 3, 28, 22, 10), utc(2026, 3, 29, 3, 0), "1h", "Europe/Berlin")
    # Berlin springs forward on 2026-03-29 at 01:00 UTC; fixed hours stay whole hours
    assert bucket_keys(fixed.plan) == [unix(utc(2026, 3, 28, 22) + timedelta(hours=h))
                                       for h in range(5)]
    odd = _request(utc(2026, 1, 1, 0, 0, 30), utc(2026, 1, 1, 0, 40), "15m", "Asia/Kathmandu")
    # Kathmandu is UTC+05:45: local midnight 2025-12-31T18:15Z, so quarter hours start at :00
    assert bucket_keys(odd.plan) == [unix(utc(2026, 1, 1, 0, m)) for m in (0, 15, 30)]
    daily = _request(utc(2026, 3, 27, 12), utc(2026, 3, 30, 1), "1d", "Europe/Berlin")
    assert bucket_keys(daily.plan) == [unix(datetime(2026, 3, d, tzinfo=UTC)) - 3600 * h
                                       for d, h in ((27, 1), (28, 1), (29, 1))] + [
        unix(utc(2026, 3, 29, 22))]
