"""W&B Weave's ``POST /calls/stats``: every bucket and value against plain-Python arithmetic.

The expected side below uses only datetime/zoneinfo and loops over the events this module
generates: bucket grids from the documented alignment rules, sums/means/min/max/counts,
and percentiles by linear interpolation (numpy's default, PostgreSQL's percentile_cont).
"""

from __future__ import annotations

import json

import base64
import bisect
import math
import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from conftest import Org
from support import encode, ingest, loads

UTC = timezone.utc
DATA_START = datetime(2024, 3, 8, tzinfo=UTC)  # US daylight saving begins 2024-03-10
DATA_END = datetime(2024, 3, 12, tzinfo=UTC)
PROJECT, OTHER_PROJECT = "acme/agents", "acme/other"
OPS = ["predict", "score", "embed", "chat"]
MODELS = ["gpt-4o", "claude-3", "llama-3"]
REFS = ["weave:///acme/agents/object/ds:v1", "weave:///acme/agents/object/ds:v2",
        "weave:///acme/agents/object/prompt:v7"]
AGGS = ["sum", "avg", "min", "max", "count"]
PCTS = [50, 95, 99.9]
CALL_METRICS = ["latency_ms", "call_count", "error_count"]
USAGE_METRICS = ["input_tokens", "output_tokens", "total_tokens", "input_cost", "output_cost",
                 "total_cost"]
LIST_FILTERS = {  # filter field -> call field it matches (refs: list overlap)
    "op_names": "opName", "input_refs": "inputRefs", "output_refs": "outputRefs",
    "parent_ids": "parentId", "trace_ids": "traceId", "call_ids": "callId",
    "thread_ids": "threadId", "turn_ids": "turnId", "wb_user_ids": "wbUserId",
    "wb_run_ids": "wbRunId",
}


def rfc(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- generated world ---------------------------------------------------------------------


def make_calls(rng: random.Random, n: int, project: str, prefix: str) -> list[dict]:
    """Calls in traces of 1-5 (the first is the root), with optional fields left out often."""
    span = int((DATA_END - DATA_START).total_seconds())
    calls: list[dict] = []
    while len(calls) < n:
        trace = f"{prefix}t{len(calls)}"
        root_ts = DATA_START + timedelta(seconds=rng.randrange(span),
                                         milliseconds=rng.choice([0, 0, rng.randrange(1000)]))
        thread = rng.choice([None, "thr1", "thr2", "thr3"])
        for k in range(rng.randint(1, 5)):
            call = {"eventId": f"{prefix}c{len(calls)}", "callId": f"{prefix}c{len(calls)}",
                    "projectId": project, "opName": rng.choice(OPS), "traceId": trace,
                    "ts": rfc(min(root_ts + timedelta(seconds=k * 7), DATA_END
                                  - timedelta(seconds=1)))}
            if k:
                call["parentId"] = calls[-1]["callId"] if rng.random() < 0.5 else \
                    f"{prefix}c{len(calls) - k}"
            if thread:
                call["threadId"] = thread
                call["turnId"] = f"{thread}-turn{rng.randint(1, 3)}"
            for field, options in (("wbUserId", ["u1", "u2", "u3"]), ("wbRunId", ["r1", "r2"])):
                if rng.random() < 0.7:
                    call[field] = rng.choice(options)
            for field in ("inputRefs", "outputRefs"):
                if rng.random() < 0.6:
                    call[field] = rng.sample(REFS, rng.randint(0, 2))
            if rng.random() < 0.85:
                call["latencyMs"] = rng.choice([rng.randint(1, 3000),
                                                round(rng.uniform(0.5, 9000), 3)])
            if rng.random() < 0.2:
                call["error"] = True
            elif rng.random() < 0.3:
                call["error"] = False
            calls.append(call)
    return calls[:n]


def make_usage(rng: random.Random, calls: list[dict]) -> list[dict]:
    """0-2 models per call, repeating the call's fields; costs exact with up to 6 decimals."""
    usage = []
    for call in calls:
        for model in rng.sample(MODELS, rng.choice([0, 1, 1, 2])):
            event = {k: v for k, v in call.items() if k not in ("latencyMs", "error")}
            event["eventId"] = f"{call['eventId']}-{model}"
            event["model"] = model
            if rng.random() < 0.9:
                event["inputTokens"] = rng.randint(0, 20_000)
            if rng.random() < 0.9:
                event["outputTokens"] = rng.randint(0, 5_000)
            for field in ("inputCost", "outputCost"):
                if rng.random() < 0.85:
                    event[field] = str(Decimal(rng.randint(0, 9_000_000)).scaleb(-6))
            usage.append(event)
    return usage


class World:
    def __init__(self, db, client):
        self.org = Org(db, f"calls-{random.random()}")
        self.other_org = Org(db, f"calls-other-{random.random()}")
        rng = random.Random(20240308)
        self.calls = make_calls(rng, 420, PROJECT, "a-")
        self.other_project_calls = make_calls(rng, 60, OTHER_PROJECT, "b-")
        self.usage = make_usage(rng, self.calls)
        other_usage = make_usage(rng, self.other_project_calls)
        # the other org reuses the same project and call ids: it must never show up here
        self.foreign_calls = make_calls(random.Random(7), 80, PROJECT, "a-")
        foreign_usage = make_usage(random.Random(8), self.foreign_calls)
        ingest(client, self.org, "calls", self.calls + self.other_project_calls)
        ingest(client, self.org, "call-usage", self.usage + other_usage)
        ingest(client, self.other_org, "calls", self.foreign_calls)
        ingest(client, self.other_org, "call-usage", foreign_usage)


@pytest.fixture(scope="module")
def world(db, client) -> World:
    return World(db, client)


def stats(client, headers, body, status=200):
    raw = body if isinstance(body, bytes) else encode(body)
    r = client.post("/calls/stats", content=raw,
                    headers={**headers, "Content-Type": "application/json"})
    assert r.status_code != 500, r.text
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    return loads(r.text)


# --- independent expectations ------------------------------------------------------------


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def grid(start: datetime, end: datetime, seconds: int, tz: str) -> list[datetime]:
    """Bucket starts intersecting [start, end): local calendar days for whole days outside
    UTC, else fixed spans from local midnight of start's day."""
    zone = ZoneInfo(tz)
    local = start.astimezone(zone)
    starts = []
    if seconds % 86400 == 0 and tz != "UTC":
        day = local.date()
        while (t := datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)) < end:
            starts.append(t)
            day += timedelta(days=seconds // 86400)
        return starts
    origin = datetime(local.year, local.month, local.day, tzinfo=zone).astimezone(UTC)
    step = timedelta(seconds=seconds)
    t = origin + ((start - origin) // step) * step
    while t < end:
        starts.append(t)
        t += step
    return starts


def call_values(call: dict, metric: str):
    if metric == "latency_ms":  # a double: integers sent come back as floats
        return None if call.get("latencyMs") is None else float(call["latencyMs"])
    if metric == "call_count":
        return 1
    return 1 if call.get("error") else 0


def usage_value(event: dict, metric: str):
    tokens = {k: event.get(k, 0) for k in ("inputTokens", "outputTokens")}
    costs = {k: Decimal(event.get(k, "0")) for k in ("inputCost", "outputCost")}
    return {"input_tokens": tokens["inputTokens"], "output_tokens": tokens["outputTokens"],
            "total_tokens": tokens["inputTokens"] + tokens["outputTokens"],
            "input_cost": costs["inputCost"], "output_cost": costs["outputCost"],
            "total_cost": costs["inputCost"] + costs["outputCost"]}[metric]


def percentile(values: list, p: float) -> float | None:
    """Linear interpolation between closest ranks (numpy default / percentile_cont)."""
    if not values:
        return None
    ordered = sorted(float(v) for v in values)
    h = (p / 100) * (len(ordered) - 1)
    lo, hi = math.floor(h), math.ceil(h)
    return ordered[lo] + (h - lo) * (ordered[hi] - ordered[lo])


def aggregate(values: list, how: str, zero=0):
    if how == "sum":
        return sum(values, zero)
    if how == "count":
        return len(values)
    if not values:
        return None
    if how == "avg":
        return float(sum(values)) / len(values)
    return min(values) if how == "min" else max(values)


def label(p) -> str:
    return str(int(p)) if float(p).is_integer() else str(p)


def expected_values(rows: list, metrics: list[str], value_of, pcts=PCTS, aggs=AGGS) -> dict:
    out = {}
    for metric in metrics:
        values = [v for v in (value_of(row, metric) for row in rows) if v is not None]
        zero = {"latency_ms": 0.0, "input_cost": Decimal(0), "output_cost": Decimal(0),
                "total_cost": Decimal(0)}.get(metric, 0)
        for how in aggs:
            out[f"{how}_{metric}"] = aggregate(values, how, zero)
        for p in pcts:
            out[f"p{label(p)}_{metric}"] = percentile(values, p)
    out["count"] = len(rows)
    return out


def in_range(events, start, end):
    return [e for e in events if start <= parse(e["ts"]) < end]


def bucket_of(starts: list[datetime], event: dict) -> datetime:
    return starts[bisect.bisect_right(starts, parse(event["ts"])) - 1]


def expected_call_buckets(calls, start, end, seconds, tz, metrics=CALL_METRICS, aggs=AGGS,
                          pcts=PCTS) -> list[tuple[datetime, dict]]:
    starts = grid(start, end, seconds, tz)
    by_bucket: dict[datetime, list] = {s: [] for s in starts}
    for call in in_range(calls, start, end):
        by_bucket[bucket_of(starts, call)].append(call)
    return [(s, expected_values(by_bucket[s], metrics, call_values, pcts, aggs)) for s in starts]


def expected_usage_buckets(usage, start, end, seconds, tz, metrics=USAGE_METRICS, aggs=AGGS,
                           pcts=PCTS) -> list[tuple]:
    starts = grid(start, end, seconds, tz)
    groups: dict[tuple, list] = {}
    for event in in_range(usage, start, end):
        groups.setdefault((bucket_of(starts, event), event["model"]), []).append(event)
    return [(s, model, expected_values(groups[(s, model)], metrics, usage_value, pcts, aggs))
            for s, model in sorted(groups)]


def assert_value(got, want, where: str):
    if want is None:
        assert got is None, f"{where}: {got!r} != None"
    elif isinstance(want, Decimal):
        assert isinstance(got, (Decimal, int)) and Decimal(got) == want, f"{where}: {got} != {want}"
    elif isinstance(want, int) and not isinstance(want, bool):
        assert isinstance(got, int) and got == want, f"{where}: {got!r} != {want!r}"
    else:
        assert got is not None and math.isclose(float(got), float(want), rel_tol=1e-9,
                                                abs_tol=1e-9), f"{where}: {got} != {want}"


def assert_buckets(got: list[dict], want: list[tuple], with_model: bool = False):
    assert len(got) == len(want), (len(got), len(want))
    for i, (bucket, expected) in enumerate(zip(got, want)):
        assert parse(bucket["timestamp"]) == expected[0], (i, bucket["timestamp"], expected[0])
        values = expected[-1]
        keys = ["timestamp"] + (["model"] if with_model else []) + list(values)
        assert list(bucket) == keys, (list(bucket), keys)
        if with_model:
            assert bucket["model"] == expected[1]
        for key, want_value in values.items():
            assert_value(bucket[key], want_value, f"bucket {i} {bucket['timestamp']} {key}")


def specs(metrics, aggs=AGGS, pcts=PCTS):
    return [{"metric": m, "aggregations": aggs, "percentiles": pcts} for m in metrics]


def full_body(start=DATA_START, end=DATA_END, **extra) -> dict:
    return {"project_id": PROJECT, "start": rfc(start), "end": rfc(end),
            "usage_metrics": specs(USAGE_METRICS), "call_metrics": specs(CALL_METRICS),
            **extra}


# --- values ------------------------------------------------------------------------------


def test_every_call_and_usage_bucket_matches_the_events(client, world):
    body = stats(client, world.org.headers, full_body(granularity=3600))
    assert {k: body[k] for k in ("start", "end", "granularity", "timezone")} == {
        "start": "2024-03-08T00:00:00Z", "end": "2024-03-12T00:00:00Z", "granularity": 3600,
        "timezone": "UTC"}
    calls = expected_call_buckets(world.calls, DATA_START, DATA_END, 3600, "UTC")
    assert len(calls) == 96 and sum(v["count"] for _, v in calls) == len(world.calls)
    assert_buckets(body["call_buckets"], calls)
    usage = expected_usage_buckets(world.usage, DATA_START, DATA_END, 3600, "UTC")
    assert sum(v["count"] for *_, v in usage) == len(world.usage)
    assert_buckets(body["usage_buckets"], usage, with_model=True)


def test_costs_are_exact_decimal_json_numbers(client, world):
    r = client.post("/calls/stats", headers=world.org.headers, content=encode({
        "project_id": PROJECT, "start": rfc(DATA_START), "end": rfc(DATA_END),
        "granularity": 345600, "usage_metrics": [{"metric": "total_cost",
                                                  "aggregations": ["sum"]}]}))
    assert r.status_code == 200, r.text
    assert '"sum_total_cost":"' not in r.text  # numbers, not strings
    got = {b["model"]: b["sum_total_cost"] for b in loads(r.text)["usage_buckets"]}
    want: dict[str, Decimal] = {}
    for event in world.usage:
        want[event["model"]] = want.get(event["model"], Decimal(0)) + \
            usage_value(event, "total_cost")
    assert got == want and all(isinstance(v, Decimal) for v in got.values())


def test_semantics_of_counts_rates_and_empty_buckets(client, world):
    """call_count sum = calls, error_count avg = error rate, latency count = calls with a
    latency; an empty bucket has sums/counts 0 and the rest null."""
    start, end = DATA_START - timedelta(hours=2), DATA_START + timedelta(hours=2)
    body = stats(client, world.org.headers, {
        "project_id": PROJECT, "start": rfc(start), "end": rfc(end), "granularity": 3600,
        "call_metrics": specs(CALL_METRICS)})
    assert body["usage_buckets"] == []
    empty = body["call_buckets"][0]
    assert parse(empty["timestamp"]) == start
    assert all(empty[f"{how}_{m}"] in (0, 0.0) for m in CALL_METRICS for how in ("sum", "count"))
    assert all(empty[f"{how}_{m}"] is None for m in CALL_METRICS for how in ("avg", "min", "max"))
    assert all(empty[f"p{label(p)}_{m}"] is None for m in CALL_METRICS for p in PCTS)
    assert empty["count"] == 0
    whole = stats(client, world.org.headers, {
        "project_id": PROJECT, "start": rfc(DATA_START), "end": rfc(DATA_END),
        "granularity": 345600, "call_metrics": specs(CALL_METRICS, pcts=[])})
    (bucket,) = whole["call_buckets"]
    errors = sum(1 for c in world.calls if c.get("error"))
    with_latency = sum(1 for c in world.calls if "latencyMs" in c)
    assert bucket["sum_call_count"] == bucket["count"] == len(world.calls)
    assert bucket["sum_error_count"] == errors and 0 < errors < len(world.calls)
    assert math.isclose(bucket["avg_error_count"], errors / len(world.calls))
    assert bucket["count_latency_ms"] == with_latency < len(world.calls)
    assert bucket["count_error_count"] == bucket["count_call_count"] == len(world.calls)
    assert (bucket["min_error_count"], bucket["max_error_count"]) == (0, 1)


# --- filters -----------------------------------------------------------------------------


def matches(call: dict, flt: dict) -> bool:
    for name, field in LIST_FILTERS.items():
        wanted = flt.get(name)
        if not wanted:
            continue
        if field.endswith("Refs"):
            if not set(call.get(field) or ()) & set(wanted):
                return False
        elif call.get(field) not in wanted:
            return False
    return not (flt.get("trace_roots_only") and "parentId" in call)


FILTER_CASES = {
    "op_names": {"op_names": ["predict", "embed"]},
    "input_refs": {"input_refs": [REFS[0], "weave:///nowhere"]},
    "output_refs": {"output_refs": [REFS[2]]},
    "parent_ids": {"parent_ids": ["a-c0", "a-c3", "a-c10"]},
    "trace_ids": {"trace_ids": ["a-t0", "a-t5", "a-t12"]},
    "call_ids": {"call_ids": ["a-c1", "a-c2", "a-c40", "a-c41", "a-c300"]},
    "thread_ids": {"thread_ids": ["thr2"]},
    "turn_ids": {"turn_ids": ["thr1-turn1", "thr3-turn2"]},
    "trace_roots_only": {"trace_roots_only": True},
    "wb_user_ids": {"wb_user_ids": ["u2"]},
    "wb_run_ids": {"wb_run_ids": ["r1"]},
    "combined": {"op_names": ["predict", "chat", "score"], "wb_user_ids": ["u1", "u3"],
                 "trace_roots_only": True, "input_refs": REFS[:2]},
    "empty lists constrain nothing": {"op_names": [], "call_ids": []},
    "roots_only false keeps all": {"trace_roots_only": False},
}
FILTER_USAGE = ["total_tokens", "total_cost", "input_tokens"]


@pytest.mark.parametrize("case", list(FILTER_CASES))
def test_each_filter_alone_and_combined_applies_to_calls_and_usage(client, world, case):
    flt = FILTER_CASES[case]
    body = stats(client, world.org.headers, {
        "project_id": PROJECT, "start": rfc(DATA_START), "end": rfc(DATA_END),
        "granularity": 21600, "filter": flt,
        "call_metrics": specs(CALL_METRICS, aggs=["sum", "avg", "count"], pcts=[50]),
        "usage_metrics": specs(FILTER_USAGE, aggs=["sum", "max"], pcts=[90])})
    calls = [c for c in world.calls if matches(c, flt)]
    usage = [u for u in world.usage if matches(u, flt)]
    if case.startswith(("empty", "roots_only false")):
        assert len(calls) == len(world.calls)
    else:
        assert 0 < len(calls) < len(world.calls), "the case must select some, not all"
    kw = dict(aggs=["sum", "avg", "count"], pcts=[50])
    assert_buckets(body["call_buckets"], expected_call_buckets(
        calls, DATA_START, DATA_END, 21600, "UTC", **kw))
    assert_buckets(body["usage_buckets"], expected_usage_buckets(
        usage, DATA_START, DATA_END, 21600, "UTC", metrics=FILTER_USAGE, aggs=["sum", "max"],
        pcts=[90]), with_model=True)


# --- time zones, granularity -------------------------------------------------------------


def test_hourly_buckets_in_kolkata_start_at_half_past_utc(client, world):
    body = stats(client, world.org.headers, full_body(granularity=3600,
                                                      timezone="Asia/Kolkata"))
    assert body["timezone"] == "Asia/Kolkata"
    stamps = [b["timestamp"] for b in body["call_buckets"]]
    assert stamps[0] == "2024-03-08T05:00:00+05:30"  # starts before `start` (05:30 local)
    assert all(s.endswith(":00:00+05:30") for s in stamps)
    assert all(parse(s).astimezone(UTC).minute == 30 for s in stamps)
    assert len(stamps) == 97
    assert_buckets(body["call_buckets"], expected_call_buckets(
        world.calls, DATA_START, DATA_END, 3600, "Asia/Kolkata"))
    assert_buckets(body["usage_buckets"], expected_usage_buckets(
        world.usage, DATA_START, DATA_END, 3600, "Asia/Kolkata"), with_model=True)


def test_daily_buckets_in_new_york_are_local_days_across_dst(client, world):
    start = datetime(2024, 3, 8, 5, tzinfo=UTC)  # local midnight, EST
    end = datetime(2024, 3, 12, 4, tzinfo=UTC)  # local midnight, EDT
    body = stats(client, world.org.headers, full_body(start, end, granularity=86400,
                                                      timezone="America/New_York"))
    stamps = [b["timestamp"] for b in body["call_buckets"]]
    assert stamps == ["2024-03-08T00:00:00-05:00", "2024-03-09T00:00:00-05:00",
                      "2024-03-10T00:00:00-05:00", "2024-03-11T00:00:00-04:00"]
    assert parse(stamps[3]) - parse(stamps[2]) == timedelta(hours=23)
    assert_buckets(body["call_buckets"], expected_call_buckets(
        world.calls, start, end, 86400, "America/New_York"))
    assert_buckets(body["usage_buckets"], expected_usage_buckets(
        world.usage, start, end, 86400, "America/New_York"), with_model=True)


def test_daily_buckets_in_utc_are_fixed_days(client, world):
    start = DATA_START + timedelta(hours=9)
    body = stats(client, world.org.headers, {
        "project_id": PROJECT, "start": rfc(start), "end": rfc(DATA_END), "granularity": 86400,
        "call_metrics": specs(["latency_ms"])})
    stamps = [b["timestamp"] for b in body["call_buckets"]]
    assert stamps[0] == "2024-03-08T00:00:00Z" and len(stamps) == 4
    assert_buckets(body["call_buckets"], expected_call_buckets(
        world.calls, start, DATA_END, 86400, "UTC", metrics=["latency_ms"]))


def auto_expected(start, end, tz="UTC") -> int:
    for seconds in (60, 300, 600, 900, 1800, 3600, 21600, 43200, 86400, 604800):
        if len(grid(start, end, seconds, tz)) <= 200:
            return seconds
    return 604800


@pytest.mark.parametrize("span,tz", [
    (timedelta(hours=2), "UTC"), (timedelta(hours=5), "UTC"), (timedelta(days=1), "UTC"),
    (timedelta(days=4), "UTC"), (timedelta(days=4), "Asia/Kolkata"),
    (timedelta(days=30), "UTC"), (timedelta(days=90), "Europe/Berlin"),
    (timedelta(days=365), "UTC"), (timedelta(days=3000), "UTC"),
])
def test_granularity_is_picked_from_the_range_when_absent(client, world, span, tz):
    start = DATA_START
    end = start + span
    body = stats(client, world.org.headers, {
        "project_id": PROJECT, "start": rfc(start), "end": rfc(end), "timezone": tz,
        "call_metrics": specs(["call_count"], aggs=["sum"], pcts=[])})
    want = auto_expected(start, end, tz)
    assert body["granularity"] == want
    assert_buckets(body["call_buckets"], expected_call_buckets(
        world.calls, start, end, want, tz, metrics=["call_count"], aggs=["sum"], pcts=[]))


def widened_expected(start, end, seconds) -> int:
    if len(grid(start, end, seconds, "UTC")) <= 10_000:
        return seconds
    seconds = max(seconds, math.ceil((end - start).total_seconds() / 10_000))
    while len(grid(start, end, seconds, "UTC")) > 10_000:
        seconds += 1
    return seconds


@pytest.mark.parametrize("start,end,asked,want", [
    (DATA_START, DATA_START + timedelta(days=2), 1, 18),
    (DATA_START, DATA_START + timedelta(days=2), 5, 18),
    (DATA_START, DATA_START + timedelta(days=2), 17, 18),
    (DATA_START, DATA_START + timedelta(days=2), 18, 18),  # 9,600 buckets fit
    # 100,000 s from an unaligned start: 10 s would need 10,001 buckets
    (DATA_START + timedelta(seconds=5), DATA_START + timedelta(seconds=100_005), 1, 11),
])
def test_granularity_widens_past_ten_thousand_buckets(client, world, start, end, asked, want):
    assert widened_expected(start, end, asked) == want
    query = {"project_id": PROJECT, "start": rfc(start), "end": rfc(end), "granularity": asked,
             "call_metrics": specs(["call_count", "latency_ms"], aggs=["sum", "max"], pcts=[])}
    r = client.post("/calls/stats", headers=world.org.headers, json=query)
    assert r.status_code == 200, r.text
    body = loads(r.text)
    assert body["granularity"] == want
    # a widened granularity is said, in a header (the body keeps Weave's shape)
    said = json.loads(r.headers["stats-warnings"]) if "stats-warnings" in r.headers else []
    assert said == ([] if want == asked else [{
        "code": "granularity_widened",
        "message": f"granularity {asked} s would give more than 10,000 buckets over this "
                   f"range; answered with {want} s"}])
    assert len(body["call_buckets"]) <= 10_000
    assert_buckets(body["call_buckets"], expected_call_buckets(
        world.calls, start, end, want, "UTC", metrics=["call_count", "latency_ms"],
        aggs=["sum", "max"], pcts=[]))


def test_end_defaults_to_now_and_naive_times_are_utc(client, world):
    before = datetime.now(UTC).replace(microsecond=0)
    body = stats(client, world.org.headers, {"project_id": PROJECT,
                                             "start": "2024-03-08T00:00:00", "granularity": 604800})
    after = datetime.now(UTC)
    assert body["start"] == "2024-03-08T00:00:00Z"
    assert before <= parse(body["end"]) <= after
    assert sum(b["sum_call_count"] for b in body["call_buckets"]) == len(world.calls)


def test_metric_defaults_and_merging(client, world):
    base = {"project_id": PROJECT, "start": rfc(DATA_START), "end": rfc(DATA_END),
            "granularity": 345600}
    body = stats(client, world.org.headers, base)  # no metric lists: call_count sum
    assert body["usage_buckets"] == []
    assert body["call_buckets"][0] == {"timestamp": "2024-03-08T00:00:00Z",
                                       "sum_call_count": len(world.calls),
                                       "count": len(world.calls)}
    body = stats(client, world.org.headers, {**base, "usage_metrics": [
        {"metric": "input_tokens"},  # neither aggregations nor percentiles: sum
        {"metric": "input_tokens", "aggregations": ["max", "sum"], "percentiles": [50, 50.0]}]})
    assert body["call_buckets"] == []
    for bucket in body["usage_buckets"]:
        assert list(bucket) == ["timestamp", "model", "sum_input_tokens", "max_input_tokens",
                                "p50_input_tokens", "count"]
        events = [e for e in world.usage if e["model"] == bucket["model"]]
        assert bucket["sum_input_tokens"] == sum(usage_value(e, "input_tokens") for e in events)


# --- isolation -----------------------------------------------------------------------------


def totals(body) -> tuple[int, int]:
    return (sum(b["sum_call_count"] for b in body["call_buckets"]),
            sum(b["count"] for b in body["usage_buckets"]))


def test_projects_and_tenants_are_isolated(client, world):
    def ask(org, project):
        return stats(client, org.headers, {
            "project_id": project, "start": rfc(DATA_START), "end": rfc(DATA_END),
            "granularity": 86400, "call_metrics": specs(["call_count"], ["sum"], []),
            "usage_metrics": specs(["total_tokens"], ["sum"], [])})

    assert totals(ask(world.org, PROJECT)) == (len(world.calls), len(world.usage))
    other = world.other_project_calls
    assert totals(ask(world.org, OTHER_PROJECT))[0] == len(other)
    foreign = ask(world.other_org, PROJECT)
    assert totals(foreign)[0] == len(world.foreign_calls) != len(world.calls)
    # a project only another org has, and one nobody has, answer alike
    assert ask(world.other_org, OTHER_PROJECT) == ask(world.other_org, "nobody/none")
    assert totals(ask(world.other_org, OTHER_PROJECT)) == (0, 0)


# --- auth and errors -----------------------------------------------------------------------


def basic(user: str, password: str) -> dict:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def small_body() -> dict:
    return {"project_id": PROJECT, "start": rfc(DATA_START), "end": rfc(DATA_END),
            "granularity": 345600}


def test_basic_with_any_user_name_and_bearer_both_work(client, world):
    want = stats(client, world.org.headers, small_body())
    assert want["call_buckets"][0]["sum_call_count"] == len(world.calls)
    for user in ("api", "", "someone@example.com"):
        assert stats(client, basic(user, world.org.key), small_body()) == want
    read_only = world.org.read_only["Authorization"].removeprefix("Bearer ")
    assert stats(client, basic("api", read_only), small_body()) == want


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Basic"}, {"Authorization": "Basic !!!notbase64"},
    {"Authorization": "Bearer sgk_0000000000000000_" + "A" * 43},
    {"Authorization": "Token abc"},
], ids=["none", "empty-basic", "bad-base64", "unknown-key", "other-scheme"])
def test_missing_or_bad_credentials_get_401_in_the_fastapi_envelope(client, world, headers):
    r = client.post("/calls/stats", content=encode(small_body()), headers=headers)
    assert r.status_code == 401, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert list(body) == ["detail"] and isinstance(body["detail"], str)
    assert r.headers["www-authenticate"].startswith("Basic")


def test_unknown_key_via_basic_is_401_and_ingest_only_key_is_403(client, world):
    r = client.post("/calls/stats", content=encode(small_body()),
                    headers=basic("api", "sgk_0000000000000000_" + "A" * 43))
    assert r.status_code == 401 and list(r.json()) == ["detail"]
    r = client.post("/calls/stats", content=encode(small_body()), headers=world.org.ingest_only)
    assert r.status_code == 403 and list(r.json()) == ["detail"], r.text


def locs(body) -> list[tuple]:
    assert list(body) == ["detail"] and isinstance(body["detail"], list) and body["detail"]
    for problem in body["detail"]:
        assert set(problem) == {"loc", "msg", "type"}, problem
        assert problem["loc"][0] == "body" and problem["msg"] and problem["type"]
    return [tuple(p["loc"][1:]) for p in body["detail"]]


def with_(**changes) -> dict:
    return {**small_body(), **changes}


BAD_BODIES = {
    "unknown metric": (with_(call_metrics=[{"metric": "tokens"}]), ("call_metrics", 0, "metric")),
    "usage metric in call list": (with_(call_metrics=[{"metric": "input_tokens"}]),
                                  ("call_metrics", 0, "metric")),
    "bad aggregation": (with_(usage_metrics=[{"metric": "input_tokens",
                                              "aggregations": ["sum", "median"]}]),
                        ("usage_metrics", 0, "aggregations", 1)),
    # 0 and 100 are valid (issue 12, as Weave's server): just past them is not
    "percentile below 0": (with_(call_metrics=[{"metric": "latency_ms", "percentiles": [-0.5]}]),
                           ("call_metrics", 0, "percentiles", 0)),
    "percentile above 100": (with_(call_metrics=[{"metric": "latency_ms",
                                                  "percentiles": [50, 100.5]}]),
                             ("call_metrics", 0, "percentiles", 1)),
    "percentile text": (with_(call_metrics=[{"metric": "latency_ms", "percentiles": ["95"]}]),
                        ("call_metrics", 0, "percentiles", 0)),
    "too many percentiles": (with_(call_metrics=[{"metric": "latency_ms",
                                                  "percentiles": list(range(1, 23))}]),
                             ("call_metrics", 0, "percentiles")),
    "bad timezone": (with_(timezone="Mars/Olympus_Mons"), ("timezone",)),
    "timezone injection": (with_(timezone="UTC'; DROP TABLE orgs; --"), ("timezone",)),
    "end before start": (with_(end=rfc(DATA_START - timedelta(seconds=1))), ("end",)),
    "end equals start": (with_(end=rfc(DATA_START)), ("end",)),
    "start in the future without end": (with_(start="2099-01-01T00:00:00Z", end=None),
                                        ("start",)),
    "start before 2000": (with_(start="1999-12-31T23:59:59Z"), ("start",)),
    "start not a time": (with_(start="yesterday"), ("start",)),
    "start a number": (with_(start=1709856000), ("start",)),
    "missing start": ({"project_id": PROJECT}, ("start",)),
    "missing project": ({"start": rfc(DATA_START)}, ("project_id",)),
    "empty project": (with_(project_id=""), ("project_id",)),
    "granularity zero": (with_(granularity=0), ("granularity",)),
    "granularity negative": (with_(granularity=-60), ("granularity",)),
    "granularity fraction": (with_(granularity=1.5), ("granularity",)),
    "granularity text": (with_(granularity="3600"), ("granularity",)),
    "unknown field": (with_(projectId=PROJECT), ("projectId",)),
    "unknown filter": (with_(filter={"op_name": ["x"]}), ("filter", "op_name")),
    "filter not a list": (with_(filter={"op_names": "predict"}), ("filter", "op_names")),
    "filter item not text": (with_(filter={"trace_ids": ["ok", 5]}), ("filter", "trace_ids", 1)),
    "filter NUL": (with_(filter={"call_ids": ["a\x00b"]}), ("filter", "call_ids", 0)),
    "roots_only not bool": (with_(filter={"trace_roots_only": "yes"}),
                            ("filter", "trace_roots_only")),
    "metrics not a list": (with_(usage_metrics={"metric": "input_tokens"}), ("usage_metrics",)),
    "unknown spec field": (with_(usage_metrics=[{"metric": "input_tokens", "agg": ["sum"]}]),
                           ("usage_metrics", 0, "agg")),
    "null project": (with_(project_id=None), ("project_id",)),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_bad_bodies_get_422_naming_the_field(client, world, case):
    payload, loc = BAD_BODIES[case]
    body = stats(client, world.org.headers, payload, status=422)
    assert locs(body) == [loc], body


def test_every_problem_is_reported_at_once(client, world):
    body = stats(client, world.org.headers, {
        "start": "nope", "granularity": 0, "timezone": "Nowhere/Land", "extra": 1,
        "call_metrics": [{"metric": "bogus", "aggregations": ["sum", "mode"]}],
        "usage_metrics": [{"metric": "total_cost", "percentiles": [101]}],
        "filter": {"op_names": [1], "wb_run_ids": ["ok"], "nope": True}}, status=422)
    assert sorted(locs(body), key=str) == sorted([
        ("extra",), ("project_id",), ("start",), ("granularity",), ("timezone",),
        ("call_metrics", 0, "metric"), ("call_metrics", 0, "aggregations", 1),
        ("usage_metrics", 0, "percentiles", 0), ("filter", "nope"), ("filter", "op_names", 0),
    ], key=str)


@pytest.mark.parametrize("raw", [b"", b"not json", b"{", b"[1, 2]", b"null", b'"text"', b"42",
                                 b"[" * 100_000, b'{"project_id": "a"' + b" " * 10])
def test_bodies_that_are_not_a_json_object_get_422(client, world, raw):
    body = stats(client, world.org.headers, raw, status=422)
    assert locs(body)


def test_nothing_yields_a_500(client, world):
    """Odd but well-typed bodies answer 200; odd types 422; never a 500 or a traceback."""
    rng = random.Random(99)
    weird = [None, True, 0, -1, 2**63, 1e308, "", "x" * 300, [], {}, ["a"], {"a": 1},
             "2024-03-08T00:00:00+14:00", "\x00", "../../etc", 2**31 - 1]
    fields = list(full_body()) + ["filter", "granularity", "timezone"]
    for _ in range(60):
        payload = full_body(granularity=86400)
        payload[rng.choice(fields)] = rng.choice(weird)
        r = client.post("/calls/stats", content=encode(payload), headers=world.org.headers)
        assert r.status_code in (200, 422), (payload, r.status_code, r.text)
        assert list(r.json())[0] in ("start", "detail")
    for percentiles in ([1e-300], [99.99999999999999], [33.3333]):
        body = stats(client, world.org.headers, with_(call_metrics=[
            {"metric": "latency_ms", "percentiles": percentiles}]))
        assert len(body["call_buckets"]) == 1
    huge = stats(client, world.org.headers, with_(
        start="2000-01-01T00:00:00Z", end="2100-01-01T00:00:00Z", granularity=1,
        timezone="Pacific/Chatham"))
    assert len(huge["call_buckets"]) <= 10_000


def test_an_unexpected_failure_is_a_json_500_without_a_traceback(client, world, monkeypatch):
    from stats_gateway.core.engine import StatsEngine

    async def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(StatsEngine, "series_rows", broken)
    r = client.post("/calls/stats", content=encode(small_body()), headers=world.org.headers)
    assert r.status_code == 500
    assert list(r.json()) == ["detail"] and "secret" not in r.text
    assert r.headers["x-request-id"] in r.json()["detail"]


def test_the_endpoint_is_in_the_openapi_schema(client):
    r = client.get("/schema/openapi.json")
    assert r.status_code == 200
    assert "post" in r.json()["paths"]["/calls/stats"]
