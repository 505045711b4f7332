"""The domain catalogue the standalone client ships (clients/python/.../catalogue.json).

The client package has no server code, so it learns the domains, their views, breakdowns
and value types from this JSON, generated from the declarations by ``python -m
stats_gateway.docs``; tests/test_client_package.py keeps the file identical and compares
every response type the client builds with the server's.
"""

from __future__ import annotations

import json
import types
from decimal import Decimal
from pathlib import Path

from domains import DOMAINS
from stats_gateway.core.aggregations import column_type
from stats_gateway.core.domain import Domain
from stats_gateway.core.envelopes import metric_type

PATH = (Path(__file__).resolve().parents[1] / "clients" / "python" / "stats_gateway_client"
        / "catalogue.json")
_NAMES = {int: "int", float: "float", Decimal: "decimal", str: "str", bool: "bool"}


def type_name(annotation) -> str:
    """``int`` -> "int", ``Decimal | None`` -> "decimal?" (the client's ``python_type``)."""
    if isinstance(annotation, types.UnionType):
        (base,) = [a for a in annotation.__args__ if a is not type(None)]
        return _NAMES[base] + "?"
    return _NAMES[annotation]


def _metrics(domain: Domain, names) -> dict[str, str]:
    return {name: type_name(metric_type(domain, domain.metric(name))) for name in names}


def _domain(domain: Domain) -> dict:
    return {
        "name": domain.name, "title": domain.title,
        "series": [{"path": v.path, "metrics": _metrics(domain, v.metrics)}
                   for v in domain.series],
        "breakdowns": [{"by": d.by,
                        "attributes": {a.name: type_name(column_type(domain, a.column) | None)
                                       for a in d.attributes},
                        "share": d.share_of is not None,
                        "metrics": _metrics(domain, domain.breakdown_metrics(d))}
                       for d in domain.dimensions]}


def render() -> str:
    return json.dumps({"domains": [_domain(d) for d in DOMAINS]}, indent=1) + "\n"


def write() -> None:
    PATH.write_text(render())
