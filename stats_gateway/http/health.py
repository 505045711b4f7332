"""Health probes and the pool settings that let the gateway ride out database faults.

``GET /livez``: the process answers; it never touches the database, so a database outage
does not get a healthy gateway restarted. ``GET /readyz``: the gateway can serve right now:
a pooled connection within ``readiness_timeout_s`` and every migration this build knows of
recorded in ``schema_migrations`` (one small read, bounded by the same timeout); otherwise
503 problem+json ``not_ready`` with the reason. Neither needs an API key, and neither is in
the OpenAPI document (they are for orchestrators, not API clients).

The pool (``GatewayPool``) checks each connection as it is handed out, so connections
broken by a database restart are dropped instead of failing a request, and the first
broken one found sweeps the rest. The check is free for a connection used in the last few
seconds whose socket has nothing to read (a restarting server tells its clients, which
makes the socket readable); others get an empty-query round trip. It gives up a failing
reconnection after ``pool_reconnect_timeout_s``; the next request that needs a connection
starts a new attempt at once, so recovery after an outage of any length takes seconds,
not the library's exponential backoff. A request waits at most ``pool_timeout_s`` for a
connection before its 503.
"""

from __future__ import annotations

import asyncio
import select
import time
from collections.abc import Sequence

import psycopg
import structlog
from litestar import Request, Response, get
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from stats_gateway.config import Settings
from stats_gateway.core.domain import Domain
from stats_gateway.core.errors import ApiError
from stats_gateway.db.connect import connection_kwargs
from stats_gateway.db.migrate import planned_migrations
from stats_gateway.http.common import engine_of, json_response
from stats_gateway.http.errors import problem

log = structlog.get_logger("stats_gateway.health")

TRUST_IDLE_S = 5.0  # a connection idle longer than this gets a round-trip check on checkout
CONNECT_TIMEOUT_S = 5  # a new connection to an unreachable host stops trying after this


class GatewayPool(AsyncConnectionPool):
    """The gateway's pool: fault behaviour from ``settings``, and a connection that fails
    its checkout check sweeps the idle ones (``check()``, in the background). A database
    restart breaks every connection at once; without the sweep a request would try the
    stale ones one by one, with the library's backoff sleeps in between.

    Its connections plan every statement for its own parameters (``plan_cache_mode =
    force_custom_plan``, merged into the connection ``options``: db/connect.py)."""

    def __init__(self, conninfo: str, settings: Settings, **kwargs):
        kwargs["kwargs"] = connection_kwargs(conninfo, kwargs.get("kwargs"))
        super().__init__(conninfo, timeout=settings.pool_timeout_s,
                         check=self._check_or_sweep,
                         reconnect_timeout=settings.pool_reconnect_timeout_s,
                         reconnect_failed=self._reconnect_gave_up, **kwargs)
        self._sweep: asyncio.Task | None = None

    async def putconn(self, conn: psycopg.AsyncConnection) -> None:
        conn._returned_at = time.monotonic()  # type: ignore[attr-defined]  # read by the next checkout's check
        await super().putconn(conn)

    async def _check_or_sweep(self, conn: psycopg.AsyncConnection) -> None:
        if _looks_alive(conn):
            return
        try:
            await self.check_connection(conn)
        except Exception:
            if self._sweep is None or self._sweep.done():
                self._sweep = asyncio.create_task(self.check())
            raise

    async def close(self, timeout: float = 5.0) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
        await super().close(timeout)

    @staticmethod
    def _reconnect_gave_up(pool: AsyncConnectionPool) -> None:
        # the pool stays open: the next request that needs a connection tries again
        log.warning("database_reconnect_gave_up", pool=pool.name,
                    hint="requests answer 503 until the database is reachable again")


def _looks_alive(conn: psycopg.AsyncConnection) -> bool:
    """True for a connection used moments ago on whose socket nothing is waiting: then the
    checkout skips its round trip. A server that shuts down or restarts tells its idle
    clients (a FATAL message, or end of file), which makes the socket readable, so a
    broken connection still gets the full check; so does one idle for a while, since a
    silently dropped network path leaves nothing to read."""
    returned_at = getattr(conn, "_returned_at", None)
    if returned_at is None or time.monotonic() - returned_at > TRUST_IDLE_S:
        return False
    if conn.closed or conn.pgconn.status != psycopg.pq.ConnStatus.OK:
        return False
    try:
        readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return False
    return not readable


def not_ready(request: Request, reason: str) -> Response:
    return problem(request, ApiError(503, "not_ready", f"not ready: {reason}"))


def health_routes(settings: Settings, domains: Sequence[Domain]) -> list:
    """``/livez`` and ``/readyz`` for an app serving ``domains``."""
    expected = [m.name for m in planned_migrations(tuple(domains))]
    timeout_s = settings.readiness_timeout_s

    @get("/livez", include_in_schema=False)
    async def livez() -> dict:
        return {"status": "ok"}

    @get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> Response:
        try:
            async with engine_of(request).pool.connection(timeout=timeout_s) as conn:
                async with conn.transaction():
                    await conn.execute(
                        f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}")
                    cur = await conn.execute("SELECT name FROM schema_migrations")
                    applied = {name for (name,) in await cur.fetchall()}
        except PoolTimeout:
            return not_ready(request, f"no database connection within {timeout_s:g} s")
        except psycopg.errors.QueryCanceled:
            return not_ready(request, f"the database did not answer within {timeout_s:g} s")
        except psycopg.Error as exc:
            log.warning("readiness_check_failed", error=f"{type(exc).__name__}: {exc}")
            return not_ready(request, "the database check failed")
        missing = [name for name in expected if name not in applied]
        if missing:
            return not_ready(request, "migrations not applied: " + ", ".join(missing))
        return json_response({"status": "ready"})

    return [livez, readyz]
