"""The database half of the demo: orgs and keys, the entity catalogue, and the generated
events streamed in with COPY, into the one database every command uses; finding what an
earlier demo loaded there (``loaded_demo``) or clearing it (``clear_demo``). The
benchmark loads into databases of its own (``prepare_database``).

COPY rather than the ingest path because the demo writes a million rows in seconds (the
events in binary format: half the client work of text and less parsing for the server);
the rows obey every rule ingest enforces (the tests check them with ingest's own
validator), so the result is what ingesting them through the API would have stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from domains import DOMAINS
from stats_gateway.auth import create_key, ensure_org
from stats_gateway.core.domain import Domain
from stats_gateway.core.rollup_sql import rebuild_rollups
from stats_gateway.db.connect import connect
from stats_gateway.db.migrate import migrate
from stats_gateway.db.partitions import ensure_history
from stats_gateway.demo.generate import SEED, Chunk, generate, rows
from stats_gateway.demo.sampling import HOURS
from stats_gateway.demo.world import ORGS, Org, entities
from stats_gateway.progress import Progress

DEMO_DATABASE = "stats_demo"  # prepare_database's default name (the demo no longer uses it)
MAINTENANCE_DATABASE = "postgres"


@dataclass
class LoadedOrg:
    org: Org
    name: str  # as stored (with the caller's prefix)
    id: str
    key: str  # read + ingest, in clear
    events: dict[str, int] = field(default_factory=dict)  # domain name -> rows written



def _scalar(cursor: psycopg.Cursor) -> Any:
    """The value of an aggregate's one row (no GROUP BY: always a row)."""
    row = cursor.fetchone()
    assert row is not None
    return row[0]


def prepare_database(server_url: str, name: str = DEMO_DATABASE) -> str:
    """Drop and recreate database ``name`` on the server, migrate it, return its URL.

    Works from the maintenance database, so ``server_url`` may name any database but
    ``name`` itself; FORCE ends sessions left over from an earlier demo."""
    with connect(make_conninfo(server_url, dbname=MAINTENANCE_DATABASE),
                 autocommit=True) as conn:
        database = sql.Identifier(name)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(database))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(database))
    url = make_conninfo(server_url, dbname=name)
    with connect(url, autocommit=True) as conn:
        migrate(conn, DOMAINS)
    return url


def copy_statement(table: str, columns: list[str], binary: bool = False) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN" + (" (FORMAT BINARY)" if binary else "")).format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)))


def event_columns(domain: Domain) -> list[str]:
    """The COPY column list, matching :func:`generate.rows`."""
    return ["org_id", "event_id", "ts"] + [f.column for f in domain.stored_fields]


def event_types(domain: Domain) -> list[str]:
    """The PostgreSQL type of each COPY column, as binary COPY needs them."""
    return ["uuid", "text", "timestamptz"] + [f.type.sql_type.split("(")[0]
                                              for f in domain.stored_fields]


def create_orgs(conn: psycopg.Connection, prefix: str) -> dict[str, LoadedOrg]:
    """Each demo org (named ``prefix + name``) with one read+ingest key, by org key."""
    loaded = {}
    for org in ORGS:
        name = prefix + org.name
        org_id = ensure_org(conn, name)
        key = create_key(conn, org_id, read=True, ingest=True, name="demo")
        loaded[org.key] = LoadedOrg(org=org, name=name, id=org_id, key=key)
    return loaded


def load_entities(conn: psycopg.Connection, loaded: dict[str, LoadedOrg], now: datetime) -> None:
    """Names for every workspace, repo (with its workspace), bucket, node, user, rule and
    AI configuration, as if the newest event (at ``now``) had carried them."""
    columns = ["org_id", "kind", "id", "parent_id", "name", "name_ts"]
    with conn.cursor() as cur, cur.copy(copy_statement("entities", columns)) as copy:
        for item in loaded.values():
            for kind, entity_id, parent, name in entities(item.org):
                copy.write_row((item.id, kind, entity_id, parent, name, now))


def copy_events(conn: psycopg.Connection, org_id: str, domain: Domain,
                chunks: Iterable[Chunk], progress: Progress | None) -> int:
    """COPY one org's chunks of one domain into its table; returns the rows written."""
    written = 0
    statement = copy_statement(domain.table, event_columns(domain), binary=True)
    with conn.cursor() as cur, cur.copy(statement) as copy:
        copy.set_types(event_types(domain))
        for chunk in chunks:
            for row in rows(chunk, uuid.UUID(org_id)):
                copy.write_row(row)
            written += len(chunk)
            if progress:
                progress.advance(len(chunk))
    return written


def load_dataset(conn: psycopg.Connection, *, events: int, now: datetime, org_prefix: str = "",
                 seed: int = SEED, progress: bool = False) -> list[LoadedOrg]:
    """Create the demo orgs and keys, name their entities and COPY ``events`` generated
    events into the (already migrated) database, in one transaction; then ANALYZE so the
    first queries get good plans. COPY bypasses ingest, so the orgs' rollups are rebuilt
    from their events in the same transaction. Returns the orgs, biggest first.

    The org names (``org_prefix`` + demo name) must be new in the database: a second
    load under the same names fails on duplicate entities and rolls back."""
    bar = Progress(events) if progress else None
    with conn.transaction():
        ensure_history(conn, DOMAINS, now, HOURS // 24 + 1)  # each month in its partition
        loaded = create_orgs(conn, org_prefix)
        load_entities(conn, loaded, now)
        cells = groupby(generate(events, now, seed), key=lambda c: (c.org.key, c.domain))
        for (org_key, domain), chunks in cells:
            item = loaded[org_key]
            item.events[domain.name] = copy_events(conn, item.id, domain, chunks, bar)
        for item in loaded.values():  # COPY bypasses ingest: build the org's rollups now
            for domain in DOMAINS:
                rebuild_rollups(conn, domain, item.id)
    if bar:
        bar.finish()
    for table in [d.table for d in DOMAINS] + ["entities"]:
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
    return sorted(loaded.values(), key=lambda o: -sum(o.events.values()))


# --- reuse: the demo shares the one database every command uses (docs/cli.md) ---------

DEMO_KEY_LABEL = "demo"


def _demo_orgs(conn: psycopg.Connection, prefix: str) -> dict[str, str]:
    """Demo org key -> id, for the demo orgs that exist."""
    names = {prefix + org.name: org.key for org in ORGS}
    rows = conn.execute("SELECT name, id::text FROM orgs WHERE name = ANY(%(names)s)",
                        {"names": list(names)}).fetchall()
    return {names[name]: org_id for name, org_id in rows}


def loaded_demo(conn: psycopg.Connection, prefix: str = "") -> list[LoadedOrg] | None:
    """The demo orgs as an earlier demo loaded them, each with a new key (an earlier run's
    secrets are not stored), biggest first; None when no demo org has an event."""
    ids = _demo_orgs(conn, prefix)
    loaded = []
    for org in ORGS:
        if org.key not in ids:
            continue
        counts = {d.name: _scalar(conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE org_id = %(org)s").format(
                sql.Identifier(d.table)), {"org": ids[org.key]}))
            for d in DOMAINS}
        loaded.append(LoadedOrg(org=org, name=prefix + org.name, id=ids[org.key], key="",
                                events={n: c for n, c in counts.items() if c}))
    if not any(item.events for item in loaded):
        return None
    for item in loaded:
        item.key = create_key(conn, item.id, read=True, ingest=True, name=DEMO_KEY_LABEL)
    return sorted(loaded, key=lambda o: -sum(o.events.values()))


def newest_event(conn: psycopg.Connection, loaded: list[LoadedOrg]) -> datetime | None:
    """When the newest demo event happened (about when the data was generated)."""
    newest = None
    for item in loaded:
        for domain in DOMAINS:
            last = _scalar(conn.execute(sql.SQL("SELECT max(ts) FROM {} WHERE org_id = %(org)s")
                                        .format(sql.Identifier(domain.table)), {"org": item.id}))
            if last is not None and (newest is None or last > newest):
                newest = last
    return newest


def clear_demo(conn: psycopg.Connection, prefix: str = "") -> int:
    """Remove the demo orgs' events, rollups and names (keeping the orgs and their keys),
    in one transaction, so the demo can load afresh; returns the rows removed. The other
    orgs' data stays; when there are none, the tables are truncated (much faster)."""
    ids = list(_demo_orgs(conn, prefix).values())
    if not ids:
        return 0
    tables = [name for (name,) in conn.execute("""
        SELECT c.relname FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'org_id'
                           AND NOT a.attisdropped
        WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
          AND NOT c.relispartition AND c.relname <> 'api_keys'
        ORDER BY c.relname""").fetchall()]
    others = _scalar(conn.execute("SELECT count(*) FROM orgs WHERE NOT id = ANY(%(ids)s::uuid[])",
                                  {"ids": ids}))
    removed = 0
    with conn.transaction():
        for table in tables:
            name = sql.Identifier(table)
            if others == 0:
                removed += _scalar(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(name)))
                conn.execute(sql.SQL("TRUNCATE {}").format(name))
            else:
                removed += conn.execute(
                    sql.SQL("DELETE FROM {} WHERE org_id = ANY(%(ids)s::uuid[])").format(name),
                    {"ids": ids}).rowcount
    return removed
