"""Helpers every route uses: the engine, the caller, query parameters, JSON bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec
import psycopg
from litestar import Request, Response
from psycopg_pool import PoolTimeout

from stats_gateway.auth import (
    Caller, KeyCache, authenticate, key_from_header, key_is_live, require, split_key,
    unauthorized,
)
from stats_gateway.core.engine import StatsEngine
from stats_gateway.db.tenant import KEY_CHECK, KeyCheck
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


@asynccontextmanager
async def authorized(request: Request, permission: str, *, basic: bool = False,
                     bare: bool = False) -> AsyncIterator[Caller]:
    """The authenticated caller holding ``permission``, for the block that answers the
    request (401/403 otherwise), within its rate limit (429 otherwise; counted after
    authentication, see http/ratelimit.py).

    A key found in the key cache (``auth.KeyCache``) costs no lookup: the block's first
    tenant query re-checks in its own round trip that the key is still live
    (db/tenant.py). Should the block end without one (an early 400, say), the key is
    checked here before anything is answered. A key found revoked or expired either way
    answers the same 401 as any other dead key, whatever the block did."""
    key = key_from_header(request.headers.get("authorization"), basic=basic, bare=bare)
    key_id, secret = split_key(key)
    pool = engine_of(request).pool
    cache: KeyCache = request.app.state.key_cache
    caller = cache.get(key_id, secret)
    check = None
    if caller is None:
        async with pool.connection() as conn:
            caller = await authenticate(conn, key_id, secret)
        cache.put(key_id, secret, caller)
    else:
        check = KeyCheck(key_id)
    token = KEY_CHECK.set(check)
    try:
        try:
            _admit(request, caller, permission)
            yield caller
        except Exception as exc:
            # a database in trouble answers 503 (http/errors.py) without a second try
            if check is not None and not isinstance(exc, (psycopg.Error, PoolTimeout)) \
                    and not await _found_live(pool, check):
                raise unauthorized() from None
            raise
        if check is not None and not await _found_live(pool, check):
            raise unauthorized()
    finally:
        KEY_CHECK.reset(token)
        if check is not None and check.live is False:
            cache.drop(key_id)


async def _found_live(pool, check: KeyCheck) -> bool:
    """Whether the request's cached key is live: as its query found, or asked now."""
    if check.live is None:
        async with pool.connection() as conn:
            check.live = await key_is_live(conn, check.key_id)
    return check.live


def _admit(request: Request, caller: Caller, permission: str) -> None:
    try:
        request.app.state.rate_limiter.take(caller.key_id, caller.rate_limit)
    except RateLimited as exc:
        request.scope.setdefault("state", {})[RETRY_AFTER_STATE] = exc.retry_after_s
        raise
    require(caller, permission)
