"""Event-table DDL derived from domain declarations.

Adding a domain therefore needs no hand-written migration: its table is created from the
declaration, and a declaration that gains a field gains a nullable column. Removing or
retyping a column is never automatic: start-up reports the mismatch instead.
"""

from __future__ import annotations

from stats_gateway.core.domain import Domain


def domain_ddl(domain: Domain) -> str:
    """Idempotent DDL for one domain's event table and its indexes."""
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
    {columns},
    PRIMARY KEY (org_id, event_id)
);
{add_columns}
CREATE INDEX IF NOT EXISTS {t}_org_ts ON {t} (org_id, ts);
""".strip()
