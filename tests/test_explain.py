"""``StatsEngine.explain`` (core/explain.py): ``?explain=true`` for admin keys and
``stats-gateway explain <url>``. The explanation must be what the engine really runs:
checked against the statements a real request sends, and by running the explained SQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from conftest import Org
from stats_gateway.auth import create_key
from stats_gateway.cli import main
from stats_gateway.core.engine import StatsEngine
from stats_gateway.core.query import QueryBody
from support import assert_problem, generate, ingest, random_times

NOW = datetime(2026, 5, 17, 13, 27, 41, tzinfo=UTC)
SERIES = "/v2/stats/storage"
SERIES_PARAMS = {"scope": "org", "window": "7d", "timeBucketSize": "1h"}


@pytest.fixture(scope="module")
def orgs(db, client):
    """Two orgs with storage events over the last 8 days (the first has an admin key)."""
    made = []
    for seed in (1, 2):
        org = Org(db, f"org-{uuid.uuid4().hex[:10]}")
        org.admin = {"Authorization": "Bearer " + create_key(
            db, org.id, read=False, ingest=False, admin=True)}
        now = datetime.now(UTC)
        times = random_times(seed, now - timedelta(days=8), now, 400)
        ingest(client, org, "storage", generate("storage", seed, times, f"x{seed}-"))
        made.append(org)
    return made


def _explain(client, headers, path=SERIES, params=SERIES_PARAMS, status=200):
    r = client.get(path, headers=headers, params={**params, "explain": "true"})
    assert r.status_code == status, r.text
    return r


def test_admin_key_gets_the_plan_and_no_rows(client, orgs):
    org, other = orgs

    def real_range() -> tuple[int, int]:
        meta = client.get(SERIES, headers=org.headers, params=SERIES_PARAMS).json()["meta"]
        return meta["start"], meta["end"]

    # the window ends at the request's second: the explained range is that of a request
    # sent just before or just after it
    before = real_range()
    r = _explain(client, org.admin)
    ranges = {before, real_range()}
    body = r.json()
    assert body["success"] is True and "series" not in body
    queries = body["explain"]["queries"]
    assert [q["purpose"] for q in queries] == ["series metrics", "percentiles"]
    for q in queries:
        segments = q["segments"]
        # the segments tile the request's range, edge to edge, in order
        assert (datetime.fromisoformat(segments[0]["start"]).timestamp(),
                datetime.fromisoformat(segments[-1]["end"]).timestamp()) in ranges
        assert all(a["end"] == b["start"] for a, b in zip(segments, segments[1:]))
        assert {s["source"] for s in segments} <= {"raw", "rollup"}
        assert q["params"]["org"] == org.id
    # an hourly series over 7 days reads hourly (or finer, at the edges) rollup slots
    inner = [s for s in queries[0]["segments"] if s["source"] == "rollup"]
    assert inner and {s["grain"] for s in inner} <= {"5m", "1h"}
    # the caller's own org only: nothing of the other org, not even its id
    assert other.id not in r.text


def test_explain_needs_an_admin_key(client, orgs):
    org, _ = orgs
    problem = assert_problem(_explain(client, org.headers, status=403), 403, "forbidden")
    assert "admin" in problem["message"]
    assert_problem(client.get(SERIES, headers=org.headers,
                              params={**SERIES_PARAMS, "explain": "yes"}), 400)
    # explain=false is the plain answer, for a read key
    plain = client.get(SERIES, headers=org.headers, params={**SERIES_PARAMS, "explain": "false"})
    assert plain.status_code == 200 and "series" in plain.json()


def test_explain_checks_scope_and_parameters_as_the_request_does(client, orgs):
    org, other = orgs
    params = {**SERIES_PARAMS, "scope": "workspace", "id": "no-such-workspace"}
    assert_problem(_explain(client, org.admin, params=params, status=404), 404, "not_found")
    assert_problem(_explain(client, org.admin, params={"scope": "org", "window": "9y"},
                            status=400), 400)


def test_breakdown_and_query_explain(client, orgs):
    org, _ = orgs
    r = _explain(client, org.admin, "/v2/stats/storage/breakdown/buckets",
                 {"scope": "org", "window": "7d", "timeBucketSize": "1d",
                  "includeSeries": "true"})
    purposes = [q["purpose"] for q in r.json()["explain"]["queries"]]
    assert purposes[0] == "breakdown page" and "page series" in purposes
    q = client.post("/v2/query/storage", headers=org.admin, params={"explain": "true"},
                    json={"metrics": ["requests"], "groupBy": ["buckets"], "window": "7d"})
    assert q.status_code == 200, q.text
    assert [x["purpose"] for x in q.json()["explain"]["queries"]] == ["query page"]
    assert "rows" not in q.json()
    denied = client.post("/v2/query/storage", headers=org.headers, params={"explain": "true"},
                         json={"metrics": ["requests"], "window": "7d"})
    assert_problem(denied, 403, "forbidden")


def test_a_window_s_open_slot_and_its_stand_ins_are_explained(client, orgs):
    """A window's tail read from one open slot shows it with its condition ("none" of the
    org's events after the range's end, up to the slot's end), and the segments standing
    in for it ("some"): each set tiles the tail, the unconditional ones the rest."""
    org, _ = orgs
    r = _explain(client, org.admin, "/v2/stats/storage/breakdown/buckets",
                 {"scope": "org", "window": "30d"})
    page = r.json()["explain"]["queries"][0]
    segments = page["segments"]
    always = [s for s in segments if s["readIfEvents"] is None]
    opened = [s for s in segments if s["readIfEvents"] == "none"]
    stand_ins = [s for s in segments if s["readIfEvents"] == "some"]
    assert len(opened) == 1 and stand_ins and len(always) + 1 + len(stand_ins) == len(
        segments)
    slot = opened[0]
    assert slot["source"] == "rollup" and slot["grain"] in ("1d", "7d")
    assert always[-1]["end"] == slot["start"] == stand_ins[0]["start"]
    assert slot["end"] == stand_ins[-1]["end"] == slot["readIfEventsAfter"]
    assert all(a["end"] == b["start"] for a, b in zip(stand_ins, stand_ins[1:]))
    assert slot["readIfEventsUntil"] > slot["end"]
    assert {s["readIfEventsUntil"] for s in stand_ins} == {slot["readIfEventsUntil"]}
    assert page["params"]["guard_until"] == slot["readIfEventsUntil"]
    assert all(s["readIfEventsAfter"] is None for s in always)


class _Logged(StatsEngine):
    """The real engine, noting every statement it runs."""

    def __init__(self, engine: StatsEngine):
        super().__init__(engine.db, list(engine.domains.values()),
                         use_rollups=engine.use_rollups)
        self.ran = []

    async def _fetch(self, org_id, sql):
        self.ran.append(sql)
        return await super()._fetch(org_id, sql)


@pytest.mark.parametrize("ask", ["series", "query"])
def test_explained_statements_are_the_ones_that_run(client, orgs, ask):
    """Same texts and values as a real request's (none run by explain), and running the
    explained statement gives the real request's rows."""
    org, _ = orgs
    engine = client.app.state.engine
    params = {k: [v] for k, v in SERIES_PARAMS.items()}
    now = datetime.now(UTC)
    body = QueryBody(metrics=["requests", "uplBytes"], group_by=["buckets"], window="7d",
                     time_bucket_size="1d")

    def answer(e):
        if ask == "series":
            return e.series(org.id, "storage", "", params, now)
        return e.query(org.id, "storage", body, now=now)

    logged = _Logged(engine)
    client.blocking_portal.call(answer, logged)
    explained = client.blocking_portal.call(engine.explain, org.id, answer)
    texts = sorted(q.sql for q in explained.queries)
    assert texts == sorted(sql.text for sql in logged.ran)
    ran = {sql.text: sql for sql in logged.ran}
    for q in explained.queries:
        sql = ran[q.sql]
        assert q.params["org"] == org.id and set(q.params) == set(sql.params)
        assert [(s.start, s.end) for s in q.segments] == [
            (s.start.isoformat(), s.end.isoformat()) for s in sql.segments]
        rows = client.blocking_portal.call(StatsEngine._fetch, engine, org.id, sql)
        assert rows, "the org has events in range: the statement finds rows"


def test_rollup_tables_named_in_a_plan_exist(client, db, orgs):
    org, _ = orgs
    queries = _explain(client, org.admin).json()["explain"]["queries"]
    tables = {s["table"] for q in queries for s in q["segments"]}
    existing = {r[0] for r in db.execute(
        "SELECT tablename FROM pg_tables WHERE tablename = ANY(%s)", (list(tables),))}
    assert tables == existing and "events_storage" in tables


def test_cli_explain(database_url, orgs, monkeypatch, capsys):
    org, other = orgs
    monkeypatch.setenv("STATS_GATEWAY_DATABASE_URL", database_url)
    assert main(["explain", f"{SERIES}?scope=org&window=30d&timeBucketSize=1h",
                 "--org", org.id]) == 0
    out = capsys.readouterr().out
    assert "-- 1. series metrics" in out and "-- 2. percentiles" in out
    assert "ru_storage_org_1h_" in out and "rh_storage_org_1h_" in out and "SELECT" in out
    assert other.id not in out
    assert main(["explain", "/v2/query/storage", "--org", org.id, "--json", "--body",
                 '{"metrics": ["requests"], "groupBy": ["buckets"], "window": "7d"}']) == 0
    assert '"purpose": "query page"' in capsys.readouterr().out
    assert main(["explain", "/v2/nothing", "--org", org.id]) == 2
    assert "cannot explain" in capsys.readouterr().err
    assert main(["explain", SERIES + "?window=30d", "--org", "no-such-org"]) == 2
