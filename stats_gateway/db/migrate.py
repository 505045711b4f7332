"""Apply ``sql/*.sql`` in order, then the generated domain tables, exactly once each.

Each migration is recorded with the sha256 of its text; all of it runs under one
transaction-scoped advisory lock, so concurrent starters serialise and the second one finds
nothing to do. An applied file whose text changed is an error: write a new file instead.
A generated domain migration whose text changed (the domain gained a field) is re-applied,
since it only adds. An event table from before monthly partitioning is converted first
(``db/partitions.convert_to_partitioned``: every row kept, in this transaction), and every
start-up creates the months around now ahead of ingest.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from stats_gateway.core.domain import Domain
from stats_gateway.core.rollup_sql import ddl_checksum, rebuild_sql, rollup_ddl, sketch_rollups
from stats_gateway.core.rollups import domain_rollups, entity_index, source_rollup
from stats_gateway.db.partitions import convert_to_partitioned, ensure_months, months_ahead
from stats_gateway.db.schema import domain_ddl
from stats_gateway.db.retention import expired_history, history_loss
from stats_gateway.db.tenant import secure_tenant_tables

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
LOCK_KEY = 0x5747_6174  # arbitrary, fixed: "SGat"
# building a rollup where retention dropped raw events loses history: only when asked
REBUILD_EXPIRED_ENV = "STATS_GATEWAY_REBUILD_EXPIRED"


class MigrationError(Exception):
    pass


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str
    replaceable: bool  # generated, additive: may be re-applied when its text changes

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def planned_migrations(domains: tuple[Domain, ...], sql_dir: Path = SQL_DIR) -> list[Migration]:
    files = sorted(sql_dir.glob("*.sql"))
    planned = [Migration(p.name, p.read_text(), False) for p in files]
    planned += [Migration(f"domain:{d.name}", domain_ddl(d), True) for d in domains]
    return planned


def migrate(conn: psycopg.Connection, domains: tuple[Domain, ...]) -> list[str]:
    """Apply what is missing; return the names applied (empty when up to date)."""
    applied_now: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        conn.execute("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                name        text PRIMARY KEY,
                checksum    text NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now())""")
        done: dict[str, str] = dict(conn.execute("SELECT name, checksum FROM schema_migrations").fetchall())
        for domain in domains:  # tables from before partitioning: converted, rows kept
            convert_to_partitioned(conn, domain, domain_ddl(domain))
        for m in planned_migrations(domains):
            if done.get(m.name) == m.checksum:
                continue
            if m.name in done and not m.replaceable:
                raise MigrationError(
                    f"migration {m.name} was applied with checksum {done[m.name][:12]}… but "
                    f"the file now has {m.checksum[:12]}…; add a new migration instead")
            conn.execute(m.sql)
            conn.execute(
                "INSERT INTO schema_migrations (name, checksum) VALUES (%s, %s) "
                "ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum, "
                "applied_at = now()", (m.name, m.checksum))
            applied_now.append(m.name)
        now = datetime.now(UTC)
        for domain in domains:
            ensure_months(conn, domain, months_ahead(now))
        sync_rollups(conn, domains)  # derived tables: not migrations, not listed
        secure_tenant_tables(conn)  # row-level security on every org_id table (db/tenant.py)
    return applied_now


def sync_rollups(conn: psycopg.Connection, domains: tuple[Domain, ...]) -> list[str]:
    """Create and build the rollup tables the declarations want, then drop the others.

    Rollups are derived data named after what they hold (``Rollup.table``), so a changed
    declaration wants new tables: they are built beside the old ones, from the raw events,
    while the domain's event table is held in SHARE mode (ingest waits, so no event is
    missed; queries go on, answered by the old tables until this transaction commits), and
    the tables no longer wanted are dropped last. Sketch twins likewise, but rebuilt in
    place where their name stays and their layout or rule changed (the DROP makes their
    readers wait for the commit: docs/operations.md, Upgrades).
    """
    conn.execute("""
        CREATE TABLE IF NOT EXISTS rollup_tables (
            name      text PRIMARY KEY,
            checksum  text NOT NULL,
            built_at  timestamptz NOT NULL DEFAULT now())""")
    recorded: dict[str, str] = dict(conn.execute("SELECT name, checksum FROM rollup_tables").fetchall())
    wanted: dict[str, tuple[Domain, str, str, list, bool]] = {}
    indexes: list[tuple[str, str]] = []  # (name, CREATE INDEX)
    for d in domains:
        for r in domain_rollups(d):
            wanted[r.table] = (d, ddl_checksum(r), rollup_ddl(r), rebuild_sql(r),
                               source_rollup(r) is None)
            indexes += entity_index(r.table, r)
        for twin in sketch_rollups(d):
            wanted[twin.table] = (d, twin.checksum, twin.ddl(), twin.rebuild_sql(),
                                  twin.from_raw)
            indexes += entity_index(twin.table, twin.rollup)
    changed = []
    locked: set[str] = set()
    for name, (domain, checksum, ddl, rebuild, from_raw) in wanted.items():
        if recorded.get(name) == checksum:
            continue
        # a rollup with a source (built first) is merged from it: no raw event read
        if from_raw and os.environ.get(REBUILD_EXPIRED_ENV) != "1" and (
                expired := expired_history(conn, domain)):
            # a new or changed rollup is built from raw events, which retention dropped
            raise MigrationError(
                f"rollup {name} is new or changed: {history_loss(domain, expired)}; keep "
                f"the declaration as it was, or set {REBUILD_EXPIRED_ENV}=1 to build it "
                "anyway and lose that history")
        if domain.table not in locked:
            conn.execute(f"LOCK TABLE {domain.table} IN SHARE MODE")
            locked.add(domain.table)
        conn.execute(f"DROP TABLE IF EXISTS {name}")
        conn.execute(ddl)
        for statement in rebuild:
            conn.execute(statement.text, statement.params)
        # a table just filled has no statistics: the planner would take it for one row
        # (an ai year by model, its histogram rows read into an on-disk sort: 217 ms,
        # against 155 ms analysed) until autovacuum, which may be off, comes by
        conn.execute(f"ANALYZE {name}")
        conn.execute("INSERT INTO rollup_tables (name, checksum) VALUES (%s, %s) "
                     "ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum, "
                     "built_at = now()", (name, checksum))
        changed.append(f"rollup:{name}")
    # not part of the checksums: an index added later is built in place, not the table.
    # Only the missing ones: CREATE INDEX locks its table (SHARE: writes wait) before it
    # sees that the index exists, and start-up must not hold up every replica's ingest
    present = {name for (name,) in conn.execute(
        "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()").fetchall()}
    for name, statement in indexes:
        if name not in present:
            conn.execute(statement)
    for name in sorted(set(recorded) - set(wanted)):
        conn.execute(f"DROP TABLE IF EXISTS {name}")
        conn.execute("DELETE FROM rollup_tables WHERE name = %s", (name,))
        changed.append(f"rollup-dropped:{name}")
    return changed
