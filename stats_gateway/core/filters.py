"""Filter operators: each knows its SQL, its placeholder value, what it tells the planner
and how the response's meta names it.

A request's filters are ``Filter(param, column, value, op)``; ``op`` names one of
``OPERATORS``. The /v2 endpoints build them from query parameters (``request.py``): a
filter given once is ``eq``, repeated is ``in`` (any of the values), and ``param!=value``
(repeatable) is ``nin``: events whose field is none of the values, **including events
without the field** (so ``model=a`` and ``model!=a`` together add up to the whole). On a
list field (``TEXT_LIST``) the same parameters mean "holds any of" (``overlaps``) and
"holds none of, or has none" (``overlaps_none``). Seeds and key restrictions build theirs
directly (``any``, ``is_null``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pypika import Field, Parameter
from pypika.terms import Term

from stats_gateway.core.sqlterms import AnyOf, Raw


@dataclass(frozen=True)
class Filter:
    """Keep events whose ``column`` passes ``op`` (an ``OPERATORS`` key) with ``value``.
    A tuple of columns is an entity's composite key (``entity_key``): a breakdown's
    ``other`` and ``unattributed`` filter by it."""

    param: str
    column: str | tuple[str, ...]
    value: object
    op: str = "eq"

    @property
    def operator(self) -> FilterOperator:
        return OPERATORS[self.op]

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,) if isinstance(self.column, str) else self.column


def entity_key(fields: Sequence[Field]) -> Term:
    """An entity's id: the column, or a composite key's values joined with ':'."""
    if len(fields) == 1:
        return fields[0]
    return Raw("concat_ws(':', " + ", ".join("{%d}" % i for i in range(len(fields))) + ")",
               *fields)


class FilterOperator:
    """One kind of filter."""

    meta_name: ClassVar[str]  # how the response's meta names it
    rollable: ClassVar[bool] = True  # a cube holding the column answers it exactly
    pins: ClassVar[bool] = False  # leaves one value of the column (an equality)

    def criterion(self, fields: Sequence[Field], value: Parameter, flag: bool | None) -> Term:
        """The SQL condition on the key of ``fields`` (one column, or a composite key);
        ``value`` is the placeholder, ``flag`` an ``is_null``'s."""
        return self.key_criterion(entity_key(fields), value)

    def key_criterion(self, key: Term, value: Parameter) -> Term:
        raise NotImplementedError

    def placeholder_value(self, value: object) -> object | None:
        """The placeholder's value (None: the operator has no placeholder)."""
        return list(value)  # type: ignore[call-overload]


class Equal(FilterOperator):
    meta_name = "eq"
    pins = True

    def key_criterion(self, key, value):
        return key == value

    def placeholder_value(self, value):
        return value


class AnyValue(FilterOperator):
    meta_name = "in"

    def key_criterion(self, key, value):
        return AnyOf(key, value)


class NoValue(FilterOperator):
    """None of the values; an event without the field passes (it has none of them)."""

    meta_name = "nin"

    def key_criterion(self, key, value):
        return Raw("({0} IS NULL OR {0} <> ALL({1}))", key, value)


class Overlaps(FilterOperator):
    meta_name = "in"
    rollable = False  # list columns are kept in no cube

    def key_criterion(self, key, value):
        return Raw("({0} && {1}::text[])", key, value)


class OverlapsNone(FilterOperator):
    meta_name = "nin"
    rollable = False

    def key_criterion(self, key, value):
        return Raw("({0} IS NULL OR NOT ({0} && {1}::text[]))", key, value)


class IsNull(FilterOperator):
    """``value`` True: the field (any part of a composite key) is absent; False: present
    (every part). The flag is in the text. A cube keeps absent values as a group of
    their own, so it answers this exactly."""

    meta_name = "null"

    def criterion(self, fields, value, flag):
        if flag:
            return Raw("(" + " OR ".join("{%d} IS NULL" % i for i in range(len(fields))) + ")",
                       *fields)
        return Raw("(" + " AND ".join("{%d} IS NOT NULL" % i for i in range(len(fields)))
                   + ")", *fields)

    def placeholder_value(self, value):
        return None


OPERATORS: dict[str, FilterOperator] = {
    "eq": Equal(), "any": AnyValue(), "none": NoValue(), "overlaps": Overlaps(),
    "overlaps_none": OverlapsNone(), "is_null": IsNull(),
}
