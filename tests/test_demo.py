"""The demo dataset: loaded into the session database, then checked against an independent
regeneration, the database itself and the ingest validator.

The session database is shared with other tests, so every query is scoped to the orgs
this module's load created (unique name prefix).
"""

from __future__ import annotations

import io
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from domains import DOMAINS
from stats_gateway.core.ingest import validate_events
from stats_gateway.demo.generate import allocate, generate
from stats_gateway.demo.load import Progress, load_dataset, prepare_database
from stats_gateway.demo.report import curl_examples, summary_table

EVENTS = 20_000
TABLES = {d.name: d.table for d in DOMAINS}


@pytest.fixture(scope="module")
def demo(db):
    now = datetime.now(UTC)
    prefix = f"demo-{uuid.uuid4().hex[:8]}-"
    orgs = load_dataset(db, events=EVENTS, now=now, org_prefix=prefix)
    return now, orgs


@pytest.fixture(scope="module")
def chunks(demo):
    """The same dataset regenerated here, independently of what the loader reports."""
    now, _ = demo
    return list(generate(EVENTS, now))


@pytest.fixture(scope="module")
def org_ids(demo):
    _, orgs = demo
    return {o.org.key: o.id for o in orgs}


def count_by_org(db, table: str, org_ids: dict[str, str], where: str = "TRUE") -> dict:
    rows = db.execute(f"SELECT org_id::text, count(*) FROM {table} WHERE org_id = ANY(%s) "
                      f"AND {where} GROUP BY 1", (list(org_ids.values()),)).fetchall()
    return dict(rows)


def test_tables_hold_exactly_the_generated_events(db, chunks, org_ids):
    generated = Counter()
    for chunk in chunks:
        generated[(org_ids[chunk.org.key], chunk.domain.name)] += len(chunk)
    assert sum(generated.values()) == EVENTS
    stored = Counter()
    for name, table in TABLES.items():
        for org_id, n in count_by_org(db, table, org_ids).items():
            stored[(org_id, name)] = n
    assert stored == generated


def test_three_orgs_of_clearly_different_sizes_use_every_domain(db, org_ids):
    assert len(org_ids) >= 3
    totals = Counter()
    for table in TABLES.values():
        per_org = count_by_org(db, table, org_ids)
        assert set(per_org) == set(org_ids.values()), f"{table} lacks an org"
        totals.update(per_org)
    big, medium, small = sorted(totals.values(), reverse=True)[:3]
    assert big > 2 * medium and medium > 2 * small


def test_times_lie_within_the_last_365_days(db, demo, org_ids):
    now, _ = demo
    for table in TABLES.values():
        first, last = db.execute(f"SELECT min(ts), max(ts) FROM {table} WHERE org_id = ANY(%s)",
                                 (list(org_ids.values()),)).fetchone()
        assert now - timedelta(days=365) <= first and last <= now, table


def test_severity_goes_with_violations_only(db, org_ids):
    bad = count_by_org(db, "events_policies", org_ids,
                       "(action = 'none') <> (severity IS NULL)")
    assert bad == {}
    violations = count_by_org(db, "events_policies", org_ids, "action <> 'none'")
    evaluations = count_by_org(db, "events_policies", org_ids)
    assert 0 < sum(violations.values()) < 0.1 * sum(evaluations.values())


def test_credit_amounts_are_exact_with_at_most_six_decimals(db, chunks, org_ids):
    generated = Counter()
    for chunk in chunks:
        if chunk.domain.name == "credits":
            for amount in chunk.columns["amount"]:
                assert isinstance(amount, Decimal) and amount >= 0
                assert amount.as_tuple().exponent >= -6
            generated[org_ids[chunk.org.key]] += sum(chunk.columns["amount"])
    stored = dict(db.execute(
        "SELECT org_id::text, sum(amount) FROM events_credits WHERE org_id = ANY(%s) "
        "GROUP BY 1", (list(org_ids.values()),)).fetchall())
    assert stored == generated
    kinds = {k for (k,) in db.execute("SELECT DISTINCT kind FROM events_credits "
                                      "WHERE org_id = ANY(%s)", (list(org_ids.values()),))}
    assert kinds == {"ai", "storage", "purchase", "grant"}


def test_each_repo_belongs_to_exactly_one_workspace(db, org_ids):
    union = " UNION ALL ".join(f"SELECT org_id, repo_id, workspace_id FROM {d.table}"
                               for d in DOMAINS)
    rows = db.execute(
        f"SELECT org_id, repo_id, count(DISTINCT workspace_id), bool_or(workspace_id IS NULL) "
        f"FROM ({union}) e WHERE org_id = ANY(%s) AND repo_id IS NOT NULL GROUP BY 1, 2",
        (list(org_ids.values()),)).fetchall()
    assert rows and all(n == 1 and not missing for _, _, n, missing in rows)
    mismatched = db.execute(
        f"SELECT count(*) FROM ({union}) e JOIN entities r ON r.org_id = e.org_id "
        f"AND r.kind = 'repo' AND r.id = e.repo_id "
        f"WHERE e.org_id = ANY(%s) AND r.parent_id IS DISTINCT FROM e.workspace_id",
        (list(org_ids.values()),)).fetchone()[0]
    assert mismatched == 0


def test_every_workspace_and_repo_in_events_has_a_name(db, org_ids):
    for kind, column in (("workspace", "workspace_id"), ("repo", "repo_id")):
        union = " UNION ".join(f"SELECT org_id, {column} AS id FROM {d.table}" for d in DOMAINS)
        unnamed = db.execute(
            f"SELECT e.org_id, e.id FROM ({union}) e LEFT JOIN entities n ON n.org_id = "
            f"e.org_id AND n.kind = %s AND n.id = e.id WHERE e.org_id = ANY(%s) "
            f"AND e.id IS NOT NULL AND n.name IS NULL", (kind, list(org_ids.values()))).fetchall()
        assert unnamed == []


def as_event(chunk, i: int) -> dict:
    """Row ``i`` of a chunk as the JSON event a client would have sent (numbers as the
    decoder gives them: floats arrive as Decimal)."""
    event = {"eventId": chunk.columns["event_id"][i],
             "ts": chunk.columns["ts"][i].isoformat()}
    for f in chunk.domain.stored_fields:
        value = chunk.columns.get(f.column, [None] * len(chunk))[i]
        if value is not None:
            event[f.name] = Decimal(repr(value)) if isinstance(value, float) else value
    return event


def test_every_generated_event_passes_ingest_validation(chunks, demo):
    now, _ = demo
    for chunk in chunks:
        events = [as_event(chunk, i) for i in range(len(chunk))]
        assert len(validate_events(chunk.domain, events, now)) == len(events)


def test_generation_is_reproducible_and_allocation_exact():
    now = datetime(2026, 1, 15, 12, tzinfo=UTC)
    first, second = list(generate(3_000, now)), list(generate(3_000, now))
    assert [c.columns for c in first] == [c.columns for c in second]
    for events in (1, 7, 999, 20_001):
        assert sum(allocate(events).values()) == events


def test_stats_total_matches_sql_count(client, db, demo):
    now, orgs = demo
    big = orgs[0]
    end = int(now.timestamp())
    start = end - 30 * 86_400
    headers = {"Authorization": f"Bearer {big.key}"}
    for name, params in (("ai", {"scope": "org"}),
                         ("storage", {"scope": "workspace", "id": big.org.workspaces[0].id})):
        response = client.get(f"/v2/stats/{name}", params={**params, "start": start, "end": end},
                              headers=headers)
        assert response.status_code == 200, response.text
        scope = "AND workspace_id = %(ws)s" if params["scope"] == "workspace" else ""
        (expected,) = db.execute(
            f"SELECT count(*) FROM {TABLES[name]} WHERE org_id = %(org)s "
            f"AND ts >= to_timestamp(%(start)s) AND ts < to_timestamp(%(end)s) {scope}",
            {"org": big.id, "start": start, "end": end, "ws": params.get("id")}).fetchone()
        assert expected > 0
        assert response.json()["summary"]["total"] == expected


def test_breakdowns_show_entity_names(client, demo):
    _, orgs = demo
    response = client.get("/v2/stats/ai/breakdown/workspaces",
                          params={"scope": "org", "window": "365d"},
                          headers={"Authorization": f"Bearer {orgs[0].key}"})
    assert response.status_code == 200, response.text
    entities = response.json()["entities"]
    names = {ws.id: ws.name for ws in orgs[0].org.workspaces}
    assert entities and {e["entityId"]: e["entityName"] for e in entities} == names


def test_prepare_database_recreates_a_migrated_database(server_url):
    name = f"sg_demo_{uuid.uuid4().hex[:10]}"
    try:
        url = prepare_database(server_url, name)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO orgs (id, name) VALUES (%s, 'leftover')", (uuid.uuid4(),))
            prepare_database(server_url, name)  # FORCE: even with this session still open
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM orgs").fetchone() == (0,)
            tables = {t for (t,) in conn.execute("SELECT tablename FROM pg_tables")}
            assert set(TABLES.values()) <= tables
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_report_lists_every_org_and_usable_examples(demo):
    _, orgs = demo
    table = summary_table(orgs, 1.5)
    assert all(o.name in table for o in orgs) and f"{EVENTS:,}" in table
    lines = curl_examples(orgs[0], "http://127.0.0.1:8000")
    assert len(lines) >= 6 and any("-X POST" in line for line in lines)
    assert any(f"id={orgs[0].org.workspaces[0].id}" in line for line in lines)


def test_progress_bar_writes_one_final_line_off_a_terminal():
    out = io.StringIO()
    bar = Progress(100, out)
    bar.advance(40)
    bar.advance(60)
    bar.finish()
    assert out.getvalue().count("\n") == 1 and "100%" in out.getvalue()
