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


def entity_lookup_columns(domain: Domain) -> tuple[str, ...]:
    """The high-cardinality columns a query may pin (a resource filter, a breakdown's
    dimension): each gets an index (org_id, column, ts) on the raw events, so a query
    that reads one user's, thread's or trace's raw events (a filter no cube holds with
    it, as ``userId`` with ``breakdown/models``, or buckets finer than a cube) reads
    those events, not every event of the org in the range: one user of 20k over a year,
    230 -> 4 ms; a 30-day hourly series of one user, 35 -> 1.6 ms (PostgreSQL 15, 2M
    events). Its cost: no measurable ingest time at 2M events, 10-20% a batch at 10M,
    and raw storage +26% (private-chat), +58% (calls, four such columns): bench/README.md."""
    high = domain.high_cardinality_columns
    asked = [flt.column for flt in domain.filters]
    asked += [d.columns[0] for d in domain.dimensions if len(d.columns) == 1]
    return tuple(c for c in dict.fromkeys(asked) if c in high)


def domain_ddl(domain: Domain) -> str:
    """Idempotent DDL for one domain's event table, its indexes and its id ledger."""
    t = domain.table
    columns = ",\n    ".join(
        f"{f.column} {f.type.sql_type}" for f in domain.stored_fields)
    add_columns = "\n".join(
        f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {f.column} {f.type.sql_type};"
        for f in domain.stored_fields)
    lookups = "\n".join(f"CREATE INDEX IF NOT EXISTS {t}_org_{c}_ts ON {t} (org_id, {c}, ts);"
                        for c in entity_lookup_columns(domain))
    return f"""
CREATE TABLE IF NOT EXISTS {t} (
    org_id    uuid NOT NULL,
    event_id  text NOT NULL,
    ts        timestamptz NOT NULL,
    {columns}
) PARTITION BY RANGE (ts);
{add_columns}
CREATE INDEX IF NOT EXISTS {t}_org_ts ON {t} (org_id, ts);
{lookups}
CREATE TABLE IF NOT EXISTS {default_partition(domain)} PARTITION OF {t} DEFAULT;
CREATE TABLE IF NOT EXISTS {ledger_table(domain)} (
    org_id    uuid NOT NULL,
    event_id  text NOT NULL,
    ts        timestamptz NOT NULL,
    PRIMARY KEY (org_id, event_id)
);
""".strip()
