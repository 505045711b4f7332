"""Time series for every domain, point by point, against an independent computation."""

from __future__ import annotations

import itertools
import time
from datetime import datetime, timedelta

import pytest

from expected import (
    APPROXIMATE, AUTO_FOR_WINDOW, SERIES_VIEWS, UTC, WINDOWS, assert_matches, auto_size, bucket_edges,
    compute, expected_series, in_range, parse_ts, select, unix, utc,
)
from support import (
    DOMAINS, assert_problem, check_series, generate, get, ingest, ok, random_times,
    series_path,
)

START = utc(2026, 6, 10, 3, 17)  # not on a bucket boundary: the first 1h bucket starts 03:00
END = utc(2026, 6, 11, 2, 0)
GAP = (utc(2026, 6, 10, 10), utc(2026, 6, 10, 13))  # three empty hours
ABS = {"scope": "org", "start": "2026-06-10T05:17:00+02:00", "end": str(unix(END))}

VIEWS = {d: [v for (dd, v) in SERIES_VIEWS if dd == d] for d in DOMAINS}


def scenario(domain: str, seed: int = 1) -> list[dict]:
    """~300 events over [START-5h, END+5h) with an empty gap, plus boundary events."""
    times = random_times(f"times-{domain}-{seed}", START - timedelta(hours=5),
                         END + timedelta(hours=5), 300, gaps=[GAP])
    times += [START, START - timedelta(milliseconds=1), END - timedelta(milliseconds=1), END,
              utc(2026, 6, 10, 3, 0), utc(2026, 6, 10, 3, 16, 59)]  # last two: first bucket, not counted
    return generate(domain, seed, times)


def _sanity(events) -> None:
    """The data really exercises the edges the tests are about."""
    inside = in_range(events, START, END)
    assert 0 < len(inside) < len(events)
    assert any(parse_ts(e["ts"]) == START for e in inside)
    assert any(utc(2026, 6, 10, 3) <= parse_ts(e["ts"]) < START for e in events)


@pytest.mark.parametrize("domain", DOMAINS)
def test_absolute_range_every_point_every_metric(client, new_org, domain):
    org = new_org()
    events = scenario(domain)
    _sanity(events)
    ingest(client, org, domain, events)
    for view in VIEWS[domain]:
        body = ok(client, series_path(domain, view), org.headers, {**ABS, "timeBucketSize": "1h"})
        points = check_series(body, domain, view, events, START, END, "1h", scope_id=org.id)
        assert len(points) == 23 and points[0]["ts"] == unix(utc(2026, 6, 10, 3))
        empty = [p for p in points if p["ts"] in (unix(GAP[0]), unix(GAP[0]) + 3600)]
        assert len(empty) == 2
        nulls = {"latencyMs", *APPROXIMATE}
        for p in empty:  # zero-filled buckets: 0 for counts/sums, null for means/percentiles
            for name, value in p.items():
                if name == "ts":
                    continue
                if name in nulls:
                    assert value is None
                else:
                    assert value == 0
        gap_point = next(p for p in body["series"] if p["ts"] == unix(GAP[0]))
        assert all(v == 0 for k, v in gap_point.items() if k not in {"ts", *nulls})
        assert all(gap_point.get(k) is None for k in nulls)


@pytest.mark.parametrize("domain", DOMAINS)
def test_summary_for_every_metric(client, new_org, domain):
    org = new_org()
    events = scenario(domain, seed=2)
    ingest(client, org, domain, events)
    for view in VIEWS[domain]:
        metrics, primary = SERIES_VIEWS[(domain, view)]
        for metric in metrics:
            body = ok(client, series_path(domain, view), org.headers,
                      {**ABS, "timeBucketSize": "30m", "metric": metric})
            check_series(body, domain, view, events, START, END, "30m", metric=metric,
                         scope_id=org.id)


@pytest.mark.parametrize("domain,metric", [("storage", "latencyMs"), ("ai", "latencyMs"),
                                           ("ai", "activeConversations")])
def test_non_additive_summary_total_is_over_the_whole_range(client, new_org, domain, metric):
    """Mean: event-weighted over all events; distinct: over the range, not a bucket sum."""
    org = new_org()
    events = scenario(domain, seed=3)
    ingest(client, org, domain, events)
    body = ok(client, series_path(domain), org.headers,
              {**ABS, "timeBucketSize": "1h", "metric": metric})
    inside = in_range(events, START, END)
    whole = compute(domain, [metric], inside)[metric]
    values = [p[metric] for p in expected_series(domain, [metric], events, START, END, "1h")]
    present = [v for v in values if v is not None]
    # the data discriminates: the whole-range value is neither the sum nor the mean of buckets
    assert whole != pytest.approx(sum(present)) and whole != pytest.approx(sum(present) / len(present))
    assert float(body["summary"]["total"]) == pytest.approx(whole, rel=1e-9)
    check_series(body, domain, "", events, START, END, "1h", metric=metric, scope_id=org.id)


@pytest.mark.parametrize("domain", DOMAINS)
def test_resource_filters_single_and_combined(client, new_org, domain):
    from expected import FILTERS
    org = new_org()
    events = scenario(domain, seed=4)
    ingest(client, org, domain, events)
    params = FILTERS[domain]
    values = {}
    for p in params:
        seen = sorted({e[p] for e in in_range(events, START, END) if e.get(p) is not None})
        assert seen, p
        values[p] = seen[-1]
    combos = [{p: values[p]} for p in params]
    combos += [{a: values[a], b: values[b]} for a, b in itertools.combinations(params, 2)]
    if len(params) >= 3:
        combos.append({p: values[p] for p in params})
    combos.append({params[0]: "no-such-value"})
    for combo in combos:
        for view in VIEWS[domain]:
            body = ok(client, series_path(domain, view), org.headers,
                      {**ABS, "timeBucketSize": "1h", **combo})
            check_series(body, domain, view, events, START, END, "1h", scope_id=org.id,
                         filters=combo)
    # a filter narrows (the data makes sure of it)
    single = select(in_range(events, START, END), filters={params[0]: values[params[0]]})
    assert 0 < len(single) < len(in_range(events, START, END))


@pytest.mark.parametrize("domain", DOMAINS)
def test_workspace_and_repo_scopes(client, new_org, domain):
    org = new_org()
    events = scenario(domain, seed=5)
    ingest(client, org, domain, events)
    cases = [("workspace", "w1"), ("workspace", "w2"), ("workspace", "w3"), ("repo", "r1"),
             ("repo", "r3")]
    for scope, sid in cases:
        body = ok(client, series_path(domain), org.headers,
                  {**ABS, "scope": scope, "id": sid, "timeBucketSize": "1h"})
        check_series(body, domain, "", events, START, END, "1h", scope=scope, scope_id=sid)
    # scope=org with the caller's own id
    body = ok(client, series_path(domain), org.headers,
              {**ABS, "id": org.id, "timeBucketSize": "1h"})
    check_series(body, domain, "", events, START, END, "1h", scope_id=org.id)
    # scope and filter together
    from expected import FILTERS
    f = FILTERS[domain][0]
    value = next(e[f] for e in events if e.get(f) is not None and e.get("workspaceId") == "w1")
    body = ok(client, series_path(domain), org.headers,
              {**ABS, "scope": "workspace", "id": "w1", "timeBucketSize": "1h", f: value})
    check_series(body, domain, "", events, START, END, "1h", scope="workspace", scope_id="w1",
                 filters={f: value})


CAL_START = utc(2026, 1, 15)
CAL_END = utc(2026, 5, 20, 12)


@pytest.mark.parametrize("domain", DOMAINS)
def test_week_and_month_buckets(client, new_org, domain):
    org = new_org()
    times = random_times(f"cal-{domain}", utc(2025, 12, 20), utc(2026, 6, 10), 260,
                         gaps=[(utc(2026, 2, 28, 12), utc(2026, 4, 2))])
    times += [CAL_START, CAL_END, CAL_END - timedelta(seconds=1), CAL_START - timedelta(seconds=1)]
    events = generate(domain, 7, times)
    ingest(client, org, domain, events)
    for size, tz in (("1mo", "UTC"), ("1mo", "Europe/Berlin"), ("1w", "UTC"),
                     ("1w", "America/New_York"), ("1d", "Asia/Tokyo")):
        params = {"scope": "org", "start": "2026-01-15T00:00:00Z", "end": "2026-05-20T12:00:00Z",
                  "timeBucketSize": size, "timezone": tz}
        body = ok(client, series_path(domain), org.headers, params)
        points = check_series(body, domain, "", events, CAL_START, CAL_END, size, tz,
                              scope_id=org.id)
        if size == "1mo":
            assert len(points) == 5
            assert points[0]["ts"] < unix(CAL_START)  # the month bucket starts before start
        if size == "1w":
            assert len(points) == 19
    # an explicit check of the month starts in Berlin (local midnight, CET/CEST)
    body = ok(client, series_path(domain), org.headers,
              {"scope": "org", "start": "2026-01-15T00:00:00Z", "end": "2026-05-20T12:00:00Z",
               "timeBucketSize": "1mo", "timezone": "Europe/Berlin"})
    assert [p["ts"] for p in body["series"]] == [
        unix(utc(2025, 12, 31, 23)), unix(utc(2026, 1, 31, 23)), unix(utc(2026, 2, 28, 23)),
        unix(utc(2026, 3, 31, 22)), unix(utc(2026, 4, 30, 22))]
    march = body["series"][2]
    primary = SERIES_VIEWS[(domain, "")][1]
    assert march[primary] == 0  # nothing happened in March


# --- windows (relative to now) ------------------------------------------------------------

ANCHORS_H = [2, 5, 20, 3 * 24, 6 * 24, 20 * 24, 28 * 24, 60 * 24, 85 * 24, 150 * 24, 175 * 24,
             300 * 24, 355 * 24, 400 * 24]


def window_events(domain: str, now: datetime) -> list[dict]:
    times = []
    for k, hours in enumerate(ANCHORS_H):
        jitter = 1800 if hours < 10 else 3 * 3600
        times += random_times(f"win-{domain}-{k}", now - timedelta(hours=hours, seconds=jitter),
                              now - timedelta(hours=hours) + timedelta(seconds=jitter), 12)
    times += [now + timedelta(hours=3)]  # in the future (accepted, never in a window)
    return generate(domain, 11, times, prefix="w-")


@pytest.mark.parametrize("domain", ["storage", "ai", "credits"])
def test_windows_and_auto_bucket_sizes(client, new_org, domain):
    org = new_org()
    now = datetime.now(UTC).replace(microsecond=0)
    events = window_events(domain, now)
    ingest(client, org, domain, events)
    metrics, primary = SERIES_VIEWS[(domain, "")]
    for window, length in WINDOWS.items():
        before = time.time()
        body = ok(client, series_path(domain), org.headers, {"scope": "org", "window": window})
        after = time.time()
        meta = body["meta"]
        assert before - 2 <= meta["end"] <= after + 1
        assert meta["end"] - meta["start"] == int(length.total_seconds())
        start = datetime.fromtimestamp(meta["start"], UTC)
        end = datetime.fromtimestamp(meta["end"], UTC)
        size = auto_size(start, end)
        assert size == AUTO_FOR_WINDOW[window]
        check_series(body, domain, "", events, start, end, size, window=window,
                     scope_id=org.id)
        assert body["summary"]["total"] != 0
    # non-primary metrics over a window (mean and distinct for ai)
    extra = {"storage": ["latencyMs"], "ai": ["latencyMs", "activeConversations"],
             "credits": ["creditsPurchased"]}[domain]
    for metric in extra:
        body = ok(client, series_path(domain), org.headers,
                  {"scope": "org", "window": "7d", "metric": metric, "timezone": "Asia/Kolkata"})
        start = datetime.fromtimestamp(body["meta"]["start"], UTC)
        end = datetime.fromtimestamp(body["meta"]["end"], UTC)
        assert body["meta"]["timeBucketSize"] == auto_size(start, end, "Asia/Kolkata") == "1h"
        check_series(body, domain, "", events, start, end, "1h", "Asia/Kolkata", metric=metric,
                     window="7d", scope_id=org.id)


def test_window_with_explicit_bucket_size(client, new_org):
    org = new_org()
    now = datetime.now(UTC).replace(microsecond=0)
    events = window_events("policies", now)
    ingest(client, org, "policies", events)
    body = ok(client, "/v2/stats/policies", org.headers,
              {"scope": "org", "window": "30d", "timeBucketSize": "1d"})
    start = datetime.fromtimestamp(body["meta"]["start"], UTC)
    end = datetime.fromtimestamp(body["meta"]["end"], UTC)
    points = check_series(body, "policies", "", events, start, end, "1d", window="30d",
                          scope_id=org.id)
    assert len(points) == 31 and points[0]["ts"] < body["meta"]["start"]


@pytest.mark.parametrize("hours,tz", [(2, "UTC"), (10, "UTC"), (24, "UTC"), (72, "UTC"),
                                      (14 * 24, "UTC"), (72, "Asia/Kolkata"),
                                      (40 * 24, "Europe/Berlin"), (1500 * 24, "UTC")])
def test_auto_bucket_size_for_start_end(client, new_org, hours, tz):
    org = new_org()
    start = utc(2022, 3, 1, 6, 7)
    end = start + timedelta(hours=hours)
    times = random_times(f"auto-{hours}", start - timedelta(hours=1), end + timedelta(hours=1), 80)
    events = generate("ai", hours, times)
    ingest(client, org, "ai", events)
    body = ok(client, "/v2/stats/ai", org.headers,
              {"scope": "org", "start": str(unix(start)), "end": str(unix(end)), "timezone": tz})
    size = auto_size(start, end, tz)
    check_series(body, "ai", "", events, start, end, size, tz, scope_id=org.id)
    assert len(body["series"]) <= 200
    expected = {2: "1m", 10: "5m", 24: "10m", 72: "30m", 14 * 24: "6h", 40 * 24: "6h"}
    if tz == "UTC" and hours in expected:
        assert size == expected[hours]


def test_end_defaults_to_now(client, new_org):
    org = new_org()
    now = datetime.now(UTC).replace(microsecond=0)
    events = window_events("storage", now)
    ingest(client, org, "storage", events)
    start = now - timedelta(hours=30)
    before = time.time()
    body = ok(client, "/v2/stats/storage", org.headers,
              {"scope": "org", "start": start.isoformat(), "timeBucketSize": "1h"})
    assert before - 2 <= body["meta"]["end"] <= time.time() + 1
    end = datetime.fromtimestamp(body["meta"]["end"], UTC)
    check_series(body, "storage", "", events, start, end, "1h", scope_id=org.id)


def test_policies_tokens_view_only_has_token_metrics(client, new_org):
    org = new_org()
    events = scenario("policies", seed=9)
    ingest(client, org, "policies", events)
    body = ok(client, "/v2/stats/policies/tokens", org.headers, {**ABS, "timeBucketSize": "1h"})
    assert all(set(p) == {"ts", "policyTokensIn", "policyTokensOut"} for p in body["series"])
    assert body["meta"]["metric"] == "policyTokensIn"
    body = ok(client, "/v2/stats/policies/tokens", org.headers,
              {**ABS, "timeBucketSize": "1h", "metric": "policyTokensOut"})
    check_series(body, "policies", "tokens", events, START, END, "1h",
                 metric="policyTokensOut", scope_id=org.id)
    r, _ = get(client, "/v2/stats/policies/tokens", org.headers,
               {**ABS, "timeBucketSize": "1h", "metric": "violations"})
    assert_problem(r, 400)


def test_empty_org_series_is_all_zero(client, new_org):
    org = new_org()
    for domain in DOMAINS:
        for view in VIEWS[domain]:
            body = ok(client, series_path(domain, view), org.headers,
                      {**ABS, "timeBucketSize": "6h"})
            check_series(body, domain, view, [], START, END, "6h", scope_id=org.id)
            assert body["summary"]["total"] == 0


def test_bucket_edges_reference_sanity():
    """The reference itself: hand-checked bucket counts (guards the oracle)."""
    assert len(bucket_edges(START, END, "1h")) - 1 == 23
    assert len(bucket_edges(utc(2026, 1, 1), utc(2026, 1, 2), "10m")) - 1 == 144
    edges = bucket_edges(utc(2026, 11, 1, 4), utc(2026, 11, 2, 5), "1d", "America/New_York")
    assert [e.isoformat() for e in edges] == ["2026-11-01T04:00:00+00:00",
                                              "2026-11-02T05:00:00+00:00"]
    assert_matches(expected_series("storage", ["requests"], [], START, END, "6h")[0],
                   {"ts": unix(utc(2026, 6, 10)), "requests": 0})
