"""The SQL building blocks every query builder shares: named placeholders, our own fixed
fragments, ``= ANY`` over one array placeholder, and a statement with its values.

Every value travels as a named placeholder (``%(p0)s``): pypika would inline values given
to functions and paste time-zone names unescaped, so nothing it renders comes from a user.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pypika import Field, Parameter
from pypika.terms import Criterion, Term

if TYPE_CHECKING:
    from stats_gateway.core.rollups import Segment


@dataclass
class Params:
    """Named placeholders and their values, allocated as the query is built."""

    values: dict[str, object] = field(default_factory=dict)
    prefix: str = ""  # for named ones: several statements' parameters in one text

    def __call__(self, value: object, name: str | None = None) -> Parameter:
        name = self.prefix + name if name else f"p{len(self.values)}"
        self.values[name] = value
        return Parameter(f"%({name})s")

    def scoped(self, prefix: str) -> Params:
        """The same values, with named placeholders prefixed: one statement's share."""
        return Params(self.values, prefix)


def ref(name: str) -> Parameter:
    """A named placeholder whose value each request supplies (the text stays the same)."""
    return Parameter(f"%({name})s")


class Raw(Term):
    """A fixed SQL fragment of our own (never user text), with its own sub-terms."""

    def __init__(self, template: str, *terms: Term, alias: str | None = None):
        super().__init__(alias=alias)
        self.template, self.terms = template, terms

    def get_sql(self, **kw) -> str:
        kw = {**kw, "with_alias": False}
        sql = self.template.format(*(t.get_sql(**kw) for t in self.terms))
        return f'{sql} "{self.alias}"' if self.alias else sql


class AnyOf(Criterion):
    """``column = ANY(%(p)s)``: one array placeholder instead of inlined IN lists."""

    def __init__(self, column: Term, values: Parameter):
        super().__init__()
        self.column, self.values = column, values

    def get_sql(self, **kw) -> str:
        return f"{self.column.get_sql(**kw)} = ANY({self.values.get_sql(**kw)})"


class EventsAfter(Criterion):
    """``[NOT] EXISTS`` an event of the org in ``events`` in ``[after, until)``: the
    condition of a segment's ``TailGuard`` (core/rollups.py), which PostgreSQL checks once
    per statement (an InitPlan under a one-time filter)."""

    def __init__(self, events: str, org: Term, after: Term, until: Term, exist: bool):
        super().__init__()
        self.events, self.org, self.after, self.until, self.exist = (events, org, after,
                                                                      until, exist)

    def get_sql(self, **kw) -> str:
        found = (f'EXISTS (SELECT 1 FROM "{self.events}" WHERE "org_id"={self.org.get_sql(**kw)}'
                 f' AND "ts">={self.after.get_sql(**kw)} AND "ts"<{self.until.get_sql(**kw)})')
        return found if self.exist else f"NOT {found}"


@dataclass(frozen=True)
class Sql:
    """One statement as the planner decided it: what the engine runs and what
    ``StatsEngine.explain`` shows (``purpose`` and ``segments`` are for the latter)."""

    text: str
    params: dict[str, object]
    tuples: bool = False  # rows as tuples (in SELECT order) rather than dicts
    purpose: str = ""  # what the engine asks it for ("series metrics", "breakdown page"...)
    segments: tuple[Segment, ...] = ()  # the planned reads: a rollup or raw events, each range
