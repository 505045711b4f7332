"""FastAPI's error envelope (Weave is FastAPI): ``{"detail": ...}``, for every error here."""

from __future__ import annotations

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.types import ExceptionHandlersMap

from stats_gateway.core.errors import ApiError
from stats_gateway.http.common import json_response
from stats_gateway.http.errors import (
    EXCEPTION_HANDLERS, answer_errors_in_shape, handle_database_down, handle_unexpected,
    request_id,
)
from stats_gateway.seeds.call_stats.wire import BodyInvalid


class ValidationProblem(msgspec.Struct, frozen=True):
    loc: list[str | int]
    msg: str
    type: str


class ErrorDetail(msgspec.Struct, frozen=True):
    """FastAPI's error body: a message, or (422) every problem in the body."""

    detail: str | list[ValidationProblem]


def _detail(status: int, detail: object, headers: dict | None = None) -> Response:
    response = json_response({"detail": detail}, status)
    response.headers.update(headers or {})
    return response


def fastapi_error(request: Request, exc: Exception) -> Response:
    """422 lists every problem; 401/403/413/503 carry a message; anything else is a logged
    500 that shows only the request id."""
    if isinstance(exc, BodyInvalid):
        return _detail(422, [p.as_json() for p in exc.problems])
    if isinstance(exc, ApiError) and exc.status == 401:
        return _detail(401, "a valid API key is required: HTTP Basic with the key as password "
                       "(any user name), or Bearer <key>", {"WWW-Authenticate": "Basic"})
    if isinstance(exc, ApiError):
        return _detail(exc.status, exc.message)
    if isinstance(exc, HTTPException) and exc.status_code < 500:
        return _detail(exc.status_code, exc.detail if isinstance(exc.detail, str)
                       else "request refused")
    logged = (handle_database_down if isinstance(exc, tuple(_DATABASE_DOWN))
              else handle_unexpected)(request, exc)  # logs it the gateway's way
    status = logged.status_code or 500  # the gateway's handlers always set one
    message = ("the database is unavailable; retry shortly" if status == 503
               else f"Internal Server Error (request id {request_id(request)})")
    retry = {k: v for k, v in logged.headers.items() if k.lower() == "retry-after"}
    return _detail(status, message, retry)


_DATABASE_DOWN = [key for key, handler in EXCEPTION_HANDLERS.items()
                  if handler is handle_database_down and isinstance(key, type)]

answer_errors_in_shape("/calls/stats", fastapi_error)  # the router's 405 (http/errors.py)

CALL_STATS_HANDLERS: ExceptionHandlersMap = {key: fastapi_error for key in EXCEPTION_HANDLERS} | {
    BodyInvalid: fastapi_error}
"""Every exception the app maps, and ours, rendered in this endpoint's envelope."""
