"""The gateway's connection pool: the settings that let it ride out database faults.

The pool (``GatewayPool``) checks each connection as it is handed out, so connections
broken by a database restart are dropped instead of failing a request, and the first
broken one found sweeps the rest. The check is free for a connection used in the last few
seconds whose socket has nothing to read (a restarting server tells its clients, which
makes the socket readable); others get an empty-query round trip. It gives up a failing
reconnection after ``pool_reconnect_timeout_s``; the next request that needs a connection
starts a new attempt at once, so recovery after an outage of any length takes seconds,
not the library's exponential backoff. A request waits at most ``pool_timeout_s`` for a
connection before its 503.

When each connection was last returned is kept by the pool (a weak map), not written
onto psycopg's connection objects: their attributes are the library's.
"""

from __future__ import annotations

import asyncio
import select
import time
import weakref

import psycopg
import structlog
from psycopg_pool import AsyncConnectionPool

from stats_gateway.config import Settings
from stats_gateway.db.connect import connection_kwargs

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
        # when each idle connection came back, read by its next checkout's check
        self._returned_at: weakref.WeakKeyDictionary[psycopg.AsyncConnection, float] = \
            weakref.WeakKeyDictionary()
        super().__init__(conninfo, timeout=settings.pool_timeout_s,
                         check=self._check_or_sweep,
                         reconnect_timeout=settings.pool_reconnect_timeout_s,
                         reconnect_failed=self._reconnect_gave_up, **kwargs)
        self._sweep: asyncio.Task | None = None

    async def putconn(self, conn: psycopg.AsyncConnection) -> None:
        self._returned_at[conn] = time.monotonic()
        await super().putconn(conn)

    async def _check_or_sweep(self, conn: psycopg.AsyncConnection) -> None:
        if _looks_alive(conn, self._returned_at.get(conn)):
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


def _looks_alive(conn: psycopg.AsyncConnection, returned_at: float | None) -> bool:
    """True for a connection used moments ago on whose socket nothing is waiting: then the
    checkout skips its round trip. A server that shuts down or restarts tells its idle
    clients (a FATAL message, or end of file), which makes the socket readable, so a
    broken connection still gets the full check; so does one idle for a while, since a
    silently dropped network path leaves nothing to read."""
    if returned_at is None or time.monotonic() - returned_at > TRUST_IDLE_S:
        return False
    if conn.closed or conn.pgconn.status != psycopg.pq.ConnStatus.OK:
        return False
    try:
        readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return False
    return not readable
