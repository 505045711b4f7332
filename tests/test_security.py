"""Security: keys limited to workspaces/repos, identical 401s, row-level security as a
backstop, limits refused before any query, and per-key rate limits."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import httpx
import psycopg
import pytest

from expected import parse_ts, utc
from stats_gateway.auth import create_key, ensure_org
from stats_gateway.cli import main as cli_main
from stats_gateway.config import DATABASE_URL_ENV
from stats_gateway.core.rollups import domain_rollups, rollup_table_names
from stats_gateway.core.histogram_rollups import histogram_rollups
from stats_gateway.db.tenant import APP_ROLE, tenant_connection, tenant_fetch
from stats_gateway.http.ratelimit import parse_rate
from support import (
    DOMAINS, NEW_DOMAINS, assert_problem, encode, generate, generate_new, get, ingest, live_server,
    loads, ok, post_events, random_times, rollup_of, without_request_id,
)
from domains import DOMAINS as DECLARED

START, END = utc(2026, 9, 1), utc(2026, 9, 3)
RANGE = {"scope": "org", "start": "2026-09-01T00:00:00Z", "end": "2026-09-03T00:00:00Z",
         "timeBucketSize": "1h"}
# an unaligned range with 5-minute buckets: rollup middles and raw ends
ODD_RANGE = {"scope": "org", "start": "2026-09-01T03:07:00Z",
             "end": "2026-09-02T21:52:00Z", "timeBucketSize": "5m"}
ALL_DOMAINS = DOMAINS + NEW_DOMAINS
BY_NAME = {d.name: d for d in DECLARED}

# (name, create_key kwargs, which events such a key may see)
RESTRICTIONS = [
    ("workspace w1", {"workspaces": ["w1"]}, lambda e: e.get("workspaceId") == "w1"),
    ("repo r3", {"repos": ["r3"]}, lambda e: e.get("repoId") == "r3"),
    ("w1 and r1", {"workspaces": ["w1"], "repos": ["r1"]},
     lambda e: e.get("workspaceId") == "w1" and e.get("repoId") == "r1"),
    ("w2 or w3", {"workspaces": ["w2", "w3"]}, lambda e: e.get("workspaceId") in ("w2", "w3")),
]


class Key:
    def __init__(self, db, org_id: str, **kw):
        self.key = create_key(db, org_id, **kw)
        self.headers = {"Authorization": f"Bearer {self.key}"}
        self.id = self.key.split("_")[1]


def events_of(domain: str, seed: int = 5, n: int = 240) -> list[dict]:
    times = random_times(f"sec-{domain}-{seed}", START - timedelta(hours=3),
                         END + timedelta(hours=3), n)
    make = generate if domain in DOMAINS else generate_new
    return make(domain, seed, times)


@pytest.fixture(scope="module")
def world(client, db):
    """Org ``main`` holds every event; for each restriction an org ``ref`` holds exactly
    the events that restriction allows (the answers a restricted key must give)."""
    main = ensure_org(db, f"sec-main-{uuid.uuid4().hex[:8]}")
    main_key = Key(db, main)
    refs = {}
    for name, _, allowed in RESTRICTIONS:
        org = ensure_org(db, f"sec-ref-{uuid.uuid4().hex[:8]}")
        refs[name] = (org, Key(db, org))
    data = {}
    for domain in ALL_DOMAINS:
        events = events_of(domain)
        data[domain] = events
        ingest(client, main_key, domain, events)
        for name, _, allowed in RESTRICTIONS:
            chosen = [e for e in events if allowed(e)]
            assert 0 < len(chosen) < len(events), (domain, name)
            ingest(client, refs[name][1], domain, chosen)
    keys = {name: Key(db, main, **kw) for name, kw, _ in RESTRICTIONS}
    return {"main": main, "main_key": main_key, "refs": refs, "keys": keys, "data": data}


def _comparable(body: dict, by: str | None = None) -> dict:
    """A body without what legitimately differs between two orgs: the org id, and
    (outside workspace/repo breakdowns) display names, which come from the org's whole
    entity catalogue."""
    body = {**body, "meta": {**body["meta"], "scopeId": None}}
    if by is not None and by not in ("workspaces", "repos"):
        body["entities"] = [{**e, "entityName": None} for e in body["entities"]]
    return body


# --- keys limited to workspaces / repos ---------------------------------------------------


@pytest.mark.parametrize("domain", ALL_DOMAINS)
def test_restricted_keys_see_only_their_workspaces_and_repos(client, world, domain):
    declared = BY_NAME[domain]
    for name, _, _ in RESTRICTIONS:
        key, (_, ref) = world["keys"][name], world["refs"][name]
        for params in (RANGE, ODD_RANGE):
            for view in declared.series:
                path = f"/v2/stats/{domain}" + (f"/{view.path}" if view.path else "")
                got = ok(client, path, key.headers, params)
                want = ok(client, path, ref.headers, params)
                assert _comparable(got) == _comparable(want), (name, path, params)
                assert got["meta"]["resourceFilters"] == []  # the key's limit is not a filter
        for dim in declared.dimensions:
            path = f"/v2/stats/{domain}/breakdown/{dim.by}"
            query = {**RANGE, "includeSeries": "true", "limit": "10"}
            got = ok(client, path, key.headers, query)
            want = ok(client, path, ref.headers, query)
            assert _comparable(got, dim.by) == _comparable(want, dim.by), (name, path)
    # and the restriction does narrow: the unrestricted key sees more
    full = ok(client, f"/v2/stats/{domain}", world["main_key"].headers, RANGE)
    part = ok(client, f"/v2/stats/{domain}", world["keys"]["workspace w1"].headers, RANGE)
    assert full["series"] != part["series"]


def test_breakdown_by_workspace_lists_only_allowed_ones(client, world):
    events = [e for e in world["data"]["storage"] if START <= _ts(e) < END]
    for name, kw, allowed in RESTRICTIONS:
        key = world["keys"][name]
        body = ok(client, "/v2/stats/storage/breakdown/workspaces", key.headers, RANGE)
        want = {}
        for e in events:
            if allowed(e) and e.get("workspaceId"):
                want[e["workspaceId"]] = want.get(e["workspaceId"], 0) + 1
        got = {e["entityId"]: e["totals"]["requests"] for e in body["entities"]}
        assert got == want, name
        assert body["meta"]["totalEntities"] == len(want)
        if "workspaces" in kw:
            assert set(got) <= set(kw["workspaces"])


def _ts(event):
    return parse_ts(event["ts"])


SCOPE_CASES = [
    # (restriction, scope, id, allowed?)
    ("workspace w1", "workspace", "w1", True),
    ("workspace w1", "workspace", "w2", False),
    ("workspace w1", "repo", "r1", True),
    ("workspace w1", "repo", "r3", False),  # r3 belongs to w2
    ("repo r3", "repo", "r3", True),
    ("repo r3", "repo", "r1", False),
    ("repo r3", "workspace", "w2", True),  # holds r3
    ("repo r3", "workspace", "w1", False),  # holds no allowed repo
    ("w1 and r1", "repo", "r2", False),
    ("w1 and r1", "workspace", "w1", True),
]


@pytest.mark.parametrize("restriction,scope,scope_id,allowed", SCOPE_CASES)
def test_scope_outside_the_restriction_is_the_404_of_a_missing_id(client, world, restriction,
                                                                  scope, scope_id, allowed):
    key = world["keys"][restriction]
    for path in ("/v2/stats/storage", "/v2/stats/runs/breakdown/workspaces"):
        params = {**RANGE, "scope": scope, "id": scope_id}
        r, _ = get(client, path, key.headers, params)
        if allowed:
            assert r.status_code == 200, r.text
            continue
        outside = without_request_id(assert_problem(r, 404, "not_found"))
        r2, _ = get(client, path, key.headers, {**params, "id": f"nowhere-{uuid.uuid4().hex}"})
        assert without_request_id(assert_problem(r2, 404, "not_found")) == outside
        assert r.headers["content-type"] == r2.headers["content-type"]
        assert ok(client, path, world["main_key"].headers, params)  # it exists in the org


def test_restricted_key_scoped_series_count_only_allowed_events(client, world):
    """workspace w2 seen through the repo-r3 key: only w2's r3 events, not all of w2."""
    key = world["keys"]["repo r3"]
    events = [e for e in world["data"]["storage"] if START <= _ts(e) < END]
    body = ok(client, "/v2/stats/storage", key.headers, {**RANGE, "scope": "workspace",
                                                        "id": "w2", "metric": "requests"})
    assert body["summary"]["total"] == sum(e.get("repoId") == "r3" for e in events)
    assert body["summary"]["total"] < sum(e.get("workspaceId") == "w2" for e in events)


def test_seed_endpoints_count_only_allowed_events(client, world):
    """Each seed API answers a restricted key exactly as it answers an org holding only the
    allowed events."""
    for name, _, _ in RESTRICTIONS:
        key, (ref_org, ref) = world["keys"][name], world["refs"][name]
        main = world["main"]
        got = client.get("/v1/runs-stats", headers=key.headers,
                         params={"start": "2026-09-01T00:00:00Z", "end": "2026-09-02T23:59:59Z"})
        want = client.get("/v1/runs-stats", headers=ref.headers,
                          params={"start": "2026-09-01T00:00:00Z", "end": "2026-09-02T23:59:59Z"})
        assert got.status_code == want.status_code == 200, got.text
        assert loads(got.text) == loads(want.text), name

        params = {"startDate": "2026-09-01", "endDate": "2026-09-02", "granularity": "hour"}
        got = client.get("/v1/model-usage", headers=key.headers, params=params)
        want = client.get("/v1/model-usage", headers=ref.headers, params=params)
        assert got.status_code == want.status_code == 200, got.text
        assert loads(got.text) == loads(want.text), name

        span = {"from": int(START.timestamp() * 1000), "to": int(END.timestamp() * 1000)}
        got = client.get(f"/v1/organizations/{main}/cu/usage-by-workflow",
                         headers=key.headers, params=span)
        want = client.get(f"/v1/organizations/{ref_org}/cu/usage-by-workflow",
                          headers=ref.headers, params=span)
        assert got.status_code == want.status_code == 200, got.text
        assert {**loads(got.text), "requestId": None} == {**loads(want.text), "requestId": None}

        for project in ("acme/chatbot", "acme/evals"):
            body = encode({"project_id": project, "start": "2026-09-01T00:00:00Z",
                           "end": "2026-09-03T00:00:00Z", "granularity": 21600,
                           "usage_metrics": [{"metric": "total_tokens",
                                              "aggregations": ["sum"]}],
                           "call_metrics": [{"metric": "call_count",
                                             "aggregations": ["sum"]}]})
            got = client.post("/calls/stats", headers=key.headers, content=body)
            want = client.post("/calls/stats", headers=ref.headers, content=body)
            assert got.status_code == want.status_code == 200, got.text
            assert loads(got.text) == loads(want.text), (name, project)
    # and a restricted key's seed answer differs from the whole org's
    key = world["keys"]["workspace w1"]
    params = {"startDate": "2026-09-01", "endDate": "2026-09-02", "granularity": "day"}
    assert loads(client.get("/v1/model-usage", headers=key.headers, params=params).text) != \
        loads(client.get("/v1/model-usage", headers=world["main_key"].headers,
                         params=params).text)


def test_restricted_ingest_refuses_events_outside_with_403(client, db, new_org):
    org = new_org()
    key = Key(db, org.id, workspaces=["w1"])
    both = Key(db, org.id, workspaces=["w1"], repos=["r1"])
    t = "2026-09-01T10:00:00Z"
    batch = [{"eventId": "a", "ts": t, "workspaceId": "w1", "uplBytes": 1},
             {"eventId": "b", "ts": t, "workspaceId": "w2", "uplBytes": 2},
             {"eventId": "c", "ts": t, "uplBytes": 3},
             {"eventId": "d", "ts": t, "workspaceId": "w1", "repoId": "r2", "uplBytes": 4}]
    r = post_events(client, key.headers, "storage", batch)
    body = assert_problem(r, 403, "forbidden")
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(1, "workspaceId"),
                                                                  (2, "workspaceId")]
    r = post_events(client, both.headers, "storage", batch)
    body = assert_problem(r, 403, "forbidden")
    assert [(e["index"], e["field"]) for e in body["errors"]] == [
        (0, "repoId"), (1, "workspaceId"), (2, "workspaceId"), (3, "repoId")]
    (n,) = db.execute("SELECT count(*) FROM events_storage WHERE org_id = %s",
                      (org.id,)).fetchone()
    assert n == 0  # all or nothing
    # a repo its workspace does not hold yet is outside the key too (README, Security)
    r = post_events(client, key.headers, "storage", [batch[0], batch[3]])
    body = assert_problem(r, 403, "forbidden")
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(1, "repoId")]
    # once an unlimited key has put r1 and r2 in w1, both limited keys write there
    r = post_events(client, org.headers, "storage", [
        {"eventId": "r1-first", "ts": t, "workspaceId": "w1", "repoId": "r1", "uplBytes": 10},
        {"eventId": "r2-first", "ts": t, "workspaceId": "w1", "repoId": "r2", "uplBytes": 20}])
    assert r.status_code == 200 and r.json()["inserted"] == 2, r.text
    r = post_events(client, key.headers, "storage", [batch[0], batch[3]])
    assert r.status_code == 200 and r.json()["inserted"] == 2, r.text
    r = post_events(client, both.headers, "storage",
                    [{**batch[0], "eventId": "e", "repoId": "r1"}])
    assert r.status_code == 200 and r.json()["inserted"] == 1, r.text
    (total,) = db.execute("SELECT sum(upl_bytes) FROM events_storage WHERE org_id = %s",
                          (org.id,)).fetchone()
    assert total == 10 + 20 + 1 + 4 + 1


def test_create_key_cli_flags(db, database_url, monkeypatch, capsys):
    monkeypatch.setenv(DATABASE_URL_ENV, database_url)
    name = f"cli-{uuid.uuid4().hex[:8]}"
    assert cli_main(["create-key", "--org", name, "--workspace", "w2", "--workspace", "w1",
                     "--repo", "r1", "--rate-limit", "5/s", "--read-only"]) == 0
    out = capsys.readouterr().out
    key = next(line.split()[1] for line in out.splitlines() if line.startswith("key:"))
    row = db.execute("SELECT workspace_ids, repo_ids, rate_limit, can_read, can_ingest "
                     "FROM api_keys WHERE key_id = %s", (key.split("_")[1],)).fetchone()
    assert row == (["w1", "w2"], ["r1"], "5/s", True, False)
    with pytest.raises(SystemExit):
        cli_main(["create-key", "--org", name, "--rate-limit", "fast"])


# --- identical 401s ----------------------------------------------------------------------


def test_unknown_malformed_revoked_and_expired_keys_get_byte_identical_401s(client, db,
                                                                            new_org):
    org = new_org()
    revoked, expired, wrong = Key(db, org.id), Key(db, org.id), Key(db, org.id)
    db.execute("UPDATE api_keys SET revoked_at = now() WHERE key_id = %s", (revoked.id,))
    db.execute("UPDATE api_keys SET expires_at = now() - interval '1 s' WHERE key_id = %s",
               (expired.id,))
    unknown = f"sgk_{uuid.uuid4().hex[:16]}_{'A' * 43}"
    cases = {"unknown": unknown, "malformed": "sgk_nothex_short",
             "revoked": revoked.key, "expired": expired.key,
             "wrong secret": wrong.key[:-1] + ("B" if wrong.key[-1] == "A" else "A")}
    seen = {}
    for label, key in cases.items():
        for path in ("/v2/stats/storage", "/v2/stats/ai/breakdown/models"):
            r = client.get(path, params=RANGE, headers={"Authorization": f"Bearer {key}"})
            body = assert_problem(r, 401, "unauthorized")
            headers = {k: v for k, v in r.headers.items() if k not in ("x-request-id", "date")}
            raw = r.content.replace(body["requestId"].encode(), b"")
            seen[(label, path)] = (raw, headers)
    first = next(iter(seen.values()))
    assert all(v == first for v in seen.values()), seen
    assert first[1]["www-authenticate"] == "Bearer"


# --- row-level security --------------------------------------------------------------------


def tenant_tables(db) -> list[str]:
    return [name for (name,) in db.execute("""
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'org_id'
        WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY 1""")]


def test_every_tenant_table_forces_row_level_security(db):
    tables = set(tenant_tables(db))
    expected = {"entities", "api_keys"} | {d.table for d in DECLARED}
    expected |= {table for d in DECLARED for table in rollup_table_names(d)}  # sketches too
    assert {r.table for d in DECLARED for r in domain_rollups(d)} <= expected
    assert {h.table for d in DECLARED for h in histogram_rollups(d)} <= expected
    assert expected <= tables
    rows = db.execute("""
        SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
               (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid)
        FROM pg_class c WHERE c.relname = ANY(%s)""", (sorted(tables),)).fetchall()
    assert all(rls and forced and policies == 1 for _, rls, forced, policies in rows), rows
    (superuser, bypass) = db.execute("SELECT rolsuper, rolbypassrls FROM pg_roles "
                                     "WHERE rolname = %s", (APP_ROLE,)).fetchone()
    assert not superuser and not bypass
    # the app role cannot touch keys or orgs directly
    for table in ("api_keys", "orgs"):
        (can,) = db.execute("SELECT has_table_privilege(%s, %s, 'SELECT')",
                            (APP_ROLE, table)).fetchone()
        assert can is False


def _as_app(database_url):
    conn = psycopg.connect(database_url, autocommit=True)
    conn.execute(f"SET ROLE {APP_ROLE}")
    return conn


def test_row_level_security_is_a_backstop(client, database_url, new_org):
    a, b = new_org(), new_org()
    t = "2026-09-01T10:00:00Z"
    ingest(client, a, "storage", [{"eventId": "1", "ts": t, "workspaceId": "wa", "uplBytes": 1}])
    ingest(client, b, "storage", [{"eventId": "1", "ts": t, "workspaceId": "wb", "uplBytes": 2},
                                  {"eventId": "2", "ts": t, "workspaceId": "wb", "uplBytes": 3}])
    hourly = rollup_of(BY_NAME["storage"], "scope", "1h").table
    with _as_app(database_url) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (APP_ROLE,)
        # nothing at all without the org setting: fails closed
        for table in ("events_storage", "entities", hourly):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
        with conn.transaction():
            conn.execute("SELECT set_config('stats_gateway.org_id', %s, true)", (a.id,))
            # a query that forgets its org filter, or asks for b's rows, sees a's rows only
            assert conn.execute("SELECT count(*) FROM events_storage WHERE org_id = %s",
                                (b.id,)).fetchone() == (0,)
            assert conn.execute("SELECT org_id::text, upl_bytes FROM events_storage"
                                ).fetchall() == [(a.id, 1)]
            assert conn.execute(f"SELECT DISTINCT org_id::text FROM {hourly}"
                                ).fetchall() == [(a.id,)]
            assert conn.execute("SELECT id FROM entities WHERE kind = 'workspace'"
                                ).fetchall() == [("wa",)]
            # writing a row of org b is refused
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                with conn.transaction():
                    conn.execute("INSERT INTO events_storage (org_id, event_id, ts) "
                                 "VALUES (%s, 'x', now())", (b.id,))
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                with conn.transaction():
                    conn.execute("UPDATE events_storage SET org_id = %s", (b.id,))
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                with conn.transaction():
                    conn.execute("SELECT * FROM api_keys")
        # the setting was transaction-local: the connection is back to seeing nothing
        assert conn.execute("SELECT count(*) FROM events_storage").fetchone() == (0,)


def test_gateway_pool_runs_as_the_app_role_and_leaks_no_org(client, new_org):
    a, b = new_org(), new_org()
    ingest(client, b, "storage", [{"eventId": "1", "ts": "2026-09-01T10:00:00Z",
                                   "uplBytes": 2}])
    pool = client.app.state.engine.pool

    async def probe():
        async with pool.connection() as conn:
            (role,) = await (await conn.execute("SELECT current_user")).fetchone()
        rows = await tenant_fetch(pool, a.id, "SELECT count(*) FROM events_storage "
                                  "WHERE org_id = %s", (b.id,))
        as_b = await tenant_fetch(pool, b.id, "SELECT count(*) FROM events_storage")
        async with tenant_connection(pool, a.id) as conn:
            cur = await conn.execute("SELECT count(*) FROM events_storage WHERE org_id = %s",
                                     (b.id,))
            in_block = await cur.fetchone()
        # every pooled connection afterwards: no org set, nothing visible
        unset = []
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT count(*) FROM events_storage")
            unset.append(await cur.fetchone())
        return role, rows, as_b, in_block, unset

    role, rows, as_b, in_block, unset = client.blocking_portal.call(probe)
    assert role == APP_ROLE
    assert rows == [(0,)] and in_block == (0,)
    assert as_b == [(1,)]
    assert unset == [(0,)]


def test_a_failed_tenant_query_leaves_the_connection_clean(client):
    pool = client.app.state.engine.pool

    async def probe():
        with pytest.raises(psycopg.errors.DivisionByZero):
            await tenant_fetch(pool, str(uuid.uuid4()), "SELECT 1 / 0")
        async with pool.connection() as conn:
            return conn.info.transaction_status

    assert client.blocking_portal.call(probe) == psycopg.pq.TransactionStatus.IDLE


# --- limits before any query ------------------------------------------------------------


OVER_LIMIT = [
    ("/v2/stats/storage/breakdown/buckets",
     {"scope": "org", "window": "30d", "timeBucketSize": "5m", "includeSeries": "true",
      "limit": "20"}, "limit"),  # 20 x 8,640 buckets
    ("/v2/stats/storage/breakdown/buckets", {**RANGE, "limit": "501"}, "limit"),
    ("/v2/stats/storage/breakdown/buckets", {**RANGE, "offset": "1000001"}, "offset"),
    ("/v2/stats/storage", {"scope": "org", "start": "2000-01-01T00:00:00Z",
                           "end": "2026-01-01T00:00:00Z", "timeBucketSize": "1h"},
     "timeBucketSize"),
]


def test_series_points_limit_names_the_numbers(client, new_org):
    org = new_org()
    params = {"scope": "org", "window": "30d", "timeBucketSize": "5m", "includeSeries": "true",
              "limit": "20"}
    r, _ = get(client, "/v2/stats/storage/breakdown/buckets", org.headers, params)
    body = assert_problem(r, 400, "invalid_parameters")
    (problem,) = [e for e in body["errors"] if e["field"] == "limit"]
    n = 30 * 24 * 12  # 5-minute buckets in 30 days, plus one when the window is unaligned
    assert any(f"limit 20 and {k} buckets" in problem["message"] for k in (n, n + 1)), problem
    assert "100000" in problem["message"]
    ok(client, "/v2/stats/storage/breakdown/buckets", org.headers, {**params, "limit": "11"})
    ok(client, "/v2/stats/storage/breakdown/buckets", org.headers,
       {**params, "includeSeries": "false", "limit": "500"})


def test_limits_are_refused_before_any_query(database_url, db, new_org):
    """With every storage table locked, over-limit requests still answer 400 at once; a
    valid one waits for the lock (so the lock really stops queries)."""
    org = new_org()
    tables = ["events_storage", "entities"]
    tables += rollup_table_names(BY_NAME["storage"])  # metric rollups and sketch twins
    with live_server(database_url) as url, psycopg.connect(database_url) as locker:
        with httpx.Client(base_url=url, headers=org.headers, timeout=10) as http:
            assert http.get("/v2/stats/storage", params=RANGE).status_code == 200
            locker.execute(f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE")
            try:
                for path, params, field in OVER_LIMIT:
                    began = time.monotonic()
                    r = http.get(path, params=params)
                    assert r.status_code == 400, r.text
                    assert field in {e["field"] for e in r.json()["errors"]}
                    assert time.monotonic() - began < 5  # the lock is held far longer
                with pytest.raises(httpx.ReadTimeout):
                    http.get("/v2/stats/storage", params=RANGE, timeout=1.5)
            finally:
                locker.rollback()


# --- rate limits ------------------------------------------------------------------------


def test_rate_parsing():
    assert parse_rate("600/min").per_second == 10
    assert parse_rate("3/6s").per_second == 0.5
    assert parse_rate("7200/h").per_second == 2
    assert parse_rate("off") is None
    for bad in ("", "0/s", "5", "5/day", "-1/s", "5/0s"):
        with pytest.raises(ValueError):
            parse_rate(bad)


def test_per_key_rate_limit_answers_429_with_retry_after(client, db, new_org):
    org = new_org()
    limited = Key(db, org.id, rate_limit="3/6s")  # burst 3, one more every 2 s
    unknown = {"Authorization": f"Bearer sgk_{uuid.uuid4().hex[:16]}_{'A' * 43}"}
    for _ in range(3):
        ok(client, "/v2/stats/storage", limited.headers, RANGE)
    r, _ = get(client, "/v2/stats/storage", limited.headers, RANGE)
    body = assert_problem(r, 429, "rate_limited")
    retry_after = r.headers["retry-after"]
    assert retry_after.isdigit() and 1 <= int(retry_after) <= 2, retry_after
    assert body["errors"] == []
    # another key of the same org is unaffected; an unknown key is a 401, not a 429
    ok(client, "/v2/stats/storage", org.headers, RANGE)
    assert_problem(get(client, "/v2/stats/storage", unknown, RANGE)[0], 401)
    # every endpoint shares the key's bucket, and seed error shapes carry Retry-After too
    r = client.get("/v1/model-usage", headers=limited.headers,
                   params={"startDate": "2026-09-01", "endDate": "2026-09-01"})
    assert r.status_code == 429 and r.headers["retry-after"].isdigit(), r.headers
    r = post_events(client, limited.headers, "storage", [])
    assert r.status_code == 429
    time.sleep(int(retry_after) + 0.1)
    ok(client, "/v2/stats/storage", limited.headers, RANGE)


def test_rate_limit_off_per_key(client, db, new_org):
    org = new_org()
    key = Key(db, org.id, rate_limit="off")
    limiter = client.app.state.rate_limiter
    before = limiter.default
    limiter.default = parse_rate("1/min")  # the gateway default, for this test only
    try:
        for _ in range(3):
            ok(client, "/v2/stats/storage", key.headers, RANGE)
        ok(client, "/v2/stats/storage", org.headers, RANGE)
        r, _ = get(client, "/v2/stats/storage", org.headers, RANGE)
        assert_problem(r, 429, "rate_limited")
    finally:
        limiter.default = before
