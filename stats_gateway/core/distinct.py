"""Distinct counts (``DistinctCount``) from mergeable HyperLogLog sketches (``core/hll.py``).

A distinct count cannot be added up from pre-aggregated slots, but a HyperLogLog sketch
can: each rollup of an hour or more (``Rollup.has_sketches``) of a domain that declares
distinct counts has a twin ``rd_`` table holding, per slot and cube row, one sparse sketch
(``int[]``) per counted column, kept like the metric rollups (ingest and ``load`` merge
the sketch of the rows they insert with ``hll_union``; ``rebuild`` recomputes).

A query asks for its distinct counts on their own, so they never send the other metrics
to raw events: where the planner finds sketch rollups for part of the range, the answer
is the HLL estimate over those slots' sketches plus the registers of the raw events at
the ends (within ``hll.error_bound(n)``: 3% or 3, whichever is larger; see ``core/hll.py``);
where it finds none (a range under an hour, a bucket grid no grain divides, a filter no
cube holds), it is ``count(DISTINCT …)`` over the raw events: exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import cast

from pypika import Table

from stats_gateway.core import hll
from stats_gateway.core.aggregations import DistinctCount
from stats_gateway.core.domain import Cube, Dimension, Domain, Metric
from stats_gateway.core.request import BreakdownRequest, StatsRequest
from stats_gateway.core.rollups import (
    SCOPE_COLUMNS, Rollup, Segment, cube_sketched, entity_columns, plan_segments,
)
from stats_gateway.core.sketch_twins import SketchTwin, twin_table
from stats_gateway.core.sql import (
    ENTITY, Cut, Grouping, Params, Raw, Sql, Where, cut_of, grouping_shape, paged_text, reads,
    sketch_segment, sketch_values, where_of,
)

D_COLUMN, NONZERO, HARMONIC, EXACT = "d_column", "d_nonzero", "d_harmonic", "d_exact"


def is_distinct(metric: Metric) -> bool:
    return metric.agg.sketch == "distinct"


def distinct_columns(metrics: Iterable[Metric]) -> tuple[str, ...]:
    """The columns the distinct-count metrics read, each once, in order."""
    return tuple(dict.fromkeys(counted_column(m) for m in metrics if is_distinct(m)))


def counted_column(metric: Metric) -> str:
    """The column a distinct-count metric counts (``is_distinct``: a DistinctCount)."""
    return cast(DistinctCount, metric.agg).column


def sketch_column(column: str) -> str:
    return f"d__{column}"


def distinct_table(rollup: Rollup) -> str:
    """The sketch twin of a metric rollup: ``rd_`` instead of ``ru_``."""
    return twin_table(DistinctRollup.prefix, rollup)


# --- the rollup twins ------------------------------------------------------------------


@dataclass(frozen=True)
class DistinctRollup(SketchTwin):
    """Per slot and cube row: one HyperLogLog sketch per counted column."""

    prefix = "rd_"

    def value_columns(self) -> list[str]:
        return [f'"{sketch_column(c)}" int[]' for c in self.columns]

    def rule(self) -> str:
        return f"p={hll.P};hash={hll.HASH_RULE}"

    def insert_select(self, source: str, where: str, p: Params) -> str:
        table = self.rollup.domain.table
        slot = self.rollup.slot_sql(f"{table}.ts", p)
        cube = [f"{table}.{c}" for c in self.rollup.columns]
        names = ", ".join([*self.key, *(f'"{sketch_column(c)}"' for c in self.columns)])
        group = ", ".join([f"{table}.org_id", slot, *cube])
        if len(self.columns) == 1:
            return self._by_register(source, where, slot, names)
        sketches = [f"hll_agg(hll_code({table}.{c})) FILTER (WHERE {table}.{c} IS NOT NULL)"
                    for c in self.columns]
        return (f"INSERT INTO {self.table} AS r ({names}) SELECT "
                f"{', '.join([f'{table}.org_id', slot, *cube, *sketches])} "
                f"FROM {source} WHERE {where} GROUP BY {group} ORDER BY {group}")

    def _by_register(self, source: str, where: str, slot: str, names: str) -> str:
        """One counted column: the largest code per register in a plain GROUP BY, then the
        codes in order per row (array_agg): the very sketch ``hll_agg`` builds, without
        its per-row PL/pgSQL normalisation (ingest's sketch upserts: about 15% less
        database CPU per batch, measured)."""
        table, column = self.rollup.domain.table, self.columns[0]
        code = f"hll_code({table}.{column})"
        keys = [f"{table}.org_id", slot, *(f"{table}.{c}" for c in self.rollup.columns)]
        aliases = ["org_id", "slot_ts", *self.rollup.columns]
        inner = (f"SELECT {', '.join(f'{k} AS {a}' for k, a in zip(keys, aliases))}, "
                 f"max({code}) AS code FROM {source} WHERE {where} "
                 f"GROUP BY {', '.join([*keys, f'{code} >> 6'])}")
        outer = ", ".join(f"g.{a}" for a in aliases)
        return (f"INSERT INTO {self.table} AS r ({names}) SELECT {outer}, "
                f"coalesce(array_agg(g.code ORDER BY g.code) FILTER (WHERE g.code IS NOT NULL),"
                f" '{{}}') FROM ({inner}) AS g GROUP BY {outer} ORDER BY {outer}")

    def value_names(self) -> list[str]:
        return [f'"{sketch_column(c)}"' for c in self.columns]

    def merged_values(self) -> list[str]:
        return [f'hll_union_agg("{sketch_column(c)}")' for c in self.columns]

    @classmethod
    def sketched_columns(cls, domain: Domain, cube: Cube) -> tuple[str, ...]:
        return distinct_columns(cube_sketched(domain, cube))

    def merge_sets(self) -> str:
        """``hll_union`` inlined (one code per register, the largest, in order): no
        function call per conflicting row."""
        return ", ".join(f'"{s}" = ARRAY(SELECT max(c) FROM unnest(r."{s}" || EXCLUDED."{s}")'
                         f' AS c WHERE c IS NOT NULL GROUP BY c >> 6 ORDER BY 1)'
                         for s in map(sketch_column, self.columns))

    def merge_condition(self) -> str:
        """Only where the batch brings a code the row lacks: a register's code already
        there leaves its maximum as it is. Most of a batch's events belong to entities
        and items each slot has seen (a user's 30-day slot and its known conversations),
        so most conflicting rows are left alone instead of being rewritten."""
        return "NOT (" + " AND ".join(
            f'coalesce(EXCLUDED."{s}" <@ coalesce(r."{s}", \'{{}}\'), TRUE)'
            for s in map(sketch_column, self.columns)) + ")"


def distinct_rollups(domain: Domain) -> list[DistinctRollup]:
    """One per metric rollup with sketches whose cube keeps distinct counts."""
    return DistinctRollup.of_domain(domain)


# --- reading ----------------------------------------------------------------------------


def _register_rows(domain: Domain, column: str, where: Where, fixed: bool, grouping: Grouping,
                   i: int, cut: Cut) -> str:
    """Segment ``i``'s (keys, reg, rank) rows: hashed from raw events (the largest rank
    per register), or every code unpacked from a sketch rollup's sketches."""
    if cut.rollup is None:
        events = Table(domain.table)
        code = Raw("hll_code({0})", events.field(column))
        q = sketch_segment(domain, events, events.ts, [Raw("max({0} & 63)", code, alias="rank")],
                           where, fixed, grouping, i, cut,
                           extra_keys=[Raw("({0} >> 6)", code, alias="reg")])
        return q.where(events.field(column).notnull()).get_sql()
    name = distinct_table(cut.rollup)
    table = Table(name)
    # each stored code as it is: distinct_sql takes the largest rank per register once,
    # over every segment (a second GROUP BY here cost a pass over every unpacked code)
    q = sketch_segment(domain, table, table.slot_ts, [Raw('("c"."code" & 63)', alias="rank")],
                       where, fixed, grouping, i, cut,
                       extra_keys=[Raw('("c"."code" >> 6)', alias="reg")], grouped=False)
    lateral = (f'FROM "{name}" CROSS JOIN LATERAL '
               f'unnest("{name}"."{sketch_column(column)}") AS "c"("code")')
    return q.get_sql().replace(f'FROM "{name}"', lateral, 1)


SKETCH = "sketch"


def _sketch_rows(domain: Domain, column: str, where: Where, fixed: bool, grouping: Grouping,
                 i: int, cut: Cut, every_group: bool = False) -> str:
    """Segment ``i``'s (keys, sketch) rows: per group, the sketch of the raw events'
    values (``hll_agg``), or a sketch rollup's stored sketches, one per slot and row.
    Unions of whole sketches, not every code unpacked into a row and grouped by register:
    a year of weekly ai sketches (161k codes) took 101-127 ms that way, 69-72 ms this way.
    ``every_group``: raw events' groups without a value too (an empty sketch), as the
    sketch rollups keep them: every group that has events."""
    if cut.rollup is None:
        events = Table(domain.table)
        sketch = Raw("hll_agg(hll_code({0}))", events.field(column), alias=SKETCH)
        q = sketch_segment(domain, events, events.ts, [sketch], where, fixed, grouping, i, cut)
        return (q if every_group else q.where(events.field(column).notnull())).get_sql()
    # the stored sketches as they are: distinct_sql unions each group's once, over every
    # segment (a union here too normalized every code twice)
    table = Table(distinct_table(cut.rollup))
    sketch = Raw("{0}", table.field(sketch_column(column)), alias=SKETCH)
    return sketch_segment(domain, table, table.slot_ts, [sketch], where, fixed, grouping, i,
                          cut, grouped=False).get_sql()


def _exact_rows(domain: Domain, column: str, where: Where, fixed: bool, grouping: Grouping,
                key_sql: Sequence[str]) -> str:
    """Each group's distinct values as rows (a GROUP BY of the keys and the value, which
    PostgreSQL may hash), then counted: ``count(DISTINCT …)`` sorts every group's values
    instead. A year's users page filtered by model, its 50 users' counts over 300k events
    (PostgreSQL 15, 2M events): 684-749 -> 463-502 ms. Groups whose events carry no value
    are absent (``group_distincts`` counts them 0); without keys, one row, 0 when empty.
    The whole range is one raw segment (``distinct_sql``)."""
    events = Table(domain.table)
    values = sketch_segment(domain, events, events.ts, [], where, fixed, grouping, 0, Cut(None),
                            extra_keys=[events.field(column).as_("d_value")])
    values = values.where(events.field(column).notnull())
    keys = ", ".join(key_sql)
    group = f" GROUP BY {keys}" if keys else ""
    return (f"SELECT {', '.join([*key_sql, f'count(*) AS {EXACT}'])} "
            f"FROM ({values.get_sql()}) AS v{group}")


def few_groups(request: StatsRequest, grouping: Grouping) -> bool:
    """No time buckets, or buckets of a day or more: few groups, each of many codes, best
    merged as whole sketches (``_union_of_sketches``); finer buckets are many groups of
    few codes, where the union's per-row and per-group cost loses to one pass over the
    codes (``_largest_ranks``): a 30-day hourly ai series, 15.8 against 21.6 ms."""
    return not grouping.by_bucket or request.plan.size.step >= timedelta(days=1)


def small_sketches(segments: Sequence[Segment], grouping: Grouping) -> bool:
    """Whether a segment reads many sketches of a few codes each per group, where
    unnesting every code costs less than merging sketch by sketch, whatever the groups:
    the main cube's (its rows split a slot beyond the scope and one dimension, by every
    low-cardinality column: ai's daily main-cube sketches hold 2.9 codes on average; the
    ai year by model, 60k sketches of 173k codes, 255 -> 115 ms), and an entity cube's
    read for groups other than its entities (one sketch per user and slot: a year's
    total of every user, 193k sketches of 686k codes, 3.1 s -> 0.2 s). With fuller
    sketches (a page of users from 30-day and daily ones, the org's weeks) the union
    stays ahead (39 against 60 ms, 37 against 57: PostgreSQL 15, 2M events)."""
    grouped = set(grouping.dimension.columns) if grouping.dimension is not None else set()
    return any(seg.rollup is not None
               and (len(seg.rollup.columns) > len(SCOPE_COLUMNS) + 1
                    or not set(entity_columns(seg.rollup)) <= grouped)
               for seg in segments)


# a group whose sketches hold more codes than this in all is merged register by register:
# ``hll_union_agg`` compacts its state (every register kept so far, read again) each time
# it passes this many codes, so a group far past it is read about twice over
UNION_MAX_CODES = 32768


def _union_of_sketches(domain: Domain, column: str, where: Where, fixed: bool,
                       grouping: Grouping, cuts: Sequence[Cut], label: str,
                       key_sql: Sequence[str]) -> str:
    """Each group's sketches (``_sketch_rows``) merged by one ``hll_union_agg`` (a group
    of one sketch read as it is), then its registers and harmonic sum read off the sketch;
    a group of more than ``UNION_MAX_CODES`` codes in all unnested instead, the largest
    rank per register taken in one pass. The ai year by workspace (weekly scope-cube
    sketches, 24k-56k codes a workspace at 2M events, 96k-197k at 10M): 117-139 -> 98 ms
    and 373 -> 212-235 ms (the statement, PostgreSQL 15)."""
    union = " UNION ALL ".join(
        f"({_sketch_rows(domain, column, where, fixed, grouping, i, cut)})"
        for i, cut in enumerate(cuts))
    keys = ", ".join(key_sql)
    partition = f"PARTITION BY {keys}" if keys else ""
    # (no keys: one group, which HAVING keeps from adding an empty row beside a lone sketch)
    group = f" GROUP BY {keys}" if keys else " HAVING count(*) > 0"
    # a group of one sketch (a bucket that is a whole slot: the org's weeks of a year) is
    # that sketch, read as it is; only the others are merged (the ai year's distinct
    # counts: 36.8 -> 13.8 ms, PostgreSQL 15, 2M events)
    counted = (f"SELECT *, count(*) OVER ({partition}) AS n, "
               f"coalesce(sum(cardinality({SKETCH})) OVER ({partition}), 0) AS codes "
               f"FROM ({union}) AS u0")
    merged = (f"SELECT {', '.join([*key_sql, SKETCH])} FROM u WHERE n = 1 UNION ALL "
              f"SELECT {', '.join([*key_sql, f'hll_union_agg({SKETCH})'])} FROM u "
              f"WHERE n > 1 AND codes <= {UNION_MAX_CODES}{group}")
    # a sketch holds one code (register << 6 | rank) per register it has seen; 2^-rank
    # as a division by a shifted 1 (exact, as power() is, and cheaper). The estimate reads
    # the sum only past linear counting's last count: below it, no code is unnested
    outer = [label, *key_sql, f"cardinality({SKETCH}) AS {NONZERO}",
             f"CASE WHEN cardinality({SKETCH}) > {hll.LINEAR_COUNTING_MAX_NONZERO} THEN "
             f"(SELECT sum(1::float8 / (1::int8 << (c & 63))) FROM unnest({SKETCH}) AS c) "
             f"END AS {HARMONIC}"]
    unpacked = ", ".join([*key_sql, 'c >> 6 AS "reg"', 'c & 63 AS "rank"'])
    big = (f"SELECT {unpacked} FROM u CROSS JOIN LATERAL unnest({SKETCH}) AS c "
           f"WHERE n > 1 AND codes > {UNION_MAX_CODES}")
    return (f"WITH u AS MATERIALIZED ({counted}) "
            f"SELECT {', '.join(outer)} FROM ({merged}) AS r UNION ALL "
            f"{_per_register(label, key_sql, big, keep_empty_total=False)}")


def _per_register(label: str, key_sql: Sequence[str], code_rows: str,
                  keep_empty_total: bool = True) -> str:
    """From (keys, ``reg``, ``rank``) rows, the largest rank per group and register, then
    per group its registers and harmonic sum. Without keys, one row, 0 registers when
    there are no codes, unless not ``keep_empty_total`` (a second branch beside one that
    answers the group already)."""
    regs = ", ".join([*key_sql, '"reg"'])
    per_register = (f'SELECT {regs}, max("rank") AS "rank" FROM ({code_rows}) AS u '
                    f"GROUP BY {regs}")
    outer = [label, *key_sql, f"count(*) AS {NONZERO}",
             f'sum(power(2::float8, -"rank")) AS {HARMONIC}']
    group = (f" GROUP BY {', '.join(key_sql)}" if key_sql
             else "" if keep_empty_total else " HAVING count(*) > 0")
    return f"SELECT {', '.join(outer)} FROM ({per_register}) AS r{group}"


def _largest_ranks(domain: Domain, column: str, where: Where, fixed: bool,
                   grouping: Grouping, cuts: Sequence[Cut], label: str,
                   key_sql: Sequence[str]) -> str:
    """Every code as a (keys, register, rank) row (``_register_rows``), the largest rank
    per group and register, then per group the registers and harmonic sum."""
    union = " UNION ALL ".join(
        f"({_register_rows(domain, column, where, fixed, grouping, i, cut)})"
        for i, cut in enumerate(cuts))
    return _per_register(label, key_sql, union)


def distinct_sql(domain: Domain, request: StatsRequest, metrics: Sequence[Metric], org_id: str,
                 grouping: Grouping, use_rollups: bool) -> Sql:
    """Per group and counted column: ``d_exact`` (raw events only) or the HLL
    ``d_nonzero``/``d_harmonic`` of the sketch rollups plus the raw ends. The text is
    built once per shape (``_distinct_text``)."""
    chosen = [m for m in metrics if is_distinct(m)]
    segments = (plan_segments(domain, request, chosen, grouping.planned_dimension,
                              grouping.by_bucket,
                              sketches=True) if use_rollups else [])
    sketched = any(seg.rollup is not None for seg in segments)
    text, constants = _distinct_text(
        domain, distinct_columns(chosen), where_of(request), request.plan.size.is_fixed,
        grouping_shape(grouping), tuple(map(cut_of, segments)) if sketched else None,
        few_groups(request, grouping) and not small_sketches(segments, grouping))
    read = reads(request, segments if sketched else [])  # exact: the whole range, raw
    return Sql(text, {**constants, **sketch_values(request, org_id, read, grouping)},
               purpose="distinct counts", segments=read)


@lru_cache(maxsize=1024)
def _distinct_text(domain: Domain, columns: tuple[str, ...], where: Where, fixed: bool,
                   grouping: Grouping, cuts: tuple[Cut, ...] | None,
                   unions: bool) -> tuple[str, dict]:
    """``distinct_sql``'s text: exact counts where ``cuts`` is None, else the sketches of
    the cuts, merged whole (``unions``) or register by register."""
    p = Params()
    key_sql = [k.get_sql(quote_char='"') for k in grouping.key_fields]
    selects = []
    for column in columns:
        label = f"{p(column).get_sql()}::text AS {D_COLUMN}"
        if cuts is None:
            inner = _exact_rows(domain, column, where, fixed, grouping, key_sql)
            selects.append(f"SELECT {', '.join([label, *key_sql, EXACT])} FROM ({inner}) AS e")
            continue
        rows = _union_of_sketches if unions else _largest_ranks
        selects.append(rows(domain, column, where, fixed, grouping, cuts, label, key_sql))
    return " UNION ALL ".join(f"({s})" for s in selects), p.values


def group_distincts(rows: Iterable[Mapping], metrics: Sequence[Metric],
                    grouping: Grouping) -> dict[tuple, dict[str, int]]:
    """Per group key ((bucket,), (entity,), (bucket, entity) or ()): each distinct-count
    metric's value, exact or estimated. Groups without values are absent (count 0)."""
    names = grouping.key_names
    found: dict[tuple, dict[str, int]] = {}
    for row in rows:
        key = tuple(row[name] for name in names)
        exact = row.get(EXACT)
        value = (int(exact) if exact is not None
                 else hll.estimate(int(row[NONZERO] or 0), float(row[HARMONIC] or 0)))
        found.setdefault(key, {})[row[D_COLUMN]] = value
    chosen = [(m.name, counted_column(m)) for m in metrics if is_distinct(m)]  # once
    return {key: {name: by_column.get(column, 0) for name, column in chosen}
            for key, by_column in found.items()}


# --- a page ranked by a distinct count ------------------------------------------------


def estimate_ranking_segments(domain: Domain, request: BreakdownRequest,
                              use_rollups: bool) -> list[Segment] | None:
    """The segments that rank a breakdown page by its sort metric's estimate, when the
    sort is a distinct count, nothing else orders the page (no then-by, no share) and
    sketch rollups hold part of the range; None otherwise (the exact ``count(DISTINCT)``
    of the raw events orders it: a short range, a filter no sketched cube holds)."""
    metric = domain.metric(request.sort)
    if (not use_rollups or not is_distinct(metric) or request.then_by
            or request.dimension.share_of):
        return None
    segments = plan_segments(domain, request, [metric], request.dimension, False,
                             sketches=True)
    return segments if any(seg.rollup is not None for seg in segments) else None


# a page this deep or shallower is found from its likely entities (``_pruned_ranking``);
# deeper pages count every entity's registers: where the depth nears the entity count,
# every entity is a candidate and the bounds are extra work (the last page of 20k users
# at 2M events: 655 -> 896 ms), though at 10M events pages 2,000-10,000 deep gained
# (3.1 -> 1.8-2.4 s)
PRUNED_RANKING_MAX_DEPTH = 1000


@dataclass(frozen=True)
class _Pruning:
    """How a page in one direction is found from likely entities. Every entity has a
    lower and an upper bound on its count of non-empty registers, from its sketch rows
    alone (no unnesting): ``lo``, its largest row's length (a sketch holds one code per
    register), and ``hi``, the sum of its rows' lengths. The ``depth`` (offset + limit)
    entities ``ahead`` in the page's direction by a bound have their registers counted;
    ``cut`` is the count of the last of them; every other entity whose bound could still
    reach ``cut`` (``kept``) is counted too. Linear counting, the estimate up to
    ``LINEAR_COUNTING_MAX_NONZERO`` registers, rises strictly with the count, so an
    entity left out has at least ``depth`` entities strictly before it: it is not on
    the page. Past linear counting the estimate reads ranks as well: an entity that may
    pass it is always counted, and where one of ``ahead`` passes it, ``cut`` is NULL
    and every entity is."""

    order: str  # the order of ``ahead``
    cut: str  # the aggregate of ahead's counts that bounds the page
    kept: str  # b's entities whose count could reach the cut ``v``


_PRUNING = {True: _Pruning("hi DESC", "min(nz)", "hi >= v"),
            False: _Pruning("hi ASC", "max(nz)", "lo <= v")}


def _nonzero_counts(entity: str, rows: str) -> str:
    """Per entity of the sketch rows ``rows``: its count of non-empty registers (all
    linear counting needs). The rows sorted by entity, then unnested in that order:
    count(DISTINCT) then sorts each entity's codes on its own, in memory. A hash of
    (entity, register) over every code, or a sort of every code by entity, spilled past
    work_mem: 960 and 640 against 365 ms (a year of 20k users, 686k codes, PostgreSQL 15)."""
    return (f"SELECT s.{entity}, count(DISTINCT c >> 6) AS nz FROM "
            f"({rows} ORDER BY s.{entity}) AS s "
            f"LEFT JOIN LATERAL unnest(s.{SKETCH}) AS c ON TRUE GROUP BY s.{entity}")


def _pruned_ranking(entity: str, descending: bool) -> str:
    """The ``n`` (entity, nz) of the entities that may be on the page (``_Pruning``),
    and ``b`` with every entity's bounds, to count them. The users page of a year by
    conversations, 20k users (2M events, PostgreSQL 15): the first 50 and 73 more are
    counted instead of every user, 510 -> 325 ms (the ascending page 540 -> 215). The
    counted entities' rows are materialized before they are sorted: otherwise, misled by
    the CTEs' row estimates, the planner sorted all of ``s`` for a merge join (10M events,
    100k users, offset 200: 2.5 -> 1.4 s)."""
    rule, past = _PRUNING[descending], hll.LINEAR_COUNTING_MAX_NONZERO
    return (f"b AS (SELECT {entity}, coalesce(max(cardinality({SKETCH})), 0) AS lo, "
            f"coalesce(sum(cardinality({SKETCH})), 0) AS hi FROM s GROUP BY {entity}), "
            f"ahead AS (SELECT {entity} FROM b ORDER BY {rule.order}, {entity} "
            f"LIMIT %(offset)s + %(limit)s), "
            f"ahead_rows AS MATERIALIZED (SELECT s.* FROM s JOIN ahead USING ({entity})), "
            f"n1 AS ({_nonzero_counts(entity, 'SELECT * FROM ahead_rows AS s')}), "
            f"cut AS (SELECT CASE WHEN max(nz) <= {past} THEN {rule.cut} END AS v FROM n1), "
            f"rest AS (SELECT b.{entity} FROM b CROSS JOIN cut "
            f"WHERE NOT EXISTS (SELECT FROM ahead WHERE ahead.{entity} = b.{entity}) "
            f"AND (cut.v IS NULL OR b.hi > {past} OR {rule.kept})), "
            f"rest_rows AS MATERIALIZED (SELECT s.* FROM s JOIN rest USING ({entity})), "
            f"n AS (SELECT * FROM n1 UNION ALL "
            f"{_nonzero_counts(entity, 'SELECT * FROM rest_rows AS s')})")


def estimate_ranking_sql(domain: Domain, request: BreakdownRequest, org_id: str,
                         segments: Sequence[Segment]) -> Sql:
    """One page of entities ordered by the estimate of the distinct count they are sorted
    by (the very estimate ``distinct_sql`` answers for each of them), with the count of
    all entities and the names: every entity's sketches over ``segments``
    (``estimate_ranking_segments``), the non-empty registers of those that may be on the
    page counted (linear counting needs no more; ``_pruned_ranking``, or of every entity
    for a page deeper than ``PRUNED_RANKING_MAX_DEPTH``), their harmonic sum read only
    for entities past linear counting; a dimension of few entities (models) estimated in
    one pass (``_few_estimates``).
    Every group with events has a sketch row, empty or not, so the entities are those
    of the range. The page's values of the metric are these rows' (not asked again: ai
    models by ``activeConversations`` over a year, 356-401 -> 225-251 ms; the users
    page, whose page distincts ran beside its page totals, within noise).
    The exact count from raw events took 3.4 s for a year of 20k users (2M events):
    each user's conversations sorted and counted."""
    dim = request.dimension
    # a dimension of few entities (models) has them all in the first page's depth
    few = domain.has_few_entities(dim)
    pruned = request.offset + request.limit <= PRUNED_RANKING_MAX_DEPTH and not few
    text, constants = _estimate_ranking_text(
        domain, dim, request.sort, request.descending, where_of(request),
        request.plan.size.is_fixed, tuple(map(cut_of, segments)), pruned, few)
    return Sql(text, {**constants, **sketch_values(request, org_id, segments, Grouping()),
                      "limit": request.limit, "offset": request.offset},
               purpose="breakdown page ranked by an estimate",
               segments=reads(request, segments))


def _few_estimates(rows: str, entity: str, name: str) -> str:
    """Every entity's estimate in one pass over its codes, for a dimension of few
    entities (models): the largest rank per (entity, register), then ``hll_estimate``.
    Its hash holds at most 16,384 registers an entity. Counting the registers first and
    the harmonic sum after (what many small entities need, ``_nonzero_counts``) unnests
    the codes of an entity past linear counting twice: ai models by
    ``activeConversations`` over a year at 10M events (1M codes), 555 ms."""
    estimates = hll.grouped_estimate_sql("s", f"s.{SKETCH}", {ENTITY: f"s.{entity}"},
                                         estimate="estimate", keep_empty=True)
    return (f'WITH s AS ({rows}) SELECT {entity}, "estimate" AS "{name}" '
            f"FROM ({estimates}) AS e")


@lru_cache(maxsize=1024)
def _estimate_ranking_text(domain: Domain, dim: Dimension, sort: str, descending: bool,
                           where: Where, fixed: bool, cuts: tuple[Cut, ...],
                           pruned: bool, few: bool) -> tuple[str, dict]:
    p = Params()
    metric = domain.metric(sort)
    column = counted_column(metric)
    grouping = Grouping(dimension=dim)
    rows = " UNION ALL ".join(
        f"({_sketch_rows(domain, column, where, fixed, grouping, i, cut, every_group=True)})"
        for i, cut in enumerate(cuts))
    entity = f'"{ENTITY}"'
    if few:
        return (paged_text(domain, dim, sort, descending, (), _few_estimates(
            rows, entity, metric.name), p, attributes=False), p.values)
    past = hll.LINEAR_COUNTING_MAX_NONZERO
    counts = (_pruned_ranking(entity, descending) if pruned
              else f"n AS ({_nonzero_counts(entity, 'SELECT * FROM s')})")
    # past linear counting, the whole estimate (largest rank per register): hll's own
    past_linear = hll.grouped_estimate_sql(
        f"s JOIN n ON n.{entity} = s.{entity} AND n.nz > {past}", f"s.{SKETCH}",
        {ENTITY: f"s.{entity}"}, estimate="past_linear")
    total = ", (SELECT count(*) FROM b) AS total_entities" if pruned else ""
    agg = (f"WITH s AS MATERIALIZED ({rows}), {counts}, "
           f"big AS ({past_linear}) "
           f"SELECT n.{entity}, coalesce(big.past_linear, hll_estimate(n.nz, 0::float8)) "
           f'AS "{metric.name}"{total} FROM n LEFT JOIN big ON big.{entity} = n.{entity}')
    return (paged_text(domain, dim, sort, descending, (), agg, p, attributes=False,
                       counted=pruned), p.values)
