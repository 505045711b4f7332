"""Migrations: idempotent, checksummed, edits refused, safe to run concurrently."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import threading
import uuid
from pathlib import Path

import psycopg
import pytest
from conftest import throwaway_database
import stats_gateway.db.migrate as migrate_module
from domains import BUILT_IN, DOMAINS
from stats_gateway.core.domain import EventField, FieldType
from stats_gateway.db.migrate import MigrationError, migrate

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"
SQL_FILES = sorted(p.name for p in SQL_DIR.glob("*.sql"))
DOMAIN_MIGRATIONS = [f"domain:{d.name}" for d in DOMAINS]
ALL = SQL_FILES + DOMAIN_MIGRATIONS


@pytest.fixture
def fresh_db(server_url):
    """A brand-new empty database; yields its URL and drops it afterwards."""
    with throwaway_database(server_url, "sg_mig") as url:
        yield url


def recorded(conn) -> dict[str, str]:
    return dict(conn.execute("SELECT name, checksum FROM schema_migrations").fetchall())


def tables(conn) -> set[str]:
    rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {r[0] for r in rows}


def test_expected_migration_files_exist():
    assert SQL_FILES, "no sql/*.sql files"
    # one migration per registered domain (the registry's order), every built-in one among them
    assert len(set(DOMAIN_MIGRATIONS)) == len(DOMAIN_MIGRATIONS) == len(DOMAINS)
    assert DOMAIN_MIGRATIONS[:len(BUILT_IN)] == [f"domain:{d.name}" for d in BUILT_IN]


def test_fresh_migrate_then_second_run_is_a_no_op(fresh_db):
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        assert migrate(conn, DOMAINS) == ALL
        before = conn.execute("SELECT name, checksum, applied_at FROM schema_migrations "
                              "ORDER BY name").fetchall()
        assert migrate(conn, DOMAINS) == []
        assert migrate(conn, DOMAINS) == []
        after = conn.execute("SELECT name, checksum, applied_at FROM schema_migrations "
                             "ORDER BY name").fetchall()
        assert after == before  # not even re-recorded
        assert {"orgs", "api_keys", "entities", "schema_migrations",
                *(d.table for d in DOMAINS)} <= tables(conn)


def test_the_app_database_is_already_up_to_date(db):
    assert migrate(db, DOMAINS) == []


def test_checksums_are_recorded(fresh_db):
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        migrate(conn, DOMAINS)
        rows = recorded(conn)
        assert set(rows) == set(ALL)
        for name in SQL_FILES:
            raw = (SQL_DIR / name).read_bytes()
            assert rows[name] == hashlib.sha256(raw).hexdigest(), name
        for name in DOMAIN_MIGRATIONS:
            assert len(rows[name]) == 64 and int(rows[name], 16) >= 0
        assert len(set(rows[n] for n in DOMAIN_MIGRATIONS)) == len(DOMAIN_MIGRATIONS)
        (missing,) = conn.execute(
            "SELECT count(*) FROM schema_migrations WHERE applied_at IS NULL").fetchone()
        assert missing == 0


def _use_sql_dir(monkeypatch, directory: Path) -> None:
    original = migrate_module.planned_migrations

    def planned(domains, sql_dir=directory):
        return original(domains, directory)

    monkeypatch.setattr(migrate_module, "SQL_DIR", directory)
    monkeypatch.setattr(migrate_module, "planned_migrations", planned)


def test_an_edited_applied_file_is_refused_and_nothing_changes(fresh_db, tmp_path, monkeypatch):
    copy = tmp_path / "sql"
    shutil.copytree(SQL_DIR, copy)
    _use_sql_dir(monkeypatch, copy)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        assert migrate(conn, DOMAINS) == ALL
        before = recorded(conn)
        first = copy / SQL_FILES[0]
        first.write_text(first.read_text() + "\n-- an innocent-looking edit\n")
        # a new file sorted before the edited one: must not survive the refusal
        (copy / "0000_new.sql").write_text("CREATE TABLE applied_before_refusal (x int);\n")
        with pytest.raises(MigrationError) as info:
            migrate(conn, DOMAINS)
        assert SQL_FILES[0] in str(info.value)
        assert recorded(conn) == before
        assert "applied_before_refusal" not in tables(conn)
        with pytest.raises(MigrationError):  # still refused on a retry
            migrate(conn, DOMAINS)


def test_a_new_file_is_applied_once(fresh_db, tmp_path, monkeypatch):
    copy = tmp_path / "sql"
    shutil.copytree(SQL_DIR, copy)
    _use_sql_dir(monkeypatch, copy)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        assert migrate(conn, DOMAINS) == ALL
        text = "CREATE TABLE added_later (id int PRIMARY KEY);\n"
        (copy / "9999_added_later.sql").write_text(text)
        assert migrate(conn, DOMAINS) == ["9999_added_later.sql"]
        assert "added_later" in tables(conn)
        assert recorded(conn)["9999_added_later.sql"] == hashlib.sha256(text.encode()).hexdigest()
        assert migrate(conn, DOMAINS) == []


def test_a_domain_that_gains_a_field_gains_a_column(fresh_db):
    storage = next(d for d in DOMAINS if d.name == "storage")
    extra = EventField(name="region", column="region", type=FieldType.TEXT, doc="test")
    grown = dataclasses.replace(storage, fields=storage.fields + (extra,))
    domains = tuple(grown if d is storage else d for d in DOMAINS)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        migrate(conn, DOMAINS)
        conn.execute("INSERT INTO orgs (id, name) VALUES (%s, 'o')", (uuid.uuid4(),))
        assert migrate(conn, domains) == ["domain:storage"]
        cols = {r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'events_storage'").fetchall()}
        assert "region" in cols
        assert migrate(conn, domains) == []
        (orgs,) = conn.execute("SELECT count(*) FROM orgs").fetchone()
        assert orgs == 1  # data kept


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_migrate_from_two_threads(fresh_db, round_):
    barrier = threading.Barrier(2)
    results: list[list[str]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run():
        try:
            with psycopg.connect(fresh_db, autocommit=True) as conn:
                barrier.wait(timeout=10)
                applied = migrate(conn, DOMAINS)
            with lock:
                results.append(applied)
        except BaseException as exc:  # noqa: BLE001 - reported below
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert sorted(results, key=len) == [[], ALL]
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        (n,) = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
        assert n == len(ALL)
        assert migrate(conn, DOMAINS) == []


def test_cubes_of_high_cardinality_columns_are_indexed_by_entity(fresh_db):
    """Every rollup table and sketch twin of a cube holding a high-cardinality column
    (users, threads, runs…) has an index by (org, those columns, time), the others none;
    a start-up finding them all waits for no writer; one dropped is made again by the next
    start-up without rebuilding its table."""
    from stats_gateway.core.rollup_sql import sketch_rollups
    from stats_gateway.core.rollups import domain_rollups

    with psycopg.connect(fresh_db, autocommit=True) as conn:
        migrate(conn, DOMAINS)
        found = dict(conn.execute(
            "SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = 'public' "
            "AND indexname LIKE 'e%' AND tablename ~ '^r[uhd]_'").fetchall())
        wanted = {}
        for dom in DOMAINS:
            high = {f.column for f in dom.stored_fields if f.high_cardinality}
            pairs = [(r.table, r) for r in domain_rollups(dom)]
            pairs += [(t.table, t.rollup) for t in sketch_rollups(dom)]
            for table, rollup in pairs:
                entity = [c for c in rollup.cube.columns if c in high]
                if entity:
                    wanted[table] = f"(org_id, {', '.join(entity)}, slot_ts)"
        assert {"user_id" in cols for cols in wanted.values()} == {True, False}
        assert set(found) == set(wanted)
        for table, columns in wanted.items():
            assert found[table].endswith(f"USING btree {columns}"), found[table]
        table = next(t for t in wanted if "users" in t)
        # a start-up with every index present takes no lock that waits for writers
        with psycopg.connect(fresh_db) as writer:
            writer.execute(f"LOCK TABLE {table} IN ROW EXCLUSIVE MODE")  # as ingest holds
            conn.execute("SET lock_timeout = '2s'")
            assert migrate(conn, DOMAINS) == []
            conn.execute("RESET lock_timeout")
        built = conn.execute("SELECT built_at FROM rollup_tables WHERE name = %s",
                             (table,)).fetchone()
        conn.execute(f"DROP INDEX e{table[1:]}")
        migrate(conn, DOMAINS)
        assert conn.execute("SELECT count(*) FROM pg_indexes WHERE indexname = %s",
                            (f"e{table[1:]}",)).fetchone()[0] == 1
        assert conn.execute("SELECT built_at FROM rollup_tables WHERE name = %s",
                            (table,)).fetchone() == built
