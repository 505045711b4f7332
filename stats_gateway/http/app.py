"""Litestar application: one route set per domain, all served by the one engine."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import psycopg
from litestar import Litestar, Request, Response, get, post
from litestar.openapi import OpenAPIConfig
from psycopg_pool import AsyncConnectionPool

from domains import DOMAINS
from stats_gateway import __version__
from stats_gateway.config import Settings
from stats_gateway.core.domain import Domain, validate_domains
from stats_gateway.core.engine import StatsEngine
from stats_gateway.core.envelopes import IngestResponse, breakdown_types, series_types
from stats_gateway.core.ingest import decode_batch, validate_events, write_batch
from stats_gateway.db.embedded import EmbeddedPostgres
from stats_gateway.db.migrate import migrate
from stats_gateway.http.common import caller_of, engine_of, json_response, query_params
from stats_gateway.http.errors import EXCEPTION_HANDLERS
from stats_gateway.http.logging import AccessLogMiddleware, configure_logging
from stats_gateway.seeds import SEED_ROUTES

def _series_route(domain: Domain, view_path: str):
    path = f"/v2/stats/{domain.name}" + (f"/{view_path}" if view_path else "")
    response_type = series_types(domain, view_path).response

    async def handler(request: Request) -> Response:
        caller = await caller_of(request, "read")
        body = await engine_of(request).series(caller.org_id, domain.name, view_path,
                                             query_params(request))
        return json_response(body)

    handler.__annotations__["return"] = Response[response_type]
    return get(path, name=f"{domain.name}-series-{view_path or 'main'}",
               operation_id=f"{domain.title}{view_path.title()}Series",
               tags=[domain.name], summary=f"{domain.title} time series",
               description=domain.doc)(handler)


def _breakdown_route(domain: Domain, by: str):
    response_type = breakdown_types(domain, by).response

    async def handler(request: Request) -> Response:
        caller = await caller_of(request, "read")
        body = await engine_of(request).breakdown(caller.org_id, domain.name, by, query_params(request))
        return json_response(body)

    handler.__annotations__["return"] = Response[response_type]
    return get(f"/v2/stats/{domain.name}/breakdown/{by}", name=f"{domain.name}-breakdown-{by}",
               operation_id=f"{domain.title}Breakdown{by[:1].upper()}{by[1:]}",
               tags=[domain.name], summary=f"{domain.title} breakdown by {by}",
               description=domain.doc)(handler)


def _ingest_route(domain: Domain):
    async def handler(request: Request) -> Response:
        caller = await caller_of(request, "ingest")
        events = decode_batch(await request.body())
        rows = validate_events(domain, events, datetime.now(UTC))
        async with engine_of(request).pool.connection() as conn:
            result = await write_batch(conn, caller.org_id, domain, rows)
        return json_response(IngestResponse(success=True, domain=domain.name, received=result.received,
                                    inserted=result.inserted, duplicates=result.duplicates))

    handler.__annotations__["return"] = Response[IngestResponse]
    return post(f"/v2/ingest/{domain.name}", name=f"{domain.name}-ingest",
                operation_id=f"{domain.title}Ingest", tags=[domain.name],
                summary=f"Ingest {domain.name} events (idempotent by eventId, atomic per batch)",
                status_code=200)(handler)


def routes_for(domains: Sequence[Domain]) -> list:
    handlers = []
    for domain in domains:
        handlers += [_series_route(domain, view.path) for view in domain.series]
        handlers += [_breakdown_route(domain, d.by) for d in domain.dimensions]
        handlers.append(_ingest_route(domain))
    return handlers


@get("/livez", include_in_schema=False)
async def livez() -> dict:
    return {"status": "ok"}


def create_app(settings: Settings | None = None,
               domains: Sequence[Domain] = DOMAINS) -> Litestar:
    """The gateway. Without a database URL it runs its own embedded PostgreSQL."""
    settings = settings or Settings.from_env()
    validate_domains(tuple(domains))
    configure_logging()

    @asynccontextmanager
    async def lifespan(app: Litestar):
        embedded = None
        url = settings.database_url
        if url is None:
            embedded = EmbeddedPostgres(settings.data_dir)
            url = embedded.uri()
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn, tuple(domains))
        pool = AsyncConnectionPool(
            url, min_size=settings.pool_min, max_size=settings.pool_max, open=False,
            # autocommit: a read is one statement, so no BEGIN/COMMIT round trips around
            # it; writes that need atomicity open conn.transaction() (a real BEGIN) anyway
            kwargs={"autocommit": True,
                    "options": f"-c statement_timeout={settings.statement_timeout_ms}"})
        await pool.open(wait=True, timeout=30)
        app.state.engine = StatsEngine(pool, domains, use_rollups=settings.use_rollups)
        try:
            yield
        finally:
            await pool.close()
            if embedded is not None:
                embedded.stop()

    app = Litestar(
        route_handlers=[livez, *routes_for(domains), *SEED_ROUTES],
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=16_000_000,
        openapi_config=OpenAPIConfig(title="stats-gateway", version=__version__),
        debug=False,
    )
    # outermost, so unmatched routes (404/405) are logged and carry a request id too
    app.asgi_handler = AccessLogMiddleware(app.asgi_handler)
    return app
