"""Issue 12: bounded cost per caller, no 500 on any input, every error in its endpoint's shape.

Each test fails on the gateway before the issue: admission by cost and the expensive lane,
405s with ``Allow`` and ``HEAD`` on every GET endpoint, seed endpoints' own error shapes for
405 and query timeouts, exact invalid-event counts, no leak of a repo's workspace to a key
limited to others, RFC 3339 fractions of any length and Weave percentiles 0 and 100.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import msgspec
import psycopg
import pytest
from litestar.testing import TestClient

from domains import DOMAINS
from stats_gateway.auth import create_key, ensure_org
from stats_gateway.config import Settings
from stats_gateway.http.admission import Admission, Cost, Refused
from stats_gateway.http.app import create_app
from stats_gateway.http.common import encode_in_pieces
from support import assert_problem, encode, ingest, loads, post_events, without_request_id

WEEK = {"scope": "org", "start": "2026-01-01T00:00:00Z", "end": "2026-01-08T00:00:00Z",
        "timeBucketSize": "1h"}
HOURS_IN_WEEK = 7 * 24  # buckets of WEEK, counted by hand
BREAKDOWN = "/v2/stats/storage/breakdown/buckets"


@pytest.fixture
def org(new_org):
    return new_org()


def settings(database_url: str, **kw) -> Settings:
    return Settings(database_url=database_url, data_dir=Path("/nonexistent"), rate_limit="off",
                    **kw)


@contextlib.contextmanager
def gateway(database_url: str, **kw):
    with TestClient(create_app(settings(database_url, **kw))) as client:
        yield client


def key_headers(db, org_id: str, **kw) -> dict:
    return {"Authorization": f"Bearer {create_key(db, org_id, **kw)}"}


# --- 1. admission by cost -------------------------------------------------------------------

def test_a_request_over_the_keys_whole_budget_is_400_saying_how_to_narrow(database_url,
                                                                           new_org):
    org = new_org()
    points = HOURS_IN_WEEK * 200  # 33,600: under the 100,000-point cap, over this budget
    with gateway(database_url, cost_budget="20000/min") as client:
        r = client.get(BREAKDOWN, params={**WEEK, "includeSeries": "true", "limit": 200},
                       headers=org.headers)
        body = assert_problem(r, 400, "too_expensive")
        assert f"costs {points} points" in body["message"], body
        assert "limit" in body["message"] and "timeBucketSize" in body["message"]
        # the same request without series costs one point per bucket: admitted
        r = client.get(BREAKDOWN, params={**WEEK, "limit": 200}, headers=org.headers)
        assert r.status_code == 200, r.text


def test_a_key_over_its_budget_gets_429_with_retry_after_other_keys_do_not(database_url,
                                                                          db, new_org):
    org = new_org()
    other = key_headers(db, org.id)
    points = HOURS_IN_WEEK * 100  # 16,800 of a 20,000 budget: the second one does not fit
    params = {**WEEK, "includeSeries": "true", "limit": 100}
    with gateway(database_url, cost_budget="20000/min") as client:
        r = client.get(BREAKDOWN, params=params, headers=org.headers)
        assert r.status_code == 200, r.text
        r = client.get(BREAKDOWN, params=params, headers=org.headers)
        body = assert_problem(r, 429, "cost_budget_exceeded")
        # 3,200 points left, refilled at 20,000/60 per second: ceil(13,600 / 333.3) = 41 s
        wait = math.ceil((points - (20_000 - points)) / (20_000 / 60))
        assert 1 <= int(r.headers["retry-after"]) <= wait, r.headers
        assert f"costs {points} points" in body["message"] and "limit" in body["message"]
        r = client.get(BREAKDOWN, params=params, headers=other)  # its own budget
        assert r.status_code == 200, r.text
        r = client.get("/v2/stats/storage", params=WEEK, headers=org.headers)  # 168 points
        assert r.status_code == 200, r.text


def test_costs_are_buckets_times_entities():
    from stats_gateway.core.request import parse_breakdown, parse_series
    storage = next(d for d in DOMAINS if d.name == "storage")
    now = datetime(2026, 6, 1, tzinfo=UTC)
    params = {k: [str(v)] for k, v in WEEK.items()}
    assert Cost.of(parse_series(storage, storage.series_view(""), params, now)).points \
        == HOURS_IN_WEEK
    dim = storage.dimension("buckets")
    assert Cost.of(parse_breakdown(storage, dim, {**params, "limit": ["7"]}, now)).points \
        == HOURS_IN_WEEK
    assert Cost.of(parse_breakdown(storage, dim, {**params, "limit": ["7"],
                                                  "includeSeries": ["true"]}, now)).points \
        == HOURS_IN_WEEK * 7


def test_expensive_requests_take_slots_per_key_and_per_org():
    admission = Admission("off", expensive_points=10, per_key=1, per_org=2, wait_s=0.05)
    big, small = Cost(10), Cost(9)

    async def scenario():
        scope: dict = {}
        async with admission.slot(scope, "k1", "o1", big) as expensive:
            assert expensive is True
            async with admission.slot(scope, "k1", "o1", small) as cheap:
                assert cheap is False  # cheap requests never wait
            with pytest.raises(Refused) as refused:  # the key's one slot is taken
                async with admission.slot(scope, "k1", "o1", big):
                    pass
            assert refused.value.status == 429
            assert refused.value.error_code == "too_many_expensive_requests"
            async with admission.slot(scope, "k2", "o1", big):  # the org's second slot
                with pytest.raises(Refused):  # the org's two are taken
                    async with admission.slot(scope, "k3", "o1", big):
                        pass
                async with admission.slot(scope, "k4", "o2", big):  # another org: free
                    pass
        async with admission.slot(scope, "k1", "o1", big) as expensive:  # released
            assert expensive is True
        assert not admission._running

    asyncio.run(scenario())


def test_expensive_requests_run_in_the_lane_and_answer_alike(client, database_url, new_org):
    org = new_org()
    now = datetime.now(UTC).replace(microsecond=0)
    events = [{"eventId": f"l{i}", "ts": (now - timedelta(minutes=7 * i + 3)).isoformat(),
               "bucketId": f"b{i % 3}", "uplBytes": i} for i in range(60)]
    ingest(client, org, "storage", events)
    params = {"scope": "org", "window": "24h", "timeBucketSize": "5m", "includeSeries": "true"}
    expected = client.get(BREAKDOWN, params=params, headers=org.headers)
    assert expected.status_code == 200, expected.text
    with gateway(database_url, expensive_points=100) as lane_client:
        lane_pool = lane_client.app.state.lane.engine.pool
        before = lane_pool.get_stats().get("requests_num", 0)
        cheap = lane_client.get("/v2/stats/storage", params={"scope": "org", "window": "24h",
                                                             "timeBucketSize": "1h"},
                                headers=org.headers)  # 24 points: the main loop
        assert cheap.status_code == 200
        assert lane_pool.get_stats().get("requests_num", 0) == before
        r = lane_client.get(BREAKDOWN, params=params, headers=org.headers)  # 288 x 3 points
        assert r.status_code == 200, r.text
        assert lane_pool.get_stats().get("requests_num", 0) > before
    body, want = loads(r.text), loads(expected.text)
    assert body["entities"] == want["entities"] and body["summary"] == want["summary"]
    assert sum(p["uplBytes"] for e in body["entities"] for p in e["series"]) \
        == sum(e["uplBytes"] for e in events)


class Point(msgspec.Struct, frozen=True, kw_only=True):
    ts: int
    value: Decimal | None


class Entity(msgspec.Struct, frozen=True, kw_only=True):
    entityId: str
    series: list[Point] | None


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    success: bool
    entities: list[Entity]


@pytest.mark.parametrize("entities, points", [(0, 0), (3, 5), (150, 0), (12, 2_345)])
def test_a_large_answer_is_encoded_in_pieces_byte_for_byte(entities, points):
    body = Envelope(success=True, entities=[
        Entity(entityId=f"e{i}", series=[Point(ts=t, value=Decimal(t) / 7 if t % 3 else None)
                                         for t in range(points)] if points else None)
        for i in range(entities)])
    one_call = msgspec.json.Encoder(decimal_format="number").encode(body)
    assert encode_in_pieces(body) == one_call
    assert msgspec.json.decode(one_call)["entities"][:1] == msgspec.json.decode(
        encode_in_pieces(body))["entities"][:1]


# --- 5. 405 with Allow, HEAD as GET -----------------------------------------------------------

def documented_paths(client, org_id: str) -> dict[str, set[str]]:
    document = client.get("/schema/openapi.json").json()
    return {re.sub(r"\{orgId\}", org_id, path): {m.upper() for m in item
                                                 if m in ("get", "post", "put", "patch", "delete")}
            for path, item in document["paths"].items()}


def seed_shape(path: str, body: dict, status: int) -> bool:
    """Whether ``body`` is the error envelope the path's own API documents."""
    if path == "/v1/runs-stats":
        return set(body) == {"code", "message", "errors"} and isinstance(body["code"], str)
    if path == "/v1/model-usage":
        return set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    if path.endswith("/cu/usage-by-workflow"):
        return set(body) == {"code", "data", "message", "requestId"} and body["code"] == status
    if path == "/calls/stats":
        return set(body) == {"detail"}
    return set(body) >= {"type", "error_code", "status"} and body["status"] == status


def test_every_405_carries_allow_in_the_endpoints_own_shape(client, org):
    for path, methods in documented_paths(client, org.id).items():
        wrong = next(m for m in ("PATCH", "DELETE", "PUT", "POST", "GET") if m not in methods)
        r = client.request(wrong, path, headers=org.headers)
        assert r.status_code == 405, (wrong, path, r.status_code, r.text)
        allow = {m.strip() for m in r.headers.get("allow", "").split(",")}
        assert methods <= allow, (path, r.headers.get("allow"))
        assert ("HEAD" in allow) == ("GET" in methods), (path, allow)
        options = client.options(path, headers=org.headers)  # the same list
        assert options.status_code == 204, (path, options.status_code)
        assert {m.strip() for m in options.headers["allow"].split(",")} == allow, path
        assert seed_shape(path, r.json(), 405), (path, r.text)
        assert not r.headers["content-type"].startswith("application/problem+json") \
            or not path.startswith(("/v1/", "/calls/")), (path, r.headers["content-type"])


def test_head_answers_as_get_without_a_body_on_every_get_endpoint(client, org):
    paths = [p for p, methods in documented_paths(client, org.id).items() if "GET" in methods]
    assert len(paths) > 40
    for path in paths + ["/livez", "/schema/openapi.json"]:
        params = {"scope": "org", "window": "24h"} if path.startswith("/v2/stats/") else None
        got = client.get(path, params=params, headers=org.headers)
        head = client.head(path, params=params, headers=org.headers)
        assert head.status_code == got.status_code, (path, head.status_code, got.status_code)
        assert head.content == b"", path
        assert head.headers["content-type"] == got.headers["content-type"], path


# --- 7. seed endpoints: every error in their own shape ---------------------------------------

def test_a_query_timeout_answers_503_in_each_seed_endpoints_shape(database_url, new_org):
    org = new_org()
    now = datetime.now(UTC).replace(microsecond=0)
    week_ago = now - timedelta(days=7)
    requests = [
        ("GET", "/v1/model-usage", {}, None),
        ("GET", "/v1/runs-stats", {"start": week_ago.isoformat(), "end": now.isoformat()}, None),
        ("GET", f"/v1/organizations/{org.id}/cu/usage-by-workflow",
         {"from": int(week_ago.timestamp() * 1000), "to": int(now.timestamp() * 1000)}, None),
        ("POST", "/calls/stats", {}, {"project_id": "p", "start": week_ago.isoformat()}),
    ]
    with gateway(database_url, statement_timeout_ms=200) as client:
        with psycopg.connect(database_url) as conn:  # every tenant table locked
            tables = [name for (name,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename "
                "NOT IN ('api_keys', 'orgs', 'schema_migrations')")]
            conn.execute("LOCK TABLE " + ", ".join(f'"{t}"' for t in tables)
                         + " IN ACCESS EXCLUSIVE MODE")
            try:
                for method, path, params, body in requests:
                    r = client.request(method, path, params=params, headers=org.headers,
                                       content=encode(body) if body else None)
                    assert r.status_code == 503, (path, r.text)
                    assert r.headers["content-type"].startswith("application/json"), path
                    assert seed_shape(path, r.json(), 503), (path, r.text)
                    assert int(r.headers["retry-after"]) >= 1, (path, r.headers)
            finally:
                conn.rollback()


# --- 3. a key limited to workspaces learns nothing of others ----------------------------------

def test_a_repo_of_another_workspace_is_outside_a_limited_key_and_not_named(client, db,
                                                                            new_org):
    org = new_org()
    t = "2026-09-01T10:00:00Z"
    ingest(client, org, "storage", [{"eventId": "x", "ts": t, "workspaceId": "w2",
                                     "repoId": "r2", "uplBytes": 1}])
    limited = key_headers(db, org.id, workspaces=["w1"])
    hidden = post_events(client, limited, "storage", [
        {"eventId": "a", "ts": t, "workspaceId": "w1", "uplBytes": 1},
        {"eventId": "b", "ts": t, "workspaceId": "w1", "repoId": "r2", "uplBytes": 2}])
    body = assert_problem(hidden, 403, "forbidden")
    assert "w2" not in hidden.text
    assert without_request_id(body) == {
        "type": "https://stats-gateway.dev/errors/forbidden",
        "title": "1 event(s) are outside this API key's workspaces or repos; nothing was "
                 "written",
        "status": 403, "success": False, "error_code": "forbidden",
        "message": "1 event(s) are outside this API key's workspaces or repos; nothing was "
                   "written",
        "errors": [{"field": "repoId", "index": 1,
                    "message": "this API key may write events only to repos its workspaces "
                               "already hold (a new repo's first events need a key without "
                               "workspace limits)"}]}
    # a repo that exists nowhere answers exactly the same, byte for byte
    unknown = post_events(client, limited, "storage", [
        {"eventId": "a", "ts": t, "workspaceId": "w1", "uplBytes": 1},
        {"eventId": "b", "ts": t, "workspaceId": "w1", "repoId": "r-none", "uplBytes": 2}])
    assert unknown.status_code == hidden.status_code == 403
    assert without_request_id(unknown.json()) == without_request_id(body)
    # the same headers too (a gzipped body's length moves with its random request id)
    varying = ("x-request-id", "date", "content-length")
    assert {k: v for k, v in unknown.headers.items() if k not in varying} \
        == {k: v for k, v in hidden.headers.items() if k not in varying}
    # as the repo's own scope answers it: the 404 of a repo that does not exist
    missing = client.get("/v2/stats/storage", params={"scope": "repo", "id": "r-none",
                                                      "window": "24h"}, headers=limited)
    foreign = client.get("/v2/stats/storage", params={"scope": "repo", "id": "r2",
                                                      "window": "24h"}, headers=limited)
    assert foreign.status_code == missing.status_code == 404
    assert without_request_id(foreign.json()) == without_request_id(missing.json())
    (n,) = db.execute("SELECT count(*) FROM events_storage WHERE org_id = %s",
                      (org.id,)).fetchone()
    assert n == 1  # nothing of the refused batch was written
    # an unrestricted key still learns where the repo is
    r = post_events(client, org.headers, "storage", [
        {"eventId": "c", "ts": t, "workspaceId": "w1", "repoId": "r2", "uplBytes": 2}])
    assert r.status_code == 422 and "'w2'" in r.text, r.text


# --- 4. exact counts of invalid events ---------------------------------------------------------

def test_a_422_counts_every_bad_event_and_says_the_list_is_capped(client, org):
    events = [{"eventId": f"bad{i}", "uplBytes": 1} for i in range(1_500)]  # each lacks ts
    body = assert_problem(post_events(client, org.headers, "storage", events), 422,
                          "invalid_events")
    assert body["message"].startswith("1500 event(s) are invalid; nothing was written")
    assert "first 1000 of 1500 problems" in body["message"], body["message"]
    assert len(body["errors"]) == 1_000
    assert [e["index"] for e in body["errors"]] == list(range(1_000))
    few = assert_problem(post_events(client, org.headers, "storage", events[:7]), 422)
    assert few["message"] == "7 event(s) are invalid; nothing was written"
    assert len(few["errors"]) == 7


# --- 8. fractions of any length; percentiles 0 and 100 -----------------------------------------

def test_runs_stats_accepts_any_rfc3339_fraction_length(client, org):
    start = "2025-06-03T00:00:00"
    runs = [{"eventId": f"f{i}", "ts": f"2025-06-03T0{i + 1}:00:00Z", "targetType": "flow",
             "targetSlug": "s", "source": "api", "spend": "0.5"} for i in range(3)]
    ingest(client, org, "runs", runs)
    want = client.get("/v1/runs-stats", params={"start": start + ".123456Z",
                                                 "end": "2025-06-03T23:59:59Z"},
                      headers=org.headers)
    assert want.status_code == 200, want.text
    assert sum(p["runs"] for p in want.json()["timeline"]) == 3
    for fraction in (".1234567", ".123456789012", ".1"):
        r = client.get("/v1/runs-stats", params={"start": start + fraction + "Z",
                                                 "end": "2025-06-03T23:59:59" + fraction
                                                        + "+00:00"},
                       headers=org.headers)
        assert r.status_code == 200, (fraction, r.text)
        assert r.json() == want.json()


def test_weave_percentiles_0_and_100_are_the_minimum_and_maximum(client, org):
    latencies = [120.0, 7.5, 300.25, 42.0]
    calls = [{"eventId": f"c{i}", "ts": f"2025-05-01T10:0{i}:00Z", "projectId": "proj",
              "callId": f"c{i}", "traceId": "t", "opName": "op", "latencyMs": ms}
             for i, ms in enumerate(latencies)]
    ingest(client, org, "calls", calls)
    r = client.post("/calls/stats", headers=org.headers, content=encode({
        "project_id": "proj", "start": "2025-05-01T10:00:00Z", "end": "2025-05-01T11:00:00Z",
        "granularity": 3600,
        "call_metrics": [{"metric": "latency_ms", "percentiles": [0, 100, 50]}]}))
    assert r.status_code == 200, r.text
    (bucket,) = r.json()["call_buckets"]
    assert bucket["p0_latency_ms"] == min(latencies)
    assert bucket["p100_latency_ms"] == max(latencies)
    assert bucket["p50_latency_ms"] == (42.0 + 120.0) / 2


# --- 6. the OpenAPI document states what it can ------------------------------------------------

def _rules_validator(document: dict, path: str):
    from jsonschema import Draft202012Validator
    rules = document["paths"][path]["get"]["x-parameter-rules"]
    return Draft202012Validator(rules, format_checker=Draft202012Validator.FORMAT_CHECKER)


STATS_QUERIES = [  # (query, does the gateway take it?) checked against the document's rules
    ({"scope": "org", "window": "7d"}, True),
    ({"scope": "org", "start": "2026-01-01T00:00:00Z"}, True),
    ({"scope": "org", "start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}, True),
    ({"scope": "org", "window": "7d", "start": "2026-01-01T00:00:00Z"}, False),
    ({"scope": "org", "window": "7d", "end": "2026-01-02T00:00:00Z"}, False),
    ({"scope": "org", "end": "2026-01-02T00:00:00Z"}, False),
    ({"scope": "org"}, False),
    ({"scope": "workspace", "window": "7d"}, False),
    ({"scope": "repo", "window": "24h"}, False),
]


def test_the_document_states_the_rules_across_stats_parameters(client, org):
    document = client.get("/schema/openapi.json").json()
    stats = [p for p in document["paths"] if p.startswith("/v2/stats/")]
    assert stats and all("x-parameter-rules" in document["paths"][p]["get"] for p in stats)
    rules = _rules_validator(document, "/v2/stats/storage")
    for query, accepted in STATS_QUERIES:
        assert rules.is_valid(query) == accepted, query
        r = client.get("/v2/stats/storage", params=query, headers=org.headers)
        assert (r.status_code == 200) == accepted, (query, r.text)
    params = {p["name"]: p for p in document["components"]["parameters"].values()}
    assert params["start"]["schema"]["formatMinimum"] == "2000-01-01T00:00:00Z"
    assert params["end"]["schema"]["formatMaximum"] == "2100-01-01T00:00:00Z"


def test_model_usage_rules_and_date_bounds_are_documented(client, org):
    document = client.get("/schema/openapi.json").json()
    rules = _rules_validator(document, "/v1/model-usage")
    for query, accepted in [({}, True), ({"period": "today"}, True),
                            ({"startDate": "2026-01-01"}, True),
                            ({"startDate": "2026-01-01", "endDate": "2026-01-02"}, True),
                            ({"endDate": "2026-01-02"}, False),
                            ({"period": "today", "startDate": "2026-01-01"}, False)]:
        assert rules.is_valid(query) == accepted, query
        r = client.get("/v1/model-usage", params=query, headers=org.headers)
        assert (r.status_code == 200) == accepted, (query, r.text)
    days = {p["name"]: p["schema"] for p in document["paths"]["/v1/model-usage"]["get"][
        "parameters"] if p["name"] in ("startDate", "endDate")}
    assert all(d["format"] == "date" and d["formatMinimum"] == "2000-01-01"
               and d["formatMaximum"] == "2099-12-31" for d in days.values()), days


def test_runs_stats_documents_the_seeds_constraints(client):
    """As in the Runflow seed's OpenAPI (../shared/seeds/runflow-runs-stats.md)."""
    schemas = client.get("/schema/openapi.json").json()["components"]["schemas"]
    spend = r"^(?!^[-+.]*$)[+-]?0*\d*\.?\d*$"
    point, flow, source = (schemas[n]["properties"] for n in
                           ("UsageDataPoint", "UsageByFlow", "UsageBySource"))
    assert point["date"] == {"type": "string", "format": "date"}
    assert point["spend"]["pattern"] == spend and flow["spend"]["pattern"] == spend
    assert sorted(flow["target_type"]["enum"]) == ["comfyui", "flow", "model"]
    assert source["source"]["enum"] == ["api", "playground", "other"]


def test_weave_call_stats_are_admitted_by_cost_in_weaves_shape(database_url, new_org):
    org = new_org()
    start = datetime(2025, 5, 1, tzinfo=UTC)
    body = {"project_id": "p", "start": start.isoformat(),
            "end": (start + timedelta(minutes=9_000)).isoformat(), "granularity": 60,
            "call_metrics": [{"metric": "call_count", "aggregations": ["sum"]}]}
    both = {**body, "usage_metrics": [{"metric": "input_tokens"}]}
    with gateway(database_url, cost_budget="15000/min") as client:
        def post(payload):
            return client.post("/calls/stats", content=encode(payload),
                               headers={**org.headers, "Content-Type": "application/json"})

        r = post(both)  # 9,000 buckets x 2 lists = 18,000 points > the whole 15,000
        assert r.status_code == 400 and list(r.json()) == ["detail"], r.text
        assert "costs 18000 points" in r.json()["detail"]
        r = post(body)  # 9,000 points
        assert r.status_code == 200 and len(r.json()["call_buckets"]) == 9_000, r.text[:300]
        r = post(body)  # 6,000 left
        assert r.status_code == 429 and list(r.json()) == ["detail"], r.text
        assert int(r.headers["retry-after"]) >= 1


def test_a_cached_key_revoked_meanwhile_gets_401_from_the_lane_too(database_url, db, new_org):
    """The lane runs the request's queries with the request's context, so the liveness
    check a cached key rides on (db/tenant.py) happens there too."""
    org = new_org()
    params = {"scope": "org", "window": "24h", "timeBucketSize": "5m", "includeSeries": "true"}
    with gateway(database_url, expensive_points=100) as client:
        assert client.get(BREAKDOWN, params=params, headers=org.headers).status_code == 200
        db.execute("UPDATE api_keys SET revoked_at = now() WHERE key_id = %s",
                   (org.key.split("_")[1],))
        assert_problem(client.get(BREAKDOWN, params=params, headers=org.headers), 401,
                       "unauthorized")
