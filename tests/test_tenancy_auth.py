"""Tenancy (ids are per org, foreign ids look missing) and authentication/permissions."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

import pytest

from expected import in_range, utc
from support import (
    DOMAINS, assert_problem, check_series, generate, get, ingest, ok, post_events,
    random_times, without_request_id,
)

START, END = utc(2026, 9, 1), utc(2026, 9, 2)
RANGE = {"scope": "org", "start": "2026-09-01T00:00:00Z", "end": "2026-09-02T00:00:00Z",
         "timeBucketSize": "1h"}


def events_for(domain, seed):
    times = random_times(f"ten-{domain}-{seed}", START - timedelta(hours=2),
                         END + timedelta(hours=2), 120)
    return generate(domain, seed, times)


@pytest.mark.parametrize("domain", DOMAINS)
def test_same_ids_in_two_orgs_never_meet(client, new_org, domain):
    a, b = new_org(), new_org()
    ea, eb = events_for(domain, 1), events_for(domain, 2)  # same eventIds, ws/repo ids
    assert {e["eventId"] for e in ea} == {e["eventId"] for e in eb}
    ingest(client, a, domain, ea)
    ingest(client, b, domain, eb)
    for org, events in ((a, ea), (b, eb)):
        body = ok(client, f"/v2/stats/{domain}", org.headers, RANGE)
        check_series(body, domain, "", events, START, END, "1h", scope_id=org.id)
        for scope, sid in (("workspace", "w1"), ("repo", "r1")):
            body = ok(client, f"/v2/stats/{domain}", org.headers,
                      {**RANGE, "scope": scope, "id": sid})
            check_series(body, domain, "", events, START, END, "1h", scope=scope,
                         scope_id=sid)
    assert ok(client, f"/v2/stats/{domain}", a.headers, RANGE)["summary"] != \
        ok(client, f"/v2/stats/{domain}", b.headers, RANGE)["summary"]


def test_names_and_breakdowns_are_per_org(client, new_org):
    a, b = new_org(), new_org()
    t = "2026-09-01T10:00:00Z"
    ingest(client, a, "storage", [{"eventId": "1", "ts": t, "workspaceId": "w1",
                                   "workspaceName": "Alpha", "bucketId": "b1", "uplBytes": 1}])
    ingest(client, b, "storage", [{"eventId": "1", "ts": "2026-09-01T11:00:00Z",
                                   "workspaceId": "w1", "workspaceName": "Beta",
                                   "bucketId": "b2", "uplBytes": 2}])
    wa = ok(client, "/v2/stats/storage/breakdown/workspaces", a.headers, RANGE)["entities"]
    wb = ok(client, "/v2/stats/storage/breakdown/workspaces", b.headers, RANGE)["entities"]
    assert [(e["entityId"], e["entityName"], e["totals"]["uplBytes"]) for e in wa] == \
        [("w1", "Alpha", 1)]
    assert [(e["entityId"], e["entityName"], e["totals"]["uplBytes"]) for e in wb] == \
        [("w1", "Beta", 2)]
    ba = ok(client, "/v2/stats/storage/breakdown/buckets", a.headers, RANGE)["entities"]
    assert [e["entityId"] for e in ba] == ["b1"]
    # b's bucket is not a filter hit for a
    body = ok(client, "/v2/stats/storage", a.headers, {**RANGE, "bucketId": "b2"})
    assert body["summary"]["total"] == 0


SCOPED_PATHS = ["/v2/stats/storage", "/v2/stats/ai", "/v2/stats/private-chat",
                "/v2/stats/policies", "/v2/stats/policies/tokens", "/v2/stats/credits",
                "/v2/stats/storage/breakdown/buckets", "/v2/stats/ai/breakdown/models",
                "/v2/stats/policies/breakdown/rules", "/v2/stats/credits/breakdown/workspaces",
                "/v2/stats/private-chat/breakdown/users"]


@pytest.mark.parametrize("path", SCOPED_PATHS)
def test_foreign_and_missing_ids_are_indistinguishable(client, new_org, path):
    owner, caller = new_org(), new_org()
    ws, repo = f"ws-{uuid.uuid4().hex[:8]}", f"repo-{uuid.uuid4().hex[:8]}"
    # before anyone has the ids: they exist nowhere
    before = {}
    for scope, sid in (("workspace", ws), ("repo", repo)):
        r, _ = get(client, path, caller.headers, {**RANGE, "scope": scope, "id": sid})
        before[scope] = without_request_id(assert_problem(r, 404, "not_found"))
        before[scope + "-raw"] = r
    ingest(client, owner, "storage", [{"eventId": "x", "ts": "2026-09-01T05:00:00Z",
                                       "workspaceId": ws, "repoId": repo, "bucketId": "bb"}])
    for scope, sid in (("workspace", ws), ("repo", repo)):
        ok(client, path, owner.headers, {**RANGE, "scope": scope, "id": sid})  # exists there
        r, _ = get(client, path, caller.headers, {**RANGE, "scope": scope, "id": sid})
        after = without_request_id(assert_problem(r, 404, "not_found"))
        assert after == before[scope]  # same body (minus requestId) as when it existed nowhere
        assert r.headers["content-type"] == before[scope + "-raw"].headers["content-type"]
        # and the same as for an id that exists nowhere at all
        r, _ = get(client, path, caller.headers,
                   {**RANGE, "scope": scope, "id": f"nowhere-{uuid.uuid4().hex}"})
        assert without_request_id(assert_problem(r, 404, "not_found")) == after
    # owner: a workspace id is not a repo, a bucket id is not a workspace
    for scope, sid in (("repo", ws), ("workspace", repo), ("workspace", "bb")):
        r, _ = get(client, path, owner.headers, {**RANGE, "scope": scope, "id": sid})
        assert_problem(r, 404, "not_found")


def test_scope_org_id_must_be_the_callers(client, new_org):
    a, b = new_org(), new_org()
    ingest(client, a, "ai", events_for("ai", 3))
    body = ok(client, "/v2/stats/ai", a.headers, {**RANGE, "id": a.id})
    assert body["meta"]["scopeId"] == a.id
    body = ok(client, "/v2/stats/ai", a.headers, RANGE)
    assert body["meta"]["scopeId"] == a.id
    r, _ = get(client, "/v2/stats/ai", b.headers, {**RANGE, "id": a.id})
    foreign = without_request_id(assert_problem(r, 404, "not_found"))
    r, _ = get(client, "/v2/stats/ai", b.headers, {**RANGE, "id": str(uuid.uuid4())})
    assert without_request_id(assert_problem(r, 404, "not_found")) == foreign
    r, _ = get(client, "/v2/stats/ai/breakdown/models", b.headers, {**RANGE, "id": a.id})
    assert_problem(r, 404, "not_found")
    r, _ = get(client, "/v2/stats/ai", b.headers, {**RANGE, "id": "not-a-uuid"})
    assert r.status_code in (400, 404)


# --- authentication ----------------------------------------------------------------------


def _bad_authorizations(org):
    key_id, secret = org.key[4:20], org.key[21:]
    wrong_secret = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    return [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer garbage",
        f"Basic {org.key}",
        f"Token {org.key}",
        f"Bearer {org.key}x",
        f"Bearer sgk_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}",  # well-formed, unknown
        f"Bearer sgk_{key_id}_{wrong_secret}",  # known key id, wrong secret
        f"Bearer {org.key[:-5]}",
        "Bearer " + "A" * 5000,
        "Bearer sgk_\u00e9\u00e9",
    ]


ENDPOINTS = [("GET", "/v2/stats/storage"), ("GET", "/v2/stats/policies/tokens"),
             ("GET", "/v2/stats/credits/breakdown/models"), ("POST", "/v2/ingest/ai")]


def _call(client, method, path, headers):
    if method == "GET":
        return client.get(path, params=RANGE, headers=headers)
    return client.post(path, content=b'{"events": [{"eventId": "a", "ts": 1780000000, '
                       b'"model": "m"}]}', headers={**headers, "Content-Type": "application/json"})


def test_unauthenticated_calls_get_identical_401s(client, new_org, db):
    org = new_org()
    bodies = []
    for method, path in ENDPOINTS:
        for auth in _bad_authorizations(org):
            headers = {} if auth is None else {"Authorization": auth}
            try:
                r = _call(client, method, path, headers)
            except UnicodeEncodeError:
                continue  # the client cannot send it at all
            bodies.append(without_request_id(assert_problem(r, 401)))
    assert all(b == bodies[0] for b in bodies), {str(b) for b in bodies}
    (n,) = db.execute("SELECT count(*) FROM events_ai WHERE org_id = %s", (org.id,)).fetchone()
    assert n == 0


def test_revoked_and_expired_keys_get_the_same_401(client, new_org, db):
    org = new_org()
    r, _ = get(client, "/v2/stats/storage", {}, RANGE)
    reference = without_request_id(assert_problem(r, 401))
    ok(client, "/v2/stats/storage", org.read_only, RANGE)
    key_id = org.read_only["Authorization"].split("_")[1]
    db.execute("UPDATE api_keys SET revoked_at = now() WHERE key_id = %s", (key_id,))
    r, _ = get(client, "/v2/stats/storage", org.read_only, RANGE)
    assert without_request_id(assert_problem(r, 401)) == reference
    ok(client, "/v2/stats/storage", org.headers, RANGE)
    key_id = org.key.split("_")[1]
    db.execute("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE key_id = %s",
               (key_id,))
    r, _ = get(client, "/v2/stats/storage", org.headers, RANGE)
    assert without_request_id(assert_problem(r, 401)) == reference


def test_authentication_comes_before_parameter_checks(client, new_org):
    r, _ = get(client, "/v2/stats/storage", {"Authorization": "Bearer nope"},
               {"scope": "galaxy", "bogus": "1"})
    assert_problem(r, 401)
    r, _ = get(client, "/v2/stats/storage/breakdown/nonsense", {}, RANGE)
    assert r.status_code in (401, 404)
    r = client.post("/v2/ingest/storage", content=b"{not json", headers={})
    assert_problem(r, 401)


def test_permissions(client, new_org, db):
    org = new_org()
    event = {"eventId": "p1", "ts": "2026-09-01T03:00:00Z", "uplBytes": 5}
    # a read-only key cannot ingest
    r = post_events(client, org.read_only, "storage", [event])
    forbidden = assert_problem(r, 403)
    (n,) = db.execute("SELECT count(*) FROM events_storage WHERE org_id = %s",
                      (org.id,)).fetchone()
    assert n == 0
    # an ingest-only key can ingest but not read
    r = post_events(client, org.ingest_only, "storage", [event])
    assert r.status_code == 200 and r.json()["inserted"] == 1
    for path in ("/v2/stats/storage", "/v2/stats/storage/breakdown/workspaces",
                 "/v2/stats/policies/tokens", "/v2/stats/credits/breakdown/models"):
        r, _ = get(client, path, org.ingest_only, RANGE)
        assert_problem(r, 403)
    # read-only reads what the ingest-only key wrote
    body = ok(client, "/v2/stats/storage", org.read_only, RANGE)
    assert body["summary"]["total"] == 1
    assert forbidden["error_code"] != "unauthorized"
    # a read-only key on ingest with a broken body is still a 403, not a 400
    r = client.post("/v2/ingest/storage", content=b"{", headers={**org.read_only,
                                                                "Content-Type": "application/json"})
    assert_problem(r, 403)


def test_in_range_helper_sanity():
    evs = events_for("storage", 9)
    assert 0 < len(in_range(evs, START, END)) < len(evs)
