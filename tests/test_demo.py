"""The demo dataset: loaded into the session database, then checked against an independent
regeneration, the database itself and the ingest validator.

The session database is shared with other tests, so every query is scoped to the orgs
this module's load created (unique name prefix).
"""

from __future__ import annotations

import base64
import io
import shlex
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from domains import DOMAINS
from stats_gateway.core.domain import FieldType
from stats_gateway.core.ingest import validate_events
from stats_gateway.demo.generate import allocate, generate
from stats_gateway.demo.load import Progress, load_dataset, prepare_database
from stats_gateway.demo.report import curl_examples, summary_table
from stats_gateway.demo.world import ORGS, RUN_TARGETS

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


def test_each_month_of_history_lands_in_its_own_partition(db, chunks, org_ids):
    """The loader makes the history's month partitions before its COPY: none of the demo's
    events waits in DEFAULT, and each month partition holds exactly that month's events."""
    generated = Counter()
    for chunk in chunks:
        for ts in chunk.columns["ts"]:
            month = ts.astimezone(UTC).strftime("%Y_%m")
            generated[(chunk.domain.table, month)] += 1
    stored = Counter()
    for table in TABLES.values():
        rows = db.execute(f"SELECT tableoid::regclass::text, count(*) FROM {table} "
                          "WHERE org_id = ANY(%s) GROUP BY 1",
                          (list(org_ids.values()),)).fetchall()
        for partition, n in rows:
            assert partition.startswith(f"{table}_p"), partition  # not {table}_default
            stored[(table, partition.removeprefix(f"{table}_p"))] += n
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


def test_every_catalogued_id_in_events_has_a_name(db, org_ids):
    """Every id field with a ``names_kind`` (workspace, repo, bucket, node, user, rule, AI
    configuration) of every domain names each of its ids in the entity catalogue."""
    kinds: dict[str, list[str]] = {}
    for d in DOMAINS:
        for f in d.all_fields:
            if f.names_kind:
                kinds.setdefault(f.names_kind, []).append(
                    f"SELECT org_id, {f.column} AS id FROM {d.table}")
    assert {"workspace", "repo", "bucket", "node", "user", "rule", "aiConfig"} <= set(kinds)
    for kind, selects in kinds.items():
        union = " UNION ".join(selects)
        unnamed = db.execute(
            f"SELECT e.org_id, e.id FROM ({union}) e LEFT JOIN entities n ON n.org_id = "
            f"e.org_id AND n.kind = %s AND n.id = e.id WHERE e.org_id = ANY(%s) "
            f"AND e.id IS NOT NULL AND n.name IS NULL", (kind, list(org_ids.values()))).fetchall()
        assert unnamed == [], kind


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


# --- the newer domains -------------------------------------------------------------------


def fields_of(*types):
    """(domain, stored fields of those types) for every domain that has some."""
    return [(d, fs) for d in DOMAINS if (fs := [f for f in d.stored_fields if f.type in types])]


def test_decimal_columns_are_exact_in_every_domain(db, chunks, org_ids):
    decimals = fields_of(FieldType.DECIMAL)
    assert {d.name for d, _ in decimals} >= {"credits", "runs", "model-usage", "workflow-cu",
                                            "call-usage"}
    for domain, fields in decimals:
        generated = Counter()
        for chunk in chunks:
            if chunk.domain is domain:
                for f in fields:
                    for value in chunk.columns[f.column]:
                        assert isinstance(value, Decimal) and value >= 0, (domain.name, value)
                        assert value.as_tuple().exponent >= -6
                    generated[(org_ids[chunk.org.key], f.column)] += sum(chunk.columns[f.column])
        sums = ", ".join(f"sum({f.column})" for f in fields)
        for org_id, *stored in db.execute(
                f"SELECT org_id::text, {sums} FROM {domain.table} WHERE org_id = ANY(%s) "
                "GROUP BY 1", (list(org_ids.values()),)):
            assert stored == [generated[(org_id, f.column)] for f in fields], domain.name


def test_list_and_boolean_columns_survive_copy(db, chunks, org_ids):
    """text[] and boolean columns hold exactly the generated values (binary COPY)."""
    for domain, fields in fields_of(FieldType.TEXT_LIST, FieldType.BOOL):
        generated = {}
        for chunk in chunks:
            if chunk.domain is domain:
                for i, event_id in enumerate(chunk.columns["event_id"]):
                    generated[(org_ids[chunk.org.key], event_id)] = tuple(
                        chunk.columns[f.column][i] for f in fields)
        columns = ", ".join(f.column for f in fields)
        stored = {(org_id, event_id): tuple(values) for org_id, event_id, *values in db.execute(
            f"SELECT org_id::text, event_id, {columns} FROM {domain.table} "
            "WHERE org_id = ANY(%s)", (list(org_ids.values()),))}
        assert stored == generated, domain.name
        lists = [v[k] for v in generated.values() for k, f in enumerate(fields)
                 if f.type is FieldType.TEXT_LIST]
        flags = [v[k] for v in generated.values() for k, f in enumerate(fields)
                 if f.type is FieldType.BOOL]
        assert not flags or (True in flags and False in flags), domain.name
        assert not lists or (None in lists and any(v and len(v) > 1 for v in lists))


CALL_COLUMNS = ("ts", "workspace_id", "op_name", "trace_id", "parent_id", "thread_id",
                "turn_id", "wb_user_id", "wb_run_id", "input_refs", "output_refs")


def test_call_usage_repeats_its_calls_fields(db, org_ids):
    orgs = list(org_ids.values())
    differs = " OR ".join(f"u.{c} IS DISTINCT FROM c.{c}" for c in CALL_COLUMNS)
    usage, orphans, mismatched = db.execute(
        f"SELECT count(*), count(*) FILTER (WHERE c.call_id IS NULL), "
        f"count(*) FILTER (WHERE c.call_id IS NOT NULL AND ({differs})) "
        f"FROM events_call_usage u LEFT JOIN events_calls c ON c.org_id = u.org_id "
        f"AND c.project_id = u.project_id AND c.call_id = u.call_id "
        f"WHERE u.org_id = ANY(%s)", (orgs,)).fetchone()
    assert usage > 0 and orphans == 0 and mismatched == 0
    calls_per_model_count = dict(db.execute(
        "SELECT n, count(*) FROM (SELECT count(*) AS n FROM events_call_usage "
        "WHERE org_id = ANY(%s) GROUP BY org_id, project_id, call_id) x GROUP BY n", (orgs,)))
    assert calls_per_model_count.get(1, 0) > calls_per_model_count.get(2, 0) > 0
    llm_ops = {s.op for o in ORGS for p in o.projects for s in p.steps if s.models}
    used_ops = {op for (op,) in db.execute(
        "SELECT DISTINCT op_name FROM events_call_usage WHERE org_id = ANY(%s)", (orgs,))}
    assert used_ops and used_ops <= llm_ops


def test_traces_have_one_root_and_its_children(db, org_ids):
    orgs = list(org_ids.values())
    roots = db.execute(
        "SELECT count(*) FILTER (WHERE roots <> 1), count(*) FROM (SELECT count(*) FILTER "
        "(WHERE parent_id IS NULL) AS roots FROM events_calls WHERE org_id = ANY(%s) "
        "GROUP BY org_id, trace_id) t", (orgs,)).fetchone()
    assert roots[0] == 0 and roots[1] > 0
    strays = db.execute(
        "SELECT count(*) FROM events_calls c LEFT JOIN events_calls r ON r.org_id = c.org_id "
        "AND r.call_id = c.parent_id AND r.trace_id = c.trace_id AND r.parent_id IS NULL "
        "AND r.ts <= c.ts WHERE c.org_id = ANY(%s) AND c.parent_id IS NOT NULL "
        "AND r.call_id IS NULL", (orgs,)).fetchone()[0]
    assert strays == 0
    calls, errors, threaded, in_runs = db.execute(
        "SELECT count(*), count(*) FILTER (WHERE error), count(*) FILTER (WHERE thread_id "
        "IS NOT NULL), count(*) FILTER (WHERE wb_run_id IS NOT NULL) FROM events_calls "
        "WHERE org_id = ANY(%s)", (orgs,)).fetchone()
    assert 0.005 < errors / calls < 0.05 and threaded > 0 and in_runs > 0


def test_new_domains_have_realistic_mixes(db, org_ids):
    orgs = list(org_ids.values())

    def shares(table: str, column: str) -> dict:
        rows = dict(db.execute(f"SELECT {column}::text, count(*) FROM {table} "
                               "WHERE org_id = ANY(%s) GROUP BY 1", (orgs,)).fetchall())
        return {k: n / sum(rows.values()) for k, n in rows.items()}

    assert shares("events_runs", "source")["api"] > 0.7
    assert set(shares("events_runs", "target_type")) == {"model", "flow", "comfyui"}
    assert shares("events_workflow_cu", "status")["succeeded"] > 0.85
    assert set(shares("events_workflow_cu", "trigger_type")) == {"api", "schedule", "webhook",
                                                                 "manual"}
    assert 0.1 < shares("events_model_usage", "billing")["user"] < 0.5
    shared_slugs = db.execute(
        "SELECT count(*) FROM (SELECT target_slug FROM events_runs WHERE org_id = ANY(%s) "
        "GROUP BY 1 HAVING count(DISTINCT target_type) > 1) s", (orgs,)).fetchone()[0]
    assert shared_slugs >= 1  # so targets need composite ids ("model:upscaler")


def test_renamed_target_shows_its_newest_name(client, db, demo):
    _, orgs = demo
    target = next(t for t in RUN_TARGETS.values() if t.old_name)
    owner = next(o for o in orgs if any(k == target.key for k, _ in o.org.run_targets))
    names = {n for (n,) in db.execute(
        "SELECT DISTINCT target_name FROM events_runs WHERE org_id = %s AND target_type = %s "
        "AND target_slug = %s", (owner.id, target.type, target.slug))}
    assert names == {target.name, target.old_name}
    response = client.get("/v2/stats/runs/breakdown/targets",
                          params={"scope": "org", "window": "365d", "limit": 500},
                          headers={"Authorization": f"Bearer {owner.key}"})
    assert response.status_code == 200, response.text
    entity = next(e for e in response.json()["entities"] if e["entityId"] == target.key)
    assert entity["entityName"] == target.name


def as_request(line: str, key: str) -> tuple[str, str, dict, str | None]:
    """(method, path and query, headers, body) of a printed curl line, with $KEY filled in."""
    words = shlex.split(line.replace("$KEY", key))
    method, headers, body, url = "GET", {}, None, None
    it = iter(words[1:])
    for word in it:
        if word == "-X":
            method = next(it)
        elif word == "-H":
            name, value = next(it).split(": ", 1)
            headers[name] = value
        elif word == "-u":
            headers["Authorization"] = "Basic " + base64.b64encode(next(it).encode()).decode()
        elif word == "-d":
            body = next(it)
        else:
            url = word
    return method, url.split("://", 1)[1].split("/", 1)[1], headers, body


def test_every_printed_example_answers_200(client, demo, new_org):
    """Each curl line the demo prints works against the loaded data (the ingest example
    posts into a fresh org, so the demo orgs keep exactly the generated events)."""
    _, orgs = demo
    lines = curl_examples(orgs[0], "http://127.0.0.1:8000")
    assert any("/v2/stats/runs/breakdown/targets" in line for line in lines)
    for line in lines:
        ingest = "/v2/ingest/" in line
        method, path, headers, body = as_request(line, new_org().key if ingest else orgs[0].key)
        response = client.request(method, "/" + path, headers=headers, content=body)
        assert response.status_code == 200, f"{line}\n{response.text}"
        assert response.json(), line
