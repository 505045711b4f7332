"""Monthly partitions of the event tables: created ahead, split out of DEFAULT, converted.

Each event table (``db/schema.py``) is partitioned by UTC month of ``ts``: partition
``<table>_pYYYY_MM`` holds ``[month start, next month start)``. Start-up creates the month
before the current one through two months ahead (ingest accepts ``ts`` up to one day from
now, so no valid live event lacks a partition). Any other event (a late one into an old
month, on a server not restarted for months) lands in the DEFAULT partition: ingest never
fails for a missing partition. ``maintain_partitions`` (run by ``stats-gateway retention
apply`` and by ``load`` for the months it writes) moves such months out of DEFAULT into
partitions of their own, so queries prune them like any other month.

Partition DDL needs the table's owner: the gateway's role never creates partitions.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import psycopg

from stats_gateway.core.domain import Domain
from stats_gateway.db.schema import default_partition, ledger_table

AHEAD_MONTHS = 2  # months after the current one created at start-up
BEHIND_MONTHS = 1  # and before it


def month_start(instant: datetime) -> datetime:
    instant = instant.astimezone(UTC)
    return datetime(instant.year, instant.month, 1, tzinfo=UTC)


def add_months(month: datetime, n: int) -> datetime:
    index = month.year * 12 + month.month - 1 + n
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def partition_name(domain: Domain, month: datetime) -> str:
    return f"{domain.table}_p{month.year:04d}_{month.month:02d}"


def existing_months(conn: psycopg.Connection, domain: Domain) -> dict[datetime, str]:
    """The month partitions a domain's table has: month start -> partition name."""
    rows = conn.execute("""
        SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = %s::regclass""", (domain.table,)).fetchall()
    found = {}
    for name, bound in rows:
        if bound != "DEFAULT" and name.startswith(f"{domain.table}_p"):
            year, month = name.removeprefix(f"{domain.table}_p").split("_")
            found[datetime(int(year), int(month), 1, tzinfo=UTC)] = name
    return found


def ensure_month(conn: psycopg.Connection, domain: Domain, month: datetime) -> bool:
    """Give ``month`` its own partition (moving its rows out of DEFAULT); True if created.
    Run inside a transaction: the move and the attach commit together."""
    if month in existing_months(conn, domain):
        return False
    name, table = partition_name(domain, month), domain.table
    bounds = {"lo": month, "hi": add_months(month, 1)}
    conn.execute(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS)")
    moved = conn.execute(
        f"WITH moved AS (DELETE FROM {default_partition(domain)} "
        f"WHERE ts >= %(lo)s AND ts < %(hi)s RETURNING *) "
        f"INSERT INTO {name} SELECT * FROM moved", bounds).rowcount
    conn.execute(f"ALTER TABLE {table} ATTACH PARTITION {name} "
                 f"FOR VALUES FROM ('{bounds['lo'].isoformat()}') "
                 f"TO ('{bounds['hi'].isoformat()}')")
    if moved:
        conn.execute(f"ANALYZE {name}")
    return True


def ensure_months(conn: psycopg.Connection, domain: Domain,
                  months: Iterable[datetime]) -> list[datetime]:
    return [m for m in sorted(set(months)) if ensure_month(conn, domain, m)]


def months_ahead(now: datetime) -> list[datetime]:
    current = month_start(now)
    return [add_months(current, n) for n in range(-BEHIND_MONTHS, AHEAD_MONTHS + 1)]


def history_months(now: datetime, days: int) -> list[datetime]:
    """Every month from the one holding ``now - days`` through the months ahead."""
    first = month_start(now - timedelta(days=days))
    months, month = [], first
    while month <= add_months(month_start(now), AHEAD_MONTHS):
        months.append(month)
        month = add_months(month, 1)
    return months


def ensure_history(conn: psycopg.Connection, domains: Iterable[Domain], now: datetime,
                   days: int) -> None:
    """Partitions for ``days`` of history before ``now``, made before a bulk COPY of it
    (the demo, the benchmark), so its months are pruned like live ones instead of piling
    into DEFAULT until the next ``retention apply`` moves them out row by row."""
    for domain in domains:
        ensure_months(conn, domain, history_months(now, days))


def default_months(conn: psycopg.Connection, domain: Domain) -> list[datetime]:
    """The months that have rows in the DEFAULT partition."""
    rows = conn.execute(
        f"SELECT DISTINCT date_trunc('month', ts, 'UTC') "
        f"FROM {default_partition(domain)}").fetchall()
    return sorted(month_start(m) for (m,) in rows)


def maintain_partitions(conn: psycopg.Connection, domain: Domain, now: datetime,
                        not_before: datetime | None = None) -> list[datetime]:
    """The months around ``now`` and every month with rows in DEFAULT (from
    ``not_before`` on: older ones are past retention) get partitions; returns those made."""
    wanted = months_ahead(now) + default_months(conn, domain)
    return ensure_months(conn, domain,
                         [m for m in wanted if not_before is None or m >= not_before])


def is_partitioned(conn: psycopg.Connection, table: str) -> bool | None:
    """True: partitioned; False: a plain table; None: no such table."""
    row = conn.execute("SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass(%s)",
                       (table,)).fetchone()
    return None if row is None else row[0] == "p"


def convert_to_partitioned(conn: psycopg.Connection, domain: Domain, ddl: str) -> int | None:
    """Turn a plain (pre-partitioning) event table into the partitioned one, keeping every
    row and filling the id ledger from it; returns the rows moved (None: nothing to do).

    The old table is renamed aside, the new one created from ``ddl`` with a partition for
    every month its rows span, the rows copied (columns the declaration no longer has are
    kept too), the old table dropped: in the caller's transaction, so it all commits or
    nothing does."""
    if is_partitioned(conn, domain.table) is not False:
        return None
    table, old = domain.table, f"{domain.table}_unpartitioned"
    conn.execute(f"ALTER TABLE {table} RENAME TO {old}")
    for (index,) in conn.execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = %s::regclass", (old,)).fetchall():
        conn.execute(f'ALTER INDEX "{index}" RENAME TO "{index[:50]}_old"')
    conn.execute(ddl)
    columns = conn.execute("""
        SELECT a.attname, format_type(a.atttypid, a.atttypmod)
        FROM pg_attribute a WHERE a.attrelid = %s::regclass AND a.attnum > 0
          AND NOT a.attisdropped ORDER BY a.attnum""", (old,)).fetchall()
    for name, sql_type in columns:
        conn.execute(f'ALTER TABLE {table} ADD COLUMN IF NOT EXISTS "{name}" {sql_type}')
    ensure_months(conn, domain, [month_start(m) for (m,) in conn.execute(
        f"SELECT DISTINCT date_trunc('month', ts, 'UTC') FROM {old}").fetchall()])
    names = ", ".join(f'"{name}"' for name, _ in columns)
    moved = conn.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {old}").rowcount
    conn.execute(f"INSERT INTO {ledger_table(domain)} (org_id, event_id, ts) "
                 f"SELECT org_id, event_id, ts FROM {old} ON CONFLICT DO NOTHING")
    conn.execute(f"DROP TABLE {old}")
    conn.execute(f"ANALYZE {table}")
    return moved
