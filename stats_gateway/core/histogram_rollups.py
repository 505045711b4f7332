"""Histogram rollups: per (org, UTC slot, cube row, histogrammed column) the bins events
fell in and how many did, two arrays in bin order (``hist_bins``, ``hist_counts``).

The twin of every metric rollup with sketches (same cubes and grains, ``rh_`` instead of
``ru_``) for domains that declare approximate percentiles. Arrays, not a row per bin: at
a few events per slot and cube row nearly every event has a bin of its own, so a row per
bin made the table as long as the events (a 30-day hourly series of the benchmark's
calls read 7,803 rows of bins, against 929 rows of arrays), and every row costs a tuple
header and an index entry.

Kept like the metric rollups: ingest merges exactly the events its transaction inserted
(``upsert_from``: bins present in both add, the others join, in order), COPY loads and
the ``rebuild`` command recompute them from raw events or a finer twin (``rebuild_sql``),
and start-up rebuilds a table whose definition, columns or bin rule changed
(``checksum``).
"""

from __future__ import annotations

from dataclasses import dataclass

from pypika import Table

from stats_gateway.core.domain import Cube, Domain
from stats_gateway.core.rollups import cube_sketched
from stats_gateway.core.histograms import (
    GAMMA, HIST_BIN, HIST_BINS, HIST_COLUMN, HIST_COUNTS, HIST_N, ZERO_BIN, bin_term,
    histogram_columns,
)
from stats_gateway.core.sketch_twins import SketchTwin
from stats_gateway.core.sqlterms import Params


def merged_arrays(bins_a: str, counts_a: str, bins_b: str, counts_b: str) -> str:
    """SQL: the sum of two histograms (bins and counts, arrays in bin order) as one
    sub-select of its two arrays, for ``SET (hist_bins, hist_counts) = …``."""
    return (f"(SELECT array_agg(b ORDER BY b), array_agg(n ORDER BY b) FROM ("
            f"SELECT b, sum(n)::int8 AS n FROM ("
            f"SELECT * FROM unnest({bins_a}, {counts_a}) "
            f"UNION ALL SELECT * FROM unnest({bins_b}, {counts_b})) AS u(b, n) "
            f"GROUP BY b) AS s)")


@dataclass(frozen=True)
class HistogramRollup(SketchTwin):
    """Per slot, cube row and histogrammed column: its bins and their event counts."""

    prefix = "rh_"
    extra_key = (HIST_COLUMN,)

    def value_columns(self) -> list[str]:
        return [f"{HIST_COLUMN} text NOT NULL", f"{HIST_BINS} integer[] NOT NULL",
                f"{HIST_COUNTS} bigint[] NOT NULL"]

    def rule(self) -> str:
        return f"columns={','.join(self.columns)};gamma={GAMMA!r};zero={ZERO_BIN};arrays"

    def _gathered(self, counted: str) -> str:
        """INSERT … SELECT of the arrays of ``counted``: rows of the key and (bin, count),
        a bin once per key."""
        keys = ", ".join(self.key)
        return (f"INSERT INTO {self.table} AS r ({keys}, {', '.join(self.value_names())}) "
                f"SELECT {keys}, array_agg({HIST_BIN} ORDER BY {HIST_BIN}), "
                f"array_agg({HIST_N} ORDER BY {HIST_BIN}) FROM ({counted}) AS b "
                f"GROUP BY {keys} ORDER BY {keys}")

    def insert_select(self, source: str, where: str, p: Params) -> str:
        """Each event gives one (column, bin) pair per histogrammed column (LATERAL
        VALUES), counted per slot, cube row and bin, then gathered per slot and row."""
        table = self.rollup.domain.table
        events = Table(table)
        pairs = ", ".join(
            f"({p(column, f'hcol{i}').get_sql()}::text, "
            + bin_term(events.field(column), p).get_sql(quote_char='"') + ")"
            for i, column in enumerate(self.columns))
        slot = self.rollup.slot_sql(f"{table}.ts", p)
        cube = [f"{table}.{c}" for c in self.rollup.columns]
        hist = [f"h.{HIST_COLUMN}", f"h.{HIST_BIN}"]
        select = ", ".join([f"{table}.org_id", f"{slot} AS slot_ts", *cube, *hist,
                            f"count(*) AS {HIST_N}"])
        group = ", ".join([f"{table}.org_id", slot, *cube, *hist])
        counted = (f"SELECT {select} FROM {source} CROSS JOIN LATERAL (VALUES {pairs}) "
                   f"AS h({HIST_COLUMN}, {HIST_BIN}) "
                   f"WHERE {where} AND h.{HIST_BIN} IS NOT NULL GROUP BY {group}")
        return self._gathered(counted)

    def _merge_from(self, source: str, where: str, p: Params) -> str:
        """A coarser slot's arrays from a finer twin's: the bins unpacked, added per
        coarse slot, gathered again."""
        rollup = self.rollup
        slot = rollup.slot_sql("slot_ts", p)
        keys = [f"{source}.org_id", slot, *rollup.columns, HIST_COLUMN, f"u.{HIST_BIN}"]
        counted = (f"SELECT {source}.org_id, {slot} AS slot_ts, "
                   f"{', '.join([*rollup.columns, HIST_COLUMN])}, u.{HIST_BIN}, "
                   f"sum(u.{HIST_N})::int8 AS {HIST_N} FROM {source} "
                   f"CROSS JOIN LATERAL unnest({HIST_BINS}, {HIST_COUNTS}) "
                   f"AS u({HIST_BIN}, {HIST_N}) WHERE {where} GROUP BY {', '.join(keys)}")
        return self._gathered(counted)

    def merge_sets(self) -> str:
        merged = merged_arrays(f"r.{HIST_BINS}", f"r.{HIST_COUNTS}",
                               f"EXCLUDED.{HIST_BINS}", f"EXCLUDED.{HIST_COUNTS}")
        return f"({HIST_BINS}, {HIST_COUNTS}) = {merged}"

    def value_names(self) -> list[str]:
        return [HIST_BINS, HIST_COUNTS]

    @classmethod
    def sketched_columns(cls, domain: Domain, cube: Cube) -> tuple[str, ...]:
        return histogram_columns(cube_sketched(domain, cube))


def histogram_rollups(domain: Domain) -> list[HistogramRollup]:
    """One per metric rollup of an hour or more (``Rollup.has_sketches``) whose cube keeps
    approximate percentiles (``cube_sketched``)."""
    return HistogramRollup.of_domain(domain)
