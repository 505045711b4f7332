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

from dataclasses import dataclass
from typing import ClassVar

from pypika import Field, Parameter
from pypika.terms import Term

from stats_gateway.core.sqlterms import AnyOf, Raw


@dataclass(frozen=True)
class Filter:
    """Keep events whose ``column`` passes ``op`` (an ``OPERATORS`` key) with ``value``."""

    param: str
    column: str
    value: object
    op: str = "eq"

    @property
    def operator(self) -> FilterOperator:
        return OPERATORS[self.op]


class FilterOperator:
    """One kind of filter."""

    meta_name: ClassVar[str]  # how the response's meta names it
    rollable: ClassVar[bool] = True  # a cube holding the column answers it exactly
    pins: ClassVar[bool] = False  # leaves one value of the column (an equality)

    def criterion(self, column: Field, value: Parameter, flag: bool | None) -> Term:
        """The SQL condition; ``value`` is the placeholder, ``flag`` an ``is_null``'s."""
        raise NotImplementedError

    def placeholder_value(self, value: object) -> object | None:
        """The placeholder's value (None: the operator has no placeholder)."""
        return list(value)  # type: ignore[call-overload]


class Equal(FilterOperator):
    meta_name = "eq"
    pins = True

    def criterion(self, column, value, flag):
        return column == value

    def placeholder_value(self, value):
        return value


class AnyValue(FilterOperator):
    meta_name = "in"

    def criterion(self, column, value, flag):
        return AnyOf(column, value)


class NoValue(FilterOperator):
    """None of the values; an event without the field passes (it has none of them)."""

    meta_name = "nin"

    def criterion(self, column, value, flag):
        return Raw("({0} IS NULL OR {0} <> ALL({1}))", column, value)


class Overlaps(FilterOperator):
    meta_name = "in"
    rollable = False  # list columns are kept in no cube

    def criterion(self, column, value, flag):
        return Raw("({0} && {1}::text[])", column, value)


class OverlapsNone(FilterOperator):
    meta_name = "nin"
    rollable = False

    def criterion(self, column, value, flag):
        return Raw("({0} IS NULL OR NOT ({0} && {1}::text[]))", column, value)


class IsNull(FilterOperator):
    """``value`` True: the field is absent; False: present. The flag is in the text."""

    meta_name = "null"
    rollable = False

    def criterion(self, column, value, flag):
        return column.isnull() if flag else column.notnull()

    def placeholder_value(self, value):
        return None


OPERATORS: dict[str, FilterOperator] = {
    "eq": Equal(), "any": AnyValue(), "none": NoValue(), "overlaps": Overlaps(),
    "overlaps_none": OverlapsNone(), "is_null": IsNull(),
}
