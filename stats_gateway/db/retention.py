"""Raw-event retention: drop whole months of old events, keep the rollups answering.

Each domain declares how many days its raw events are kept at least (``Domain.retention``);
an org may have its own number per domain (``retention_overrides``, ``stats-gateway
retention set``). An org's *horizon* for a domain is the first UTC month start after which
every day is within its retention: ``month_start(now - days)``. ``apply_retention`` (``stats-gateway
retention apply``, run daily by cron or a timer) then, per domain, in one transaction:

1. gives every month with rows in DEFAULT a partition of its own (``db/partitions.py``);
2. drops the month partitions that end at or before every org's horizon (whole tables:
   no row-by-row delete, no bloat);
3. deletes, row by row, the events of an org whose horizon is later than that (a shorter
   override than another org's), from the months still kept and from DEFAULT;
4. records each org's horizon in ``raw_horizons`` (never moving it back): the planner
   answers ranges before it from the rollups only (docs/retention.md).

Rollups are never touched, nor is the event-id ledger (``<table>_ids``): it keeps the ids
(not the contents) of dropped events, so a retried old batch still counts once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from stats_gateway.core.domain import Domain
from stats_gateway.db.partitions import (
    add_months, existing_months, maintain_partitions, month_start,
)
from stats_gateway.db.tenant import secure_tenant_tables


@dataclass(frozen=True)
class Removed:
    """What retention removed from one table."""

    domain: str
    table: str
    how: str  # "partition dropped" or "rows deleted"
    rows: int


def _count(conn: psycopg.Connection, table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return row[0] if row else 0


def expired_history(conn: psycopg.Connection, domain: Domain,
                    org_id: str | None = None) -> list[tuple[str, datetime]]:
    """The orgs (one, or all) whose raw events of ``domain`` before a horizon are gone,
    with that horizon: rebuilding their rollups from raw events would erase the history
    only the rollups still hold (``rebuild`` and the start-up migration refuse it)."""
    if conn.execute("SELECT to_regclass('raw_horizons')").fetchone() == (None,):
        return []
    return [(str(org), raw_from) for org, raw_from in conn.execute(
        "SELECT org_id, raw_from FROM raw_horizons WHERE domain = %(domain)s "
        "AND (%(org)s::uuid IS NULL OR org_id = %(org)s::uuid) ORDER BY org_id",
        {"domain": domain.name, "org": org_id}).fetchall()]


def history_loss(domain: Domain, expired: list[tuple[str, datetime]]) -> str:
    """Why a rebuild of ``domain`` is refused: whose history it would erase."""
    orgs = ", ".join(f"{org} (raw events before {raw_from:%Y-%m-%d} are gone)"
                     for org, raw_from in expired[:5])
    more = f" and {len(expired) - 5} more" if len(expired) > 5 else ""
    return (f"rebuilding the rollups of {domain.name} from raw events would erase the "
            f"history that only the rollups still hold for {orgs}{more}")


def horizon(now: datetime, days: int) -> datetime:
    """From when raw events are kept: the month start at or before ``now - days``."""
    return month_start(now - timedelta(days=days))


def org_retention(conn: psycopg.Connection, domain: Domain) -> dict[str, int]:
    """Every org's retention for ``domain`` in days (its override, or the declared one)."""
    rows = conn.execute(
        "SELECT o.id::text, coalesce(r.days, %s) FROM orgs o LEFT JOIN retention_overrides r "
        "ON r.org_id = o.id AND r.domain = %s", (domain.retention, domain.name)).fetchall()
    return dict(rows)


def set_override(conn: psycopg.Connection, org_id: str, domain: Domain,
                 days: int | None) -> None:
    """The org's own retention for ``domain`` (None: back to the declared one)."""
    if days is None:
        conn.execute("DELETE FROM retention_overrides WHERE org_id = %s AND domain = %s",
                     (org_id, domain.name))
    else:
        conn.execute("INSERT INTO retention_overrides (org_id, domain, days) "
                     "VALUES (%s, %s, %s) ON CONFLICT (org_id, domain) "
                     "DO UPDATE SET days = EXCLUDED.days", (org_id, domain.name, days))


def apply_domain(conn: psycopg.Connection, domain: Domain, now: datetime) -> list[Removed]:
    """Steps 1-4 of the module docstring for one domain, in the caller's transaction."""
    horizons = {org: horizon(now, days) for org, days in org_retention(conn, domain).items()}
    oldest_kept = min(horizons.values(), default=horizon(now, domain.retention))
    maintain_partitions(conn, domain, now, not_before=oldest_kept)
    removed = []
    for month, name in sorted(existing_months(conn, domain).items()):
        if add_months(month, 1) <= oldest_kept:
            rows = _count(conn, name)
            conn.execute(f"DROP TABLE {name}")
            removed.append(Removed(domain.name, name, "partition dropped", rows))
    deleted = 0
    for org, kept_from in sorted(horizons.items()):
        deleted += conn.execute(f"DELETE FROM {domain.table} WHERE org_id = %s AND ts < %s",
                                (org, kept_from)).rowcount
        conn.execute(
            "INSERT INTO raw_horizons AS h (org_id, domain, raw_from) VALUES (%s, %s, %s) "
            "ON CONFLICT (org_id, domain) DO UPDATE "
            "SET raw_from = greatest(h.raw_from, EXCLUDED.raw_from)",
            (org, domain.name, kept_from))
    if deleted:
        removed.append(Removed(domain.name, domain.table, "rows deleted", deleted))
    return removed


def apply_retention(conn: psycopg.Connection, domains: tuple[Domain, ...],
                    now: datetime) -> list[Removed]:
    """Retention for every domain, each in a transaction of its own."""
    removed = []
    for domain in domains:
        with conn.transaction():
            removed += apply_domain(conn, domain, now)
            secure_tenant_tables(conn)  # the partitions made in step 1
    return removed
