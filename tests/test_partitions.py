"""Monthly partitions of the event tables: converting an existing table keeps every event,
eventId idempotency holds across partitions, and no ingest fails for want of one."""

from __future__ import annotations

import io
import random
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import psycopg
import pytest

from conftest import throwaway_database
from domains import DOMAINS
from domains.private_chat import DOMAIN as CHAT
from stats_gateway.auth import ensure_org
from stats_gateway.bulk.load import load_events
from stats_gateway.bulk.sources import read_records
from stats_gateway.db.migrate import migrate
from stats_gateway.db.partitions import existing_months, maintain_partitions
from stats_gateway.db.schema import ledger_table
from support import post_events

NOW = datetime.now(UTC)


def legacy_ddl(table: str) -> str:
    """The private-chat table as it was before partitioning (one plain table, ids unique)."""
    return f"""
        CREATE TABLE {table} (
            org_id uuid NOT NULL, event_id text NOT NULL, ts timestamptz NOT NULL,
            workspace_id text, repo_id text, api_key_id text, model text, user_id text,
            ai_llm_id text, conversation_id text, tokens_in bigint, tokens_out bigint,
            PRIMARY KEY (org_id, event_id));
        CREATE INDEX {table}_org_ts ON {table} (org_id, ts);"""


FINGERPRINT = """
    SELECT count(*), count(DISTINCT (org_id, event_id)), sum(tokens_in), sum(tokens_out),
           sum(extract(epoch FROM ts)), count(DISTINCT user_id),
           md5(string_agg(org_id || event_id || ts::text || coalesce(model, '')
                          || coalesce(tokens_in::text, '-'), ',' ORDER BY org_id, event_id))
    FROM {table}"""


@pytest.fixture
def fresh(server_url):
    with throwaway_database(server_url, "sg_part") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            yield conn


def test_converting_a_plain_event_table_keeps_every_event(fresh):
    migrate(fresh, DOMAINS)
    table = CHAT.table
    fresh.execute(f"DROP TABLE {table}, {ledger_table(CHAT)}")
    fresh.execute(legacy_ddl(table))
    orgs = [ensure_org(fresh, f"legacy-{i}") for i in range(3)]
    rng = random.Random(7)
    rows = [(rng.choice(orgs), f"e{i}", NOW - timedelta(seconds=rng.randrange(3 * 365 * 86400)),
             rng.choice(["gpt-4o", "claude", None]), f"u{rng.randrange(50)}",
             rng.choice([None, rng.randrange(10_000)]), rng.randrange(10_000))
            for i in range(5000)]
    with fresh.cursor() as cur:
        cur.executemany(f"INSERT INTO {table} (org_id, event_id, ts, model, user_id, "
                        "tokens_in, tokens_out) VALUES (%s, %s, %s, %s, %s, %s, %s)", rows)
    before = fresh.execute(FINGERPRINT.format(table=table)).fetchone()
    assert before[0] == 5000
    migrate(fresh, DOMAINS)  # start-up converts it
    (kind,) = fresh.execute("SELECT relkind FROM pg_class WHERE relname = %s",
                            (table,)).fetchone()
    assert kind == "p"
    assert fresh.execute(FINGERPRINT.format(table=table)).fetchone() == before
    (ledger,) = fresh.execute(f"SELECT count(*) FROM {ledger_table(CHAT)}").fetchone()
    assert ledger == 5000
    months = {datetime(t.year, t.month, 1, tzinfo=UTC) for _, _, t, *_ in rows}
    assert months <= set(existing_months(fresh, CHAT))  # each month its own partition
    (in_default,) = fresh.execute(f"SELECT count(*) FROM {table}_pdefault").fetchone()
    assert in_default == 0
    assert migrate(fresh, DOMAINS) == []  # and it is done once
    # an old id sent again, at another time, is still a duplicate
    org_id, event_id = rows[0][0], rows[0][1]
    line = msgspec.json.encode({"eventId": event_id, "ts": NOW.isoformat(), "model": "x",
                                "userId": "u1"})
    report = load_events(fresh, CHAT, org_id, read_records(io.BytesIO(line + b"\n"),
                                                           "ndjson", CHAT))
    assert report.inserted == 0 and report.duplicates == 1


def test_a_resent_event_id_counts_once_whatever_its_ts(client, new_org, db):
    org = new_org()
    first = NOW - timedelta(days=40)
    event = {"eventId": "same", "ts": first.isoformat(), "model": "gpt-4o", "userId": "u1",
             "tokensIn": 3}
    assert post_events(client, org.headers, "private-chat", [event]).json()["inserted"] == 1
    moved = {**event, "ts": (NOW - timedelta(minutes=5)).isoformat(), "tokensIn": 1000}
    twice = {**event, "eventId": "twice"}
    r = post_events(client, org.headers, "private-chat", [moved, twice, {**twice, "tokensIn": 9}])
    assert r.json() | {"success": True} == {"success": True, "domain": "private-chat",
                                            "received": 3, "inserted": 1, "duplicates": 2}
    stored = db.execute(f"SELECT event_id, ts, tokens_in FROM {CHAT.table} WHERE org_id = %s "
                        "ORDER BY event_id", (org.id,)).fetchall()
    assert stored == [("same", first, 3), ("twice", first, 3)]  # the first copy wins
    window = {"scope": "org", "window": "90d"}
    body = client.get("/v2/stats/private-chat", params=window, headers=org.headers).json()
    assert body["summary"]["total"] == 2


def test_an_event_in_a_month_without_a_partition_lands_in_default_then_gets_one(fresh):
    migrate(fresh, DOMAINS)
    org_id = ensure_org(fresh, "old-months")
    old = datetime(2019, 5, 17, 8, 30, tzinfo=UTC)
    assert datetime(2019, 5, 1, tzinfo=UTC) not in existing_months(fresh, CHAT)
    line = msgspec.json.encode({"eventId": f"old-{uuid.uuid4()}", "ts": old.isoformat(),
                                "model": "x", "userId": "u1", "tokensIn": 4})
    report = load_events(fresh, CHAT, org_id, read_records(io.BytesIO(line + b"\n"),
                                                           "ndjson", CHAT))
    assert report.inserted == 1
    (in_default,) = fresh.execute(f"SELECT count(*) FROM {CHAT.table}_pdefault").fetchone()
    assert in_default == 1
    with fresh.transaction():
        made = maintain_partitions(fresh, CHAT, NOW)
    assert datetime(2019, 5, 1, tzinfo=UTC) in made
    assert fresh.execute(f"SELECT ts, tokens_in FROM {CHAT.table}_p2019_05").fetchall() == [
        (old, 4)]
    (in_default,) = fresh.execute(f"SELECT count(*) FROM {CHAT.table}_pdefault").fetchone()
    assert in_default == 0


def test_a_time_range_reads_only_its_months(fresh):
    migrate(fresh, DOMAINS)
    now_month = datetime(NOW.year, NOW.month, 1, tzinfo=UTC)
    plan = fresh.execute(
        f"EXPLAIN SELECT count(*) FROM {CHAT.table} WHERE org_id = %s "
        "AND ts >= %s AND ts < %s", (str(uuid.uuid4()), now_month + timedelta(days=1),
                                     now_month + timedelta(days=2))).fetchall()
    text = "\n".join(line for (line,) in plan)
    month = f"{CHAT.table}_p{now_month.year:04d}_{now_month.month:02d}"
    assert month in text
    assert text.count(f" on {CHAT.table}_p") == 1, text  # no other month, not DEFAULT


def test_events_copied_in_without_ingest_join_the_ledger_at_rebuild(fresh):
    """The demo and the benchmark COPY events straight into the table, then rebuild the
    derived data: the ledger is derived data too, so their ids are duplicates afterwards."""
    from stats_gateway.core.rollup_sql import rebuild_rollups

    migrate(fresh, DOMAINS)
    org_id = ensure_org(fresh, "copied")
    fresh.execute(f"INSERT INTO {CHAT.table} (org_id, event_id, ts, model, user_id) "
                  "VALUES (%s, 'c1', %s, 'x', 'u1')", (org_id, NOW - timedelta(days=2)))
    rebuild_rollups(fresh, CHAT, org_id)
    line = msgspec.json.encode({"eventId": "c1", "ts": NOW.isoformat(), "model": "x",
                                "userId": "u1"})
    report = load_events(fresh, CHAT, org_id, read_records(io.BytesIO(line + b"\n"),
                                                           "ndjson", CHAT))
    assert report.inserted == 0 and report.duplicates == 1


def test_one_users_raw_events_are_read_through_its_index(client, new_org, db):
    """``userId`` with ``breakdown/models`` reads raw events (no cube holds both columns):
    through the (org_id, user_id, ts) index every pinned high-cardinality column has
    (``schema.entity_lookup_columns``), so only that user's events, not every event of
    the org in the range. The answer is that user's events per model."""
    from stats_gateway.core.engine import StatsEngine
    from stats_gateway.db.schema import entity_lookup_columns
    from support import ingest

    assert entity_lookup_columns(CHAT) == ("user_id",)
    org = new_org()
    rng = random.Random(5)
    events = [{"eventId": f"ix-{i}", "ts": (NOW - timedelta(seconds=rng.randrange(20 * 86_400)))
               .isoformat(), "model": f"m{i % 3}", "userId": f"u{i % 100}", "tokensIn": 1}
              for i in range(3000)]
    ingest(client, org, "private-chat", events)
    db.execute(f"ANALYZE {CHAT.table}")

    class Logged(StatsEngine):
        ran: list = []

        async def _fetch(self, org_id, sql):
            self.ran.append(sql)
            return await super()._fetch(org_id, sql)

    engine = client.app.state.engine
    logged = Logged(engine.db, list(engine.domains.values()))
    params = {"scope": ["org"], "window": ["30d"], "userId": ["u7"]}
    body = client.blocking_portal.call(logged.breakdown, org.id, "private-chat", "models", params)
    mine = [e["model"] for e in events if e["userId"] == "u7"]
    assert [(e.entityId, e.totals.requests) for e in body.entities] == sorted(
        ((m, mine.count(m)) for m in set(mine)), key=lambda p: (-p[1], p[0]))
    page = next(sql for sql in Logged.ran if sql.purpose == "breakdown page")
    plan = "\n".join(r[0] for r in db.execute("EXPLAIN " + page.text, page.params).fetchall())
    assert "user_id_ts" in plan and "org_id_ts_idx" not in plan, plan
