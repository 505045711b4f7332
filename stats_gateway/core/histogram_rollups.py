"""Histogram rollups: per (org, UTC slot, cube, histogrammed column, bin) event counts.

The twin of every metric rollup (same cubes and grains, ``rh_`` instead of ``ru_``) for
domains that declare approximate percentiles. Kept like the metric rollups: ingest adds
exactly the events its transaction inserted (``upsert_from``), COPY loads and the
``rebuild`` command recompute them from raw events (``rebuild_sql``), and start-up
rebuilds a table whose definition, columns or bin rule changed (``checksum``).
"""

from __future__ import annotations

from dataclasses import dataclass

from pypika import Table

from stats_gateway.core.domain import Cube, Domain
from stats_gateway.core.rollups import cube_sketched
from stats_gateway.core.histograms import (
    GAMMA, HIST_BIN, HIST_COLUMN, HIST_N, ZERO_BIN, bin_term, histogram_columns,
)
from stats_gateway.core.sketch_twins import SketchTwin
from stats_gateway.core.sqlterms import Params


@dataclass(frozen=True)
class HistogramRollup(SketchTwin):
    """Per slot, cube row, histogrammed column and bin: the number of events."""

    prefix = "rh_"
    extra_key = (HIST_COLUMN, HIST_BIN)

    def value_columns(self) -> list[str]:
        return [f"{HIST_COLUMN} text NOT NULL", f"{HIST_BIN} integer NOT NULL",
                f"{HIST_N} bigint NOT NULL"]

    def rule(self) -> str:
        return f"columns={','.join(self.columns)};gamma={GAMMA!r};zero={ZERO_BIN}"

    def insert_select(self, source: str, where: str, p: Params) -> str:
        """Each event gives one (column, bin) pair per histogrammed column (LATERAL
        VALUES), counted per slot and cube row."""
        table = self.rollup.domain.table
        events = Table(table)
        pairs = ", ".join(
            f"({p(column, f'hcol{i}').get_sql()}::text, "
            + bin_term(events.field(column), p).get_sql(quote_char='"') + ")"
            for i, column in enumerate(self.columns))
        step, origin = p(self.rollup.step, "grain").get_sql(), p(self.rollup.origin, "epoch").get_sql()
        slot = f"date_bin({step}, {table}.ts, {origin})"
        cube = [f"{table}.{c}" for c in self.rollup.columns]
        hist = [f"h.{HIST_COLUMN}", f"h.{HIST_BIN}"]
        names = ", ".join([*self.key, HIST_N])
        select = ", ".join([f"{table}.org_id", f"{slot} AS slot_ts", *cube, *hist, "count(*)"])
        group = ", ".join([f"{table}.org_id", slot, *cube, *hist])
        order = ", ".join([slot, *cube, *hist])
        return (f"INSERT INTO {self.table} AS r ({names}) SELECT {select} "
                f"FROM {source} CROSS JOIN LATERAL (VALUES {pairs}) "
                f"AS h({HIST_COLUMN}, {HIST_BIN}) "
                f"WHERE {where} AND h.{HIST_BIN} IS NOT NULL GROUP BY {group} ORDER BY {order}")

    def merge_sets(self) -> str:
        return f"{HIST_N} = r.{HIST_N} + EXCLUDED.{HIST_N}"

    def value_names(self) -> list[str]:
        return [HIST_N]

    def merged_values(self) -> list[str]:
        return [f"sum({HIST_N})"]

    @classmethod
    def sketched_columns(cls, domain: Domain, cube: Cube) -> tuple[str, ...]:
        return histogram_columns(cube_sketched(domain, cube))


def histogram_rollups(domain: Domain) -> list[HistogramRollup]:
    """One per metric rollup of an hour or more (``Rollup.has_sketches``) whose cube keeps
    approximate percentiles (``cube_sketched``)."""
    return HistogramRollup.of_domain(domain)
