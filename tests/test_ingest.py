"""Ingest: idempotency, atomic all-or-nothing validation, every rule, exact decimals."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from expected import UTC, unix, utc

from stats_gateway.core.ingest import MAX_INTEGER
import support
from support import (
    HTTP, DOMAINS, assert_problem, check_series, encode, generate, ingest, loads, ok, post_events,
    random_times,
)

START, END = utc(2026, 8, 1), utc(2026, 8, 3)
RANGE = {"scope": "org", "start": "2026-08-01T00:00:00Z", "end": "2026-08-03T00:00:00Z",
         "timeBucketSize": "6h"}
TABLES = {"storage": "events_storage", "ai": "events_ai", "private-chat": "events_private_chat",
          "policies": "events_policies", "credits": "events_credits"}


def events_for(domain, n=80, seed=1, prefix=""):
    times = random_times(f"ing-{domain}-{seed}", START, END, n)
    return generate(domain, seed, times, prefix=prefix)


def stored_count(db, org, domain) -> int:
    (n,) = db.execute(f"SELECT count(*) FROM {TABLES[domain]} WHERE org_id = %s",
                      (org.id,)).fetchone()
    return n


def series(client, org, domain):
    return ok(client, f"/v2/stats/{domain}", org.headers, RANGE)


def ingest_response(r) -> dict:
    assert r.status_code == 200, r.text
    return r.json()


# --- idempotency -----------------------------------------------------------------------


@pytest.mark.parametrize("domain", DOMAINS)
def test_same_batch_twice_counts_once(client, new_org, db, domain):
    org = new_org()
    events = events_for(domain)
    ingest(client, org, domain, events)
    first = series(client, org, domain)
    check_series(first, domain, "", events, START, END, "6h", scope_id=org.id)
    r = post_events(client, org.headers, domain, events)
    assert ingest_response(r) == {"success": True, "domain": domain, "received": len(events),
                                  "inserted": 0, "duplicates": len(events)}
    second = series(client, org, domain)
    assert second["series"] == first["series"] and second["summary"] == first["summary"]
    assert stored_count(db, org, domain) == len(events)


def test_overlapping_batches_insert_only_new_events(client, new_org, db):
    org = new_org()
    events = events_for("ai", 100, seed=2)
    assert ingest_response(post_events(client, org.headers, "ai", events[:60]))["inserted"] == 60
    r = post_events(client, org.headers, "ai", events[40:])
    assert ingest_response(r) == {"success": True, "domain": "ai", "received": 60,
                                  "inserted": 40, "duplicates": 20}
    check_series(series(client, org, "ai"), "ai", "", events, START, END, "6h", scope_id=org.id)
    assert stored_count(db, org, "ai") == 100


def test_a_retried_event_with_changed_content_is_still_a_duplicate(client, new_org):
    org = new_org()
    events = events_for("storage", 20, seed=3)
    ingest(client, org, "storage", events)
    changed = [dict(e, uplBytes=123456789, dwlBytes=1) for e in events[:5]]
    r = post_events(client, org.headers, "storage", changed)
    assert ingest_response(r)["duplicates"] == 5
    check_series(series(client, org, "storage"), "storage", "", events, START, END, "6h",
                 scope_id=org.id)


def test_duplicate_event_id_inside_one_batch_counts_once(client, new_org, db):
    org = new_org()
    e = events_for("policies", 3, seed=4)
    r = post_events(client, org.headers, "policies", [e[0], e[1], e[0], e[2], e[1]])
    assert ingest_response(r) == {"success": True, "domain": "policies", "received": 5,
                                  "inserted": 3, "duplicates": 2}
    assert stored_count(db, org, "policies") == 3
    check_series(series(client, org, "policies"), "policies", "", e, START, END, "6h",
                 scope_id=org.id)


def test_event_ids_are_per_org(client, new_org):
    a, b = new_org(), new_org()
    events = events_for("credits", 30, seed=5)
    ingest(client, a, "credits", events)
    ingest(client, b, "credits", events)  # same ids, another org: all inserted
    for org in (a, b):
        check_series(series(client, org, "credits"), "credits", "", events, START, END, "6h",
                     scope_id=org.id)


# --- atomic rejection ---------------------------------------------------------------------


def _valid_storage(i, **extra):
    e = {"eventId": f"v{i}", "ts": f"2026-08-01T{i % 24:02d}:00:00Z", "uplBytes": 10 + i}
    e.update(extra)
    return e


def test_one_bad_batch_writes_nothing_and_lists_every_problem(client, new_org, db):
    org = new_org()
    batch = [_valid_storage(i) for i in range(14)]
    bad = {  # index -> (mutation, acceptable fields for the problem)
        2: ({"uplBytes": -1}, [{"uplBytes"}]),
        5: ({"color": "red"}, [{"color"}]),
        6: ({"latencyMs": "fast"}, [{"latencyMs"}]),
        8: ({"ts": None}, [{"ts"}]),
        10: ({"repoId": "r1"}, [{"repoId", "workspaceId"}]),
        11: ({"eventId": None, "dwlBytes": 1.5}, [{"eventId"}, {"dwlBytes"}]),
        13: ({"bucketId": 7, "ts": "2026-08-01 10:00"}, [{"bucketId"}, {"ts"}]),
    }
    for index, (mutation, _) in bad.items():
        for k, v in mutation.items():
            if v is None:
                del batch[index][k]
            else:
                batch[index][k] = v
    r = post_events(client, org.headers, "storage", batch)
    body = assert_problem(r, 422, "invalid_events")
    by_index: dict[int, set[str]] = {}
    for err in body["errors"]:
        assert isinstance(err["index"], int), err
        by_index.setdefault(err["index"], set()).add(err["field"])
    assert set(by_index) == set(bad), by_index
    for index, (_, problems) in bad.items():
        for acceptable in problems:  # every problem of the event is listed
            assert by_index[index] & acceptable, (index, by_index[index], acceptable)
    assert stored_count(db, org, "storage") == 0
    assert series(client, org, "storage")["summary"]["total"] == 0
    # fixed, the same batch goes in whole
    fixed = [_valid_storage(i) for i in range(14)]
    ingest(client, org, "storage", fixed)
    check_series(series(client, org, "storage"), "storage", "", fixed, START, END, "6h",
                 scope_id=org.id)


NOW = datetime.now(UTC)
INVALID = [
    # (domain, change to a valid event (None deletes), acceptable fields)
    ("storage", {"uplBytes": "5"}, {"uplBytes"}),
    ("storage", {"uplBytes": 1.5}, {"uplBytes"}),
    ("storage", {"uplBytes": True}, {"uplBytes"}),
    ("storage", {"uplBytes": 2**63}, {"uplBytes"}),
    ("storage", {"dwlBytes": -1}, {"dwlBytes"}),
    ("storage", {"latencyMs": -0.5}, {"latencyMs"}),
    ("storage", {"latencyMs": "12"}, {"latencyMs"}),
    ("storage", {"bucketId": 42}, {"bucketId"}),
    ("storage", {"workspaceId": ["w1"]}, {"workspaceId"}),
    ("storage", {"apiKeyId": {"id": 1}}, {"apiKeyId"}),
    ("storage", {"color": "red"}, {"color"}),
    ("storage", {"eventid": "x"}, {"eventid", "eventId"}),
    ("storage", {"eventId": None}, {"eventId"}),
    ("storage", {"eventId": 5}, {"eventId"}),
    ("storage", {"eventId": ""}, {"eventId"}),
    ("storage", {"ts": None}, {"ts"}),
    ("storage", {"ts": "2026-08-01T10:00:00"}, {"ts"}),
    ("storage", {"ts": "yesterday"}, {"ts"}),
    ("storage", {"ts": "1999-12-31T23:59:59Z"}, {"ts"}),
    ("storage", {"ts": 946684799}, {"ts"}),
    ("storage", {"ts": (NOW + timedelta(days=2)).isoformat()}, {"ts"}),
    ("storage", {"ts": unix(NOW + timedelta(days=3))}, {"ts"}),
    ("storage", {"ts": True}, {"ts"}),
    ("storage", {"ts": "2026-02-30T00:00:00Z"}, {"ts"}),
    ("storage", {"repoId": "r1"}, {"repoId", "workspaceId"}),
    ("ai", {"model": None}, {"model"}),
    ("ai", {"model": 4}, {"model"}),
    ("ai", {"tokensIn": -3}, {"tokensIn"}),
    ("ai", {"policyTokensOut": 2.25}, {"policyTokensOut"}),
    ("ai", {"latencyMs": "slow"}, {"latencyMs"}),
    ("private-chat", {"userId": None}, {"userId"}),
    ("private-chat", {"tokensOut": "7"}, {"tokensOut"}),
    ("policies", {"ruleId": None}, {"ruleId"}),
    ("policies", {"action": "warn"}, {"action"}),
    ("policies", {"action": None}, {"action"}),
    ("policies", {"action": "block", "severity": "critical"}, {"severity"}),
    ("policies", {"action": "block", "severity": None}, {"severity"}),
    ("policies", {"action": "none", "severity": "low"}, {"severity"}),
    ("credits", {"kind": "refund"}, {"kind"}),
    ("credits", {"kind": None}, {"kind"}),
    ("credits", {"amount": None}, {"amount"}),
    ("credits", {"amount": "0.1234567"}, {"amount"}),
    ("credits", {"amount": Decimal("0.1234567")}, {"amount"}),
    ("credits", {"amount": Decimal("-0.5")}, {"amount"}),
    ("credits", {"amount": "-0.5"}, {"amount"}),
    ("credits", {"amount": "abc"}, {"amount"}),
    ("credits", {"amount": True}, {"amount"}),
]
VALID = {
    "storage": {"eventId": "ok", "ts": "2026-08-01T10:00:00Z", "uplBytes": 5},
    "ai": {"eventId": "ok", "ts": "2026-08-01T10:00:00Z", "model": "m", "tokensIn": 3},
    "private-chat": {"eventId": "ok", "ts": "2026-08-01T10:00:00Z", "model": "m",
                     "userId": "u"},
    "policies": {"eventId": "ok", "ts": "2026-08-01T10:00:00Z", "ruleId": "r",
                 "action": "alert", "severity": "low"},
    "credits": {"eventId": "ok", "ts": "2026-08-01T10:00:00Z", "kind": "ai", "amount": "1.5"},
}


def _mutate(event: dict, change: dict) -> dict:
    out = dict(event)
    for k, v in change.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


@pytest.mark.parametrize("domain,change,fields", INVALID,
                         ids=[f"{d}-{'-'.join(map(str, c))}" for d, c, _ in INVALID])
def test_each_validation_rule(client, new_org, db, domain, change, fields):
    org = new_org()
    good = VALID[domain]
    batch = [dict(good, eventId="a"), _mutate(dict(good, eventId="b"), change),
             dict(good, eventId="c")]
    if "eventId" in change:
        batch[1] = _mutate(good, change)
    r = post_events(client, org.headers, domain, batch)
    body = assert_problem(r, 422, "invalid_events")
    assert {e["index"] for e in body["errors"]} == {1}, body["errors"]
    assert {e["field"] for e in body["errors"]} & fields, body["errors"]
    assert stored_count(db, org, domain) == 0


def test_event_that_is_not_an_object(client, new_org, db):
    org = new_org()
    for bad in (5, "x", None, [VALID["storage"]]):
        r = post_events(client, org.headers, "storage", [dict(VALID["storage"]), bad])
        body = assert_problem(r, 422, "invalid_events")
        assert {e["index"] for e in body["errors"]} == {1}
    assert stored_count(db, org, "storage") == 0


ACCEPTED = [
    ("storage", {"sizeChange": -500, "uplBytes": 0, "latencyMs": 0}),
    ("storage", {"latencyMs": 12, "dwlBytes": MAX_INTEGER}),
    ("storage", {"ts": 1785578400}),
    ("storage", {"ts": "2026-08-01T12:00:00.123456+05:30"}),
    ("storage", {"ts": "2000-01-01T00:00:01Z"}),
    ("storage", {"ts": (NOW + timedelta(hours=20)).isoformat()}),
    ("storage", {"workspaceId": "w", "repoId": "r", "workspaceName": "W", "repoName": "R"}),
    ("credits", {"amount": "0.123456"}),
    ("credits", {"amount": Decimal("0.000001")}),
    ("credits", {"amount": 7}),
    ("credits", {"amount": "0"}),
    ("credits", {"amount": "99999999999999.999999"}),
    ("policies", {"action": "none", "severity": None}),
    ("policies", {"action": "log", "severity": "high", "userId": "u", "userName": "U"}),
]


@pytest.mark.parametrize("domain,change", ACCEPTED, ids=[f"{d}-{i}" for i, (d, _) in
                                                         enumerate(ACCEPTED)])
def test_valid_edge_values_are_accepted(client, new_org, db, domain, change):
    org = new_org()
    event = _mutate(VALID[domain], change)
    r = post_events(client, org.headers, domain, [event])
    assert ingest_response(r) == {"success": True, "domain": domain, "received": 1,
                                  "inserted": 1, "duplicates": 0}
    assert stored_count(db, org, domain) == 1


def test_repo_belongs_to_one_workspace(client, new_org, db):
    org = new_org()
    base = dict(VALID["storage"])
    ingest(client, org, "storage", [dict(base, eventId="1", workspaceId="w1", repoId="r1")])
    # moved to another workspace in a later batch (with valid company): nothing written
    r = post_events(client, org.headers, "storage",
                    [dict(base, eventId="2", workspaceId="w1", repoId="r2"),
                     dict(base, eventId="3", workspaceId="w2", repoId="r1")])
    body = assert_problem(r, 422)
    assert {e["field"] for e in body["errors"]} & {"workspaceId", "repoId"}
    # two workspaces for one repo inside one batch
    r = post_events(client, org.headers, "storage",
                    [dict(base, eventId="4", workspaceId="w5", repoId="r9"),
                     dict(base, eventId="5", workspaceId="w6", repoId="r9")])
    assert_problem(r, 422)
    # the catalogue is per org and shared by domains: another domain may not move it either
    r = post_events(client, org.headers, "ai",
                    [{"eventId": "6", "ts": base["ts"], "model": "m", "workspaceId": "w2",
                      "repoId": "r1"}])
    assert_problem(r, 422)
    assert stored_count(db, org, "storage") == 1 and stored_count(db, org, "ai") == 0
    # the same workspace is fine
    ingest(client, org, "storage", [dict(base, eventId="7", workspaceId="w1", repoId="r1")])
    # and another org may put its own r1 in w2
    other = new_org()
    ingest(client, other, "storage", [dict(base, eventId="1", workspaceId="w2", repoId="r1")])
    body = ok(client, "/v2/stats/storage", org.headers,
              {**RANGE, "scope": "repo", "id": "r1"})
    assert body["summary"]["total"] == 2


def test_batch_size_limits(client, new_org, db):
    org = new_org()
    base = VALID["storage"]
    many = [dict(base, eventId=f"e{i}") for i in range(10_001)]
    r = post_events(client, org.headers, "storage", many)
    assert r.status_code in (400, 413, 422), r.status_code
    assert_problem(r, r.status_code)
    assert stored_count(db, org, "storage") == 0
    r = post_events(client, org.headers, "storage", many[:10_000])
    assert ingest_response(r)["inserted"] == 10_000
    body = ok(client, "/v2/stats/storage", org.headers, RANGE)
    assert body["summary"]["total"] == 10_000
    r = post_events(client, org.headers, "storage", [])
    assert r.status_code in (400, 422)
    assert_problem(r, r.status_code)


@pytest.mark.parametrize("raw", [b"[]", b'"events"', b"5", b"null", b"{}", b'{"events": {}}',
                                 b'{"events": "x"}', b'{"events": null}',
                                 b'{"Events": [{"eventId": "a"}]}'])
def test_body_that_is_not_an_events_object(client, new_org, db, raw):
    org = new_org()
    r = post_events(client, org.headers, "storage", None, raw=raw)
    assert r.status_code in (400, 422), r.text
    assert_problem(r, r.status_code)
    assert stored_count(db, org, "storage") == 0


@pytest.mark.parametrize("raw", [b"{", b"", b"{'events': []}", b'{"events": [}',
                                 b"\xff\xfe\x00", b'{"events": [NaN]}',
                                 b'{"events": []} trailing'])
def test_invalid_json(client, new_org, raw):
    org = new_org()
    r = post_events(client, org.headers, "storage", None, raw=raw)
    assert_problem(r, 400, "invalid_json")


def test_nul_characters_are_refused_not_a_500(client, new_org, db):
    org = new_org()
    for change in ({"eventId": "a\u0000b"}, {"bucketId": "b\u0000"},
                   {"workspaceId": "w\u0000", "workspaceName": "n"}):
        r = post_events(client, org.headers, "storage", [_mutate(VALID["storage"], change)])
        assert r.status_code == 422, f"{change!r}: {r.status_code} {r.text}"
        assert_problem(r, 422)
    assert stored_count(db, org, "storage") == 0


# --- exact decimals ----------------------------------------------------------------------


def test_credit_amounts_sum_exactly(client, new_org):
    org = new_org()
    t = utc(2026, 8, 1, 1)
    amounts = [Decimal("0.1"), "0.2", Decimal("0.3"), "0.000001", Decimal("0.000002"),
               "1234567.891234", Decimal("99999999999999.999999"), "0.000001"]
    events = [{"eventId": f"a{i}", "ts": (t + timedelta(minutes=i)).isoformat(), "kind": "ai",
               "amount": a} for i, a in enumerate(amounts)]
    tiny = [{"eventId": f"t{i}", "ts": (t + timedelta(hours=7, seconds=i)).isoformat(),
             "kind": "storage", "amount": "0.000001"} for i in range(1000)]
    grants = [{"eventId": f"g{i}", "ts": (t + timedelta(hours=13)).isoformat(), "kind": "grant",
               "amount": a} for i, a in enumerate(["0.1", "0.2"])]
    ingest(client, org, "credits", events + tiny + grants)
    r = client.get("/v2/stats/credits", params=RANGE, headers=org.headers)
    body = loads(r.text)
    expected_ai = sum((Decimal(str(a)) for a in amounts), Decimal(0))
    assert expected_ai == Decimal("100000001234568.491237")
    first = body["series"][0]
    assert first["creditsAi"] == expected_ai
    assert first["creditsTotal"] == expected_ai
    assert body["series"][1]["creditsStorage"] == Decimal("0.001")  # 1000 x 0.000001
    assert body["series"][2]["creditsGranted"] == Decimal("0.3")
    assert body["summary"]["total"] == expected_ai + Decimal("0.001")
    assert '"creditsGranted":0.3' in r.text.replace(" ", "")  # not 0.30000000000000004
    check_series(body, "credits", "", events + tiny + grants, START, END, "6h", scope_id=org.id)


def test_huge_bigint_sums_are_exact_not_a_500(client, new_org):
    """2,100 max-size uploads (MAX_INTEGER each) sum past 2**64; the series must still
    answer exactly."""
    org = new_org()
    big, n = MAX_INTEGER, 2100
    events = [dict(VALID["storage"], eventId=f"b{i}", uplBytes=big) for i in range(n)]
    ingest(client, org, "storage", events)
    r = client.get("/v2/stats/storage", params=RANGE, headers=org.headers)
    assert r.status_code == 200, r.text
    body = loads(r.text)
    assert n * big > 2**64
    assert sum(p["uplBytes"] for p in body["series"]) == n * big
    r = client.get("/v2/stats/storage/breakdown/workspaces", params=RANGE, headers=org.headers)
    assert r.status_code == 200, r.text


def test_repo_conflict_lists_the_bad_event_index(client, new_org, db):
    org = new_org()
    base = dict(VALID["storage"])
    ingest(client, org, "storage", [dict(base, eventId="1", workspaceId="w1", repoId="r1")])
    r = post_events(client, org.headers, "storage",
                    [dict(base, eventId="2"), dict(base, eventId="3", workspaceId="w1"),
                     dict(base, eventId="4", workspaceId="w2", repoId="r1"),
                     dict(base, eventId="5", workspaceId="w1", repoId="r1")])
    body = assert_problem(r, 422, "invalid_events")
    indexes = {e["index"] for e in body["errors"]}
    # index 2 moves r1 out of w1: it must be listed (3 agrees with the catalogue; listing it
    # too, as "two workspaces in this batch", is tolerated)
    assert 2 in indexes and indexes <= {2, 3}, body["errors"]
    assert {e["field"] for e in body["errors"]} <= {"workspaceId", "repoId"}
    r = post_events(client, org.headers, "storage",
                    [dict(base, eventId="6", workspaceId="w7", repoId="r7"),
                     dict(base, eventId="7", workspaceId="w8", repoId="r7")])
    body = assert_problem(r, 422, "invalid_events")
    assert {e["index"] for e in body["errors"]} and \
        {e["index"] for e in body["errors"]} <= {0, 1}, body["errors"]
    assert stored_count(db, org, "storage") == 1


def test_a_skipped_duplicate_changes_nothing(client, new_org):
    """A retried eventId is skipped: its (changed) names and ids must not leak into the
    catalogue (no rename, no new workspace that scope=workspace would then accept)."""
    org = new_org()
    first = {"eventId": "d1", "ts": "2026-08-01T03:00:00Z", "bucketId": "b1",
             "bucketName": "Original", "workspaceId": "w1", "workspaceName": "W One"}
    ingest(client, org, "storage", [first])
    retry = dict(first, bucketName="Changed", workspaceId="ghost", workspaceName="Ghost")
    r = post_events(client, org.headers, "storage", [retry])
    assert ingest_response(r) == {"success": True, "domain": "storage", "received": 1,
                                  "inserted": 0, "duplicates": 1}
    problems = []
    body = ok(client, "/v2/stats/storage/breakdown/buckets", org.headers, RANGE)
    names = [(e["entityId"], e["entityName"]) for e in body["entities"]]
    if names != [("b1", "Original")]:
        problems.append(f"bucket renamed by a skipped event: {names}")
    body = ok(client, "/v2/stats/storage/breakdown/workspaces", org.headers, RANGE)
    names = [(e["entityId"], e["entityName"]) for e in body["entities"]]
    if names != [("w1", "W One")]:
        problems.append(f"workspaces: {names}")
    r = client.get("/v2/stats/storage", params={**RANGE, "scope": "workspace", "id": "ghost"},
                   headers=org.headers)
    if r.status_code != 404:
        problems.append(f"workspace 'ghost' (only in a skipped event) answers {r.status_code}")
    assert not problems, problems


# --- real concurrency (a live server: the test client serialises requests) ---------------


@pytest.fixture(scope="module")
def live_server(database_url):
    with support.live_server(database_url) as base:
        yield base


def _post(base, org, domain, events):
        return lambda: HTTP.post(f"{base}/v2/ingest/{domain}", content=encode({"events": events}),
                              headers={**org.headers, "Content-Type": "application/json"},
                              timeout=60)


def test_concurrent_overlapping_batches_dedupe(live_server, new_org, db):
    org = new_org()
    events = [dict(VALID["storage"], eventId=f"c{i}", uplBytes=i) for i in range(2000)]
    results = support.in_parallel([_post(live_server, org, "storage", events),
                                   _post(live_server, org, "storage", events[::-1]),
                                   _post(live_server, org, "storage", events[500:1500])])
    assert [r.status_code for r in results] == [200, 200, 200], [r.text[:300] for r in results]
    bodies = [r.json() for r in results]
    assert sum(b["inserted"] for b in bodies) == 2000
    assert sum(b["duplicates"] for b in bodies) == 2000 + 1000
    assert stored_count(db, org, "storage") == 2000


def test_concurrent_batches_cannot_put_one_repo_in_two_workspaces(live_server, new_org, db):
    org = new_org()
    base = VALID["storage"]
    for trial in range(15):
        repo = f"repo-{trial}"
        results = support.in_parallel([
            _post(live_server, org, "storage",
                  [dict(base, eventId=f"{trial}-a", workspaceId="wA", repoId=repo)]),
            _post(live_server, org, "storage",
                  [dict(base, eventId=f"{trial}-b", workspaceId="wB", repoId=repo)]),
        ])
        codes = sorted(r.status_code for r in results)
        assert codes == [200, 422], (trial, [r.text[:200] for r in results])
    rows = db.execute("SELECT repo_id FROM events_storage WHERE org_id = %s GROUP BY repo_id "
                      "HAVING count(DISTINCT workspace_id) > 1", (org.id,)).fetchall()
    assert rows == []


@pytest.mark.parametrize("name,raw,fields", [
    ("deeply-nested-array", b'{"events": ' + b"[" * 5000 + b"]" * 5000 + b"}", None),
    ("deeply-nested-object", b'{"events": [{"eventId": "a", "ts": 1785578400, "x": '
     + b'{"a":' * 3000 + b"1" + b"}" * 3000 + b"}]}", None),
    ("huge-integer-latency", b'{"events": [{"eventId": "a", "ts": 1785578400, "latencyMs": 1'
     + b"0" * 400 + b"}]}", {"latencyMs"}),
    ("huge-integer-bytes", b'{"events": [{"eventId": "a", "ts": 1785578400, "uplBytes": 1'
     + b"0" * 400 + b"}]}", {"uplBytes"}),
    ("huge-float-latency", b'{"events": [{"eventId": "a", "ts": 1785578400, "latencyMs": 1e400}]}',
     {"latencyMs"}),
    ("huge-ts", b'{"events": [{"eventId": "a", "ts": 1' + b"0" * 400 + b"}]}", {"ts"}),
    ("huge-negative-ts", b'{"events": [{"eventId": "a", "ts": -1e400}]}', {"ts"}),
    ("lone-surrogate", b'{"events": [{"eventId": "\\ud800", "ts": 1785578400}]}', None),
])
def test_pathological_bodies_are_refused_not_a_500(client, new_org, db, name, raw, fields):
    org = new_org()
    r = post_events(client, org.headers, "storage", None, raw=raw)
    assert r.status_code in (400, 413, 422), f"{name}: {r.status_code} {r.text[:300]}"
    body = assert_problem(r, r.status_code)
    if fields:
        assert r.status_code == 422 and {e["field"] for e in body["errors"]} & fields
    assert stored_count(db, org, "storage") == 0


def test_huge_integer_amount_and_tokens_are_refused(client, new_org, db):
    org = new_org()
    raw = (b'{"events": [{"eventId": "a", "ts": 1785578400, "kind": "ai", "amount": 1'
           + b"0" * 400 + b"}]}")
    body = assert_problem(post_events(client, org.headers, "credits", None, raw=raw), 422)
    assert "amount" in {e["field"] for e in body["errors"]}
    raw = (b'{"events": [{"eventId": "a", "ts": 1785578400, "model": "m", "tokensIn": 1'
           + b"0" * 30 + b', "latencyMs": 1' + b"0" * 30 + b"}]}")
    body = assert_problem(post_events(client, org.headers, "ai", None, raw=raw), 422)
    assert {"tokensIn", "latencyMs"} <= {e["field"] for e in body["errors"]}
    assert stored_count(db, org, "credits") == 0 and stored_count(db, org, "ai") == 0
