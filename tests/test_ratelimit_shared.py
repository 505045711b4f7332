"""Rate limits kept in PostgreSQL (http/ratelimit.py, sql/0007): the bucket arithmetic at
chosen instants, exact RateLimit-* / Retry-After values on every kind of answer, one
budget under concurrent takers, and what the app role may touch."""

from __future__ import annotations

import math
import time
import uuid
from contextlib import contextmanager

import psycopg
import pytest

from stats_gateway.auth import create_key
from stats_gateway.db.tenant import APP_ROLE
from stats_gateway.http.ratelimit import Budget, parse_rate
from support import assert_problem, in_parallel, post_events

RANGE = {"scope": "org", "start": "2026-09-01T00:00:00Z", "end": "2026-09-02T00:00:00Z",
         "timeBucketSize": "1h"}
TAKE = "SELECT passed, full_in_s FROM stats_gateway_take_request(%s, %s, %s, %s)"


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def take(db, key_id: str, requests: int, period_s: float, at: float) -> tuple[bool, float]:
    return db.execute(TAKE, (key_id, requests, period_s, at)).fetchone()


@contextmanager
def limiter_set(client, default: str | None = None, clock=None):
    """The in-process gateway's limiter with a pinned clock (epoch seconds: ``clock()``)
    and optionally another default, for one test (tests in a module run one by one)."""
    limiter = client.app.state.rate_limiter
    before = limiter.default, limiter.clock
    if default is not None:
        limiter.default = parse_rate(default)
    limiter.clock = clock
    try:
        yield
    finally:
        limiter.default, limiter.clock = before


def limit_headers(r) -> tuple[str | None, str | None, str | None]:
    return (r.headers.get("ratelimit-limit"), r.headers.get("ratelimit-remaining"),
            r.headers.get("ratelimit-reset"))


def test_the_bucket_refills_at_the_rate_and_holds_a_burst(db):
    """4/2s: a burst of 4, then one token every 0.5 s, never more than 4."""
    key, other = uuid.uuid4().hex, uuid.uuid4().hex
    for i in range(4):
        passed, full_in = take(db, key, 4, 2.0, 100.0)
        assert passed and full_in == pytest.approx(0.5 * (i + 1))
    passed, full_in = take(db, key, 4, 2.0, 100.0)
    assert not passed and full_in == pytest.approx(2.0)  # a refusal takes nothing
    assert take(db, other, 4, 2.0, 100.0)[0]  # buckets are per key
    assert take(db, key, 4, 2.0, 100.49)[0] is False  # 10 ms short of a token
    assert take(db, key, 4, 2.0, 100.5)[0] is True
    assert take(db, key, 4, 2.0, 100.5)[0] is False
    for _ in range(4):  # a minute later: refilled to the burst, no further
        assert take(db, key, 4, 2.0, 160.5)[0]
    assert take(db, key, 4, 2.0, 160.5)[0] is False


def test_budget_header_values_from_the_bucket():
    rate = parse_rate("5/h")  # a token every 720 s
    assert Budget.of(rate, True, 720 - 0.004) == Budget(5, 4, 720, None)
    assert Budget.of(rate, True, 3 * 720 - 0.9) == Budget(5, 2, 2160, None)
    assert Budget.of(rate, False, 3600 - 0.2) == Budget(5, 0, 3600, 720)
    assert Budget.of(rate, False, 3600 - 700.5) == Budget(5, 0, 2900, 20)
    slow = parse_rate("1/min")
    assert Budget.of(slow, True, 60) == Budget(1, 0, 60, None)
    assert Budget.of(slow, False, 59.99) == Budget(1, 0, 60, 60)
    assert Budget.of(parse_rate("3/6s"), False, 2.5).retry_after_s == 1  # rounded up, >= 1


def test_headers_are_exact_on_every_answer_of_a_limited_key(client, db, new_org):
    now = [1_800_000_000.0]  # the database clock, pinned: exact whole seconds
    with limiter_set(client, clock=lambda: now[0]):
        check_headers_of_a_limited_key(client, db, new_org, now)


def check_headers_of_a_limited_key(client, db, new_org, now):
    org = new_org()
    key = create_key(db, org.id, rate_limit="5/h")  # 720 s per token: none back meanwhile
    reads = [  # a /v2 series, CSV, a seed endpoint, a 400, a 403 (no ingest permission)
        lambda: client.get("/v2/stats/storage", headers=bearer(key), params=RANGE),
        lambda: client.get("/v2/stats/storage", params=RANGE,
                           headers={**bearer(key), "Accept": "text/csv"}),
        lambda: client.get("/v1/model-usage", headers=bearer(key),
                           params={"startDate": "2026-09-01", "endDate": "2026-09-01"}),
        lambda: client.get("/v2/stats/storage", headers=bearer(key),
                           params={**RANGE, "timeBucketSize": "7x"}),
        lambda: post_events(client, bearer(create_key(db, org.id, ingest=False,
                                                      rate_limit="5/h")), "storage", []),
    ]
    statuses = []
    for n, call in enumerate(reads[:4], start=1):
        r = call()
        statuses.append(r.status_code)
        assert limit_headers(r) == ("5", str(5 - n), str(720 * n)), (n, r.headers)
        assert "retry-after" not in r.headers
    assert statuses == [200, 200, 200, 400]
    assert "text/csv" in client.get("/v2/stats/storage", params=RANGE, headers={
        **bearer(key), "Accept": "text/csv"}).headers["content-type"]  # the 5th token
    r = client.get("/v2/stats/storage", headers=bearer(key), params=RANGE)
    assert_problem(r, 429, "rate_limited")
    assert limit_headers(r) == ("5", "0", "3600") and r.headers["retry-after"] == "720"
    # a seed endpoint refuses in its own shape, with the same headers
    r = client.get("/v1/model-usage", headers=bearer(key),
                   params={"startDate": "2026-09-01", "endDate": "2026-09-01"})
    assert r.status_code == 429 and "application/problem+json" not in r.headers[
        "content-type"], r.headers
    assert limit_headers(r) == ("5", "0", "3600") and r.headers["retry-after"] == "720"
    # a key without the permission still spent its token: 403 with its first budget
    r = reads[4]()
    assert r.status_code == 403 and limit_headers(r) == ("5", "4", "720"), r.text
    # 719.5 s later a token is still 0.5 s away; at 720 s it is back, and only it
    now[0] += 719.5
    r = client.get("/v2/stats/storage", headers=bearer(key), params=RANGE)
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    assert limit_headers(r) == ("5", "0", "2881")  # 3600 - 719.5, rounded up
    now[0] += 0.5
    got = [client.get("/v2/stats/storage", headers=bearer(key), params=RANGE)
           for _ in range(2)]
    assert [r.status_code for r in got] == [200, 429]
    assert [limit_headers(r) for r in got] == [("5", "0", "3600"), ("5", "0", "3600")]
    assert got[1].headers["retry-after"] == "720"


def test_no_limit_no_headers_and_the_gateway_default(client, db, new_org):
    org = new_org()
    unlimited = bearer(create_key(db, org.id, rate_limit="off"))
    r = client.get("/v2/stats/storage", headers=unlimited, params=RANGE)
    assert r.status_code == 200 and limit_headers(r) == (None, None, None)
    r = client.get("/v2/stats/storage", headers=org.headers, params=RANGE)  # default: off
    assert r.status_code == 200 and limit_headers(r) == (None, None, None)
    unknown = bearer(f"sgk_{uuid.uuid4().hex[:16]}_{'A' * 43}")
    r = client.get("/v2/stats/storage", headers=unknown, params=RANGE)
    assert_problem(r, 401)
    assert limit_headers(r) == (None, None, None) and "retry-after" not in r.headers
    with limiter_set(client, "2/min", clock=lambda: 1_800_000_000.0):  # the default
        got = [client.get("/v2/stats/storage", headers=org.headers, params=RANGE)
               for _ in range(3)]
        assert [r.status_code for r in got] == [200, 200, 429]
        assert [limit_headers(r) for r in got] == [("2", "1", "30"), ("2", "0", "60"),
                                                   ("2", "0", "60")]
        assert got[2].headers["retry-after"] == "30"
        r = client.get("/v2/stats/storage", headers=unlimited, params=RANGE)
        assert r.status_code == 200 and limit_headers(r) == (None, None, None)


def test_concurrent_takers_share_one_budget(database_url, db):
    """40 connections take at once from a bucket of 15: exactly 15 pass, and the tokens
    left that they saw are each of 14..0 once."""
    key = uuid.uuid4().hex
    conns = [psycopg.connect(database_url, autocommit=True) for _ in range(40)]
    try:
        started = time.monotonic()
        results = in_parallel([
            (lambda c=c: c.execute(
                "SELECT passed, full_in_s FROM stats_gateway_take_request(%s, 15, 3600)",
                (key,)).fetchone()) for c in conns])
        took = math.ceil(time.monotonic() - started)
    finally:
        for c in conns:
            c.close()
    rate = parse_rate("15/h")
    budgets = [Budget.of(rate, passed, full_in) for passed, full_in in results]
    assert sum(passed for passed, _ in results) == 15
    assert sorted(b.remaining for b in budgets if b.retry_after_s is None) == list(range(15))
    # the 25 refused all wait for the first token back, 240 s after the first take (each
    # reads the clock once it holds the key's row: sql/0009), give or take the seconds
    # the 40 took
    waits = [b.retry_after_s for b in budgets if b.retry_after_s]
    assert len(waits) == 25 and all(240 - took <= w <= 240 + took for w in waits), waits


def test_the_app_role_may_only_call_the_function(db):
    with db.transaction():
        db.execute(f"SET LOCAL ROLE {APP_ROLE}")
        passed, _ = db.execute(TAKE, (uuid.uuid4().hex, 1, 60.0, None)).fetchone()
        assert passed
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            with db.transaction():
                db.execute("SELECT count(*) FROM rate_limit_buckets")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            with db.transaction():
                db.execute("DELETE FROM rate_limit_buckets")


def test_the_openapi_document_lists_the_headers(client):
    document = client.get("/schema/openapi.json").json()
    components = document["components"]["headers"]
    for name in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"):
        assert components[name]["schema"]["type"] == "integer"
        assert components[name]["required"] is False  # absent when the key's limit is off
    responses = document["paths"]["/v2/stats/storage"]["get"]["responses"]
    for status in ("200", "400", "403", "429"):
        assert {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(
            responses[status]["headers"]), status
    assert "Retry-After" in responses["429"]["headers"]
    assert not any(h.startswith("RateLimit") for h in responses["401"]["headers"])
