"""Helpers every route uses: the engine, the caller and its session, query parameters, JSON
bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from typing import Any

import msgspec
import psycopg
from litestar import Request, Response
from psycopg_pool import PoolTimeout

from stats_gateway.auth import (
    Caller, KeyCache, authenticate, key_from_header, key_is_live, require, split_key,
    unauthorized,
)
from stats_gateway.core.database import Database, KeyCheck, TenantSession
from stats_gateway.core.engine import StatsEngine
from stats_gateway.db.database import PooledDatabase
from stats_gateway.http.csv import csv_response, wants_csv

JSON = "application/json"
_encoder = msgspec.json.Encoder(decimal_format="number")  # exact decimals as JSON numbers


WARNINGS_HEADER = "Stats-Warnings"  # a seed endpoint's warnings: its body keeps the seed's shape


def json_response(body: object, status: int = 200, warnings: list | None = None) -> Response:
    """JSON with exact decimals as numbers (Litestar's own encoder writes them as strings);
    ``warnings`` (``MetaWarning``s) go to the ``Stats-Warnings`` header as a JSON array."""
    headers = {WARNINGS_HEADER: _encoder.encode(warnings).decode()} if warnings else None
    return Response(content=encode_in_pieces(body), status_code=status, media_type=JSON,
                    headers=headers)


_LEAF_SLICE = 1_000  # points encoded per call


def encode_in_pieces(body: object) -> bytes:
    """``body`` as JSON, byte for byte what one ``encode`` call gives, but in many short
    calls: an envelope's trailing list (entities, each entity's series) a slice at a time.
    One call over a 20 MB answer holds the GIL for ~100 ms; between short ones Python can
    switch to the thread that serves everyone else (http/lane.py)."""
    out: list[bytes] = []
    _pieces(body, out)
    return b"".join(out)


def _written_last(value: object) -> str | None:
    """The last field a Struct writes: UNSET fields (an envelope's optional parts, e.g.
    ``previous`` when not asked) are left out of the JSON."""
    fields = getattr(value, "__struct_fields__", None) or ()
    written = [f for f in fields if getattr(value, f) is not msgspec.UNSET]
    return written[-1] if written else None


def _pieces(value: Any, out: list[bytes]) -> None:
    last = _written_last(value)
    items = getattr(value, last) if last else None
    if last is None or not isinstance(items, list) or len(items) <= _LEAF_SLICE // 10:
        out.append(_encoder.encode(value))
        return
    head = _encoder.encode(msgspec.structs.replace(value, **{last: []}))
    if not head.endswith(b"[]}"):  # the list is not written last: one call after all
        out.append(_encoder.encode(value))
        return
    out.append(head[:-2])  # ...,"<last field>":[   (the head ends with []})
    if (inner := _written_last(items[0])) and isinstance(
            getattr(items[0], inner), list):  # nested lists
        for i, item in enumerate(items):
            if i:
                out.append(b",")
            _pieces(item, out)
    else:
        for i in range(0, len(items), _LEAF_SLICE):
            if i:
                out.append(b",")
            out.append(_encoder.encode(items[i:i + _LEAF_SLICE])[1:-1])
    out.append(b"]}")


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
    """The app's engine, in no request's session (see ``Access.engine`` for one)."""
    return request.app.state.engine


def database_of(request: Request) -> PooledDatabase:
    """The app's database (its one pool), in no request's session."""
    return request.app.state.database


@dataclass(frozen=True)
class Access:
    """An authorized request: who calls, and the tenant session its queries run in (the
    caller's org, and the cached key's pending check: db/tenant.py)."""

    caller: Caller
    session: TenantSession

    @property
    def org_id(self) -> str:
        return self.caller.org_id

    def engine(self, engine: StatsEngine) -> StatsEngine:
        """``engine`` (the app's, or the expensive lane's) in this request's session."""
        return engine.in_session(self.session)

    def database(self, request: Request) -> Database:
        """The app's database in this request's session."""
        return database_of(request).in_session(self.session)


@asynccontextmanager
async def authorized(request: Request, permission: str, *, basic: bool = False,
                     bare: bool = False) -> AsyncIterator[Access]:
    """The authenticated caller holding ``permission`` and its tenant session, for the
    block that answers the request (401/403 otherwise), within its rate limit (429
    otherwise; counted after authentication, see http/ratelimit.py).

    A key found in the key cache (``auth.KeyCache``) costs no lookup: the session carries
    its ``KeyCheck``, and the block's first tenant query re-checks in its own round trip
    that the key is still live (db/tenant.py). Should the block end without one (an early
    400, say), the key is checked here before anything is answered. A key found revoked
    or expired either way answers the same 401 as any other dead key, whatever the block
    did.

    Why a context manager around the handler's block rather than Litestar guards and a
    dependency (checked in Litestar 2.25): a guard runs before the handler, so it cannot
    turn what the handler did (an early 400, say) into the 401 of a cached key found dead
    afterwards; a generator dependency can see the handler's exception, but an exception
    it raises instead reaches the exception handlers wrapped in an ``ExceptionGroup``
    (``DependencyCleanupGroup._throw``), past every per-route handler (the seeds' own error
    shapes, 401 included). The order the tests pin (401, then the rate limit, then 403;
    the same 401 for every dead key) needs the one block."""
    key = key_from_header(request.headers.get("authorization"), basic=basic, bare=bare)
    key_id, secret = split_key(key)
    database = database_of(request)
    cache: KeyCache = request.app.state.key_cache
    caller = cache.get(key_id, secret)
    check = None
    if caller is None:
        async with database.connection() as conn:
            caller = await authenticate(conn, key_id, secret)
        cache.put(key_id, secret, caller)
    else:
        check = KeyCheck(key_id)
    try:
        try:
            await _admit(request, caller, permission)
            yield Access(caller, TenantSession(caller.org_id, check))
        except Exception as exc:
            # a database in trouble answers 503 (http/errors.py) without a second try
            if check is not None and not isinstance(exc, (psycopg.Error, PoolTimeout)) \
                    and not await _found_live(database, check):
                raise unauthorized() from None
            raise
        if check is not None and not await _found_live(database, check):
            raise unauthorized()
    finally:
        if check is not None and check.live is False:
            cache.drop(key_id)


async def _found_live(database: PooledDatabase, check: KeyCheck) -> bool:
    """Whether the request's cached key is live: as its query found, or asked now."""
    if check.live is None:
        async with database.connection() as conn:
            check.live = await key_is_live(conn, check.key_id)
    return check.live


async def _admit(request: Request, caller: Caller, permission: str) -> None:
    """The key's rate limit (one budget across replicas: http/ratelimit.py), then its
    permission."""
    await request.app.state.rate_limiter.take(database_of(request), request.scope,
                                              caller.key_id, caller.rate_limit)
    require(caller, permission)


async def admitted(request: Request, access: Access, cost, answer):
    """``answer(engine)``, the engine in the request's session, once admission lets it
    run (http/admission.py): charged to the key's point budget, and an expensive request
    in the expensive lane (http/lane.py) under its key's and org's slots; 400/429
    otherwise."""
    caller = access.caller
    admission = request.app.state.admission
    admission.charge(request.scope, caller.key_id, cost)
    async with admission.slot(request.scope, caller.key_id, caller.org_id, cost) as expensive:
        lane = request.app.state.lane
        if expensive and lane is not None:
            return await lane.run(lambda engine: answer(access.engine(engine)))
        return await answer(access.engine(engine_of(request)))
