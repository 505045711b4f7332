"""Event field types: the PostgreSQL column type and the Python value type of each."""

from __future__ import annotations

import enum
from decimal import Decimal


class FieldType(enum.Enum):
    """Event field types and the PostgreSQL column type each maps to."""

    TEXT = "text"
    BIGINT = "bigint"  # counts and bytes: exact, may be negative if min allows
    DOUBLE = "double"  # latencies
    DECIMAL = "decimal"  # money and credits: exact to the micro-unit
    CHOICE = "choice"  # one of EventField.choices, stored as text
    BOOL = "bool"
    TEXT_LIST = "text_list"  # a list of strings (e.g. refs), filtered by overlap

    @property
    def sql_type(self) -> str:
        return _SQL_TYPES[self]


_SQL_TYPES = {
    FieldType.TEXT: "text",
    FieldType.BIGINT: "bigint",
    FieldType.DOUBLE: "double precision",
    FieldType.DECIMAL: "numeric(20,6)",
    FieldType.CHOICE: "text",
    FieldType.BOOL: "boolean",
    FieldType.TEXT_LIST: "text[]",
}


VALUE_TYPES: dict[FieldType, type] = {
    FieldType.BIGINT: int, FieldType.DECIMAL: Decimal, FieldType.DOUBLE: float,
    FieldType.TEXT: str, FieldType.CHOICE: str, FieldType.BOOL: bool,
    FieldType.TEXT_LIST: list[str]}
