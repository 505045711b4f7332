"""Declarations a domain module is made of: fields, metrics, dimensions, filters, views.

A domain is data. The engine derives from it the event table, the ingest validator,
every SQL query and every envelope type; nothing here knows about HTTP.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from stats_gateway.core.aggregations import (  # noqa: F401 (the declarations' vocabulary)
    Aggregation, ApproxPercentile, Count, DistinctCount, LatestTime, LatestValue, Max, Mean,
    Min, Percentile, Ratio, Sum,
)
from stats_gateway.core.fields import FieldType

__all__ = [
    "FieldType",
    "EventField",
    "Count",
    "Sum",
    "Mean",
    "Min",
    "Max",
    "Percentile",
    "ApproxPercentile",
    "Ratio",
    "DistinctCount",
    "LatestTime",
    "Attribute",
    "Metric",
    "Dimension",
    "ResourceFilter",
    "SeriesView",
    "BreakdownView",
    "Domain",
    "Cube",
    "Samples",
    "COMMON_FIELDS",
    "validate_domains",
]


@dataclass(frozen=True, kw_only=True)
class EventField:
    """One field of an ingested event: JSON name (camelCase) -> column."""

    name: str
    column: str
    type: FieldType
    required: bool = False
    default: object = None  # stored when the field is absent
    min_value: int | None = None  # numeric lower bound (inclusive)
    choices: tuple[str, ...] = ()
    names_kind: str | None = None  # this field is an entity id whose display name...
    name_field: str | None = None  # ...arrives in this other field
    # many distinct values per org (users, conversations, traces): kept out of the shared
    # rollup cube, so it does not multiply that cube's rows (see ``Cube``)
    high_cardinality: bool = False
    doc: str = ""


def _text_id(name: str, column: str, doc: str, **kw) -> EventField:
    return EventField(name=name, column=column, type=FieldType.TEXT, doc=doc, **kw)


COMMON_FIELDS: tuple[EventField, ...] = (
    _text_id("workspaceId", "workspace_id", "workspace the event belongs to",
             names_kind="workspace", name_field="workspaceName"),
    _text_id("workspaceName", "workspace_name", "display name of the workspace (latest wins)"),
    _text_id("repoId", "repo_id", "repository (needs workspaceId)",
             names_kind="repo", name_field="repoName"),
    _text_id("repoName", "repo_name", "display name of the repository (latest wins)"),
    _text_id("apiKeyId", "api_key_id", "the caller's API key that produced the event"),
)
"""Fields every domain's events may carry."""


# --- metric aggregations: classes of their own (core/aggregations.py) ---------------------


def aggregation_columns(agg: Aggregation) -> tuple[str, ...]:
    """Every event column an aggregation reads."""
    return agg.columns()


@dataclass(frozen=True, kw_only=True)
class Metric:
    name: str
    agg: Aggregation
    doc: str = ""


@dataclass(frozen=True)
class Attribute:
    """An extra per-entity value: the newest event's (``latest``) or the largest."""

    name: str
    column: str
    latest: bool = False


@dataclass(frozen=True, kw_only=True)
class Dimension:
    """A breakdown axis: ``/breakdown/<by>`` groups events by ``column``.

    A tuple of columns is a composite key; its ``entityId`` joins the values with ``:``
    (e.g. ``flow:my-slug``). ``names_kind`` names the entity catalogue that gives
    ``entityName`` (or ``name_column``, the newest event's value of a column);
    ``attributes`` are extra per-entity values; ``extra_metrics`` are
    metrics only this breakdown adds; ``share_of`` adds ``pct``, the entity's percentage
    of that metric over all entities.
    """

    by: str
    column: str | tuple[str, ...]
    names_kind: str | None = None
    name_column: str | None = None  # entityName from this column (newest event) instead
    attributes: tuple[Attribute, ...] = ()
    extra_metrics: tuple[str, ...] = ()
    share_of: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,) if isinstance(self.column, str) else self.column

    @property
    def attribute_metrics(self) -> tuple[Metric, ...]:
        """The attributes (and the name from ``name_column``) as metrics named
        ``attr__<name>`` (``attr___name``), so rollups keep and merge them like any other."""
        found = [Metric(name=f"attr__{a.name}",
                        agg=LatestValue(a.column) if a.latest else Max(a.column))
                 for a in self.attributes]
        if self.name_column:
            # the newest name given, as with the entity catalogue: a run without one keeps it
            found.append(Metric(name="attr___name",
                                agg=LatestValue(self.name_column, skip_nulls=True)))
        return tuple(found)


@dataclass(frozen=True, kw_only=True)
class ResourceFilter:
    """A query parameter that keeps only events whose ``column`` equals its value."""

    param: str
    column: str


@dataclass(frozen=True, kw_only=True)
class SeriesView:
    """A time-series endpoint: ``/v2/stats/<domain>`` (path "") or ``.../<path>``.

    ``metrics`` left empty: the domain's view metrics (``Domain.view_metrics``), so a
    metric is declared once, as a ``Metric``, and every default view serves it."""

    path: str = ""
    metrics: tuple[str, ...] = ()
    primary: str
    # filled in by the domain (not declared): the metrics were left to the domain, so a
    # copy of the domain with other metrics (``dataclasses.replace``) resolves them again
    defaulted: bool = field(default=False, compare=False, repr=False)


@dataclass(frozen=True, kw_only=True)
class BreakdownView:
    """The metrics every breakdown of the domain returns (plus a dimension's extras);
    empty: the domain's view metrics, as for a ``SeriesView``."""

    metrics: tuple[str, ...] = ()
    primary: str
    defaulted: bool = field(default=False, compare=False, repr=False)  # as SeriesView's


# one demo generator: (org, its random source, sorted unix times, now) -> columns by name;
# the org is the demo's ``Org`` (``stats_gateway.demo.world``), which the core does not import
DemoColumns = Callable[[Any, random.Random, list[float], datetime], dict[str, list]]
# one test event: (random source, index, time) -> the JSON event ``POST /v2/ingest`` takes
SampleEvent = Callable[[random.Random, int, datetime], dict]


@dataclass(frozen=True, kw_only=True)
class Samples:
    """Made-up events of a domain, declared with it so that a new domain is one module.

    ``event`` makes one JSON event (varied spellings, absent optional fields: what the
    tests ingest); ``columns`` makes a chunk of the demo's realistic events column-wise
    (``stats_gateway.demo.generate``, also the benchmark's data), one column per stored
    field it fills; ``prefix`` starts their event ids; ``demo_share`` is the domain's
    share of an org's demo events when the org's mix (``demo/world.py``) does not name it;
    ``demo_nightly``: its traffic has a nightly batch window (backups), not only office hours.
    """

    prefix: str
    event: SampleEvent
    columns: DemoColumns | None = None
    demo_share: float = 0.05
    demo_nightly: bool = False


GRAIN_NAMES = ("5m", "15m", "1h", "1d", "7d", "30d", "90d")  # 7d: on Mondays (ISO weeks)
FINEST_GRAINS = GRAIN_NAMES[:4]  # a domain's finest default grain: days at most


@dataclass(frozen=True, kw_only=True)
class Cube:
    """A declared rollup, like Cube's pre-aggregations: events collapsed per (org, UTC slot
    of each grain, ``columns``), every mergeable metric's parts kept per row.

    Any query whose scope, filters and group-by read only ``columns`` (and whose bucket
    boundaries fall on a grain) is answered by aggregating the cube instead of raw
    events. ``sketches``: also keep latency histograms and distinct-count sketches for it,
    at ``sketch_grains`` (None: its grains of an hour or more; finer ones would outweigh
    the events)."""

    name: str
    columns: tuple[str, ...]
    grains: tuple[str, ...]
    sketches: bool = True
    sketch_grains: tuple[str, ...] | None = None


@dataclass(frozen=True, kw_only=True, eq=False)  # identity: cheap to hash for caches
class Domain:
    name: str  # URL segment, e.g. "private-chat"
    table: str  # event table, e.g. "events_private_chat"
    title: str  # used for type names in OpenAPI, e.g. "PrivateChat"
    doc: str
    fields: tuple[EventField, ...]
    metrics: tuple[Metric, ...]
    series: tuple[SeriesView, ...]
    breakdown: BreakdownView
    dimensions: tuple[Dimension, ...]
    filters: tuple[ResourceFilter, ...]
    # cross-field rule over one decoded event: [(field, message), ...]
    check_event: Callable[[dict], list[tuple[str, str]]] | None = None
    # the rollups; None: the default set (``stats_gateway.core.rollups.default_cubes``)
    rollups: tuple[Cube, ...] | None = None
    # the default set's finest grain: where a domain's events are a few an hour, finer
    # slots would hold about one event each (as many rows as events, and wider)
    finest_grain: str = "5m"
    # days raw events are kept at least (whole UTC months are dropped once every day in
    # them is older); rollups are kept. An org may have its own (docs/retention.md)
    retention: int = 400
    # made-up events for the demo, the tests and the benchmark; the engine never reads it
    samples: Samples | None = None

    def __post_init__(self) -> None:
        """Views declared without metrics get the domain's view metrics."""
        everything = self.view_metrics
        object.__setattr__(self, "series", tuple(_resolved(v, everything) for v in self.series))
        object.__setattr__(self, "breakdown", _resolved(self.breakdown, everything))

    @property
    def view_metrics(self) -> tuple[str, ...]:
        """Every metric in declaration order, except those only some breakdowns add
        (a dimension's ``extra_metrics``): what a view declared without a list serves."""
        extras = {name for d in self.dimensions for name in d.extra_metrics}
        return tuple(m.name for m in self.metrics if m.name not in extras)

    @property
    def all_fields(self) -> tuple[EventField, ...]:
        return COMMON_FIELDS + self.fields

    @property
    def stored_fields(self) -> tuple[EventField, ...]:
        """Fields kept as event columns; display names go to the entity catalogue instead."""
        name_fields = {f.name_field for f in self.all_fields if f.name_field}
        return tuple(f for f in self.all_fields if f.name not in name_fields)

    @property
    def high_cardinality_columns(self) -> frozenset[str]:
        """Columns of fields declared high-cardinality (users, conversations, threads)."""
        return frozenset(f.column for f in self.stored_fields if f.high_cardinality)

    def has_few_entities(self, dimension: Dimension) -> bool:
        """Whether a dimension's entities are few (models, workspaces), none of its columns
        declared high-cardinality: a statement over all of them costs about what one over
        a page of them does."""
        return not set(dimension.columns) & self.high_cardinality_columns

    def metric(self, name: str) -> Metric:
        for metric in self.metrics:
            if metric.name == name:
                return metric
        raise KeyError(name)

    def dimension(self, by: str) -> Dimension | None:
        return next((d for d in self.dimensions if d.by == by), None)

    def series_view(self, path: str) -> SeriesView | None:
        return next((v for v in self.series if v.path == path), None)

    def declared_dimension(self, by: str) -> Dimension:
        """A dimension the caller knows is declared (routes, seed endpoints): KeyError
        otherwise, as ``metric``; ``dimension`` is for names a request brings."""
        if (found := self.dimension(by)) is None:
            raise KeyError(by)
        return found

    def declared_view(self, path: str) -> SeriesView:
        """A series view the caller knows is declared: KeyError otherwise."""
        if (found := self.series_view(path)) is None:
            raise KeyError(path)
        return found

    def breakdown_metrics(self, dimension: Dimension) -> tuple[str, ...]:
        return self.breakdown.metrics + dimension.extra_metrics


def _resolved(view, everything: tuple[str, ...]):
    """The view with the domain's metrics if it was declared without a list."""
    if view.metrics and not view.defaulted:
        return view
    return replace(view, metrics=everything, defaulted=True)


_IDENT = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_CAMEL = re.compile(r"^[a-z][A-Za-z0-9]{0,62}$")
_SEGMENT = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_RESERVED_PARAMS = frozenset({
    "scope", "id", "window", "start", "end", "timeBucketSize", "timezone", "metric",
    "includeSeries", "limit", "offset", "sort", "order",
})


def _duplicates(names: list[str]) -> list[str]:
    return sorted({n for n in names if names.count(n) > 1})


def _columns(domain: Domain) -> set[str]:
    return {f.column for f in domain.stored_fields}


def _identity_problems(domain: Domain) -> Iterator[str]:
    """The domain's URL name and table."""
    if not _SEGMENT.match(domain.name):
        yield "name must be a lowercase URL segment"
    if not _IDENT.match(domain.table):
        yield f"table {domain.table!r} is not a plain identifier"
    if not isinstance(domain.retention, int) or domain.retention < 1:
        yield "retention must be a whole number of days, at least 1"


def _field_problems(domain: Domain) -> Iterator[str]:
    field_names = [f.name for f in domain.all_fields]
    for dup in _duplicates(field_names):
        yield f"field {dup!r} declared twice"
    for f in domain.all_fields:
        if not _CAMEL.match(f.name):
            yield f"field {f.name!r} is not camelCase"
        if not _IDENT.match(f.column) or f.column in {"org_id", "event_id", "ts"}:
            yield f"field {f.name!r} has a bad column {f.column!r}"
        if (f.type is FieldType.CHOICE) != bool(f.choices):
            yield f"field {f.name!r}: choices go with CHOICE and only with it"
        if f.name_field and f.name_field not in field_names:
            yield f"field {f.name!r} names missing field {f.name_field!r}"


def _metric_problems(domain: Domain) -> Iterator[str]:
    columns = _columns(domain)
    for dup in _duplicates([m.name for m in domain.metrics]):
        yield f"metric {dup!r} declared twice"
    for m in domain.metrics:
        if not _CAMEL.match(m.name) or m.name in {"ts", "entityId"}:
            yield f"metric name {m.name!r} is not allowed"
        for column in aggregation_columns(m.agg):
            if column not in columns:
                yield f"metric {m.name!r} reads unknown column {column!r}"
        for problem in m.agg.declaration_problems(domain.stored_fields):
            yield f"metric {m.name!r}: {problem}"


def _series_view_problems(domain: Domain) -> Iterator[str]:
    known = {m.name for m in domain.metrics}
    routes = {d.by for d in domain.dimensions} | {"breakdown"}
    for view in domain.series:
        for name in view.metrics:
            if name not in known:
                yield f"series view {view.path!r} lists unknown metric {name!r}"
        if view.primary not in view.metrics:
            yield f"series view {view.path!r} primary is not among its metrics"
        if view.path and view.path in routes:
            yield f"series view path {view.path!r} collides with a route"
    if [v.path for v in domain.series].count("") != 1:
        yield "needs exactly one series view with path ''"


def _breakdown_problems(domain: Domain) -> Iterator[str]:
    """The breakdown view every dimension shares."""
    known = {m.name for m in domain.metrics}
    for name in domain.breakdown.metrics:
        if name not in known:
            yield f"breakdown lists unknown metric {name!r}"
    if domain.breakdown.primary not in domain.breakdown.metrics:
        yield "breakdown primary is not among its metrics"
    elif not sortable(domain.metric(domain.breakdown.primary)):
        yield "breakdown primary cannot sort (an approximate percentile)"
    for dup in _duplicates([d.by for d in domain.dimensions]):
        yield f"breakdown {dup!r} declared twice"


def _dimension_problems(domain: Domain, d: Dimension) -> Iterator[str]:
    columns = _columns(domain)
    if not _SEGMENT.match(d.by.lower()):
        yield f"breakdown {d.by!r} is not a URL segment"
    for column in d.columns:
        if column not in columns:
            yield f"breakdown {d.by!r} groups by unknown column {column!r}"
    if d.name_column is not None and d.name_column not in columns:
        yield f"breakdown {d.by!r} names from unknown column"
    if d.name_column is not None and d.names_kind is not None:
        yield f"breakdown {d.by!r} has two sources of names"
    for attr in d.attributes:
        if attr.column not in columns:
            yield f"breakdown {d.by!r} attribute {attr.name!r} reads unknown column"
    if d.share_of is not None and d.share_of not in domain.breakdown_metrics(d):
        yield f"breakdown {d.by!r} shares an unknown metric"
    elif d.share_of is not None and not sortable(domain.metric(d.share_of)):
        yield f"breakdown {d.by!r} shares a percentile"
    known = {m.name for m in domain.metrics}
    for name in d.extra_metrics:
        if name not in known:
            yield f"breakdown {d.by!r} adds unknown metric {name!r}"


def _cube_problems(domain: Domain, cube: Cube) -> Iterator[str]:
    columns = _columns(domain)
    if not _IDENT.match(cube.name):
        yield f"rollup {cube.name!r} is not a plain identifier"
    for column in cube.columns:
        if column not in columns:
            yield f"rollup {cube.name!r} reads unknown column {column!r}"
    for grain in cube.grains:
        if grain not in GRAIN_NAMES:
            yield (f"rollup {cube.name!r} has unknown grain {grain!r}; "
                   f"known: {', '.join(GRAIN_NAMES)}")
    if not cube.grains:
        yield f"rollup {cube.name!r} has no grain"
    for grain in cube.sketch_grains or ():
        if grain not in cube.grains:
            yield (f"rollup {cube.name!r} keeps sketches at {grain!r}, "
                   "which is not one of its grains")


def _rollup_problems(domain: Domain) -> Iterator[str]:
    if domain.finest_grain not in FINEST_GRAINS:
        yield (f"finest_grain {domain.finest_grain!r} is not one of "
               f"{', '.join(FINEST_GRAINS)}")
    for cube in domain.rollups or ():
        yield from _cube_problems(domain, cube)
    for dup in _duplicates([c.name for c in domain.rollups or ()]):
        yield f"rollup {dup!r} declared twice"


def _filter_problems(domain: Domain) -> Iterator[str]:
    columns = _columns(domain)
    params = [f.param for f in domain.filters]
    for flt in domain.filters:
        if flt.column not in columns:
            yield f"filter {flt.param!r} reads unknown column {flt.column!r}"
        if flt.param in _RESERVED_PARAMS or params.count(flt.param) > 1:
            yield f"filter parameter {flt.param!r} is reserved or repeated"


_PREFIX = re.compile(r"^[a-z][a-z0-9]{0,7}$")


def _samples_problems(domain: Domain) -> Iterator[str]:
    """What is wrong with a domain's made-up events (a plugged-in domain's too)."""
    samples = domain.samples
    if samples is None:
        return
    if not _PREFIX.match(samples.prefix):
        yield f"samples prefix {samples.prefix!r} is not 1-8 lowercase letters and digits"
    if not callable(samples.event):
        yield "samples event is not a function"
    if samples.columns is not None and not callable(samples.columns):
        yield "samples columns is not a function"
    if not samples.demo_share >= 0:
        yield "samples demo_share must be 0 or more"


def _all_dimension_problems(domain: Domain) -> Iterator[str]:
    for d in domain.dimensions:
        yield from _dimension_problems(domain, d)


_VALIDATORS: tuple[Callable[[Domain], Iterator[str]], ...] = (
    _identity_problems, _field_problems, _metric_problems, _series_view_problems,
    _breakdown_problems, _all_dimension_problems, _rollup_problems, _filter_problems,
    _samples_problems)


def _domain_problems(domain: Domain) -> list[str]:
    """Every inconsistency in one domain declaration: one validator per section."""
    where = f"domain {domain.name!r}"
    return [f"{where}: {problem}" for check in _VALIDATORS for problem in check(domain)]


def sortable(metric: Metric) -> bool:
    """Whether SQL can order entities by the metric (approximate percentiles are computed
    after the query, from histograms, so they cannot sort or be shared out)."""
    return metric.agg.sortable


def validate_domains(domains: tuple[Domain, ...], problems: list[str] | None = None) -> None:
    """Check every domain at start-up and report every problem at once (with ``problems``
    found before, e.g. plug-ins that did not load)."""
    problems = list(problems or ())
    names = [d.name for d in domains]
    tables = [d.table for d in domains]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"domain {dup!r} is listed twice")
    for dup in sorted({t for t in tables if tables.count(t) > 1}):
        problems.append(f"table {dup!r} is used by two domains")
    prefixes = [d.samples.prefix for d in domains if d.samples is not None]
    for dup in sorted({p for p in prefixes if prefixes.count(p) > 1}):
        problems.append(f"samples prefix {dup!r} is used by two domains")
    for domain in domains:
        problems.extend(_domain_problems(domain))
    if problems:
        raise DomainDeclarationError(problems)


class DomainDeclarationError(Exception):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid domain declarations:\n  - " + "\n  - ".join(problems))
