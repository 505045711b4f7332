"""Kinds of aggregation: each a class that knows its own SQL, merge, value type and output.

A metric's aggregation says, for the engine:

* ``terms``: the SQL that computes its *parts* from raw events (a sum, a mean's sum and
  count, a newest value with its event's time and id…);
* ``merge_terms``: how partial rows (rollup slots, segments of a range) re-aggregate into
  the same parts, exactly;
* ``upsert``: how a rollup row absorbs a batch's partial (``ON CONFLICT DO UPDATE SET``);
* ``part_types``: the rollup columns that keep the parts;
* ``sort_term``: the SQL ordering entities by it; ``finalizer``: its value from the parts;
  ``value_type``: the Python type of that value (the envelopes' field type).

``mergeable`` kinds are kept in rollups; ``sketch`` names the sketch that answers a kind in
a query of its own (``histogram``: approximate percentiles, ``distinct``: HyperLogLog
distinct counts, see ``sketches.py``). A new kind is one class here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import UnionType
from typing import TYPE_CHECKING, Any, ClassVar

from pypika import Field, Table
from pypika import functions as fn
from pypika.terms import AggregateFunction, Term

from stats_gateway.core.fields import VALUE_TYPES, FieldType
from stats_gateway.core.sqlterms import AnyOf, Params, Raw

if TYPE_CHECKING:
    from stats_gateway.core.domain import Domain, EventField

ValueType = type | UnionType  # a metric value's Python type: ``int``, ``float | None``...
Finalizer = Callable[[Mapping[str, Any]], Any]  # a row's database values: any type
Types = Mapping[str, str]  # column -> SQL type


def exact_decimal(value: Decimal) -> Decimal:
    """Drop trailing zeros without switching to exponent notation (12.500000 -> 12.5)."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def column_type(domain: Domain, column: str) -> type:
    """The Python type of a stored column's values."""
    return VALUE_TYPES[column_field_type(domain, column)]


def column_field_type(domain: Domain, column: str) -> FieldType:
    return next(f.type for f in domain.stored_fields if f.column == column)


def _converter(kind: ValueType) -> Callable[[Any], object]:
    kinds = getattr(kind, "__args__", (kind,))
    if Decimal in kinds:
        return lambda v: exact_decimal(Decimal(v))
    return int if int in kinds else float


class Aggregation:
    """The base of every kind: one part named after the metric, summed when merged."""

    additive: ClassVar[bool] = False  # buckets add up to the whole range
    mergeable: ClassVar[bool] = True  # rollups can answer it
    sortable: ClassVar[bool] = True  # SQL can order entities by it
    sketch: ClassVar[str | None] = None  # answered by this sketch's own query

    def columns(self) -> tuple[str, ...]:
        """Every event column it reads."""
        return ()

    def declaration_problems(self, fields: Sequence[EventField]) -> list[str]:
        """What is wrong with it over these stored fields (checked at start-up)."""
        return []

    def part_names(self, name: str) -> tuple[str, ...]:
        return (name,)

    def part_types(self, name: str, types: Types) -> list[tuple[str, str]]:
        return [(part, "numeric") for part in self.part_names(name)]

    def terms(self, name: str, table: Table, p: Params) -> list[Term]:
        raise NotImplementedError

    def merge_terms(self, name: str, rows: Table, narrow: bool = False) -> list[Term]:
        """``narrow``: the statement may add bigint parts as bigints (``Sum`` does)."""
        return [fn.Sum(rows.field(part)).as_(part) for part in self.part_names(name)]

    def upsert(self, name: str) -> list[str]:
        """``SET`` clauses: NULL + x stays NULL in SQL, so a NULL side is "nothing yet"."""
        return [f'"{part}" = CASE WHEN EXCLUDED."{part}" IS NULL THEN r."{part}" '
                f'ELSE COALESCE(r."{part}", 0) + EXCLUDED."{part}" END'
                for part in self.part_names(name)]

    def sort_term(self, name: str) -> Term:
        return Field(name)

    def value_type(self, domain: Domain) -> ValueType:
        raise NotImplementedError

    def finalizer(self, domain: Domain, name: str) -> Finalizer:
        raise NotImplementedError

    def integral(self, domain: Domain) -> bool:
        """Whether the series can read its final value from SQL as a bigint (``final_sql``;
        the finalizer then reads that value as well as the parts)."""
        return False

    def final_sql(self, name: str) -> str:
        """Its final value as a bigint (``integral`` kinds only)."""
        return f'COALESCE("{name}", 0)::int8 AS "{name}"'


class _OfColumn(Aggregation):
    """Reads ``column`` plus the ``plus`` columns, row by row."""

    column: str
    plus: tuple[str, ...] = ()

    def columns(self) -> tuple[str, ...]:
        return (self.column, *self.plus)

    def value(self, table: Table) -> Term:
        added: Term = table.field(self.column)
        for column in self.plus:
            added = added + table.field(column)
        return added


class _Counted(Aggregation):
    """A whole number of events or values: 0 without any."""

    def value_type(self, domain: Domain) -> ValueType:
        return int

    def finalizer(self, domain: Domain, name: str) -> Finalizer:
        return lambda row: int(row.get(name) or 0)

    def integral(self, domain: Domain) -> bool:
        return True


@dataclass(frozen=True)
class Count(_Counted):
    """Number of events, optionally only those whose ``column`` is one of ``values`` (or,
    with a ``column`` and no ``values``, those where ``column`` is not null)."""

    column: str | None = None
    values: tuple[object, ...] = ()
    additive = True

    def columns(self) -> tuple[str, ...]:
        return (self.column,) if self.column else ()

    def part_types(self, name: str, types: Types) -> list[tuple[str, str]]:
        return [(name, "bigint")]

    def terms(self, name: str, table: Table, p: Params) -> list[Term]:
        if self.column and not self.values:
            return [fn.Count(table.field(self.column)).as_(name)]  # non-null values
        term: AggregateFunction = fn.Count("*")
        if self.column:
            term = term.filter(AnyOf(table.field(self.column), p(list(self.values))))
        return [term.as_(name)]


@dataclass(frozen=True)
class Sum(_OfColumn):
    """Sum of a numeric column (plus the ``plus`` columns, row by row), optionally only where
    ``where_column`` is in ``values``. Columns added together must be NOT NULL (defaulted)."""

    column: str
    where_column: str | None = None
    values: tuple[object, ...] = ()
    plus: tuple[str, ...] = ()
    additive = True

    def columns(self) -> tuple[str, ...]:
        where = (self.where_column,) if self.where_column else ()
        return (self.column, *where, *self.plus)

    def declaration_problems(self, fields: Sequence[EventField]) -> list[str]:
        if any(f.type is FieldType.DOUBLE for f in fields if f.column in self.columns()):
            return ["sums a float column: floats do not sum exactly in every grouping "
                    "(rollups); declare it DECIMAL"]
        return []

    def terms(self, name: str, table: Table, p: Params) -> list[Term]:
        term: AggregateFunction = fn.Sum(self.value(table))
        if self.where_column:
            term = term.filter(AnyOf(table.field(self.where_column), p(list(self.values))))
        return [term.as_(name)]

    def merge_terms(self, name: str, rows: Table, narrow: bool = False) -> list[Term]:
        """Stored as numeric (a slot's sum may pass bigint), added as bigints when
        ``narrow``: PostgreSQL sums bigints in 128-bit integers, faster than numerics (a
        week of 5-minute scope-cube rows at 2M events: 6.7 -> 5.8 ms). A part past bigint
        fails the cast (NumericValueOutOfRange): the engine then asks again wide."""
        if not narrow:
            return super().merge_terms(name, rows)
        return [Raw("sum(({0})::int8)", rows.field(name), alias=name)]

    def sort_term(self, name: str) -> Term:
        return Raw(f'COALESCE("{name}", 0)')  # a filtered sum over no matching rows is 0

    def value_type(self, domain: Domain) -> ValueType:
        return column_type(domain, self.column)

    def finalizer(self, domain: Domain, name: str) -> Finalizer:
        convert = _converter(self.value_type(domain))
        return lambda row: convert(row.get(name) or 0)

    def integral(self, domain: Domain) -> bool:
        return column_field_type(domain, self.column) is FieldType.BIGINT


class _Quotient(Aggregation):
    """A value made of a numerator and a denominator part: the mean's sum and count."""

    scale: ClassVar[float] = 1.0
    suffixes: ClassVar[tuple[str, str]] = ("sum", "n")

    def part_names(self, name: str) -> tuple[str, ...]:
        return tuple(f"{name}__{suffix}" for suffix in self.suffixes)

    def sort_term(self, name: str) -> Term:
        top, bottom = self.part_names(name)
        return Raw(f'("{top}"::float8 / NULLIF("{bottom}", 0))')

    def value_type(self, domain: Domain) -> ValueType:
        return float | None

    def finalizer(self, domain: Domain, name: str) -> Finalizer:
        top, bottom = self.part_names(name)
        scale = self.scale
        return lambda row: (float(row[top]) / float(n) * scale
                            if (n := row.get(bottom)) else None)


@dataclass(frozen=True)
class Mean(_Quotient, _OfColumn):
    """Event-weighted mean of a column (plus the ``plus`` columns, row by row) over events
    that have it; null with no events."""

    column: str
    plus: tuple[str, ...] = ()

    def part_types(self, name: str, types: Types) -> list[tuple[str, str]]:
        total, n = self.part_names(name)
        return [(total, "numeric"), (n, "bigint")]

    def terms(self, name: str, table: Table, p: Params) -> list[Term]:
        total, n = self.part_names(name)  # summed as numeric: exact in any grouping
        value = self.value(table)
        return [Raw("sum(({0})::numeric)", value, alias=total), fn.Count(value).as_(n)]


@dataclass(frozen=True)
class Ratio(_Quotient):
    """``scale * sum(numerator) / sum(denominator)``; null when the denominator sums to 0."""

    numerator: str
    denominator: str
    scale: float = 1.0  # type: ignore[misc]
    suffixes = ("num", "den")

    def columns(self) -> tuple[str, ...]:
        return (self.numerator, self.denominator)

    def terms(self, name: str, table: Table, p: Params) -> list[Term]:
        num, den = self.part_names(name)
        return [fn.Sum(table.field(self.numerator)).as_(num),
                fn.Sum(table.field(self.denominator)).as_(den)]


class _Extremum(_OfColumn):
    """The smallest or largest value; null with no events."""

    sql_function: ClassVar[type] = fn.Min
    keep: ClassVar[str] = "LEAST"

    def part_types(self, name: str, types: Types) -> list[tuple[str, str]]:
        return [(name, types[self.column] if not self.plus else "numeric")]

    def terms(self, name: str, table: Table, p: Params) -> list[Term]:
        return [self.sql_function(self.value(table)).as_(name)]

    def merge_terms(self, name: str, rows: Table, narrow: bool = False) -> list[Term]:
        return [self.sql_function(rows.field(name)).as_(name)]

    def upsert(self, name: str) -> list[str]:
        return [f'"{name}" = {self.keep}(r."{name}", EXCLUDED."{name}")']

    def value_type(self, domain: Domain) -> ValueType:
        return column_type(domain, self.column) | None

    def finalizer(self, domain: Domain, name: str) -> Finalizer:
        convert = _converter(self.value_type(domain))
        return lambda row: None if (v := row.get(name)) is None else convert(v)

    def integral(self, domain: Domain) -> bool:
        return column_field_type(domain, self.column) is FieldType.BIGINT

    def final_sql(self, name: str) -> str:
        return f'"{name}"::int8 AS "{name}"'  # no value stays null


@dataclass(frozen=True)
class Min(_Extremum):
    """Smallest value of a column (plus the ``plus`` columns, row by row); null with no
    events."""

    column: str
    plus: tuple[str, ...] = ()


@dataclass(frozen=True)
class Max(_Extremum):
    """Largest value of a column (plus the ``plus`` columns, row by row); null with no
    events."""

    column: str
    plus: tuple[str, ...] = ()
    sql_function = fn.Max
    keep = "GREATEST"


@dataclass(frozen=True)
class Percentile(_OfColumn):
    """Exact continuous percentile (``percentile_cont``) of a column (plus the ``plus``
    columns, row by row), ``q`` in [0, 1]. Not mergeable: always from raw events."""

    column: str
    q: float
    plus: tuple[str, ...] = ()
    mergeable = False

    def terms(self, name: str, table: Table, p: Params) -> list[Term]:
        return [Raw("percentile_cont({0}) WITHIN GROUP (ORDER BY {1})", p(self.q),
                    self.value(table), alias=name)]

    def value_type(self, domain: Domain) -> ValueType:
        return float | None

    def finalizer(self, domain: Domain, name: str) -> Finalizer:
        return lambda row: None if (v := row.get(name)) is None else float(v)


@dataclass(frozen=True)
class ApproxPercentile(Percentile):
    """Percentile ``q`` in [0, 1] of a non-negative column, from a log-bucket histogram.

    Same rank rule as ``Percentile`` (linear interpolation between the order statistics
    at ``q * (n - 1)``), but each order statistic is estimated from its histogram bin, so
    the answer is within (gamma - 1) / (gamma + 1), about 4.76%, of the exact one. The
    histogram counts add up across slots and groups: declared ones are kept in histogram
    rollups (see ``core/histograms.py``), so they merge like sums instead of forcing raw
    events. Null without values. No parts in the metric query: merged into its rows.
    """

    column: str
    q: float
    plus: tuple[str, ...] = ()
    mergeable = True
    sortable = False  # computed after the query, from histograms
    sketch = "histogram"

    def part_names(self, name: str) -> tuple[str, ...]:
        return ()

    def terms(self, name: str, table: Table, p: Params) -> list[Term]:
        return []

    def declaration_problems(self, fields: Sequence[EventField]) -> list[str]:
        """A histogram needs a non-negative numeric column (log bins) and q in [0, 1]."""
        problems = [] if 0 <= self.q <= 1 else [f"q {self.q!r} is not in [0, 1]"]
        field = next((f for f in fields if f.column == self.column), None)
        numeric = (FieldType.BIGINT, FieldType.DOUBLE, FieldType.DECIMAL)
        if field is not None and (field.type not in numeric or field.min_value is None
                                  or field.min_value < 0):
            problems.append(f"column {self.column!r} must be numeric with min_value >= 0")
        return problems


@dataclass(frozen=True)
class DistinctCount(_Counted):
    """Number of distinct non-null values of a column: HyperLogLog estimates from sketch
    rollups where they cover the range (``core/distinct.py``; a page sorted by it is
    ranked by them too), else exact in SQL."""

    column: str
    mergeable = False  # not from rollup parts: its sketches have their own rollups
    sketch = "distinct"

    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def terms(self, name: str, table: Table, p: Params) -> list[Term]:
        return [fn.Count(table.field(self.column)).distinct().as_(name)]


@dataclass(frozen=True)
class LatestTime(Aggregation):
    """Time of the newest event, unix seconds; null with no events."""

    def part_types(self, name: str, types: Types) -> list[tuple[str, str]]:
        return [(name, "timestamptz")]

    def terms(self, name: str, table: Table, p: Params) -> list[Term]:
        return [fn.Max(table.ts).as_(name)]

    def merge_terms(self, name: str, rows: Table, narrow: bool = False) -> list[Term]:
        return [fn.Max(rows.field(name)).as_(name)]

    def upsert(self, name: str) -> list[str]:
        return [f'"{name}" = GREATEST(r."{name}", EXCLUDED."{name}")']

    def value_type(self, domain: Domain) -> ValueType:
        return int | None

    def finalizer(self, domain: Domain, name: str) -> Finalizer:
        """The newest time as unix seconds, from the part (a timestamp) or from a narrow
        row's final value (already unix seconds: ``integral``)."""
        return lambda row: (None if (v := row.get(name)) is None
                            else v if type(v) is int else int(v.timestamp()))

    def integral(self, domain: Domain) -> bool:
        return True  # unix seconds: a page of users' series is then sent as the rows come

    def final_sql(self, name: str) -> str:
        return f'floor(extract(epoch FROM "{name}"))::int8 AS "{name}"'  # null stays null


@dataclass(frozen=True)
class LatestValue(Aggregation):
    """The value of ``column`` in the newest event (ties: the larger event id), or with
    ``skip_nulls`` in the newest event that has one. Mergeable: rollups keep the newest
    event's time and id beside the value. Breakdown attributes and names use it."""

    column: str
    skip_nulls: bool = False

    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def part_names(self, name: str) -> tuple[str, ...]:
        return (name, f"{name}__at", f"{name}__eid")

    def part_types(self, name: str, types: Types) -> list[tuple[str, str]]:
        value, at, eid = self.part_names(name)
        return [(value, types[self.column]), (at, "timestamptz"), (eid, "text")]

    def terms(self, name: str, table: Table, p: Params) -> list[Term]:
        value, at, eid = self.part_names(name)  # ties: the larger event id
        known = " FILTER (WHERE {0} IS NOT NULL)" if self.skip_nulls else ""
        newest = "(array_agg({3} ORDER BY {1} DESC, {2} DESC)" + known + ")[1]"
        column = table.field(self.column)
        return [Raw(newest, column, table.ts, table.event_id, column, alias=value),
                Raw("max({1})" + known, column, table.ts, alias=at),
                Raw(newest, column, table.ts, table.event_id, table.event_id, alias=eid)]

    def merge_terms(self, name: str, rows: Table, narrow: bool = False) -> list[Term]:
        """The parts of the row with the newest event; a row without one never wins."""
        value, at, eid = (rows.field(part) for part in self.part_names(name))
        newest = "(array_agg({0} ORDER BY {1} DESC NULLS LAST, {2} DESC NULLS LAST))[1]"
        return [Raw(newest, value, at, eid, alias=value.name), fn.Max(at).as_(at.name),
                Raw(newest, eid, at, eid, alias=eid.name)]

    def upsert(self, name: str) -> list[str]:
        """All parts come from the side whose newest event is newer (time, then id)."""
        value, at, eid = self.part_names(name)
        newer = (f'(EXCLUDED."{at}" IS NOT NULL AND (r."{at}" IS NULL OR '
                 f'(EXCLUDED."{at}", EXCLUDED."{eid}") > (r."{at}", r."{eid}")))')
        return [f'"{part}" = CASE WHEN {newer} THEN EXCLUDED."{part}" ELSE r."{part}" END'
                for part in (value, at, eid)]

    def value_type(self, domain: Domain) -> ValueType:
        return column_type(domain, self.column) | None

    def finalizer(self, domain: Domain, name: str) -> Finalizer:
        return lambda row: row.get(name)
