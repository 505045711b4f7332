"""Every 4xx/5xx leaves as one problem+json envelope; tracebacks stay in the server log.

Database faults are the caller's to retry, never a 500: a statement that ran past
``statement_timeout`` (or was cancelled) answers 503 ``query_timeout``; no pooled connection
within the pool timeout, or a connection lost mid-query (server restarting, network), answers
503 ``service_unavailable``. Every 503 carries ``Retry-After`` (seconds).

Why not Litestar's ``ProblemDetailsPlugin`` (2.25): it renders ``ProblemDetailsException``
only (type, title, status, detail, instance and a flat ``extra``); our envelope adds
``success``, ``errorCode``, ``message``, ``requestId`` and per-field ``errors`` with an event
``index`` (clients and tests read them), maps database faults to 503 with ``Retry-After``,
and lets a seed path answer in its own API's shape (``answer_errors_in_shape``). Every
error would still need converting to the plugin's exception first: more code, not less.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import msgspec
import psycopg
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.types import ExceptionHandlersMap
from psycopg_pool import PoolTimeout

from stats_gateway.core.envelopes import ErrorDetail, ErrorResponse
from stats_gateway.core.errors import ApiError
from stats_gateway.http.methods import allow_headers

PROBLEM_JSON = "application/problem+json"
_encoder = msgspec.json.Encoder()
log = structlog.get_logger("stats_gateway.http")

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type",
          429: "rate_limited", 503: "service_unavailable"}


def request_id(request: Request) -> str | None:
    return request.scope.get("state", {}).get("request_id")


# Retry-After hints (seconds): a timed-out query will time out again until the load drops;
# a busy pool or a lost connection is usually back within a couple of seconds
RETRY_AFTER_S = {"query_timeout": 5, "service_unavailable": 2}


def problem(request: Request, error: ApiError, extra_headers: dict | None = None) -> Response:
    body = ErrorResponse(
        type=f"https://stats-gateway.dev/errors/{error.error_code}", title=error.message,
        status=error.status, success=False, error_code=error.error_code, message=error.message,
        request_id=request_id(request),
        errors=[ErrorDetail(field=p.field, message=p.message, index=p.index)
                for p in error.problems])
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else {}
    if error.status == 503:
        headers["Retry-After"] = str(RETRY_AFTER_S.get(error.error_code, 2))
    headers.update(extra_headers or {})
    return Response(content=_encoder.encode(body), status_code=error.status,
                    media_type=PROBLEM_JSON, headers=headers)


def handle_api_error(request: Request, exc: ApiError) -> Response:
    return problem(request, exc)


ErrorShape = Callable[[Request, Exception], Response]
_SHAPES: list[tuple[re.Pattern, ErrorShape]] = []


def answer_errors_in_shape(path_pattern: str, shape: ErrorShape) -> None:
    """Errors raised for ``path_pattern`` before any of its routes runs (the router's 405
    for a method the path does not take) answer in ``shape``: a seed endpoint's own
    envelope. Errors inside a route go through the route's own handlers."""
    _SHAPES.append((re.compile(path_pattern), shape))


def _shape_of(request: Request) -> ErrorShape | None:
    path = request.scope.get("path", "")
    return next((shape for pattern, shape in _SHAPES if pattern.fullmatch(path)), None)


def handle_http_exception_in_shape(request: Request, exc: HTTPException) -> Response:
    """The app's handler: the path's own error shape if it has one (a seed endpoint), else
    problem+json; a 405 lists the path's methods in ``Allow`` either way."""
    if (shape := _shape_of(request)) is not None:
        response = shape(request, exc)
        response.headers.update(allow_headers(exc))
        return response
    return handle_http_exception(request, exc)


def handle_http_exception(request: Request, exc: HTTPException) -> Response:
    """Litestar's own refusals (405, 413, ...) as problem+json."""
    status = exc.status_code
    if status >= 500:
        return handle_unexpected(request, exc)
    detail = exc.detail if isinstance(exc.detail, str) else "request refused"
    if status == 404:
        detail = "no such endpoint"
    return problem(request, ApiError(status, _CODES.get(status, "bad_request"), detail),
                   allow_headers(exc))


def handle_database_down(request: Request, exc: Exception) -> Response:
    """A connection lost mid-request (the server restarting, the network): the pool drops
    it and reconnects, so a retry shortly after succeeds."""
    log.warning("database_unavailable", error=type(exc).__name__, request_id=request_id(request))
    return problem(request, ApiError(503, "service_unavailable",
                                     "the database is unavailable; retry shortly"))


def handle_pool_timeout(request: Request, exc: PoolTimeout) -> Response:
    """Every connection busy (or none could be made) for the whole pool timeout: answer now
    rather than queue requests behind a stuck or unreachable database."""
    log.warning("pool_timeout", error=str(exc), request_id=request_id(request))
    return problem(request, ApiError(
        503, "service_unavailable",
        "no database connection became available in time (the gateway is overloaded or the "
        "database unreachable); retry shortly"))


def handle_query_timeout(request: Request, exc: psycopg.errors.QueryCanceled) -> Response:
    """``statement_timeout`` (which also bounds lock waits) cancelled the query."""
    log.warning("query_timeout", error=str(exc).strip(), request_id=request_id(request))
    return problem(request, ApiError(
        503, "query_timeout",
        "the query took longer than the gateway allows; retry later or ask for a shorter "
        "range or coarser buckets"))


def handle_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled_error", request_id=request_id(request), exc_info=exc)
    return problem(request, ApiError(500, "internal_error",
                                     "internal error; quote the request id when reporting it"))


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    ApiError: handle_api_error,
    HTTPException: handle_http_exception,
    PoolTimeout: handle_pool_timeout,
    psycopg.errors.QueryCanceled: handle_query_timeout,  # before its base, OperationalError
    psycopg.OperationalError: handle_database_down,
    Exception: handle_unexpected,
}
# what the app installs: the same, with seed paths' errors in their own shapes
APP_EXCEPTION_HANDLERS: ExceptionHandlersMap = {**EXCEPTION_HANDLERS, HTTPException: handle_http_exception_in_shape}
