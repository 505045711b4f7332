"""Rollup tables' DDL and the statements that fill them: per batch, per org, or all.

Parts are computed with the very ``metric_terms`` the raw queries use, so a rollup row
holds exactly what a raw query would have computed for its slot.

Ingest and ``load`` keep rollups current from the batch itself: the event INSERT's
``RETURNING *`` (exactly the rows this statement inserted, duplicates skipped) feeds one
``INSERT … SELECT … GROUP BY … ON CONFLICT DO UPDATE`` per rollup, all in one statement
(``insert_with_rollups``). Counts, sums and parts add, minima take LEAST, maxima and
newest times GREATEST, histogram bins add: no raw event is read again, so the cost of a
batch is proportional to the batch, whatever the size of the org.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from pypika import Table

from stats_gateway.core.domain import Domain
from stats_gateway.core.distinct import DistinctRollup, distinct_rollups
from stats_gateway.core.histogram_rollups import HistogramRollup, histogram_rollups
from stats_gateway.core.rollups import (
    Rollup, domain_rollups, part_types, root_rollup, source_rollup,
)
from stats_gateway.core.sql import Params, Sql, merge_terms, metric_terms
from stats_gateway.db.schema import ledger_table

INSERTED = "inserted"  # the CTE of the rows an event INSERT … RETURNING * stored


def sketch_rollups(domain: Domain) -> list[HistogramRollup | DistinctRollup]:
    """The twins of the metric rollups that hold sketches: latency histograms and
    distinct-count sketches. Each knows its DDL, checksum, upsert and rebuild."""
    return [*histogram_rollups(domain), *distinct_rollups(domain)]


def rollup_ddl(rollup: Rollup) -> str:
    types = {f.column: f.type.sql_type for f in rollup.domain.stored_fields}
    keys = [f"{c} {types[c]}" for c in rollup.columns]
    parts = [f'"{name}" {sql_type}' for name, sql_type in part_types(rollup)]
    columns = ",\n    ".join(["org_id uuid NOT NULL", "slot_ts timestamptz NOT NULL",
                              *keys, *parts])
    key = ", ".join(["org_id", "slot_ts", *rollup.columns])
    return (f"CREATE TABLE {rollup.table} (\n    {columns}\n);\n"
            f"CREATE UNIQUE INDEX {rollup.table}_key ON {rollup.table} ({key}) "
            f"NULLS NOT DISTINCT;")


def _merge_on_conflict(rollup: Rollup) -> str:
    """How an existing slot row absorbs a new partial: each kind of aggregation says."""
    return ", ".join(clause for m in rollup.metrics for clause in m.agg.upsert(m.name))


def _names(rollup: Rollup) -> str:
    """The rollup's columns: its key, then its parts."""
    return ", ".join(["org_id", "slot_ts", *rollup.columns,
                      *(f'"{name}"' for name, _ in part_types(rollup))])


def _aggregate(rollup: Rollup, source: str, where: str, p: Params) -> str:
    """SELECT of the rollup rows (``_names``' columns, by name) of the events ``source``
    holds (a table, or the inserted rows under the event table's name) that ``where``
    selects."""
    events = Table(rollup.domain.table)
    values = [term for m in rollup.metrics for term in metric_terms(m, events, p)]
    slot = rollup.slot_sql("ts", p)
    names = [name for name, _ in part_types(rollup)]
    assert [t.alias for t in values] == names, (rollup.table, names)  # each term is its part
    parts = [t.get_sql(quote_char='"', with_alias=True) for t in values]
    select = ", ".join(["org_id", f"{slot} AS slot_ts", *rollup.columns, *parts])
    group = ", ".join(["org_id", slot, *rollup.columns])
    return f"SELECT {select} FROM {source} WHERE {where} GROUP BY {group}"


def _order(rollup: Rollup) -> str:
    """Rows in key order (the output's ``slot_ts``): batches writing the same slots lock
    them in one order."""
    return " ORDER BY " + ", ".join(["slot_ts", *rollup.columns])


def _insert_select(rollup: Rollup, source: str, where: str, p: Params) -> str:
    """INSERT … SELECT of the rollup rows of the events ``source`` holds that ``where``
    selects."""
    return (f"INSERT INTO {rollup.table} AS r ({_names(rollup)}) "
            f"{_aggregate(rollup, source, where, p)}{_order(rollup)}")


def _upsert(rollup: Rollup) -> str:
    key = ", ".join(["org_id", "slot_ts", *rollup.columns])
    return f" ON CONFLICT ({key}) DO UPDATE SET {_merge_on_conflict(rollup)}"


@lru_cache(maxsize=64)
def _rollup_ctes(domain: Domain) -> tuple[str, dict]:
    """``, r0 AS (upsert), …`` adding the rows of the ``INSERTED`` CTE to every rollup and
    sketch twin of the domain; their constants.

    Each rollup built from raw events (``root_rollup``) aggregates the inserted events
    once (``a<i>``, materialized because the rollups merged from it read it too); the
    others merge those rows, as a rebuild does (exact for every mergeable part), instead
    of grouping every event again: a 50,000-event ``load`` chunk grouped 50,000 rows per
    rollup, now a few hundred or thousand for all but the roots."""
    p = Params()
    source = f'{INSERTED} AS "{domain.table}"'
    rollups = domain_rollups(domain)
    ctes = []
    for i, r in enumerate(rollups):
        q = p.scoped(f"r{i}_")
        root = root_rollup(r)
        if root == r:
            ctes.append(f"a{i} AS MATERIALIZED ({_aggregate(r, source, 'TRUE', q)})")
            select = f"SELECT {_names(r)} FROM a{i}"
        else:
            select = _merge_select(r, f"a{rollups.index(root)}", "TRUE", q)
        ctes.append(f"r{i} AS (INSERT INTO {r.table} AS r ({_names(r)}) "
                    f"{select}{_order(r)}{_upsert(r)})")
    ctes += [f"s{i} AS ({twin.upsert_from(source, p.scoped(f's{i}_'))})"
             for i, twin in enumerate(sketch_rollups(domain))]
    return "".join(f", {cte}" for cte in ctes), dict(p.values)


def insert_with_rollups(domain: Domain, insert: str, before: str = "") -> tuple[str, dict]:
    """One statement: ``insert`` (an ``INSERT INTO <event table> … RETURNING *``) and
    every rollup brought up to date with exactly the rows it inserted; returns the text
    (selecting the inserted ``event_id``s) and the rollups' constants. ``before``: CTEs
    (``name AS (…), ``) the insert reads (the event-id ledger's insert, ``db/schema.py``)."""
    ctes, constants = _rollup_ctes(domain)
    return (f"WITH {before}{INSERTED} AS ({insert}){ctes} SELECT event_id FROM {INSERTED}",
            constants)


def _merge_select(rollup: Rollup, source: str, where: str, p: Params) -> str:
    """SELECT of a rollup's rows from the rows of a finer rollup holding its columns and
    parts (a table, or a CTE of the same columns): slots merge exactly."""
    slot = rollup.slot_sql("slot_ts", p)
    merged = merge_terms(rollup.metrics, Table(source))
    select = ", ".join(["org_id", f"{slot} AS slot_ts", *rollup.columns,
                        *(t.get_sql(quote_char='"', with_alias=False) for t in merged)])
    group = ", ".join(["org_id", slot, *rollup.columns])
    return f"SELECT {select} FROM {source} WHERE {where} GROUP BY {group}"


def rebuild_sql(rollup: Rollup, org_id: str | None = None) -> list[Sql]:
    """Recompute the rollup, for one org or for all: from raw events, or from the rows of
    its ``source_rollup`` (``domain_rollups`` lists every source before the rollups
    merged from it)."""
    p = Params()
    source = source_rollup(rollup)
    where = "TRUE" if org_id is None else f"org_id = {p(org_id, 'org').get_sql()}"
    clear = (Sql(f"TRUNCATE {rollup.table}", {}) if org_id is None else
             Sql(f"DELETE FROM {rollup.table} WHERE {where}", dict(p.values)))
    fill = (_insert_select(rollup, rollup.domain.table, where, p) if source is None
            else f"INSERT INTO {rollup.table} AS r ({_names(rollup)}) "
                 f"{_merge_select(rollup, source.table, where, p)}")
    return [clear, Sql(fill, p.values)]


def rebuild_rollups(conn, domain, org_id: str | None = None) -> int:
    """Recompute every rollup of ``domain`` from its raw events (one org, or all) on a
    synchronous psycopg connection, histogram rollups included; returns how many tables
    were rebuilt. For bulk loads that bypass ingest (COPY), and for the ``rebuild``
    command. The event-id ledger (``db/schema.py``) is derived from the raw events too:
    ids that a COPY wrote without it join it, so a re-sent event is still a duplicate."""
    where, params = ("TRUE", {}) if org_id is None else ("org_id = %(org)s", {"org": org_id})
    conn.execute(f"INSERT INTO {ledger_table(domain)} (org_id, event_id, ts) "
                 f"SELECT org_id, event_id, ts FROM {domain.table} WHERE {where} "
                 f"ON CONFLICT (org_id, event_id) DO NOTHING", params)
    rollups = domain_rollups(domain)
    for rollup in rollups:
        for statement in rebuild_sql(rollup, org_id):
            conn.execute(statement.text, statement.params)
    twins = sketch_rollups(domain)
    for twin in twins:
        for statement in twin.rebuild_sql(org_id):
            conn.execute(statement.text, statement.params)
    return len(rollups) + len(twins)


def ddl_checksum(rollup: Rollup) -> str:
    return hashlib.sha256(rollup_ddl(rollup).encode()).hexdigest()
