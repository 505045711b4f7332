"""The shared envelopes, with concrete per-domain point/totals types.

Shapes follow Flashback V2's ``TimeSeriesResponse`` and ``BreakdownResponse``; the extra
meta fields (``timezone``, ``metric``, ``resourceFilters``, ``sort``, ``order``) carry the
parameters Flashback does not have. Per-domain Structs are built with ``defstruct`` so
points are flat ``{ts, ...metrics}`` and OpenAPI names read well.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any

import msgspec

from stats_gateway.core.domain import Domain, Metric
from stats_gateway.core.aggregations import ValueType, column_type
from stats_gateway.model import Model

Number = int | float | Decimal


class ResourceFilterMeta(Model):
    """A filter as asked. A single equality stays ``{type, id}`` as Flashback has it;
    any other filter adds its ``operator`` (``in``, ``nin``) and its ``ids``, with ``id``
    their comma-joined text (absent fields are left out, not null: UNSET)."""

    type: str
    id: str
    operator: str | msgspec.UnsetType = msgspec.UNSET
    ids: list[str] | msgspec.UnsetType = msgspec.UNSET


class MetaWarning(Model):
    """Something the gateway changed or noticed in a request, said instead of done
    silently: a stable ``code`` and a sentence for people."""

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
    """What every envelope says about the request it answers."""

    start: int
    end: int
    scope: str
    scope_id: str | None
    window: str | None
    time_bucket_size: str
    timezone: str
    resource_filter: ResourceFilterMeta | None
    resource_filters: list[ResourceFilterMeta]
    warnings: list[MetaWarning] | msgspec.UnsetType = msgspec.UNSET  # absent when none


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
    """compare=previous on a breakdown: the range its entities' ``previousTotals`` cover."""

    start: int
    end: int


class BreakdownSummary(Model):
    total: int  # number of entities, as in Flashback's example


class ErrorDetail(Model):
    field: str
    message: str
    index: int | None = None


class ErrorResponse(Model):
    """problem+json plus Flashback's ``success``/``error_code``/``message``."""

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


def metric_type(domain: Domain, metric: Metric) -> ValueType:
    """The Python type of the metric's value in the envelopes."""
    return metric.agg.value_type(domain)


def _pascal(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in text.replace("-", "_").split("_"))


@dataclass(frozen=True)
class SeriesTypes:
    point: type
    response: type
    previous: type  # compare=previous: the range before, summarised and bucketed


@dataclass(frozen=True)
class BreakdownTypes:
    totals: type
    point: type
    entity: type
    response: type
    rest: type  # ``other`` and ``unattributed``: an entity count and totals


def _metric_fields(domain: Domain, names) -> list[tuple[str, Any]]:
    return [(name, metric_type(domain, domain.metric(name))) for name in names]


@cache
def series_types(domain: Domain, view_path: str) -> SeriesTypes:
    view = domain.declared_view(view_path)
    prefix = domain.title + _pascal(view_path)
    # positional too (``kw_only=False``): the engine builds hundreds of points per answer
    # straight from row tuples (ts, metrics in view order)
    point = msgspec.defstruct(f"{prefix}Point", [("ts", int)] + _metric_fields(domain, view.metrics),
                              bases=(Model,), module=__name__, kw_only=False)
    previous = msgspec.defstruct(
        f"{prefix}Previous",
        [("start", int), ("end", int), ("summary", Summary), ("series", list[point])],  # type: ignore[valid-type]
        bases=(Model,), module=__name__)
    response = msgspec.defstruct(
        f"{prefix}TimeSeriesResponse",
        [("success", bool), ("meta", SeriesMeta), ("summary", Summary), ("series", list[point]),  # type: ignore[valid-type]
         # compare=previous only (UNSET: left out): the range of equal length before
         ("previous", previous | msgspec.UnsetType, msgspec.UNSET)],
        bases=(Model,), module=__name__)
    return SeriesTypes(point, response, previous)


@cache
def breakdown_types(domain: Domain, by: str) -> BreakdownTypes:
    dim = domain.declared_dimension(by)
    prefix = domain.title + _pascal(by)
    fields = _metric_fields(domain, domain.breakdown_metrics(dim))
    totals = msgspec.defstruct(f"{prefix}Totals", fields, bases=(Model,), module=__name__)
    # positional too, as the series point: built from (ts, metrics in breakdown order)
    point = msgspec.defstruct(f"{prefix}Point", [("ts", int)] + fields, bases=(Model,),
                              module=__name__, kw_only=False)
    entity = msgspec.defstruct(
        f"{prefix}Entity",
        [("entityId", str), ("entityName", str | None)]
        + [(a.name, column_type(domain, a.column) | None) for a in dim.attributes]
        + ([("pct", float | None)] if dim.share_of else [])
        + [("totals", totals), ("series", list[point] | None),  # type: ignore[valid-type]
           # compare=previous only: the entity's totals over the range before
           ("previousTotals", totals | msgspec.UnsetType, msgspec.UNSET)],
        bases=(Model,), module=__name__)
    rest = msgspec.defstruct(f"{prefix}Rest", [("entities", int), ("totals", totals)],
                             bases=(Model,), module=__name__)
    response = msgspec.defstruct(
        f"{prefix}BreakdownResponse",
        [("success", bool), ("meta", BreakdownMeta), ("summary", BreakdownSummary),
         ("entities", list[entity]),  # type: ignore[valid-type]
         # includeOther=true only (UNSET: left out): what the page's entities leave out
         ("other", rest | msgspec.UnsetType, msgspec.UNSET),
         ("unattributed", rest | msgspec.UnsetType, msgspec.UNSET),
         ("previous", PreviousRange | msgspec.UnsetType, msgspec.UNSET)],
        bases=(Model,), module=__name__)
    return BreakdownTypes(totals, point, entity, response, rest)
