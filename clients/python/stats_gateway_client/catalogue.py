"""What the client knows of the gateway's domains, read from ``catalogue.json``.

The JSON is generated from the server's domain declarations (``python -m
stats_gateway.docs``; a server test keeps it identical), so the client checks domain,
view and breakdown names before sending and decodes each answer into a concrete Struct
named as the server names it (``CreditsTimeSeriesResponse``), money as ``Decimal``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import resources

import msgspec

from stats_gateway_client._wire import (
    BreakdownMeta, BreakdownSummary, Model, PreviousRange, SeriesMeta, Summary,
)

_SCALARS = {"int": int, "float": float, "decimal": Decimal, "str": str, "bool": bool}


class UnknownNameError(ValueError):
    """A domain, view or breakdown this client's catalogue does not have; raised before
    any request is sent."""


def python_type(name: str) -> type:
    """``"decimal"`` is Decimal, a trailing ``?`` adds ``| None``."""
    base = _SCALARS[name.rstrip("?")]
    return base | None if name.endswith("?") else base


def _pascal(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in text.replace("-", "_").split("_"))


@dataclass(frozen=True)
class DomainEntry:
    name: str
    title: str
    series: dict[str, dict[str, str]]  # view path -> {metric: type}
    breakdowns: dict[str, dict]  # by -> {"attributes": {..}, "share": bool, "metrics": {..}}
    decimal_metrics: frozenset[str]


@cache
def domains() -> dict[str, DomainEntry]:
    data = json.loads(resources.files(__package__).joinpath("catalogue.json").read_text())
    found = {}
    for d in data["domains"]:
        series = {v["path"]: v["metrics"] for v in d["series"]}
        breakdowns = {b["by"]: b for b in d["breakdowns"]}
        every = [m for ms in series.values() for m in ms.items()] + [
            m for b in breakdowns.values() for m in b["metrics"].items()]
        found[d["name"]] = DomainEntry(d["name"], d["title"], series, breakdowns,
                                       frozenset(n for n, t in every if t.startswith("decimal")))
    return found


def domain(name: str) -> DomainEntry:
    try:
        return domains()[name]
    except KeyError:
        raise UnknownNameError(f"unknown domain {name!r}; this client knows: "
                               + ", ".join(domains())) from None


def _fields(types: dict[str, str]) -> list[tuple[str, type]]:
    return [(name, python_type(kind)) for name, kind in types.items()]


@cache
def series_response(domain_name: str, view: str) -> type:
    entry = domain(domain_name)
    if view not in entry.series:
        raise UnknownNameError(f"unknown view {domain_name}/{view}; views: "
                               + ", ".join(repr(v) for v in entry.series))
    prefix = entry.title + _pascal(view)
    point = msgspec.defstruct(f"{prefix}Point", [("ts", int)] + _fields(entry.series[view]),
                              bases=(Model,), module=__name__, kw_only=False)
    previous = msgspec.defstruct(
        f"{prefix}Previous",
        [("start", int), ("end", int), ("summary", Summary), ("series", list[point])],
        bases=(Model,), module=__name__)
    return msgspec.defstruct(
        f"{prefix}TimeSeriesResponse",
        [("success", bool), ("meta", SeriesMeta), ("summary", Summary), ("series", list[point]),
         ("previous", previous | msgspec.UnsetType, msgspec.UNSET)],
        bases=(Model,), module=__name__)


@cache
def breakdown_response(domain_name: str, by: str) -> type:
    entry = domain(domain_name)
    if by not in entry.breakdowns:
        raise UnknownNameError(f"unknown breakdown {domain_name}/{by}; breakdowns: "
                               + ", ".join(entry.breakdowns))
    spec = entry.breakdowns[by]
    prefix = entry.title + _pascal(by)
    fields = _fields(spec["metrics"])
    totals = msgspec.defstruct(f"{prefix}Totals", fields, bases=(Model,), module=__name__)
    point = msgspec.defstruct(f"{prefix}Point", [("ts", int)] + fields, bases=(Model,),
                              module=__name__)
    entity = msgspec.defstruct(
        f"{prefix}Entity",
        [("entityId", str), ("entityName", str | None)] + _fields(spec["attributes"])
        + ([("pct", float | None)] if spec["share"] else [])
        + [("totals", totals), ("series", list[point] | None),
           ("previousTotals", totals | msgspec.UnsetType, msgspec.UNSET)],
        bases=(Model,), module=__name__)
    rest = msgspec.defstruct(f"{prefix}Rest", [("entities", int), ("totals", totals)],
                             bases=(Model,), module=__name__)
    return msgspec.defstruct(
        f"{prefix}BreakdownResponse",
        [("success", bool), ("meta", BreakdownMeta), ("summary", BreakdownSummary),
         ("entities", list[entity]),
         ("other", rest | msgspec.UnsetType, msgspec.UNSET),
         ("unattributed", rest | msgspec.UnsetType, msgspec.UNSET),
         ("previous", PreviousRange | msgspec.UnsetType, msgspec.UNSET)],
        bases=(Model,), module=__name__)
