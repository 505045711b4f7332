"""Health probes: whether the process answers, and whether it can serve right now.

``GET /livez``: the process answers; it never touches the database, so a database outage
does not get a healthy gateway restarted. ``GET /readyz``: the gateway can serve right now:
a pooled connection within ``readiness_timeout_s`` and every migration this build knows of
recorded in ``schema_migrations`` (one small read, bounded by the same timeout); otherwise
503 problem+json ``not_ready`` with the reason. Neither needs an API key, and neither is in
the OpenAPI document (they are for orchestrators, not API clients).

The pool these probes read, and its fault behaviour: db/pool.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
import structlog
from litestar import Request, Response, get
from psycopg_pool import PoolTimeout

from stats_gateway.config import Settings
from stats_gateway.core.domain import Domain
from stats_gateway.core.errors import ApiError
from stats_gateway.db.migrate import planned_migrations
from stats_gateway.http.common import database_of, json_response
from stats_gateway.http.errors import problem

log = structlog.get_logger("stats_gateway.health")


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
            async with database_of(request).connection(timeout=timeout_s) as conn:
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
