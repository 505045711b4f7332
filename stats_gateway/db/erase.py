"""``stats-gateway delete``: erase an org's data (GDPR-style), rollups included.

Everything happens in one transaction, holding each domain's ingest lock for the org
alone (``WRITE_LOCK``, as ``load`` does), and the answer counts the rows removed per table.

* Without ``--before``: every row of the org in the domain's event table, its event-id
  ledger, every metric, histogram and distinct-count rollup, and its ``raw_horizons``;
  without ``--domain`` too, the org's entity catalogue (names). The org, its keys and
  its retention settings stay: ``keys revoke`` removes access.
* With ``--before T``: the events with ``ts < T`` and their ledger ids, and every rollup
  row of a slot that starts before ``U``, the first instant at or after ``T`` on every grain
  of the domain's rollups (a whole slot has to go: its parts cannot be split); the events
  of ``[T, U)`` are then added back to the rollups from the raw events, exactly as ingest
  adds them, so the rollups again hold exactly the events at or after ``T``. When those raw
  events are already gone (``T`` before the org's retention horizon) this cannot be done
  and ``T`` must be on every grain (the error names the instants around it).
"""

from __future__ import annotations

from datetime import datetime

import psycopg

from stats_gateway.core.domain import Domain
from stats_gateway.core.ingest import WRITE_LOCK
from stats_gateway.core.rollup_sql import insert_with_rollups, sketch_rollups
from stats_gateway.core.rollups import ceil_to_every, domain_rollups, floor_to_every
from stats_gateway.db.schema import ledger_table


class EraseRefused(Exception):
    """The deletion cannot be exact; nothing was removed."""


def _slot_tables(domain: Domain) -> list[str]:
    return [r.table for r in domain_rollups(domain)] + [t.table for t in sketch_rollups(domain)]


def erase(conn: psycopg.Connection, domains: tuple[Domain, ...], org_id: str,
          before: datetime | None = None) -> dict[str, int]:
    """Rows removed per table (tables with none included), all in one transaction."""
    removed: dict[str, int] = {}
    with conn.transaction():
        for domain in domains:
            conn.execute(WRITE_LOCK.format(mode=""), {"org": org_id, "table": domain.table})
            removed |= (_erase_all(conn, domain, org_id) if before is None
                        else _erase_before(conn, domain, org_id, before))
        if before is None and len(domains) > 1:
            removed["entities"] = conn.execute(
                "DELETE FROM entities WHERE org_id = %s", (org_id,)).rowcount
    return removed


def _erase_all(conn, domain: Domain, org_id: str) -> dict[str, int]:
    removed = {}
    for table in [domain.table, ledger_table(domain), *_slot_tables(domain)]:
        removed[table] = conn.execute(f"DELETE FROM {table} WHERE org_id = %s",
                                      (org_id,)).rowcount
    conn.execute("DELETE FROM raw_horizons WHERE org_id = %s AND domain = %s",
                 (org_id, domain.name))
    return removed


def _erase_before(conn, domain: Domain, org_id: str, before: datetime) -> dict[str, int]:
    rollups = domain_rollups(domain)
    until = ceil_to_every(before, rollups)  # no slot of any grain straddles it
    row = conn.execute("SELECT raw_from FROM raw_horizons WHERE org_id = %s AND domain = %s",
                       (org_id, domain.name)).fetchone()
    if until != before and row is not None and before < row[0]:
        raise EraseRefused(
            f"{domain.name}: raw events before {row[0].isoformat()} are gone (retention), so "
            f"the rollup slots around {before.isoformat()} cannot be rebuilt; use "
            f"--before {floor_to_every(before, rollups).isoformat()} or {until.isoformat()}")
    removed = {}
    for table in (domain.table, ledger_table(domain)):
        removed[table] = conn.execute(f"DELETE FROM {table} WHERE org_id = %s AND ts < %s",
                                      (org_id, before)).rowcount
    for table in _slot_tables(domain):
        removed[table] = conn.execute(f"DELETE FROM {table} WHERE org_id = %s AND slot_ts < %s",
                                      (org_id, until)).rowcount
    if until != before:  # the slots cut in two get back the events of [before, until)
        text, constants = insert_with_rollups(domain, (
            f"SELECT * FROM {domain.table} "
            "WHERE org_id = %(org)s AND ts >= %(before)s AND ts < %(until)s"))
        conn.execute(text, {**constants, "org": org_id, "before": before, "until": until})
    return removed
