"""The OpenAPI document and the offline docs page, generated from the domain declarations.

Routes read raw query parameters (``query_params(request)``: Litestar reserves ``scope``,
and the engine validates everything itself so it can report every problem at once), so
Litestar sees no parameters to document. Each route instead gets an ``operation_class``
from here that adds, from the same declarations the engine validates against:

* the query parameters (scope, id, window, start/end, timeBucketSize, timezone, the
  domain's filters, and ``metric`` for a series view or limit/offset/sort/order/
  includeSeries for a breakdown), with their enums, bounds and defaults;
* the ingest request body (``{"events": [...]}``, each event's fields and types);
* response headers: ``X-Request-Id`` on every answer, ``WWW-Authenticate`` on 401,
  ``Retry-After`` on 429 and a limited key's ``RateLimit-*`` on all but 401; and
  ``text/csv`` beside JSON for a stats 200.

Parameters and headers every route shares are written once, in ``components/parameters``
and ``components/headers``.

Error responses are ``ResponseSpec``s (``error_responses``): problem+json ``ErrorResponse``
for the gateway's own routes; each seed endpoint documents its own envelope.

Choices, written down:

* Decimals are JSON numbers on the wire (``json_response`` writes them so), so
  ``ExactNumbers`` documents them as ``number`` (Litestar's default says ``string``), and
  unions are ``anyOf`` (Litestar's ``oneOf`` rejects 5 for ``int | float``: it matches
  both).
* Auth is ``Authorization: Bearer <key>`` (``bearerAuth``) everywhere; ``POST /calls/stats``
  also takes HTTP Basic with the key as password, ``GET /v1/model-usage`` the bare key.
* The docs page (``/schema``, also ``/schema/swagger``) is Swagger UI 5 vendored from
  npm ``swagger-ui-dist`` (Apache-2.0, licence files beside it) in ``static/docs/`` and
  served from ``/static/docs/``: the page and its assets come from this origin only (no
  CDN), it loads the spec from ``/schema/openapi.json`` and the online validator is off.
  Other Litestar UIs (redoc, scalar, ...) are not mounted: they load from CDNs. The docs
  routes send a same-origin Content-Security-Policy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from dataclasses import field as dataclass_field
from decimal import Decimal
from typing import Any

import msgspec
from litestar import Request, Router
from litestar.datastructures import ResponseHeader
from litestar.enums import MediaType
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.openapi.spec import (
    Components, OpenAPI, OpenAPIHeader, OpenAPIMediaType, OpenAPIResponse, Operation, Parameter,
    Reference, RequestBody, Schema, SecurityScheme,
)
from litestar.openapi.spec.enums import OpenAPIType
from litestar.plugins import OpenAPISchemaPlugin
from litestar.typing import FieldDefinition

from stats_gateway.core.domain import Dimension, Domain, EventField, FieldType, SeriesView, sortable
from stats_gateway.core.envelopes import ErrorResponse
from stats_gateway.core.ingest import MAX_BIGINT, MAX_EVENTS, MAX_LIST, MAX_TEXT
from stats_gateway.core.request import (
    COMPARES, DEFAULT_LIMIT, MAX_FILTER_VALUE, MAX_FILTER_VALUES, MAX_LIMIT, MAX_OFFSET, SCOPES,
)
from stats_gateway.core.timebuckets import BUCKET_SIZES, MAX_BUCKETS, WINDOWS

PROBLEM_JSON = "application/problem+json"
SCHEMA_PATH = "/schema"
SPEC_URL = f"{SCHEMA_PATH}/openapi.json"
DOCS_URL = "/static/docs"  # the app's /static router serves static/docs/ here
BEARER, BASIC, BARE_KEY = "bearerAuth", "basicAuth", "bareKey"

Json = dict[str, Any]

# --- security ------------------------------------------------------------------------

SECURITY_SCHEMES: dict[str, SecurityScheme | Reference] = {
    BEARER: SecurityScheme(type="http", scheme="bearer", bearer_format="sgk_<keyId>_<secret>",
                           description="An API key: `Authorization: Bearer <key>`."),
    BASIC: SecurityScheme(type="http", scheme="basic",
                          description="HTTP Basic with the API key as password (any user "
                                      "name); `POST /calls/stats` only, as W&B Weave."),
    BARE_KEY: SecurityScheme(type="apiKey", name="Authorization", security_scheme_in="header",
                             description="The API key alone as the Authorization header; "
                                         "`GET /v1/model-usage` only, as Runtype."),
}
BEARER_ONLY: list[dict[str, list[str]]] = [{BEARER: []}]


# --- numbers -------------------------------------------------------------------------


class ExactNumbers(OpenAPISchemaPlugin):
    """Decimals as JSON numbers, as ``json_response`` writes them (Litestar says string)."""

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        return field_definition.annotation is Decimal

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator) -> Schema:
        return Schema(type=OpenAPIType.NUMBER)


def unions_as_any_of(node):
    """Every ``oneOf`` Litestar wrote as ``anyOf``. Litestar writes a Python union as
    ``oneOf``, which demands exactly one match: ``int | float`` would reject 5 (an integer
    and a number). Our own ``x-`` extensions mean their ``oneOf`` and keep it."""
    if isinstance(node, list):
        return [unions_as_any_of(item) for item in node]
    if isinstance(node, dict):
        return {("anyOf" if key == "oneOf" and isinstance(value, list) else key):
                value if key.startswith("x-") else unions_as_any_of(value)
                for key, value in node.items()}
    return node


@dataclass
class _GatewayOpenAPI(OpenAPI):
    def to_schema(self) -> dict[str, Any]:
        return unions_as_any_of(super().to_schema())


@dataclass
class GatewayOpenAPIConfig(OpenAPIConfig):
    """Litestar's config, producing a document with unions as ``anyOf``."""

    def to_openapi_schema(self) -> OpenAPI:
        base = super().to_openapi_schema()
        return _GatewayOpenAPI(**{f.name: getattr(base, f.name) for f in fields(base)})


# --- query parameters ----------------------------------------------------------------


def query_parameter(name: str, schema: Json, description: str,
                    required: bool = False) -> Parameter:
    return Parameter(name=name, param_in="query", schema=schema, description=description,  # type: ignore[arg-type]  # a JSON Schema dict: written as it is
                     required=required)


def header_parameter(name: str, schema: Json, description: str) -> Parameter:
    return Parameter(name=name, param_in="header", schema=schema, description=description)  # type: ignore[arg-type]  # a JSON Schema dict: written as it is


def _text(max_length: int = MAX_FILTER_VALUE) -> Json:
    return {"type": "string", "minLength": 1, "maxLength": max_length}


_INSTANT_PARAM = {"type": "string", "format": "date-time"}
# date bounds, in the format-range keywords of JSON Schema's format vocabulary proposals
EARLIEST_INSTANT, LATEST_INSTANT = "2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z"

PARAMETER_RULES_KEY = "x-parameter-rules"
STATS_PARAMETER_RULES: Json = {
    "description": "Rules across parameters that a parameter list cannot state, as JSON "
                   "Schema over the query (parameter name -> value); each broken rule is "
                   "a 400 naming it. Either `window` or `start` (with an optional `end`), "
                   "never both; `id` is required for the workspace and repo scopes; "
                   "`start` < `end`, from 2000-01-01 until 2100-01-01; at most 10,000 "
                   "buckets, and with includeSeries at most 100,000 points (limit x "
                   "buckets), within the key's point budget.",
    "type": "object",
    "oneOf": [
        {"title": "window", "required": ["window"],
         "not": {"anyOf": [{"required": ["start"]}, {"required": ["end"]}]}},
        {"title": "start and end", "required": ["start"], "not": {"required": ["window"]}},
    ],
    "dependentRequired": {"end": ["start"]},
    "if": {"required": ["scope"], "properties": {"scope": {"enum": ["workspace", "repo"]}}},
    "then": {"required": ["id"]},
}
_q = query_parameter
SHARED_PARAMETERS: dict[str, Parameter | Reference] = {p.name: p for p in (
    _q("scope", {"type": "string", "enum": list(SCOPES)},
       "What the numbers cover: the key's whole org, one workspace or one repo.",
       required=True),
    _q("id", _text(),
       "The workspace or repo id (required for those scopes); for `org`, optionally the "
       "key's own org id. Ids of other orgs and unknown ids answer the same 404."),
    _q("window", {"type": "string", "enum": list(WINDOWS)},
       "A range ending now. Give either `window` or `start` (and optionally `end`)."),
    _q("start", {**_INSTANT_PARAM, "formatMinimum": EARLIEST_INSTANT},
       "Range start, inclusive: RFC 3339 with an offset (`2026-01-31T00:00:00Z`, a "
       "fraction of any length) or unix seconds; from 2000-01-01. Not with `window`."),
    _q("end", {**_INSTANT_PARAM, "formatMaximum": LATEST_INSTANT},
       "Range end, exclusive (default now): RFC 3339 with an offset or unix seconds; "
       "after `start` (which it needs), until 2100-01-01. Not with `window`."),
    _q("timeBucketSize", {"type": "string", "enum": list(BUCKET_SIZES)},
       f"Bucket size; by default chosen from the range. At most {MAX_BUCKETS:,} buckets "
       "(400 names the sizes that fit)."),
    _q("timezone", {"type": "string", "minLength": 1, "maxLength": 64, "default": "UTC",
                    "examples": ["UTC", "Europe/Berlin"]},
       "IANA time zone: days, weeks and months start at local midnight."),
    _q("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                 "default": DEFAULT_LIMIT}, "Entities per page."),
    _q("offset", {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
       "Entities to skip (paging)."),
    _q("order", {"type": "string", "enum": ["asc", "desc"], "default": "desc"},
       "Sort direction."),
    _q("includeSeries", {"type": "boolean", "default": False},
       "Also return each entity's time series (limit x buckets is bounded: 400 says how "
       "far)."),
    _q("compare", {"type": "string", "enum": list(COMPARES)},
       "`previous`: also answer the range of equal length just before (a series adds "
       "`previous` with its summary and points, point i beside point i; a breakdown adds "
       "each entity's `previousTotals`)."),
    _q("includeOther", {"type": "boolean", "default": False},
       "Add `other` (the entities not on this page, counted and totalled) and "
       "`unattributed` (the events without this dimension): with the page's entities they "
       "add up to the whole range's totals."),
)}
"""Parameters every stats route shares, once in ``components/parameters``."""


def _shared(*names: str) -> list[Reference]:
    return [Reference(ref=f"#/components/parameters/{name}") for name in names]


_COMMON = ("scope", "id", "window", "start", "end", "timeBucketSize", "timezone", "compare")


def _filter_schema(field: EventField) -> Json:
    if field.type is FieldType.BOOL:
        return {"type": "boolean"}
    if field.type is FieldType.CHOICE:
        return {"type": "string", "enum": list(field.choices)}
    return _text()


def filter_parameters(domain: Domain) -> list[Parameter]:
    """Two parameters per declared filter, each repeatable: ``param`` keeps events whose
    field is any of the values, ``param!`` those whose field is none of them (or absent)."""
    by_column = {f.column: f for f in domain.stored_fields}
    params = []
    for flt in domain.filters:
        field = by_column[flt.column]
        about = f" ({field.doc})" if field.doc else ""
        listed = field.type is FieldType.TEXT_LIST
        array = {"type": "array", "items": _filter_schema(field), "minItems": 1,
                 "maxItems": MAX_FILTER_VALUES}
        keep = ("holds any of these values" if listed else
                "equals this value (repeat the parameter for any of several)")
        drop = ("holds none of these values, or has none" if listed else
                "is none of these values, or is absent")
        for name, what in ((flt.param, keep), (f"{flt.param}!", drop)):
            param = query_parameter(name, array, f"Only events whose `{field.name}`{about} "
                                    f"{what}.")
            params.append(param)
    return params


def series_parameters(domain: Domain, view: SeriesView) -> list[Parameter | Reference]:
    metric = query_parameter(
        "metric", {"type": "string", "enum": list(view.metrics), "default": view.primary},
        "The metric `summary` describes (every metric is in each point).")
    return [*_shared(*_COMMON), *filter_parameters(domain), metric]


def breakdown_parameters(domain: Domain, dimension: Dimension,
                         ) -> list[Parameter | Reference]:
    metrics = domain.breakdown_metrics(dimension)
    can_sort = [name for name in metrics if sortable(domain.metric(name))]
    sort = query_parameter(
        "sort", {"type": "string", "enum": can_sort, "default": domain.breakdown.primary},
        "The metric entities are ranked by (approximate percentiles cannot sort); ties by "
        "entityId.")
    return [*_shared(*_COMMON), *filter_parameters(domain), *_shared("limit", "offset"), sort,
            *_shared("order", "includeSeries", "includeOther")]


# --- ingest body ---------------------------------------------------------------------

_INSTANT = {"anyOf": [{"type": "string", "format": "date-time"},
                      {"type": "number", "minimum": 946_684_800}],
            "description": "RFC 3339 with an offset, or unix seconds; from 2000-01-01 to one "
                           "day from now."}


def field_schema(field: EventField) -> Json:
    """JSON Schema of one event field, as ``core.ingest`` validates it."""
    t = field.type
    if t is FieldType.BOOL:
        schema: Json = {"type": "boolean"}
    elif t is FieldType.CHOICE:
        schema = {"type": "string", "enum": list(field.choices)}
    elif t is FieldType.TEXT:
        schema = _text(MAX_TEXT)
    elif t is FieldType.TEXT_LIST:
        schema = {"type": "array", "items": _text(MAX_TEXT), "maxItems": MAX_LIST}
    elif t is FieldType.BIGINT:
        schema = {"type": "integer", "minimum": -MAX_BIGINT, "maximum": MAX_BIGINT}
    elif t is FieldType.DOUBLE:
        schema = {"type": "number", "maximum": 1e15}
    else:  # DECIMAL: exact, a JSON number or a decimal string, at most 6 decimal places
        schema = {"anyOf": [{"type": "number", "exclusiveMinimum": -1e14,
                             "exclusiveMaximum": 1e14},
                            {"type": "string", "pattern": r"^-?\d{1,15}(\.\d{1,6})?$"}]}
    if field.min_value is not None:
        (schema["anyOf"][0] if "anyOf" in schema else schema)["minimum"] = field.min_value
    if field.doc:
        schema["description"] = field.doc
    return schema


def event_schema(domain: Domain) -> Json:
    properties = {"eventId": {**_text(MAX_TEXT), "description": "Idempotency key within "
                              "the org: an event already stored is skipped."},
                  "ts": _INSTANT}
    properties |= {f.name: field_schema(f) for f in domain.all_fields}
    required = ["eventId", "ts"] + [f.name for f in domain.all_fields if f.required]
    return {"type": "object", "properties": properties, "required": required,
            "additionalProperties": False, "title": f"{domain.title}Event"}


def ingest_body(domain: Domain) -> RequestBody:
    schema = {"type": "object", "title": f"{domain.title}IngestRequest",
              "properties": {"events": {"type": "array", "minItems": 1,
                                        "maxItems": MAX_EVENTS, "items": event_schema(domain)}},
              "required": ["events"], "additionalProperties": False}
    return RequestBody(required=True, content={"application/json": OpenAPIMediaType(schema=schema)},  # type: ignore[arg-type]  # a JSON Schema dict: written as it is
                       description="A batch, all or nothing: one invalid event refuses it "
                                   "(422 lists every problem).")


def inline_json_schema(tp: type) -> Json:
    """msgspec's JSON Schema of ``tp`` with every ``$defs`` reference inlined (Litestar
    rebuilds ``components/schemas`` itself, so a body read as bytes cannot add to it)."""
    generated = msgspec.json.schema(tp)
    defs = generated.pop("$defs", {})

    def resolve(node):
        if isinstance(node, list):
            return [resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return resolve(defs[node["$ref"].rsplit("/", 1)[-1]])
        return {key: resolve(value) for key, value in node.items()}

    return resolve(generated)


# --- responses -----------------------------------------------------------------------

_ERROR_TEXT = {
    400: "Invalid parameters (every problem listed in `errors`) or body not JSON",
    401: "Missing, malformed, unknown, revoked or expired API key",
    403: "The key lacks the permission this endpoint needs",
    404: "No such scope id (another org's ids and unknown ids answer alike)",
    413: "Request body too large",
    422: "Invalid events (every problem listed with its event index); nothing was written",
    429: "Rate limited: retry after `Retry-After` seconds",
    500: "Internal error: no details; quote the request id when reporting it",
    503: "Database unavailable or query timed out; retry shortly",
}
READ_ERRORS = (400, 401, 403, 404, 429, 503)
INGEST_ERRORS = (400, 401, 403, 413, 422, 429, 503)


def error_responses(statuses: Iterable[int], container: type = ErrorResponse,
                    media_type: str = PROBLEM_JSON,
                    descriptions: Mapping[int, str] | None = None) -> dict[int, ResponseSpec]:
    """Error responses in one envelope: by default the gateway's problem+json."""
    descriptions = {**_ERROR_TEXT, **(descriptions or {})}
    return {status: ResponseSpec(data_container=container, media_type=media_type,
                                 description=descriptions[status], generate_examples=False)
            for status in statuses}


def _header(description: str, schema: Json, required: bool = True) -> OpenAPIHeader:
    return OpenAPIHeader(description=description, schema=schema, required=required)  # type: ignore[arg-type]  # a JSON Schema dict: written as it is


SHARED_HEADERS: dict[str, OpenAPIHeader | Reference] = {
    "X-Request-Id": _header("The request id, also in the server log (an incoming valid "
                            "X-Request-Id is kept).", {"type": "string", "minLength": 1}),
    "WWW-Authenticate": _header("The auth scheme to use.", {"type": "string"}),
    "Retry-After": _header("Seconds to wait before retrying.",
                           {"type": "integer", "minimum": 0}),
    # a key's rate limit (docs/rate-limits.md): absent when its limit is off
    "RateLimit-Limit": _header("Requests the key may make per period (its burst).",
                               {"type": "integer", "minimum": 1}, required=False),
    "RateLimit-Remaining": _header("Requests the key may still make at once.",
                                   {"type": "integer", "minimum": 0}, required=False),
    "RateLimit-Reset": _header("Seconds until the key's whole budget is back.",
                               {"type": "integer", "minimum": 0}, required=False),
}
"""Response headers, once in ``components/headers``."""
_HEADERS_BY_STATUS = {"401": ("WWW-Authenticate",), "429": ("Retry-After",)}
_RATE_LIMIT_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


def _header_refs(status: str) -> dict[str, Reference]:
    limits = () if status == "401" else _RATE_LIMIT_HEADERS  # a 401 key is no key
    names = ("X-Request-Id", *limits, *_HEADERS_BY_STATUS.get(status, ()))
    return {name: Reference(ref=f"#/components/headers/{name}") for name in names}


_CSV = {"text/csv": OpenAPIMediaType(schema={  # type: ignore[arg-type]  # a JSON Schema dict: written as it is
    "type": "string", "description": "The same answer as CSV, with `Accept: text/csv` "
                                     "(docs/api.md, CSV); errors stay problem+json."})}


def operation_class(parameters: Sequence[Parameter | Reference] = (),
                    request_body: RequestBody | Json | None = None, *,
                    csv: bool = False, parameter_rules: Json | None = None) -> type[Operation]:
    """An ``Operation`` that adds what Litestar cannot see: raw query parameters, a body
    read as bytes, the CSV rendering of a 200, the headers every response carries and the
    rules across parameters (``x-parameter-rules``: OpenAPI has no place for them)."""

    @dataclass
    class DeclaredOperation(Operation):
        parameter_rules: Json | None = dataclass_field(
            default=None, metadata={"alias": PARAMETER_RULES_KEY})

        def __post_init__(self) -> None:
            self.parameter_rules = parameter_rules
            self.parameters = [*(self.parameters or ()), *parameters] or None
            if isinstance(request_body, dict):
                self.request_body = RequestBody(
                    required=True, content={"application/json": OpenAPIMediaType(
                        schema=request_body)})  # type: ignore[arg-type]  # a JSON Schema dict: written as it is
            elif request_body is not None:
                self.request_body = request_body
            for status, response in (self.responses or {}).items():
                if not isinstance(response, OpenAPIResponse):
                    continue
                response.headers = {**(response.headers or {}), **_header_refs(str(status))}
                if csv and str(status) == "200":
                    response.content = {**(response.content or {}), **_CSV}

    return DeclaredOperation


def series_docs(domain: Domain, view: SeriesView) -> dict:
    """Route decorator arguments documenting a series view."""
    return {"operation_class": operation_class(series_parameters(domain, view), csv=True,
                                               parameter_rules=STATS_PARAMETER_RULES),
            "responses": error_responses(READ_ERRORS), "security": BEARER_ONLY}


def breakdown_docs(domain: Domain, dimension: Dimension) -> dict:
    return {"operation_class": operation_class(breakdown_parameters(domain, dimension),
                                               csv=True, parameter_rules=STATS_PARAMETER_RULES),
            "responses": error_responses(READ_ERRORS), "security": BEARER_ONLY}


def ingest_docs(domain: Domain) -> dict:
    return {"operation_class": operation_class(request_body=ingest_body(domain)),
            "responses": error_responses(INGEST_ERRORS), "security": BEARER_ONLY}


# --- the docs page -------------------------------------------------------------------

DOCS_PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>stats-gateway API</title>
<link rel="icon" type="image/png" href="{DOCS_URL}/favicon-32x32.png">
<link rel="stylesheet" href="{DOCS_URL}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-spec-url="{SPEC_URL}"></div>
<script src="{DOCS_URL}/swagger-ui-bundle.js"></script>
<script src="{DOCS_URL}/init.js"></script>
</body>
</html>
""".encode()

DOCS_HEADERS = {
    # same origin only; Swagger UI sets inline styles and uses data: images in its CSS
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "style-src 'self' 'unsafe-inline'; object-src 'none'; "
                               "base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class OfflineSwaggerPlugin(OpenAPIRenderPlugin):
    """Swagger UI from this origin's ``/static/docs/``; the spec is fetched, not inlined."""

    def __init__(self, path: str | Sequence[str] = ("/", "/swagger")) -> None:
        super().__init__(path=path, media_type=MediaType.HTML, favicon="", style="")

    def render(self, request: Request, openapi_schema: dict[str, Any]) -> bytes:
        return DOCS_PAGE


def openapi_config(title: str, version: str, description: str | None = None) -> OpenAPIConfig:
    """``/schema`` (Swagger UI), ``/schema/swagger`` and ``/schema/openapi.json``."""
    router = Router(path=SCHEMA_PATH, route_handlers=[], include_in_schema=False,
                    response_headers=[ResponseHeader(name=name, value=value)
                                      for name, value in DOCS_HEADERS.items()])
    return GatewayOpenAPIConfig(
        title=title, version=version, description=description, openapi_router=router,
        render_plugins=[OfflineSwaggerPlugin()], create_examples=False,
        components=Components(security_schemes=SECURITY_SCHEMES, parameters=SHARED_PARAMETERS,
                              headers=SHARED_HEADERS), security=BEARER_ONLY)
