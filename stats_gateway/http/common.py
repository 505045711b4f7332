"""Helpers every route uses: the engine, the caller, query parameters, JSON bodies."""

from __future__ import annotations

import msgspec
from litestar import Request, Response

from stats_gateway.auth import Caller, authenticate, key_from_header, require
from stats_gateway.core.engine import StatsEngine
from stats_gateway.http.csv import csv_response, wants_csv
from stats_gateway.http.ratelimit import RETRY_AFTER_STATE, RateLimited

JSON = "application/json"
_encoder = msgspec.json.Encoder(decimal_format="number")  # exact decimals as JSON numbers


def json_response(body: object, status: int = 200) -> Response:
    """JSON with exact decimals as numbers (Litestar's own encoder writes them as strings)."""
    return Response(content=_encoder.encode(body), status_code=status, media_type=JSON)


def respond(request: Request, body: object, csv_filename: str) -> Response:
    """JSON, or CSV when the Accept header prefers ``text/csv`` (see http/csv.py)."""
    if wants_csv(request.headers.get("accept")):
        return csv_response(body, csv_filename)
    return json_response(body)


def query_params(request: Request) -> dict[str, list[str]]:
    """Every query parameter with all its values, for the engine's own validation."""
    params = request.query_params
    return {key: params.getall(key) for key in params.keys()}


def engine_of(request: Request) -> StatsEngine:
    return request.app.state.engine


async def caller_of(request: Request, permission: str, *, basic: bool = False,
                    bare: bool = False) -> Caller:
    """The authenticated caller holding ``permission`` (401/403 otherwise), within its
    rate limit (429 otherwise; counted after authentication, see http/ratelimit.py)."""
    key = key_from_header(request.headers.get("authorization"), basic=basic, bare=bare)
    async with engine_of(request).pool.connection() as conn:
        caller = await authenticate(conn, key)
    limiter = getattr(request.app.state, "rate_limiter", None)
    if limiter is not None:
        try:
            limiter.take(caller.key_id, caller.rate_limit)
        except RateLimited as exc:
            request.scope.setdefault("state", {})[RETRY_AFTER_STATE] = exc.retry_after_s
            raise
    require(caller, permission)
    return caller
