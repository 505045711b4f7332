"""The envelope Structs the gateway sends, copied field for field (a test in the server's
suite compares every response type's JSON Schema with the server's), so this package needs
no server code: no litestar, no psycopg."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

Number = int | float | Decimal


class Model(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """Base of every wire Struct: frozen values, camelCase on the wire, zeros kept."""


class ResourceFilterMeta(Model):
    type: str
    id: str
    operator: str | msgspec.UnsetType = msgspec.UNSET
    ids: list[str] | msgspec.UnsetType = msgspec.UNSET


class MetaWarning(Model):
    code: str
    message: str


class Summary(Model):
    total: Number | None
    avg: float | None
    std_dev: float | None
    min: Number | None
    max: Number | None
    p10: float | None
    p50: float | None
    p90: float | None


class StatsMeta(Model):
    start: int
    end: int
    scope: str
    scope_id: str | None
    window: str | None
    time_bucket_size: str
    timezone: str
    resource_filter: ResourceFilterMeta | None
    resource_filters: list[ResourceFilterMeta]
    warnings: list[MetaWarning] | msgspec.UnsetType = msgspec.UNSET


class SeriesMeta(StatsMeta, kw_only=True):
    metric: str


class BreakdownMeta(StatsMeta, kw_only=True):
    breakdown_by: str
    includes_series: bool
    limit: int
    offset: int
    total_entities: int
    sort: str
    order: str


class PreviousRange(Model):
    start: int
    end: int


class BreakdownSummary(Model):
    total: int


class ErrorDetail(Model):
    field: str
    message: str
    index: int | None = None


class ErrorResponse(Model):
    type: str
    title: str
    status: int
    success: bool
    error_code: str = msgspec.field(name="error_code")
    message: str
    request_id: str | None
    errors: list[ErrorDetail]


class IngestResponse(Model):
    success: bool
    domain: str
    received: int
    inserted: int
    duplicates: int


class ExactNumbers(Model):
    """Summary numbers read as int or exact Decimal (the general union reads them as float)."""

    total: int | Decimal | None
    min: int | Decimal | None
    max: int | Decimal | None


class ExactSummary(Model):
    summary: ExactNumbers


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _wire_value(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{name}: give a timezone-aware datetime")
        return value.isoformat()
    return str(value)


def wire_params(params: Mapping[str, Any]) -> dict[str, str]:
    """Python keywords to query parameters (``None`` values are left out)."""
    return {_camel(name): _wire_value(name, value) for name, value in params.items()
            if value is not None}
