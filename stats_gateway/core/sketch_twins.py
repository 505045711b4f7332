"""The sketch tables beside the metric rollups: same cube and grain, a key and rows of
their own (histogram bins, ``histogram_rollups.py``; distinct-count registers,
``distinct.py``).

What every twin shares lives here: its name, DDL, checksum (a changed table or rule means
a rebuild), the upsert that merges a batch's rows (``upsert_from``) and the statements that
recompute it from raw events (``rebuild_sql``). A kind of twin says what its rows hold and
how a batch's rows are computed and merged.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import ClassVar, Self

from stats_gateway.core.domain import Cube, Domain
from stats_gateway.core.rollups import (
    Rollup, domain_rollups, domain_rollups_of, earlier_cube_source,
)
from stats_gateway.core.sqlterms import Params, Sql


def twin_table(prefix: str, rollup: Rollup) -> str:
    """A twin's table: the metric rollup's name with ``prefix`` instead of ``ru_``."""
    return prefix + rollup.table.removeprefix("ru_")


@dataclass(frozen=True)
class SketchTwin:
    rollup: Rollup  # the metric rollup whose cube and grain this one shares
    columns: tuple[str, ...]  # the event columns sketched

    prefix: ClassVar[str]  # "rh_", "rd_"
    extra_key: ClassVar[tuple[str, ...]] = ()  # key columns after the cube's

    @property
    def table(self) -> str:
        return twin_table(self.prefix, self.rollup)

    @property
    def key(self) -> list[str]:
        return ["org_id", "slot_ts", *self.rollup.columns, *self.extra_key]

    def value_columns(self) -> list[str]:
        """DDL of the columns after the cube's (extra key columns included)."""
        raise NotImplementedError

    def rule(self) -> str:
        """What the rows mean beyond the DDL (bin rule, hash): part of the checksum."""
        raise NotImplementedError

    def insert_select(self, source: str, where: str, p: Params) -> str:
        """INSERT … SELECT of the rows of the events ``source`` holds (under the event
        table's name) that ``where`` selects."""
        raise NotImplementedError

    def merge_sets(self) -> str:
        """``SET`` clauses merging a new row into an existing one."""
        raise NotImplementedError

    def merge_condition(self) -> str:
        """The ``WHERE`` of the merge: when a new row would change an existing one (TRUE:
        always; a skipped update writes no new row version)."""
        return "TRUE"

    def merged_values(self) -> list[str]:
        """The value columns of a coarser slot, merged from a finer twin's rows."""
        raise NotImplementedError

    @classmethod
    def sketched_columns(cls, domain: Domain, cube: Cube) -> tuple[str, ...]:
        """The event columns this kind sketches in ``cube``'s twins (none: no twin)."""
        raise NotImplementedError

    @property
    def finest(self) -> Self:
        """The twin of its cube's finest sketched grain."""
        grains = [r for r in domain_rollups_of(self.rollup.domain, self.rollup.cube)
                  if r.has_sketches]
        return replace(self, rollup=grains[0])

    @property
    def source(self) -> Self | None:
        """The twin whose rows this one's are merged from, exactly, when it is rebuilt
        (None: from raw events), as ``rollups.source_rollup`` chooses for metric rollups:
        a coarser grain merges its cube's finest twin; a cube's finest twin the coarsest
        twin, on a dividing grid, of an earlier-declared cube holding its columns and
        sketching the same ones. So a new grain or cube needs no raw event."""
        finest = self.finest
        if finest != self:
            return finest
        domain = self.rollup.domain
        found = earlier_cube_source(
            self.rollup, lambda r: r.has_sketches,
            lambda cube: self.sketched_columns(domain, cube) == self.columns)
        return None if found is None else replace(self, rollup=found)

    @property
    def from_raw(self) -> bool:
        return self.source is None

    def _merge_from(self, source: str, where: str, p: Params) -> str:
        rollup = self.rollup
        slot = rollup.slot_sql("slot_ts", p)
        keys = [slot, *rollup.columns, *self.extra_key]
        group = ", ".join(["org_id", *keys])
        return (f"INSERT INTO {self.table} AS r ({', '.join(self.key)}, "
                f"{', '.join(self.value_names())}) "
                f"SELECT org_id, {', '.join(keys)}, {', '.join(self.merged_values())} "
                f"FROM {source} WHERE {where} GROUP BY {group}")

    def value_names(self) -> list[str]:
        """The value columns' names (after the key)."""
        raise NotImplementedError

    def ddl(self) -> str:
        types = {f.column: f.type.sql_type for f in self.rollup.domain.stored_fields}
        columns = ",\n    ".join(
            ["org_id uuid NOT NULL", "slot_ts timestamptz NOT NULL",
             *(f"{c} {types[c]}" for c in self.rollup.columns), *self.value_columns()])
        return (f"CREATE TABLE {self.table} (\n    {columns}\n);\n"
                f"CREATE UNIQUE INDEX {self.table}_key ON {self.table} "
                f"({', '.join(self.key)}) NULLS NOT DISTINCT;")

    @property
    def checksum(self) -> str:
        """Changes with the table, the columns sketched or the rule: all need a rebuild."""
        return hashlib.sha256(f"{self.ddl()}\n{self.rule()}".encode()).hexdigest()

    def upsert_from(self, source: str, p: Params) -> str:
        """Merge the rows of the events ``source`` holds (rows under the event table's
        name, e.g. the ones an INSERT just stored)."""
        return (f"{self.insert_select(source, 'TRUE', p)} "
                f"ON CONFLICT ({', '.join(self.key)}) DO UPDATE SET {self.merge_sets()} "
                f"WHERE {self.merge_condition()}")

    @classmethod
    def of_domain(cls, domain: Domain) -> list[Self]:
        """One twin per metric rollup with sketches whose cube keeps metrics this kind
        sketches columns for (``sketched_columns``)."""
        found = []
        for rollup in domain_rollups(domain):
            columns = cls.sketched_columns(domain, rollup.cube)
            if rollup.has_sketches and columns:
                found.append(cls(rollup, columns))
        return found

    def rebuild_sql(self, org_id: str | None = None) -> list[Sql]:
        """Recompute, for one org or for all: from raw events, or from the rows of its
        ``source`` (rebuilt first: ``of_domain`` lists sources first)."""
        p = Params()
        source = self.source
        from_raw = source is None
        table = self.rollup.domain.table if source is None else source.table
        clear = Sql(f"TRUNCATE {self.table}", {})
        where = "TRUE"
        if org_id is not None:
            clear = Sql(f"DELETE FROM {self.table} WHERE org_id = %(org)s", {"org": org_id})
            where = f"{table}.org_id = {p(org_id, 'org').get_sql()}"
        fill = (self.insert_select(table, where, p) if from_raw
                else self._merge_from(table, where, p))
        return [clear, Sql(fill, p.values)]
