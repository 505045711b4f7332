"""The key cache (stats_gateway/auth.py): a key that authenticated once costs no lookup of
its own, yet a key revoked or expired meanwhile is refused on its very next request, with
the same 401 as any dead key, whatever that request asked; and keys cannot change what
they may do, which is what makes caching them safe (sql/0004)."""

from __future__ import annotations

import base64

import psycopg
import pytest

from support import assert_problem, get, ok, post_events, without_request_id

RANGE = {"scope": "org", "start": "2026-09-01T00:00:00Z", "end": "2026-09-02T00:00:00Z",
         "timeBucketSize": "1h"}
EVENT = {"eventId": "kc-1", "ts": "2026-09-01T03:00:00Z", "uplBytes": 5}


def key_id(headers) -> str:
    return headers["Authorization"].split("_")[1]


def org_key(headers) -> tuple[str, str]:
    """(key id, secret) of a Bearer header."""
    _, key_id, secret = headers["Authorization"].removeprefix("Bearer ").split("_", 2)
    return key_id, secret


def checkouts(client) -> int:
    """Connections the gateway's pool has handed out so far: one per round trip here."""
    return client.app.state.engine.pool.get_stats().get("requests_num", 0)


def revoke(db, headers) -> None:
    db.execute("UPDATE api_keys SET revoked_at = now() WHERE key_id = %s", (key_id(headers),))


@pytest.fixture
def dead_key_answer(client):
    r, _ = get(client, "/v2/stats/storage", {"Authorization": "Bearer nope"}, RANGE)
    return without_request_id(assert_problem(r, 401))


def test_a_known_key_costs_no_round_trip_of_its_own(client, new_org):
    org = new_org()
    before = checkouts(client)
    ok(client, "/v2/stats/storage", org.headers, RANGE)
    first = checkouts(client) - before
    before = checkouts(client)
    ok(client, "/v2/stats/storage", org.headers, RANGE)
    again = checkouts(client) - before
    assert first == again + 1  # the key lookup, then the queries alone


def test_a_wrong_secret_for_a_cached_key_id_is_refused(client, new_org, dead_key_answer):
    org = new_org()
    ok(client, "/v2/stats/storage", org.headers, RANGE)
    prefix = org.key.rsplit("_", 1)[0]
    forged = {"Authorization": f"Bearer {prefix}_{'A' * 43}"}
    r, _ = get(client, "/v2/stats/storage", forged, RANGE)
    assert without_request_id(assert_problem(r, 401)) == dead_key_answer
    ok(client, "/v2/stats/storage", org.headers, RANGE)  # the real key is unaffected


def test_only_keys_that_authenticated_are_kept(client):
    cache = client.app.state.key_cache
    size = len(cache)
    for i in range(50):
        r, _ = get(client, "/v2/stats/storage",
                   {"Authorization": f"Bearer sgk_{i:016x}_{'B' * 43}"}, RANGE)
        assert_problem(r, 401)
    assert len(cache) == size


@pytest.mark.parametrize("request_kind", ["series", "breakdown", "bad parameters",
                                          "unknown id", "ingest", "forbidden ingest"])
def test_a_cached_key_revoked_meanwhile_gets_the_dead_key_401(
        client, new_org, db, dead_key_answer, request_kind):
    org = new_org()
    ok(client, "/v2/stats/storage", org.headers, RANGE)  # cached now
    ok(client, "/v2/stats/storage", org.read_only, RANGE)
    revoke(db, org.headers)
    revoke(db, org.read_only)
    used = org.headers
    if request_kind == "series":
        r, _ = get(client, "/v2/stats/storage", org.headers, RANGE)
    elif request_kind == "breakdown":
        r, _ = get(client, "/v2/stats/storage/breakdown/workspaces", org.headers,
                   {**RANGE, "includeSeries": "true"})
    elif request_kind == "bad parameters":  # a live key would get a 400
        r, _ = get(client, "/v2/stats/storage", org.headers, {"scope": "galaxy", "x": "1"})
    elif request_kind == "unknown id":  # a live key would get a 404
        r, _ = get(client, "/v2/stats/storage", org.headers,
                   {**RANGE, "scope": "workspace", "id": "nowhere"})
    elif request_kind == "ingest":
        r = post_events(client, org.headers, "storage", [EVENT])
    else:  # a live read-only key would get a 403
        used = org.read_only
        r = post_events(client, org.read_only, "storage", [EVENT])
    assert without_request_id(assert_problem(r, 401)) == dead_key_answer
    (written,) = db.execute("SELECT count(*) FROM events_storage WHERE org_id = %s",
                            (org.id,)).fetchone()
    assert written == 0
    assert client.app.state.key_cache.get(*org_key(used)) is None  # dropped


def test_a_cached_key_that_expired_is_refused_by_the_seed_endpoints(client, new_org, db):
    org = new_org()
    basic = base64.b64encode(f"user:{org.key}".encode()).decode()
    calls = {"Authorization": f"Basic {basic}"}
    body = {"project_id": "p1", "start": "2026-09-01T00:00:00Z",
            "end": "2026-09-02T00:00:00Z", "granularity": 3600}
    runs = {"start": "2026-09-01T00:00:00Z", "end": "2026-09-02T00:00:00Z"}
    assert client.post("/calls/stats", json=body, headers=calls).status_code == 200
    assert client.get("/v1/runs-stats", params=runs, headers=org.headers).status_code == 200
    assert client.get("/v1/model-usage", headers=org.headers).status_code == 200
    db.execute("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE key_id = %s",
               (key_id(org.headers),))
    assert client.post("/calls/stats", json=body, headers=calls).status_code == 401
    assert client.get("/v1/runs-stats", params=runs, headers=org.headers).status_code == 401
    assert client.get("/v1/model-usage", headers=org.headers).status_code == 401
    path = f"/v1/organizations/{org.id}/cu/usage-by-workflow"
    assert client.get(path, headers=org.headers).status_code == 401


@pytest.mark.parametrize("change", [
    "can_ingest = NOT can_ingest", "can_read = NOT can_read", "org_id = org_id",
    "workspace_ids = ARRAY['w1']", "repo_ids = ARRAY['r1']", "rate_limit = '1/s'",
    "resource_scopes = ARRAY['flows:read']", "secret_hash = '\\x00'::bytea",
])
def test_what_a_key_may_do_cannot_change(db, new_org, change):
    org = new_org()
    statement = f"UPDATE api_keys SET {change} WHERE key_id = %s"
    if change == "org_id = org_id":  # no change at all is fine
        db.execute(statement, (key_id(org.headers),))
        return
    with pytest.raises(psycopg.errors.CheckViolation, match="revoke it and create another"):
        db.execute(statement, (key_id(org.headers),))


def test_label_expiry_and_revocation_can_change(db, new_org):
    org = new_org()
    for change in ("name = 'renamed'", "expires_at = now() + interval '1 day'",
                   "revoked_at = now()"):
        db.execute(f"UPDATE api_keys SET {change} WHERE key_id = %s", (key_id(org.headers),))
    (name,) = db.execute("SELECT name FROM api_keys WHERE key_id = %s",
                         (key_id(org.headers),)).fetchone()
    assert name == "renamed"
