"""``POST /v2/query/<domain>`` over HTTP (the engine's ``query``; rules in
``core/query.py``): the body decoded and refused as a whole when it is not a query, and
the page cursor signed so it cannot be forged or reused elsewhere.

The cursor is ``base64url(offset.fingerprint-digest.mac)``: ``mac`` is an HMAC of the
offset and the query's fingerprint (the body without cursor and limit, and the domain)
keyed by the caller's API key secret. Only the key that made it can present it again,
for the same query: another org's key, another key of the same org, or a changed query
gets 400 ``invalid_cursor``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import msgspec
from litestar import Request, Response, post

from stats_gateway.auth import key_from_header, split_key
from stats_gateway.core.domain import Domain
from stats_gateway.core.engine import StatsEngine
from stats_gateway.core.errors import ApiError, Problem
from stats_gateway.core.query import (
    MAX_QUERY_LIMIT, QueryBody, QueryResponse, fingerprint, parse_query,
)
from stats_gateway.core.request import MAX_FILTER_VALUE, MAX_FILTER_VALUES, SCOPES
from stats_gateway.core.timebuckets import BUCKET_SIZES, WINDOWS
from stats_gateway.http.admission import Cost
from stats_gateway.core.explain import ExplainResponse
from stats_gateway.http.common import admitted, authorized, engine_of, json_response
from stats_gateway.http.openapi import error_responses, inline_json_schema, operation_class

_CURSOR_LABEL = b"stats-gateway query cursor\0"


def _mac(secret: str, offset: int, print_: str) -> str:
    key = hashlib.sha256(_CURSOR_LABEL + secret.encode()).digest()
    return hmac.new(key, f"{offset}\0{print_}".encode(), hashlib.sha256).hexdigest()[:32]


def make_cursor(secret: str, offset: int, print_: str) -> str:
    text = f"{offset}.{_mac(secret, offset, print_)}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def read_cursor(secret: str, cursor: str, print_: str) -> int:
    """The offset a cursor points at; 400 ``invalid_cursor`` for anything else."""
    refused = ApiError(400, "invalid_cursor", "the cursor is not one this key was given for "
                       "this query; ask again without it", [Problem("cursor", "invalid")])
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        offset_text, mac = text.split(".", 1)
        offset = int(offset_text)
    except (ValueError, UnicodeDecodeError):
        raise refused from None
    if offset < 0 or not hmac.compare_digest(mac, _mac(secret, offset, print_)):
        raise refused
    return offset


def decode_body(raw: bytes) -> QueryBody:
    try:
        return msgspec.json.decode(raw, type=QueryBody)
    except msgspec.ValidationError as exc:
        raise ApiError(400, "invalid_parameters", f"not a query: {exc}",
                       [Problem("body", str(exc))]) from None
    except (msgspec.DecodeError, RecursionError) as exc:
        raise ApiError(400, "invalid_parameters", "the body is not JSON",
                       [Problem("body", str(exc))]) from None


def body_schema(domain: Domain) -> dict:
    """The body's JSON Schema with the domain's own names and the reader's bounds."""
    schema = inline_json_schema(QueryBody)
    props = schema["properties"]
    props["metrics"].update(minItems=1, items={"enum": [m.name for m in domain.metrics]})
    props["groupBy"]["items"] = {"enum": [d.by for d in domain.dimensions]}
    props["groupBy"]["uniqueItems"] = True
    flt = props["filters"]["items"]["properties"]
    flt["field"] = {"enum": [f.param for f in domain.filters]}
    flt["values"].update(minItems=1, maxItems=MAX_FILTER_VALUES,
                         items={"type": "string", "minLength": 1,
                                "maxLength": MAX_FILTER_VALUE})
    props["scope"] = {"enum": list(SCOPES), "default": "org"}
    props["window"] = {"anyOf": [{"enum": list(WINDOWS)}, {"type": "null"}], "default": None}
    props["timeBucketSize"] = {"anyOf": [{"enum": list(BUCKET_SIZES)}, {"type": "null"}],
                               "default": None}
    for name in ("start", "end"):
        props[name] = {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}],
                       "default": None}
    props["limit"].update(minimum=1, maximum=MAX_QUERY_LIMIT)
    schema["description"] = ("Rules: docs/queries.md. Give `window`, or `start` (and "
                             "optionally `end`); `id` with scope workspace or repo.")
    return schema


EXPLAIN = "explain"  # ?explain=true: the planned statements, not the answer (admin keys)


def explain_asked(request: Request) -> bool:
    """Whether ``?explain=true`` asks for the plan (``StatsEngine.explain``) instead of
    the answer; 400 for a value other than true or false."""
    values = request.query_params.getall(EXPLAIN, [])
    if not values:
        return False
    if len(values) == 1 and values[0] in ("true", "false"):
        return values[0] == "true"
    raise ApiError(400, "invalid_parameters", "explain takes true or false, once",
                   [Problem(EXPLAIN, "must be true or false")])


def permission_for(explain: bool) -> str:
    """An explanation shows the rendered SQL and the schema's tables: admin keys only
    (``create-key --admin``); any other key asking for one gets 403."""
    return "admin" if explain else "read"


def explained(explanation) -> Response:
    return json_response(ExplainResponse(success=True, explain=explanation))


def query_route(domain: Domain):
    async def handler(request: Request) -> Response[QueryResponse]:
        explain = explain_asked(request)
        async with authorized(request, permission_for(explain)) as access:
            body = decode_body(await request.body())
            parsed = parse_query(domain, body, datetime.now(UTC))
            if explain:  # the first page's statements, nothing run
                return explained(await access.engine(engine_of(request)).explain(
                    access.org_id, lambda engine: engine.query(
                        access.org_id, domain.name, body,
                        restriction=access.caller.restriction)))
            _, secret = split_key(key_from_header(request.headers.get("authorization")))
            print_ = fingerprint(domain, body)
            offset = read_cursor(secret, body.cursor, print_) if body.cursor else 0
            buckets = Cost.of(parsed).points if parsed.by_bucket else 1
            cost = Cost(max(1, buckets * min(parsed.limit, 100)))

            async def answer(engine: StatsEngine) -> Response:
                page, following = await engine.query(access.org_id, domain.name, body, offset,
                                                     restriction=access.caller.restriction)
                cursor = None if following is None else make_cursor(secret, following, print_)
                return json_response(msgspec.structs.replace(page, next_cursor=cursor))

            return await admitted(request, access, cost, answer)

    return post(f"/v2/query/{domain.name}", name=f"{domain.name}-query",
                operation_id=f"{domain.title}Query", tags=[domain.name],
                summary=f"{domain.title}: any metrics grouped by any dimensions",
                description="Rules: docs/queries.md and core/query.py.", status_code=200,
                operation_class=operation_class(request_body=body_schema(domain)),
                responses=error_responses((400, 401, 403, 413, 429, 500, 503)))(handler)
