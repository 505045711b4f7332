"""Key administration (issue 13): the admin API (/v2/keys), `stats-gateway keys`, and
revocation/expiry reaching every replica on the next request.

"Replicas" here are two gateway apps (each with its own key cache and pool) against the
one test database: the session client and a second app built the same way.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from litestar.testing import TestClient

from stats_gateway import cli
from stats_gateway.auth import KeyCache, create_key, ensure_org
from stats_gateway.config import DATA_DIR_ENV, DATABASE_URL_ENV, Settings
from stats_gateway.http.app import create_app
from stats_gateway.key_admin import RESOURCE_SCOPES
from support import assert_problem, get, ok, without_request_id

RANGE = {"scope": "org", "start": "2026-09-01T00:00:00Z", "end": "2026-09-02T00:00:00Z",
         "timeBucketSize": "1h"}
SERIES = "/v2/stats/storage"


@pytest.fixture(scope="module")
def replica(database_url, client):
    """A second gateway on the same database (the session client is the first)."""
    app = create_app(Settings(database_url=database_url, data_dir=Path("/nonexistent"),
                              rate_limit="off"))
    with TestClient(app) as second:
        yield second


class AdminOrg:
    """An org with an admin key, a read+ingest key and a read-only key limited to w1."""

    def __init__(self, db):
        self.id = ensure_org(db, f"keys-{uuid.uuid4().hex[:10]}")
        self.admin = bearer(create_key(db, self.id, read=False, ingest=False, admin=True,
                                       name="ops"))
        self.key = create_key(db, self.id, name="app")
        self.headers = bearer(self.key)
        self.limited_key = create_key(db, self.id, ingest=False, workspaces=["w1"],
                                      resource_scopes=["flows:read"], rate_limit="60/min",
                                      name="limited")
        self.limited = bearer(self.limited_key)


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def kid(key_or_headers) -> str:
    text = key_or_headers if isinstance(key_or_headers, str) else \
        key_or_headers["Authorization"]
    return text.split("_")[1]


@pytest.fixture
def org(db):
    return AdminOrg(db)


def listed(client, headers) -> dict[str, dict]:
    r = client.get("/v2/keys", headers=headers)
    assert r.status_code == 200, r.text
    return {k["id"]: k for k in r.json()["keys"]}


def test_list_shows_the_orgs_keys_and_never_a_secret(client, db, org):
    AdminOrg(db)  # another org's keys must not show
    keys = listed(client, org.admin)
    stored = {r[0] for r in db.execute("SELECT key_id FROM api_keys WHERE org_id = %s",
                                       (org.id,)).fetchall()}
    assert set(keys) == stored and len(stored) == 3
    limited = keys[kid(org.limited)]
    assert limited == {**limited, "label": "limited", "orgId": org.id,
                       "permissions": ["read"], "resourceScopes": ["flows:read"],
                       "workspaces": ["w1"], "repos": None, "rateLimit": "60/min",
                       "expiresAt": None, "revokedAt": None, "status": "active"}
    assert keys[kid(org.admin)]["permissions"] == ["admin"]
    assert keys[kid(org.headers)]["permissions"] == ["read", "ingest"]
    text = client.get("/v2/keys", headers=org.admin).text
    for key in (org.key, org.limited_key):
        assert key.split("_", 2)[2] not in text  # the secret (it may hold "_" itself)
    assert "secret" not in text.lower()


def test_last_used_is_written_when_a_key_authenticates(client, org):
    before = datetime.now(UTC) - timedelta(seconds=5)
    assert listed(client, org.admin)[kid(org.headers)]["lastUsedAt"] is None
    ok(client, SERIES, org.headers, RANGE)
    used = listed(client, org.admin)[kid(org.headers)]["lastUsedAt"]
    assert before <= datetime.fromisoformat(used) <= datetime.now(UTC) + timedelta(seconds=5)


def test_only_admin_keys_reach_the_admin_api_and_admin_keys_read_nothing(client, org):
    for headers in (org.headers, org.limited):
        assert_problem(client.get("/v2/keys", headers=headers), 403, "forbidden")
        assert_problem(client.delete(f"/v2/keys/{kid(org.headers)}", headers=headers), 403)
    assert_problem(client.get("/v2/keys"), 401)
    r, _ = get(client, SERIES, org.admin, RANGE)
    assert_problem(r, 403)


def test_foreign_and_unknown_key_ids_answer_alike_and_change_nothing(client, db, org):
    other = AdminOrg(db)
    answers = []
    for key_id in (kid(other.headers), "0123456789abcdef", "not-a-key-id"):
        for method, path, body in (("GET", "", None), ("DELETE", "", None),
                                   ("POST", "/rotate", {}),
                                   ("POST", "/expire", {"expiresAt": "2020-01-01T00:00:00Z"})):
            r = client.request(method, f"/v2/keys/{key_id}{path}", headers=org.admin, json=body)
            answers.append(without_request_id(assert_problem(r, 404, "not_found")))
    assert all(a == answers[0] for a in answers)
    ok(client, SERIES, other.headers, RANGE)  # the other org's key still works
    (count,) = db.execute("SELECT count(*) FROM api_keys WHERE org_id = %s",
                          (other.id,)).fetchone()
    assert count == 3


def test_revoke_in_one_replica_refuses_the_key_in_the_other_on_its_next_request(
        client, replica, org):
    ok(client, SERIES, org.headers, RANGE)  # cached in both replicas
    ok(replica, SERIES, org.headers, RANGE)
    first = replica.delete(f"/v2/keys/{kid(org.headers)}", headers=org.admin)
    assert first.status_code == 200 and first.json()["status"] == "revoked", first.text
    for gateway in (client, replica):
        r, _ = get(gateway, SERIES, org.headers, RANGE)
        assert_problem(r, 401)
    again = replica.delete(f"/v2/keys/{kid(org.headers)}", headers=org.admin)
    assert again.status_code == 200 and again.json() == first.json()  # idempotent
    ok(client, SERIES, org.limited, RANGE)  # other keys are untouched


def test_expiry_set_in_one_replica_holds_in_the_other(client, replica, org):
    ok(client, SERIES, org.headers, RANGE)
    later = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    r = replica.post(f"/v2/keys/{kid(org.headers)}/expire", headers=org.admin,
                     json={"expiresAt": later.isoformat()})
    assert r.status_code == 200 and r.json()["status"] == "active", r.text
    assert datetime.fromisoformat(r.json()["expiresAt"]) == later
    ok(client, SERIES, org.headers, RANGE)  # not yet
    r = replica.post(f"/v2/keys/{kid(org.headers)}/expire", headers=org.admin,
                     json={"expiresAt": "2020-01-01T00:00:00Z"})
    assert r.status_code == 200 and r.json()["status"] == "expired", r.text
    r, _ = get(client, SERIES, org.headers, RANGE)
    assert_problem(r, 401)
    for path, body in (("/expire", {"expiresAt": later.isoformat()}), ("/rotate", {})):
        r = replica.post(f"/v2/keys/{kid(org.headers)}{path}", headers=org.admin, json=body)
        assert_problem(r, 409, "key_not_active")  # a dead key stays dead


def test_rotate_gives_a_key_with_the_same_grants_and_a_grace_period(client, replica, org):
    ok(client, SERIES, org.limited, RANGE)
    before = datetime.now(UTC)
    r = replica.post(f"/v2/keys/{kid(org.limited)}/rotate", headers=org.admin,
                     json={"graceSeconds": 3600})
    assert r.status_code == 200, r.text
    body = r.json()
    new, old = body["created"], body["rotated"]
    assert kid(body["key"]) == new["id"] != old["id"] == kid(org.limited)
    same = ("label", "orgId", "permissions", "resourceScopes", "workspaces", "repos",
            "rateLimit")
    assert {k: new[k] for k in same} == {k: old[k] for k in same}
    assert new["expiresAt"] is None and new["status"] == "active"
    grace_end = datetime.fromisoformat(old["expiresAt"])
    assert before + timedelta(seconds=3590) < grace_end < datetime.now(UTC) + timedelta(hours=1)
    for gateway in (client, replica):
        ok(gateway, SERIES, org.limited, RANGE)  # the old key, within its grace period
        ok(gateway, SERIES, bearer(body["key"]), RANGE)
        assert_problem(gateway.post("/v2/ingest/storage", headers=bearer(body["key"]),
                                    json={"events": []}), 403)  # read-only, like the old
    default = replica.post(f"/v2/keys/{kid(org.headers)}/rotate", headers=org.admin)
    grace = datetime.fromisoformat(default.json()["rotated"]["expiresAt"]) - datetime.now(UTC)
    assert timedelta(hours=23, minutes=59) < grace <= timedelta(hours=24)
    r = replica.post(f"/v2/keys/{new['id']}/rotate", headers=org.admin,
                     json={"graceSeconds": 0})
    assert r.status_code == 200
    r, _ = get(client, SERIES, bearer(body["key"]), RANGE)
    assert_problem(r, 401)  # no grace: gone at once


@pytest.mark.parametrize("path, body, status, field", [
    ("/expire", b"{", 400, None),
    ("/expire", b"{}", 422, "body"),
    ("/expire", b'{"expiresAt": "soon"}', 422, "body"),
    ("/expire", b'{"expiresAt": "2030-01-01T00:00:00"}', 422, "expiresAt"),
    ("/rotate", b'{"graceSeconds": -1}', 422, "graceSeconds"),
    ("/rotate", b'{"graceSeconds": 2592001}', 422, "graceSeconds"),
    ("/rotate", b'{"graceSeconds": "1h"}', 422, "body"),
    ("/rotate", b"[]", 422, "body"),
])
def test_bad_bodies_get_the_error_envelope(client, org, path, body, status, field):
    r = client.post(f"/v2/keys/{kid(org.headers)}{path}", headers={
        **org.admin, "Content-Type": "application/json"}, content=body)
    problem = assert_problem(r, status)
    if field:
        assert {e["field"] for e in problem["errors"]} == {field}
    assert listed(client, org.admin)[kid(org.headers)]["status"] == "active"


def test_the_key_cache_forgets_entries_after_its_ttl(client, org):
    cache = KeyCache(ttl_s=0.0)
    caller = object()
    cache.put("a" * 16, "s", caller)
    assert cache.get("a" * 16, "s") is None and len(cache) == 0
    fresh = KeyCache()
    fresh.put("a" * 16, "s", caller)
    assert fresh.get("a" * 16, "s") is caller


def test_resource_scopes_are_the_ones_runs_stats_checks():
    from stats_gateway.seeds.runs import READ_SCOPE

    assert RESOURCE_SCOPES == set(READ_SCOPE.values())


# --- the CLI --------------------------------------------------------------------------------

@pytest.fixture
def run_cli(database_url, monkeypatch, capsys):
    monkeypatch.setenv(DATABASE_URL_ENV, database_url)
    monkeypatch.setenv(DATA_DIR_ENV, "/nonexistent")

    def run(*argv) -> tuple[int, str, str]:
        try:
            code = cli.main(list(argv))
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_create_key_says_whether_it_created_the_org(run_cli, db):
    name = f"cli-{uuid.uuid4().hex[:8]}"
    code, out, err = run_cli("create-key", "--org", name)
    assert code == 0 and f"created a new org '{name}'" in err
    assert "database " in err.splitlines()[0] and DATABASE_URL_ENV in err.splitlines()[0]
    code, out, err = run_cli("create-key", "--org", name, "--admin")
    assert code == 0 and f"using the existing org '{name}'" in err and "perm: admin" in out
    (orgs,) = db.execute("SELECT count(*) FROM orgs WHERE name = %s", (name,)).fetchone()
    assert orgs == 1


def test_unknown_resource_scopes_are_refused_and_not_stored(run_cli, db):
    name = f"cli-{uuid.uuid4().hex[:8]}"
    code, _, err = run_cli("create-key", "--org", name, "--resource-scope", "flows:write")
    assert code == 2 and "unknown resource scope 'flows:write'" in err
    assert db.execute("SELECT count(*) FROM orgs WHERE name = %s", (name,)).fetchone()[0] == 0
    code, out, _ = run_cli("create-key", "--org", name, "--resource-scope", "models:read")
    assert code == 0
    key_id = kid(out.split("key:")[1].split()[0])
    (scopes,) = db.execute("SELECT resource_scopes FROM api_keys WHERE key_id = %s",
                           (key_id,)).fetchone()
    assert scopes == ["models:read"]


def test_keys_cli_lists_revokes_expires_and_rotates(run_cli, db, client, org):
    code, out, _ = run_cli("keys", "list", "--org", org.id)
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert set(lines) == {kid(org.admin), kid(org.headers), kid(org.limited)}
    assert "perm=read" in lines[kid(org.limited)] and "workspaces=w1" in lines[kid(org.limited)]
    assert org.key.split("_", 2)[2] not in out  # the secret (it may hold "_" itself)
    code, out, _ = run_cli("keys", "rotate", kid(org.headers), "--grace", "2h")
    assert code == 0
    new_key = out.split("key:")[1].split()[0]
    ok(client, SERIES, bearer(new_key), RANGE)
    ok(client, SERIES, org.headers, RANGE)
    code, out, _ = run_cli("keys", "revoke", kid(org.headers))
    assert code == 0 and "revoked" in out
    r, _ = get(client, SERIES, org.headers, RANGE)
    assert_problem(r, 401)
    code, out, _ = run_cli("keys", "expire", kid(new_key), "--in", "0")
    assert code == 0 and "expired" in out
    r, _ = get(client, SERIES, bearer(new_key), RANGE)
    assert_problem(r, 401)
    code, _, err = run_cli("keys", "revoke", "0123456789abcdef")
    assert code == 2 and "no key has id" in err
    code, _, err = run_cli("keys", "rotate", kid(new_key))
    assert code == 2 and "revoked or expired" in err


def test_the_admin_api_is_documented_with_its_errors(client):
    paths = client.get("/schema/openapi.json").json()["paths"]
    expected = {("/v2/keys", "get"), ("/v2/keys/{keyId}", "get"),
                ("/v2/keys/{keyId}", "delete"), ("/v2/keys/{keyId}/expire", "post"),
                ("/v2/keys/{keyId}/rotate", "post")}
    found = {(path, method) for path, item in paths.items() if path.startswith("/v2/keys")
             for method in item}
    assert found == expected
    for path, method in expected:
        responses = paths[path][method]["responses"]
        assert {"200", "401", "403"} <= set(responses), (path, method)
        assert "secret" not in str(responses["200"]).lower()
