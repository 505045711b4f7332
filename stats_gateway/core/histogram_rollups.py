"""Histogram rollups: per (org, UTC slot, cube, histogrammed column, bin) event counts.

The twin of every metric rollup (same cubes and grains, ``rh_`` instead of ``ru_``) for
domains that declare approximate percentiles. Kept like the metric rollups: ingest adds
exactly the events its transaction inserted (``refresh_sql``), COPY loads and the
``rebuild`` command recompute them from raw events (``rebuild_sql``), and start-up
rebuilds a table whose definition, columns or bin rule changed (``checksum``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pypika import Table

from stats_gateway.core.domain import Domain
from stats_gateway.core.histograms import (
    GAMMA, HIST_BIN, HIST_COLUMN, HIST_N, ZERO_BIN, bin_term, histogram_columns,
    histogram_table,
)
from stats_gateway.core.rollups import EPOCH, Rollup, cube_sketched, domain_rollups
from stats_gateway.core.sql import Params, Sql


@dataclass(frozen=True)
class HistogramRollup:
    rollup: Rollup  # the metric rollup whose cube and grain this one shares
    columns: tuple[str, ...]  # the histogrammed event columns

    @property
    def table(self) -> str:
        return histogram_table(self.rollup)

    @property
    def key(self) -> list[str]:
        return ["org_id", "slot_ts", *self.rollup.columns, HIST_COLUMN, HIST_BIN]

    def ddl(self) -> str:
        types = {f.column: f.type.sql_type for f in self.rollup.domain.stored_fields}
        columns = ",\n    ".join(
            ["org_id uuid NOT NULL", "slot_ts timestamptz NOT NULL",
             *(f"{c} {types[c]}" for c in self.rollup.columns),
             f"{HIST_COLUMN} text NOT NULL", f"{HIST_BIN} integer NOT NULL",
             f"{HIST_N} bigint NOT NULL"])
        return (f"CREATE TABLE {self.table} (\n    {columns}\n);\n"
                f"CREATE UNIQUE INDEX {self.table}_key ON {self.table} "
                f"({', '.join(self.key)}) NULLS NOT DISTINCT;")

    @property
    def checksum(self) -> str:
        """Changes with the table, the columns counted or the bin rule: all need a rebuild."""
        rule = f"columns={','.join(self.columns)};gamma={GAMMA!r};zero={ZERO_BIN}"
        return hashlib.sha256(f"{self.ddl()}\n{rule}".encode()).hexdigest()

    def _insert_select(self, where: str, p: Params, source: str | None = None) -> str:
        """INSERT … SELECT of the counts of the events ``where`` selects (from the event
        table, or ``source``: rows under its name); each event gives one (column, bin)
        pair per histogrammed column (LATERAL VALUES)."""
        table = self.rollup.domain.table
        events = Table(table)
        pairs = ", ".join(
            f"({p(column, f'hcol{i}').get_sql()}::text, "
            + bin_term(events.field(column), p).get_sql(quote_char='"') + ")"
            for i, column in enumerate(self.columns))
        step, origin = p(self.rollup.step, "grain").get_sql(), p(EPOCH, "epoch").get_sql()
        slot = f"date_bin({step}, {table}.ts, {origin})"
        cube = [f"{table}.{c}" for c in self.rollup.columns]
        hist = [f"h.{HIST_COLUMN}", f"h.{HIST_BIN}"]
        names = ", ".join([*self.key, HIST_N])
        select = ", ".join([f"{table}.org_id", f"{slot} AS slot_ts", *cube, *hist, "count(*)"])
        group = ", ".join([f"{table}.org_id", slot, *cube, *hist])
        order = ", ".join([slot, *cube, *hist])
        return (f"INSERT INTO {self.table} AS r ({names}) SELECT {select} "
                f"FROM {source or table} CROSS JOIN LATERAL (VALUES {pairs}) "
                f"AS h({HIST_COLUMN}, {HIST_BIN}) "
                f"WHERE {where} AND h.{HIST_BIN} IS NOT NULL GROUP BY {group} ORDER BY {order}")

    def upsert_from(self, source: str, p: Params) -> str:
        """Add the events ``source`` holds (rows under the event table's name, e.g. the
        ones an INSERT just stored) to the counts."""
        return (f"{self._insert_select('TRUE', p, source)} ON CONFLICT ({', '.join(self.key)}) "
                f"DO UPDATE SET {HIST_N} = r.{HIST_N} + EXCLUDED.{HIST_N}")

    def rebuild_sql(self, org_id: str | None = None) -> list[Sql]:
        """Recount from raw events, for one org or for all."""
        p = Params()
        if org_id is None:
            return [Sql(f"TRUNCATE {self.table}", {}),
                    Sql(self._insert_select("TRUE", p), p.values)]
        where = f"{self.rollup.domain.table}.org_id = {p(org_id, 'org').get_sql()}"
        return [Sql(f"DELETE FROM {self.table} WHERE org_id = %(org)s", {"org": org_id}),
                Sql(self._insert_select(where, p), p.values)]


def histogram_rollups(domain: Domain) -> list[HistogramRollup]:
    """One per metric rollup of an hour or more (``Rollup.has_sketches``) whose cube keeps
    approximate percentiles (``cube_sketched``)."""
    found = []
    for rollup in domain_rollups(domain):
        columns = histogram_columns(cube_sketched(domain, rollup.cube))
        if rollup.has_sketches and columns:
            found.append(HistogramRollup(rollup, columns))
    return found
