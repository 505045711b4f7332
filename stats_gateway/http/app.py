"""Litestar application: one route set per domain, all served by the one engine."""

from __future__ import annotations

import gc
from collections.abc import Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import hmac

from litestar import Litestar, Request, Response, Router, get, post
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.static_files import create_static_files_router

from domains import DOMAINS
from stats_gateway import __version__
from stats_gateway.auth import KeyCache
from stats_gateway.config import Settings
from stats_gateway.core.domain import Domain, validate_domains
from stats_gateway.core.engine import StatsEngine
from stats_gateway.core.envelopes import IngestResponse, breakdown_types, series_types
from stats_gateway.core.errors import ApiError
from stats_gateway.core.ingesting import ingest_batch
from stats_gateway.db.connect import connect
from stats_gateway.db.embedded import EmbeddedPostgres
from stats_gateway.db.migrate import migrate
from stats_gateway.db.database import PooledDatabase
from stats_gateway.db.pool import CONNECT_TIMEOUT_S, GatewayPool
from stats_gateway.db.tenant import configure_app_role
from stats_gateway.core.request import parse_breakdown, parse_series
from stats_gateway.http.admission import Admission, Cost
from stats_gateway.http.common import (
    admitted, authorized, engine_of, json_response, query_params, respond,
)
from stats_gateway.http.lane import ExpensiveLane
from stats_gateway.http.caching import COMPRESSION
from stats_gateway.http.dashboard import STATIC_DIR, dashboard_routes
from stats_gateway.http.errors import APP_EXCEPTION_HANDLERS
from stats_gateway.http.ratelimit import RateLimiter, add_limit_headers
from stats_gateway.http.health import health_routes
from stats_gateway.http.home import home
from stats_gateway.http.keys import KEY_ROUTES
from stats_gateway.http.logging import AccessLogMiddleware, configure_logging
from stats_gateway.http.methods import HeadAsGet
from stats_gateway.http.query import (
    EXPLAIN, explain_asked, explained, permission_for, query_route,
)
from stats_gateway.http.metrics import Metrics, metrics_endpoint, metrics_of
from stats_gateway.http.openapi import (
    ExactNumbers, breakdown_docs, ingest_docs, openapi_config, series_docs,
)
from stats_gateway.seeds import SEED_ROUTES


# a /v2 route's return type: each route's own envelope, which Litestar reads from the
# route's signature_namespace (it wins over this module's names), so the OpenAPI document
# names it without the handler's __annotations__ being written
ResponseType = Any


def _stats_route(domain: Domain, path: str, response_type: type, parse, answer_of,
                 csv_filename: str, docs: dict, **route):
    """A /v2 stats GET: the caller's key, the request parsed once and priced before any
    SQL, then answered from that parsed request as JSON or CSV."""
    async def handler(request: Request) -> Response[ResponseType]:
        explain = explain_asked(request)
        async with authorized(request, permission_for(explain)) as access:
            params = query_params(request)
            params.pop(EXPLAIN, None)
            parsed = parse(params)
            cost = Cost.of(parsed)
            if explain:  # the planned statements, nothing run: http/query.py
                return explained(await access.engine(engine_of(request)).explain(
                    access.org_id, lambda engine: answer_of(engine, access.caller, parsed)))

            async def answer(engine: StatsEngine) -> Response:
                body = await answer_of(engine, access.caller, parsed)
                return respond(request, body, csv_filename)

            return await admitted(request, access, cost, answer)

    return get(path, tags=[domain.name], description=domain.doc,
               signature_namespace={"ResponseType": response_type}, **docs, **route)(handler)


def _series_route(domain: Domain, view_path: str):
    view = domain.declared_view(view_path)
    return _stats_route(
        domain, f"/v2/stats/{domain.name}" + (f"/{view_path}" if view_path else ""),
        series_types(domain, view_path).response,
        lambda params: parse_series(domain, view, params, datetime.now(UTC)),
        lambda engine, caller, parsed: engine.answer_series(
            caller.org_id, domain, parsed, restriction=caller.restriction),
        f"{domain.name}-{view_path or 'series'}.csv", series_docs(domain, view),
        name=f"{domain.name}-series-{view_path or 'main'}",
        operation_id=f"{domain.title}{view_path.title()}Series",
        summary=f"{domain.title} time series")


def _breakdown_route(domain: Domain, by: str):
    dimension = domain.declared_dimension(by)
    return _stats_route(
        domain, f"/v2/stats/{domain.name}/breakdown/{by}",
        breakdown_types(domain, by).response,
        lambda params: parse_breakdown(domain, dimension, params, datetime.now(UTC)),
        lambda engine, caller, parsed: engine.answer_breakdown(
            caller.org_id, domain, parsed, restriction=caller.restriction),
        f"{domain.name}-breakdown-{by}.csv", breakdown_docs(domain, dimension),
        name=f"{domain.name}-breakdown-{by}",
        operation_id=f"{domain.title}Breakdown{by[:1].upper()}{by[1:]}",
        summary=f"{domain.title} breakdown by {by}")


def _ingest_route(domain: Domain):
    async def handler(request: Request) -> Response[IngestResponse]:
        async with authorized(request, "ingest") as access:
            result = await ingest_batch(  # the steps, shared with `load`: core/ingesting.py
                access.database(request), access.org_id, domain, await request.body(),
                access.caller.restriction, datetime.now(UTC))
        metrics_of(request).count_ingest(domain.name, result.inserted, result.duplicates)
        return json_response(IngestResponse(
            success=True, domain=domain.name, received=result.received,
            inserted=result.inserted, duplicates=result.duplicates))

    return post(f"/v2/ingest/{domain.name}", name=f"{domain.name}-ingest",
                operation_id=f"{domain.title}Ingest", tags=[domain.name],
                summary=f"Ingest {domain.name} events (idempotent by eventId, atomic per batch)",
                status_code=200, **ingest_docs(domain))(handler)


def routes_for(domains: Sequence[Domain]) -> list:
    handlers = []
    for domain in domains:
        handlers += [_series_route(domain, view.path) for view in domain.series]
        handlers += [_breakdown_route(domain, d.by) for d in domain.dimensions]
        handlers.append(_ingest_route(domain))
        handlers.append(query_route(domain))
    return handlers


def metrics_router(token: str | None) -> Router:
    """``GET /metrics``, behind ``STATS_GATEWAY_METRICS_TOKEN`` when one is set: the output
    has no tenant data, but request rates and pool figures are still the operator's."""
    if token is None:
        return Router(path="/", route_handlers=[metrics_endpoint])
    expected = f"Bearer {token}".encode()

    def bearer_token(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        given = connection.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            raise ApiError(401, "unauthorized",
                           "/metrics needs Authorization: Bearer <STATS_GATEWAY_METRICS_TOKEN>")

    return Router(path="/", route_handlers=[metrics_endpoint], guards=[bearer_token])


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
        with connect(url, autocommit=True) as conn:  # custom plans: db/connect.py
            migrate(conn, tuple(domains))

        def make_pool(min_size: int, max_size: int) -> GatewayPool:
            return GatewayPool(  # fault behaviour (timeouts, reconnects): db/pool.py
                url, settings, min_size=min_size, max_size=max_size, open=False,
                configure=configure_app_role,  # row-level security applies: db/tenant.py
                # autocommit: a read is one statement, so no BEGIN/COMMIT round trips around
                # it; writes that need atomicity open conn.transaction() (a real BEGIN) anyway
                kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S,
                        "options": f"-c statement_timeout={settings.statement_timeout_ms}"})

        def make_engine(pool: GatewayPool) -> StatsEngine:
            # the engine's one door to the database: core/database.py, db/database.py
            return StatsEngine(PooledDatabase(pool), domains, use_rollups=settings.use_rollups)

        pool = make_pool(settings.pool_min, settings.pool_max)
        await pool.open(wait=True, timeout=30)
        app.state.database = PooledDatabase(pool)  # authentication, readiness, ingest, keys
        app.state.engine = StatsEngine(app.state.database, domains,
                                       use_rollups=settings.use_rollups)
        # expensive requests run on a thread and connections of their own: http/lane.py
        lane = app.state.lane = ExpensiveLane(
            lambda: make_pool(0, settings.expensive_pool), make_engine) \
            if settings.expensive_pool > 0 else None
        try:
            if lane is not None:
                await lane.start()
            # Everything alive now (the app, its routes and types, pypika, psycopg) lives
            # as long as the process: keep it out of the cyclic collector's full passes.
            # Measured on a 720-bucket calls series with percentiles: one full pass per
            # ~20 requests took 0.2 s of a loaded machine (90,000 tracked objects), and
            # 15% of the requests' CPU went to collections; frozen, 2% (no full pass).
            gc.freeze()
            yield
        finally:
            if lane is not None:
                await lane.stop()
            await pool.close()
            if embedded is not None:
                embedded.stop()

    app = Litestar(
        route_handlers=[*health_routes(settings, domains), metrics_router(settings.metrics_token),
                        *routes_for(domains), *SEED_ROUTES, *dashboard_routes(domains),
                        home, *KEY_ROUTES,  # GET /: http/home.py; /v2/keys: http/keys.py
                        # vendored UI assets (dashboard/, docs/), shipped as package data
                        create_static_files_router(path="/static", directories=[STATIC_DIR])],
        lifespan=[lifespan],
        exception_handlers=APP_EXCEPTION_HANDLERS,
        compression_config=COMPRESSION,  # gzip, ETag/304 on stats GETs: http/caching.py
        # RateLimit-* and Retry-After on answers of every shape: http/ratelimit.py
        before_send=[add_limit_headers],
        request_max_body_size=16_000_000,
        openapi_config=openapi_config("stats-gateway", __version__),
        plugins=[ExactNumbers()],  # decimals are JSON numbers: see http/openapi.py
        debug=False,
    )
    app.state.metrics = metrics = Metrics(d.name for d in domains)
    app.state.rate_limiter = RateLimiter(settings.rate_limit)  # shared: http/ratelimit.py
    app.state.admission = Admission(  # cost budgets and expensive slots: http/admission.py
        settings.cost_budget, settings.expensive_points, settings.expensive_per_key,
        settings.expensive_per_org, settings.pool_timeout_s)
    app.state.lane = None  # set by the lifespan
    app.state.key_cache = KeyCache()  # no round trip of its own per request: auth.py
    # outermost, so unmatched routes (404/405) are logged and carry a request id too
    app.asgi_handler = AccessLogMiddleware(HeadAsGet(app.asgi_handler), metrics)
    return app
