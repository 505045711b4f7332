"""A seed adapter's way into its domain: event fields by their API names, never columns.

Seeds build engine requests for their domains' ``Domain`` objects (imported from the
domain's module, not looked up by name), and name fields as the domain's API does
(``projectId``), so a column renamed in the declaration needs no change here. A field a
seed expects and its domain lacks fails at import, not per request.
"""

from __future__ import annotations

from stats_gateway.core.domain import Dimension, Domain
from stats_gateway.core.filters import Filter


def column_of(domain: Domain, field: str) -> str:
    """The event column of ``domain``'s field ``field`` (API name)."""
    for declared in domain.all_fields:
        if declared.name == field:
            return declared.column
    raise KeyError(f"{domain.name} has no field {field!r}")


def dimension_of(domain: Domain, by: str) -> Dimension:
    """``domain``'s breakdown dimension ``by``."""
    dimension = domain.dimension(by)
    if dimension is None:
        raise KeyError(f"{domain.name} has no dimension {by!r}")
    return dimension


def field_filter(domain: Domain, field: str, value: object, op: str = "eq",
                 param: str | None = None) -> Filter:
    """Events whose ``field`` passes ``op`` with ``value``; ``param`` names the filter as
    the seed's request did (default: the field's own name)."""
    return Filter(param or field, column_of(domain, field), value, op)
