"""Engine aggregations over row sums (``plus`` on Mean/Min/Max/Percentile), ``Count`` of a
column's non-null values, and the grouped series query, run as SQL on the real database."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from psycopg.rows import dict_row

from conftest import Org
from domains.call_usage import DOMAIN as CALL_USAGE
from domains.calls import DOMAIN as CALLS
from stats_gateway.core.domain import Count, Dimension, Max, Mean, Metric, Min, Percentile
from stats_gateway.core.engine import finalize
from stats_gateway.core.request import Scope, StatsRequest
from stats_gateway.core.sql import grouped_series_sql, series_parts_sql, totals_sql
from stats_gateway.core.timebuckets import fixed_size, make_plan
from support import ingest

UTC = timezone.utc
START = datetime(2024, 5, 1, tzinfo=UTC)


def request(hours: int) -> StatsRequest:
    plan = make_plan(START, START + timedelta(hours=hours), fixed_size(3600))
    return StatsRequest(scope=Scope("org", None), window=None, plan=plan, filters=())


def run(db, sql) -> list[dict]:
    cur = db.cursor(row_factory=dict_row)
    return cur.execute(sql.text, sql.params).fetchall()


def interpolated(values, q):
    ordered = sorted(float(v) for v in values)
    h = q * (len(ordered) - 1)
    lo, hi = math.floor(h), math.ceil(h)
    return ordered[lo] + (h - lo) * (ordered[hi] - ordered[lo])


def test_mean_min_max_percentile_read_row_sums_and_count_reads_non_null(db, client):
    org = Org(db, f"engine-plus-{random.random()}")
    rng = random.Random(5)
    usage = [{"eventId": f"u{i}", "ts": (START + timedelta(minutes=7 * i)).isoformat(),
              "projectId": "p", "callId": f"c{i}", "opName": "op",
              "model": rng.choice(["a-model", "B-model"]),
              "inputTokens": rng.randint(0, 900), "outputTokens": rng.randint(0, 90),
              "inputCost": str(Decimal(rng.randint(0, 10**6)).scaleb(-6)),
              "outputCost": str(Decimal(rng.randint(0, 10**6)).scaleb(-6))} for i in range(20)]
    calls = [{"eventId": f"c{i}", "ts": (START + timedelta(minutes=5 * i)).isoformat(),
              "projectId": "p", "callId": f"c{i}", "opName": "op",
              **({"latencyMs": i * 1.5} if i % 3 else {})} for i in range(20)]
    ingest(client, org, "call-usage", usage)
    ingest(client, org, "calls", calls)

    tokens = ("input_tokens", ("output_tokens",))
    metrics = [Metric(name="avg", agg=Mean(tokens[0], plus=tokens[1])),
               Metric(name="low", agg=Min(tokens[0], plus=tokens[1])),
               Metric(name="high", agg=Max("input_cost", plus=("output_cost",))),
               Metric(name="p90", agg=Percentile(tokens[0], 0.9, plus=tokens[1]))]
    (row,) = run(db, totals_sql(CALL_USAGE, request(3), metrics, org.id))
    values = {m.name: finalize(CALL_USAGE, m, row) for m in metrics}
    sums = [e["inputTokens"] + e["outputTokens"] for e in usage]
    costs = [Decimal(e["inputCost"]) + Decimal(e["outputCost"]) for e in usage]
    assert math.isclose(values["avg"], sum(sums) / len(sums))
    assert values["low"] == min(sums) and isinstance(values["low"], int)
    assert values["high"] == max(costs) and isinstance(values["high"], Decimal)
    assert math.isclose(values["p90"], interpolated(sums, 0.9))

    counted = [Metric(name="with_latency", agg=Count("latency_ms")),
               Metric(name="all", agg=Count())]
    # the parts (narrow=False), one row per bucket holding events, in no order
    rows = sorted(run(db, series_parts_sql(CALLS, request(2), counted, org.id, narrow=False)),
                  key=lambda r: r["bucket_ts"])
    got = [(finalize(CALLS, counted[0], r), finalize(CALLS, counted[1], r)) for r in rows]
    hour = [[c for c in calls if START + timedelta(hours=h) <= datetime.fromisoformat(c["ts"])
             < START + timedelta(hours=h + 1)] for h in range(2)]
    assert got == [(sum(1 for c in cs if "latencyMs" in c), len(cs)) for cs in hour]
    assert got[0][0] < got[0][1]

    by_model = Dimension(by="models", column="model")
    rows = run(db, grouped_series_sql(CALL_USAGE, request(3), [metrics[0]], by_model, org.id))
    keys = [(r["bucket_ts"], r["entity_id"]) for r in rows]
    expected = sorted({(START + timedelta(hours=(7 * i) // 60), e["model"])
                       for i, e in enumerate(usage)})  # code-point order: "B" before "a"
    assert keys == expected


def test_newest_time_reads_a_narrow_final_value_and_its_part_alike(db, client):
    """``LatestTime`` is answered in SQL as unix seconds where a statement is narrow
    (``integral``): its finalizer reads that final value and the timestamp part alike, so
    a series mixing it with a metric that is finalized in Python gets the same seconds."""
    from domains.private_chat import DOMAIN as PRIVATE_CHAT

    org = Org(db, f"engine-newest-{random.random()}")
    times = [START + timedelta(minutes=m, seconds=s) for m, s in ((5, 1), (47, 59), (61, 30))]
    ingest(client, org, "private-chat", [
        {"eventId": f"n{i}", "ts": t.isoformat(), "model": "m", "userId": "u"}
        for i, t in enumerate(times)])
    newest = PRIVATE_CHAT.metric("lastActiveAt")
    want = {unix: max(int(t.timestamp()) for t in times if int(t.timestamp()) // 3600 * 3600
                      == unix) for unix in {int(t.timestamp()) // 3600 * 3600 for t in times}}
    for narrow in (True, False):
        sql = series_parts_sql(PRIVATE_CHAT, request(3), [newest], org.id, narrow=narrow)
        got = {r["bucket_ts"]: finalize(PRIVATE_CHAT, newest, r) for r in run(db, sql)}
        assert got == want, narrow
