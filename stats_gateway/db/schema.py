"""Event-table DDL derived from domain declarations.

Adding a domain therefore needs no hand-written migration: its table is created from the
declaration, and a declaration that gains a field gains a nullable column. Removing or
retyping a column is never automatic: start-up reports the mismatch instead.

An event table is partitioned by month of ``ts`` (``db/partitions.py`` creates the months
ahead of time; a DEFAULT partition takes any event whose month has none yet), so retention
drops whole months (``db/retention.py``). A partitioned table's unique keys must include
the partition key, so ``eventId`` idempotency lives in a ledger beside it, ``<table>_ids``
(org_id, event_id, ts), keyed by (org_id, event_id) alone: ingest writes an event only when
its id entered the ledger in the same statement (``core/ingest.py``), so a re-sent id,
whatever its ``ts``, is skipped and never counted twice.
"""

from __future__ import annotations

from stats_gateway.core.domain import Domain


def ledger_table(domain: Domain) -> str:
    """The event-id ledger of a domain (idempotency across partitions)."""
    return f"{domain.table}_ids"


def default_partition(domain: Domain) -> str:
    return f"{domain.table}_pdefault"


def domain_ddl(domain: Domain) -> str:
    """Idempotent DDL for one domain's event table, its indexes and its id ledger."""
    t = domain.table
    columns = ",\n    ".join(
        f"{f.column} {f.type.sql_type}" for f in domain.stored_fields)
    add_columns = "\n".join(
        f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {f.column} {f.type.sql_type};"
        for f in domain.stored_fields)
    return f"""
CREATE TABLE IF NOT EXISTS {t} (
    org_id    uuid NOT NULL,
    event_id  text NOT NULL,
    ts        timestamptz NOT NULL,
    {columns}
) PARTITION BY RANGE (ts);
{add_columns}
CREATE INDEX IF NOT EXISTS {t}_org_ts ON {t} (org_id, ts);
CREATE TABLE IF NOT EXISTS {default_partition(domain)} PARTITION OF {t} DEFAULT;
CREATE TABLE IF NOT EXISTS {ledger_table(domain)} (
    org_id    uuid NOT NULL,
    event_id  text NOT NULL,
    ts        timestamptz NOT NULL,
    PRIMARY KEY (org_id, event_id)
);
""".strip()
