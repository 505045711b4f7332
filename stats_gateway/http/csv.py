"""CSV renderings of the /v2 series and breakdown envelopes, chosen by ``Accept: text/csv``.

Choices:

* **Negotiation.** CSV only when ``text/csv`` is acceptable with a higher q-value than
  ``application/json`` (each taken from its most specific matching range, ``*/*``
  included). A missing ``Accept``, ``*/*``, or a tie gives JSON. Errors are always
  problem+json.
* **Series.** Header ``ts,<metric>,...`` in the envelope's metric order, one row per
  bucket. ``ts`` is the bucket start in RFC 3339 with the request's time zone offset
  (``2026-11-26T00:00:00+01:00`` for ``timezone=Europe/Paris``): the same instant as the
  JSON ``ts``, written so a local day reads as one.
* **Breakdown.** Header ``entityId,entityName,<attributes>,[pct],<metric totals>``, one
  row per entity of the page. ``includeSeries=true`` is refused (400): the per-entity
  series do not fit one table, so ask for JSON.
* **Cells.** ``null`` is an empty cell; exact decimals are written exactly (never in
  exponent form); floats in their shortest round-trip form; booleans ``true``/``false``.
  Rows end with CRLF and cells are quoted only when needed (RFC 4180); UTF-8, no BOM.
* **CSV injection.** Text cells (entity ids, names, attributes: ingested data) that start
  with ``=``, ``+``, ``-``, ``@``, tab or carriage return get a leading ``'`` so a
  spreadsheet shows them as text instead of running them as formulas. Numbers are never
  prefixed, so negative values stay numbers.
* ``Content-Disposition: attachment`` names the file after the endpoint, e.g.
  ``storage-series.csv`` or ``ai-breakdown-models.csv``.
"""

from __future__ import annotations

import csv
import io
import typing
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import msgspec
from litestar import Response

from stats_gateway.core.errors import Problem, bad_request
from stats_gateway.http.negotiation import quality

CSV = "text/csv"  # Litestar appends "; charset=utf-8" to text/* types
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_ENTITY_TAIL = ("totals", "series", "previousTotals")  # entity fields that lead no column


def _quality(accept: str, kind: str, subtype: str) -> float:
    """The q-value ``accept`` gives ``kind/subtype``: that of the most specific range."""
    best = (-1, 0.0)
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        mtype, _, msub = media.lower().partition("/")
        if mtype == "*" and msub == "*":
            specificity = 0
        elif mtype == kind and msub == "*":
            specificity = 1
        elif mtype == kind and msub == subtype:
            specificity = 2
        else:
            continue
        q = quality(params)
        if specificity > best[0] or (specificity == best[0] and q > best[1]):
            best = (specificity, q)
    return max(best[1], 0.0)


def wants_csv(accept: str | None) -> bool:
    if not accept:
        return False
    csv_q = _quality(accept, "text", "csv")
    return csv_q > 0 and csv_q > _quality(accept, "application", "json")


def cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        value = msgspec.json.encode(value).decode()
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _element_type(struct_type: type, field_name: str) -> type:
    """``Point`` from a field declared ``list[Point]`` (or ``list[Point] | None``)."""
    field = next(f for f in msgspec.structs.fields(struct_type) if f.name == field_name)
    annotation = field.type
    for arg in typing.get_args(annotation) or ():
        if typing.get_origin(arg) is list:
            annotation = arg
    return typing.get_args(annotation)[0]


def _columns(struct_type: type, skip: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(attribute name, wire name) of each field, in declaration order."""
    return [(f.name, f.encode_name) for f in msgspec.structs.fields(struct_type)
            if f.name not in skip]


def _write(header: list[str], rows) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def series_csv(body) -> str:
    point = _element_type(type(body), "series")
    metrics = _columns(point, skip=("ts",))
    zone = ZoneInfo(body.meta.timezone)
    rows = ([datetime.fromtimestamp(p.ts, zone).isoformat()]
            + [cell(getattr(p, name)) for name, _ in metrics] for p in body.series)
    return _write(["ts"] + [wire for _, wire in metrics], rows)


def breakdown_csv(body) -> str:
    if body.meta.includes_series:
        raise bad_request([Problem("includeSeries", "per-entity series are not available as "
                                   "CSV; drop includeSeries or ask for application/json")])
    entity = _element_type(type(body), "entities")
    leading = _columns(entity, skip=_ENTITY_TAIL)
    totals = _columns(next(f.type for f in msgspec.structs.fields(entity) if f.name == "totals"))
    compared = body.previous is not msgspec.UNSET  # compare=previous: previous.<metric>
    before = totals if compared else []
    rows = ([cell(getattr(e, name)) for name, _ in leading]
            + [cell(getattr(e.totals, name)) for name, _ in totals]
            + [cell(getattr(e.previousTotals, name)) for name, _ in before]
            for e in body.entities)
    return _write([wire for _, wire in leading] + [wire for _, wire in totals]
                  + [f"previous.{wire}" for _, wire in before], rows)


def envelope_csv(body) -> str:
    """A series or breakdown envelope as CSV text."""
    fields = body.__struct_fields__
    if "series" in fields:
        return series_csv(body)
    if "entities" in fields:
        return breakdown_csv(body)
    raise TypeError(f"no CSV form for {type(body).__name__}")


def csv_response(body, filename: str) -> Response:
    return Response(content=envelope_csv(body).encode(), media_type=CSV,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
