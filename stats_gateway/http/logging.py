"""One structlog line per request: request id, method, route, status, duration.

Why not Litestar's ``StructlogPlugin`` (2.25): its ``LoggingMiddleware`` logs a request and
its response as two events, gives no request id (ours takes a well-formed ``X-Request-Id``
or makes one, and sends it back), and runs inside the router, so a path that matches no
route (404) or a method it lacks (405) is never logged. Ours wraps the whole ASGI app
(outermost) and feeds the Prometheus counters from the status actually sent.
"""

from __future__ import annotations

import re
import time
import uuid

import structlog

from stats_gateway.http.metrics import Metrics

log = structlog.get_logger("stats_gateway.access")
_INCOMING_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def configure_logging() -> None:
    structlog.configure(processors=[
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer(),
    ])


class AccessLogMiddleware:
    """Raw ASGI middleware so the logged status is the one actually sent; it also feeds
    the Prometheus counters (``http/metrics.py``), unmatched routes included."""

    def __init__(self, app, metrics: Metrics | None = None):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _INCOMING_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        if self.metrics is not None:
            self.metrics.in_flight.inc()

        async def send_with_id(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []),
                                      (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            # Litestar sets path_template only once a route matched
            template = scope.get("path_template")
            if self.metrics is not None:
                self.metrics.in_flight.inc(amount=-1)
                self.metrics.observe_request(scope["method"], template, status, seconds)
            log.info("request", request_id=request_id, method=scope["method"],
                     route=template or scope["path"], status=status,
                     duration_ms=round(seconds * 1000, 2))
