"""Approximate latency percentiles: ``latencyMsP50``, ``P90``, ``P95`` and ``P99`` of
storage, ai and calls, from mergeable log-bucket histograms, within 4.76% of the exact
percentile.

Choices where the issue is silent:

* **The estimate.** A latency ``v > 0`` falls in bin ``ceil(log(v) / log(1.1))``; zero has
  a bin of its own and is answered exactly. A percentile follows the exact rule
  (interpolate between the order statistics at ``floor``/``ceil`` of ``q * (n - 1)``),
  with each order statistic replaced by its bin's midpoint ``2 * 1.1^i / 2.1``. So every
  answer is within (1.1 - 1) / (1.1 + 1) = 4.76% of the exact interpolated percentile,
  over any span of values, from sub-millisecond to hours.
* **Nulls.** A bucket, entity or range without latencies answers null, even if it has
  events.
* **Summary.** `total` is the percentile over the whole range, not a sum of buckets.
* **Breakdowns.** Percentiles appear in entity totals and per-entity series. A breakdown
  cannot sort by them (400 naming the metrics that can sort): they are computed after the
  query that orders and pages the entities.
* **Rollups.** Histogram counts live in histogram rollups (``rh_…``, the twins of the
  metric rollups of 1h and coarser of the cubes that keep sketches). Ingest and loads add
  the events they insert in the same statement; ``rebuild`` recomputes them. Answers are
  the same with or without rollups. An undeclared (ad-hoc) approximate percentile reads
  raw events.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta

import pytest

from domains.calls import DOMAIN as CALLS
from domains.storage import DOMAIN as STORAGE
from expected import (
    APPROXIMATE, BREAKDOWN_METRICS, PERCENTILE_ERROR, Approx, assert_matches, group_by_bucket,
    in_range, parse_ts, percentile_cont, unix, utc,
)
from stats_gateway.core.domain import (
    ApproxPercentile, BreakdownView, DomainDeclarationError, Metric, validate_domains,
)
from stats_gateway.core.histogram_rollups import histogram_rollups
from stats_gateway.core.histograms import histogram_sql
from stats_gateway.core.request import Scope, StatsRequest
from stats_gateway.core.rollup_sql import rebuild_rollups
from stats_gateway.core.rollups import cubes
from stats_gateway.core.sql import Grouping
from stats_gateway.core.timebuckets import fixed_size, make_plan
from support import (
    assert_problem, check_series, get, histogram_of, ingest, ok, post_events, rollup_of,
)

START = utc(2026, 5, 4, 5, 20)  # not on an hour: raw events answer 05:20-05:30
END = utc(2026, 5, 5, 4, 0)
RANGE = {"scope": "org", "start": "2026-05-04T05:20:00Z", "end": "2026-05-05T04:00:00Z"}
GAP = (utc(2026, 5, 4, 12), utc(2026, 5, 4, 14))  # no events
LONE = utc(2026, 5, 4, 15, 7)  # the only event of its hour
NULL_HOUR = utc(2026, 5, 4, 16)  # events, none with a latency
PERCENTILES = {"latencyMsP50": 0.5, "latencyMsP90": 0.9, "latencyMsP95": 0.95,
               "latencyMsP99": 0.99}
DOMAINS = ("storage", "ai", "calls")
BY = {"storage": "buckets", "ai": "models", "calls": "ops"}
ENTITIES = ("e-a", "e-b", "e-c")


def latency(rng: random.Random):
    """Latencies over eleven orders of magnitude: zeros, sub-millisecond, typical, heavy
    tails, bin edges (powers of 1.1, 1 included), repeats; some events have none."""
    kind = rng.random()
    if kind < 0.06:
        return 0
    if kind < 0.2:
        return round(rng.uniform(0.0001, 1), 4)
    if kind < 0.6:
        return round(10 ** rng.uniform(0, 3), 3)
    if kind < 0.72:
        return round(10 ** rng.uniform(3, 7.5), 1)
    if kind < 0.8:
        return 1.1 ** rng.randint(-20, 150)
    if kind < 0.9:
        return rng.choice([1, 5, 42.5, 1000])
    return None


def event(domain: str, i: int, t, entity: str | None, ms) -> dict:
    e = {"eventId": f"{domain}-{i}", "ts": t.isoformat()}
    if domain == "storage":
        if entity is not None:
            e["bucketId"] = entity
    elif domain == "ai":
        e["model"] = entity or "e-unlisted"
    else:
        e.update(projectId="acme/p", callId=f"c{i}", opName=entity or "e-unlisted")
    if ms is not None:
        e["latencyMs"] = ms
    return e


def scenario(domain: str, seed: int = 1, n: int = 400) -> list[dict]:
    """Events in [START - 2h, END + 2h) avoiding GAP and the two special hours; then the
    lone event, an hour of events without latency, and entities with one event (e-lone)
    and with no latency at all (e-none)."""
    rng = random.Random(f"pct-{domain}-{seed}")
    special = (GAP[0], NULL_HOUR + timedelta(hours=1))
    events = []
    while len(events) < n:
        t = START - timedelta(hours=2) + timedelta(seconds=rng.randrange(30 * 3600))
        if special[0] <= t < special[1]:
            continue
        entity = rng.choice(ENTITIES + (None,))
        events.append(event(domain, len(events), t, entity, latency(rng)))
    for k, ms in enumerate((0, 0.0002, 0.0455, 1, 1.1, 1.21, 3.6e7)):  # the extremes, surely
        events.append(event(domain, n + 10 + k, START + timedelta(hours=k, minutes=11), "e-a",
                            ms))
    events.append(event(domain, n, LONE, "e-lone", 0.37))
    for k in range(3):
        events.append(event(domain, n + 1 + k, NULL_HOUR + timedelta(minutes=5 * k), "e-none",
                            None))
    events.append(event(domain, n + 4, START, "e-none", None))
    return events


def exact(events, q):
    """The exact interpolated percentile of the events' latencies (None without any)."""
    return percentile_cont([float(e["latencyMs"]) for e in events if "latencyMs" in e], q)


def near(exact_value):
    return None if exact_value is None else Approx(exact_value)


def breakdown_path(domain: str) -> str:
    return f"/v2/stats/{domain}/breakdown/{BY[domain]}"


def entity_of(domain: str, e: dict):
    return {"storage": e.get("bucketId"), "ai": e.get("model"), "calls": e.get("opName")}[domain]


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_bucket_and_summary_within_bound(client, new_org, domain):
    org = new_org()
    events = scenario(domain)
    ingest(client, org, domain, events)
    inside = in_range(events, START, END)
    values = [float(e["latencyMs"]) for e in inside if "latencyMs" in e]
    assert 0.0 in values and min(v for v in values if v) < 0.01 and max(values) > 1e6
    _, groups = group_by_bucket(events, START, END, "1h")
    for metric, q in PERCENTILES.items():
        body = ok(client, f"/v2/stats/{domain}", org.headers,
                  {**RANGE, "timeBucketSize": "1h", "metric": metric})
        # every point and metric, and the summary (the percentile over the whole range)
        check_series(body, domain, "", events, START, END, "1h", metric=metric,
                     scope_id=org.id)
        for point, group in zip(body["series"], groups, strict=True):
            for name, q2 in PERCENTILES.items():
                assert_matches(point[name], near(exact(group, q2)), f"{point['ts']}.{name}")
        assert_matches(body["summary"]["total"], near(exact(inside, q)), "total")
    points = {p["ts"]: p for p in body["series"]}
    lone = points[unix(LONE.replace(minute=0))]
    assert all(abs(float(lone[m]) - 0.37) <= PERCENTILE_ERROR * 0.37 for m in PERCENTILES)
    for hour in (GAP[0], NULL_HOUR):  # empty, and events without latencies: null
        assert all(points[unix(hour)][m] is None for m in PERCENTILES)
    assert points[unix(NULL_HOUR)][{"storage": "requests", "ai": "requests",
                                   "calls": "callCount"}[domain]] == 3


@pytest.mark.parametrize("domain", DOMAINS)
def test_breakdown_totals_and_entity_series_within_bound(client, new_org, domain):
    org = new_org()
    events = scenario(domain, seed=2)
    ingest(client, org, domain, events)
    inside = in_range(events, START, END)
    body = ok(client, breakdown_path(domain), org.headers,
              {**RANGE, "timeBucketSize": "6h", "includeSeries": "true"})
    got = {e["entityId"]: e for e in body["entities"]}
    listed = {entity_of(domain, e) for e in inside} - {None}
    assert set(got) == listed and {"e-lone", "e-none"} <= listed
    for entity_id, entity in got.items():
        mine = [e for e in inside if entity_of(domain, e) == entity_id]
        _, groups = group_by_bucket(mine, START, END, "6h")
        for metric, q in PERCENTILES.items():
            assert_matches(entity["totals"][metric], near(exact(mine, q)),
                           f"{entity_id}.totals.{metric}")
            for point, group in zip(entity["series"], groups, strict=True):
                assert_matches(point[metric], near(exact(group, q)),
                               f"{entity_id}.{point['ts']}.{metric}")
    assert all(got["e-none"]["totals"][m] is None for m in PERCENTILES)
    assert all(abs(float(got["e-lone"]["totals"][m]) - 0.37) <= PERCENTILE_ERROR * 0.37
               for m in PERCENTILES)


def test_sorting_by_a_percentile_is_refused_naming_the_sortable_metrics(client, new_org):
    org = new_org()
    for domain in DOMAINS:
        r, _ = get(client, breakdown_path(domain), org.headers,
                   {**RANGE, "sort": "latencyMsP95"})
        body = assert_problem(r, 400)
        (problem,) = body["errors"]
        assert problem["field"] == "sort"
        sortable = problem["message"].split("one of: ")[1].split(", ")
        assert sortable == [m for m in BREAKDOWN_METRICS[domain][0] if m not in APPROXIMATE]
        assert "latencyMs" in sortable
        ok(client, breakdown_path(domain), org.headers, {**RANGE, "sort": "latencyMs"})


def test_rollups_on_and_off_give_identical_answers(client, new_org):
    org = new_org()
    queries = []
    for domain in DOMAINS:
        ingest(client, org, domain, scenario(domain, seed=3))
        for metric in PERCENTILES:
            queries += [(f"/v2/stats/{domain}", {**RANGE, "timeBucketSize": size,
                                                 "metric": metric})
                        for size in ("15m", "1h", "1d")]
        queries.append((breakdown_path(domain), {**RANGE, "timeBucketSize": "1h",
                                                 "includeSeries": "true"}))
    queries.append(("/v2/stats/storage", {**RANGE, "bucketId": "e-a", "metric": "latencyMsP99"}))
    engine = client.app.state.engine
    with_rollups = [ok(client, path, org.headers, params) for path, params in queries]
    try:
        engine.use_rollups = False
        raw = [ok(client, path, org.headers, params) for path, params in queries]
    finally:
        engine.use_rollups = True
    for (path, params), a, b in zip(queries, with_rollups, raw):
        assert a == b, (path, params)


def _request(start, end) -> StatsRequest:
    plan = make_plan(start, end, fixed_size(3600))
    return StatsRequest(scope=Scope("org", None), window=None, plan=plan, filters=())


def test_declared_percentiles_read_histogram_rollups_and_ad_hoc_ones_raw(client, db, new_org):
    """A corrupted histogram rollup row changes an aligned answer (so rollups are read);
    raw events and ``rebuild_rollups`` restore it. An undeclared percentile (q = 0.999)
    reads raw events, within the bound too, without sending the other metrics there."""
    org = new_org()
    events = scenario("calls", seed=4)
    ingest(client, org, "calls", events)
    params = {"scope": "org", "start": "2026-05-04T05:00:00Z", "end": "2026-05-05T04:00:00Z",
              "timeBucketSize": "1h"}
    before = ok(client, "/v2/stats/calls", org.headers, params)
    hour = utc(2026, 5, 4, 9)
    # a whole-org hourly series: the org cube's hourly histogram twin
    hourly = histogram_of(CALLS, "org", "1h").table
    db.execute(f"UPDATE {hourly} SET hist_counts[cardinality(hist_counts)] = "
               "hist_counts[cardinality(hist_counts)] + 1000 "
               "WHERE org_id = %(org)s AND slot_ts = %(hour)s", {"org": org.id, "hour": hour})
    corrupted = ok(client, "/v2/stats/calls", org.headers, params)
    changed = [p["ts"] for p, q in zip(before["series"], corrupted["series"]) if p != q]
    assert changed == [unix(hour)]
    engine = client.app.state.engine
    try:
        engine.use_rollups = False
        assert ok(client, "/v2/stats/calls", org.headers, params) == before
    finally:
        engine.use_rollups = True
    rebuild_rollups(db, CALLS, org.id)
    assert ok(client, "/v2/stats/calls", org.headers, params) == before

    # an undeclared percentile (q = 0.999) plans raw events, within the bound too, while
    # the metric query beside it still reads rollups (a corrupted count shows through)
    request = _request(utc(2026, 5, 4, 5), utc(2026, 5, 5, 4))
    ad_hoc = Metric(name="p999", agg=ApproxPercentile("latency_ms", 0.999))
    declared = CALLS.metric("latencyMsP99")
    by_bucket = Grouping(by_bucket=True)
    assert hourly in histogram_sql(CALLS, request, [declared], org.id, by_bucket, True).text
    ad_hoc_text = histogram_sql(CALLS, request, [ad_hoc], org.id, by_bucket, True).text
    assert not any(h.table in ad_hoc_text for h in histogram_rollups(CALLS))
    assert CALLS.table in ad_hoc_text
    db.execute(f"UPDATE {rollup_of(CALLS, 'org', '1h').table} "
               "SET \"callCount\" = \"callCount\" + 1000 "
               "WHERE org_id = %s AND slot_ts = %s", (org.id, hour))
    metrics = [CALLS.metric("callCount"), ad_hoc, declared]
    values = client.blocking_portal.call(engine.series_values, org.id, CALLS, request, metrics)
    rebuild_rollups(db, CALLS, org.id)
    edges, groups = group_by_bucket(events, request.plan.start, request.plan.end, "1h")
    assert [start for start, _ in values] == edges[:-1]
    for (start, got), group in zip(values, groups, strict=True):
        # the org cube keeps one row per hour: it got 1000
        assert got["callCount"] == len(group) + (1000 if start == hour else 0)
        assert_matches(got["p999"], near(exact(group, 0.999)), f"{start}.p999")
        assert_matches(got["latencyMsP99"], near(exact(group, 0.99)), f"{start}.p99")


def _histogram_tables() -> list[str]:
    """Storage's histogram tables: the scope and org cubes' at hours, days and ISO weeks,
    the main cube's at days only (a row per combination of its columns: its sketches are
    kept by the day); storage has no high-cardinality cube."""
    wanted = [("scope", "1h"), ("scope", "1d"), ("scope", "7d"), ("org", "1h"), ("org", "1d"),
              ("org", "7d"), ("main", "1d")]
    assert {c.name for c in cubes(STORAGE)} == {"scope", "org", "main"}
    return sorted(histogram_of(STORAGE, name, grain).table for name, grain in wanted)


def _histograms(db, org) -> list[tuple]:
    """Every histogram rollup row of the org's storage events."""
    tables = [t for (t,) in db.execute("SELECT tablename FROM pg_tables WHERE tablename "
                                       "LIKE 'rh\\_storage\\_%' ORDER BY tablename")]
    assert tables == _histogram_tables()
    rows = []
    for table in tables:
        rows += [(table, *row) for row in db.execute(
            f"SELECT slot_ts, hist_column, u.b, u.n, row_to_json(t)::text FROM {table} t "
            "CROSS JOIN LATERAL unnest(t.hist_bins, t.hist_counts) AS u(b, n) "
            "WHERE org_id = %s ORDER BY 1, 2, 3, 5", (org.id,))]
    return rows


def test_retries_and_refused_batches_leave_histograms_alone(client, db, new_org):
    org = new_org()
    events = scenario("storage", seed=5, n=120)
    events[0].update(workspaceId="w1", repoId="r1")
    ingest(client, org, "storage", events)
    rows = _histograms(db, org)
    hourly = {}  # independent: per UTC hour, events with a latency and those at zero
    for e in events:
        if "latencyMs" in e:
            slot = unix(parse_ts(e["ts"]).replace(minute=0, second=0, microsecond=0))
            n, zeros = hourly.get(slot, (0, 0))
            hourly[slot] = (n + 1, zeros + (float(e["latencyMs"]) == 0))
    got = {}
    hourly_table = histogram_of(STORAGE, "scope", "1h").table
    for table, slot, column, bin_index, n, _ in rows:
        if table == hourly_table:
            assert column == "latency_ms"
            total, zeros = got.get(unix(slot), (0, 0))
            got[unix(slot)] = (total + n, zeros + (n if bin_index == -(2**31) else 0))
    assert got == hourly and any(zeros for _, zeros in hourly.values())

    r = post_events(client, org.headers, "storage", events)  # a retry: all duplicates
    assert r.status_code == 200 and r.json()["inserted"] == 0
    assert _histograms(db, org) == rows
    fresh = event("storage", 9999, START + timedelta(hours=1), "e-a", 12.5)
    invalid = {**event("storage", 10_000, START, "e-a", 1.0), "latencyMs": -1}
    assert_problem(post_events(client, org.headers, "storage", [fresh, invalid]), 422)
    moved = {**fresh, "workspaceId": "w2", "repoId": "r1"}  # refused inside the transaction
    assert_problem(post_events(client, org.headers, "storage", [moved]), 422)
    assert _histograms(db, org) == rows
    ingest(client, org, "storage", [fresh])  # accepted once alone: one more count per table
    grown = _histograms(db, org)
    assert sum(n for *_, n, _ in grown) == sum(n for *_, n, _ in rows) + len(_histogram_tables())


def test_declarations_are_checked():
    bad = replace(STORAGE, metrics=STORAGE.metrics + (
        Metric(name="providerP50", agg=ApproxPercentile("provider", 0.5)),
        Metric(name="sizeP50", agg=ApproxPercentile("size_change", 0.5)),
        Metric(name="latencyMsP150", agg=ApproxPercentile("latency_ms", 1.5))),
        breakdown=BreakdownView(metrics=("requests", "latencyMsP50"), primary="latencyMsP50"))
    with pytest.raises(DomainDeclarationError) as err:
        validate_domains((bad,))
    text = "\n".join(err.value.problems)
    assert "'providerP50'" in text and "'sizeP50'" in text and "1.5" in text
    assert "primary cannot sort" in text


def test_a_bin_from_many_cube_rows_counts_once_per_event(client, new_org):
    """An hourly series reads each slot's bins as the scope cube holds them, one row per
    workspace and repo, without summing them first: the same latencies in three repos of
    two workspaces (every bin in three rows of a slot), plus the raw ends of the range,
    still give each hour's exact percentile within the bound, and the same answer as raw
    events."""
    org = new_org()
    rng = random.Random("pct-repeated-bins")
    places = [("w1", "r1"), ("w1", "r2"), ("w2", "r3")]
    latencies = [rng.choice([1, 5, 42.5, 1000, 0]) for _ in range(40)]
    events = [{**event("calls", i, START + timedelta(minutes=(7 * i) % 600), "e-a", ms),
               "workspaceId": w, "repoId": r}
              for i, (ms, (w, r)) in enumerate(
                  (ms, place) for ms in latencies for place in places)]
    ingest(client, org, "calls", events)
    _, groups = group_by_bucket(events, START, END, "1h")
    engine = client.app.state.engine
    params = {**RANGE, "timeBucketSize": "1h"}
    body = ok(client, "/v2/stats/calls", org.headers, params)
    assert any(len({(e["workspaceId"], e["repoId"]) for e in group}) == 3 for group in groups)
    for point, group in zip(body["series"], groups, strict=True):
        for name, q in PERCENTILES.items():
            assert_matches(point[name], near(exact(group, q)), f"{point['ts']}.{name}")
    try:
        engine.use_rollups = False
        assert ok(client, "/v2/stats/calls", org.headers, params) == body
    finally:
        engine.use_rollups = True
