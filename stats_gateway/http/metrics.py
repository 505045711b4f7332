"""Prometheus metrics at ``GET /metrics`` (text exposition format 0.0.4), bounded labels.

Hand-written rather than ``prometheus_client``: the gateway needs three counters, a
gauge and one histogram. A registry of its own per app keeps every ``create_app`` (tests
build several) independent, with no process-global state and no extra dependency.

Why not Litestar's Prometheus plugin (``litestar.plugins.prometheus``, checked in 2.25):
it needs ``prometheus_client`` and its process-global ``REGISTRY`` (so apps built side by
side share counters), labels by the raw path unless ``group_path`` (a scanner grows the
series without bound), runs inside the router so it never sees a request that matches no
route (404, 405: ours counts them as ``unmatched``), and has no place for what this module
adds: the pool gauges read at scrape time and the per-domain ingest counters.

Label values come only from fixed sets, so a scanner cannot grow the number of series:

* ``method``: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, else ``OTHER``;
* ``route``: Litestar's route *template* (``/v1/organizations/{orgId:str}/...``), never
  the raw path. A request that matches no route (404 on an unknown path, 405) is
  ``unmatched``;
* ``status``: the code when it is one the gateway answers with, else its class (``4xx``).
  The latency histogram is labelled by ``status_class`` (``2xx``…``5xx``) only;
* ``domain`` of ingest counters: the served domains; ``outcome``: inserted|duplicate.

No label ever carries an org id, key, entity id or path segment, so the endpoint serves
no tenant data and needs no API key. Expose it on an internal port only (or filter
``/metrics`` at the proxy), as is usual for scrapers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from litestar import Request, Response, get

from stats_gateway import __version__

CONTENT_TYPE = "text/plain; version=0.0.4"  # Litestar appends "; charset=utf-8"
UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
STATUSES = frozenset({200, 201, 204, 304, 400, 401, 403, 404, 405, 406, 408, 409, 413, 415,
                      422, 429, 500, 502, 503, 504})
# seconds; Prometheus client defaults, which cover a 2 ms cached query to a 15 s timeout
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
INGEST_OUTCOMES = ("inserted", "duplicate")


def method_label(method: str) -> str:
    return method if method in METHODS else "OTHER"


def status_label(status: int) -> str:
    return str(status) if status in STATUSES else status_class(status)


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status <= 599 else "other"


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _escape_label(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')


def _labels(names: Sequence[str], values: Sequence[str]) -> str:
    if not names:
        return ""
    return "{" + ",".join(f'{n}="{_escape_label(v)}"' for n, v in zip(names, values)) + "}"


def _header(name: str, kind: str, help_text: str) -> list[str]:
    help_text = help_text.replace("\\", r"\\").replace("\n", r"\n")
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


class Counter:
    """A monotonic count per label set (``name`` includes the ``_total`` suffix)."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()):
        self.name, self.help, self.labels = name, help_text, tuple(labels)
        self.values: dict[tuple[str, ...], float] = {}

    def inc(self, *label_values: str, amount: float = 1) -> None:
        self.values[label_values] = self.values.get(label_values, 0) + amount

    def lines(self) -> list[str]:
        out = _header(self.name, self.kind, self.help)
        for key in sorted(self.values):
            out.append(f"{self.name}{_labels(self.labels, key)} {_number(self.values[key])}")
        return out


class Gauge(Counter):
    kind = "gauge"

    def set(self, value: float, *label_values: str) -> None:
        self.values[label_values] = value


class Histogram:
    """Cumulative ``_bucket{le=...}`` counts plus ``_sum`` and ``_count`` per label set."""

    def __init__(self, name: str, help_text: str, labels: Sequence[str],
                 buckets: Sequence[float] = LATENCY_BUCKETS):
        self.name, self.help, self.labels = name, help_text, tuple(labels)
        self.bounds = tuple(buckets)
        self.values: dict[tuple[str, ...], list] = {}  # key -> [per-bucket counts, sum, count]

    def observe(self, value: float, *label_values: str) -> None:
        entry = self.values.setdefault(label_values, [[0] * len(self.bounds), 0.0, 0])
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                entry[0][i] += 1
        entry[1] += value
        entry[2] += 1

    def lines(self) -> list[str]:
        out = _header(self.name, "histogram", self.help)
        names = (*self.labels, "le")
        for key in sorted(self.values):
            counts, total, count = self.values[key]
            for bound, n in zip(self.bounds, counts):
                out.append(f"{self.name}_bucket{_labels(names, (*key, _number(bound)))} {n}")
            out.append(f"{self.name}_bucket{_labels(names, (*key, '+Inf'))} {count}")
            out.append(f"{self.name}_sum{_labels(self.labels, key)} {_number(total)}")
            out.append(f"{self.name}_count{_labels(self.labels, key)} {count}")
        return out


# psycopg_pool get_stats() keys -> (metric name, type, help); counters only grow while
# nobody calls pop_stats(), which the gateway never does
_POOL_METRICS = (
    ("pool_max", "stats_gateway_db_pool_max", "gauge", "largest number of connections"),
    ("pool_size", "stats_gateway_db_pool_size", "gauge",
     "connections open or being opened"),
    ("pool_available", "stats_gateway_db_pool_available", "gauge",
     "idle connections ready in the pool"),
    ("requests_waiting", "stats_gateway_db_pool_waiting", "gauge",
     "requests waiting for a connection now"),
    ("requests_num", "stats_gateway_db_pool_requests_total", "counter",
     "connection requests"),
    ("requests_queued", "stats_gateway_db_pool_requests_queued_total", "counter",
     "connection requests that had to wait"),
    ("requests_errors", "stats_gateway_db_pool_timeouts_total", "counter",
     "connection requests that timed out or were refused (answered 503)"),
    ("connections_lost", "stats_gateway_db_pool_connections_lost_total", "counter",
     "connections found broken"),
)


class Metrics:
    """The app's registry: what the middleware and the ingest route record."""

    def __init__(self, domain_names: Iterable[str] = ()):
        self.requests = Counter("stats_gateway_http_requests_total",
                                "HTTP requests by method, route template and status",
                                ("method", "route", "status"))
        self.latency = Histogram("stats_gateway_http_request_duration_seconds",
                                 "HTTP request duration by method, route template and status class",
                                 ("method", "route", "status_class"))
        self.in_flight = Gauge("stats_gateway_http_requests_in_flight",
                               "HTTP requests being served now")
        self.in_flight.set(0)
        self.ingested = Counter("stats_gateway_ingest_events_total",
                                "events received by POST /v2/ingest, by domain and outcome",
                                ("domain", "outcome"))
        for name in domain_names:  # present from the start, so rate() sees the first batch
            for outcome in INGEST_OUTCOMES:
                self.ingested.inc(name, outcome, amount=0)
        self.build = Gauge("stats_gateway_build_info", "the running version", ("version",))
        self.build.set(1, __version__)

    def observe_request(self, method: str, route: str | None, status: int,
                        seconds: float) -> None:
        method, route = method_label(method), route or UNMATCHED
        self.requests.inc(method, route, status_label(status))
        self.latency.observe(seconds, method, route, status_class(status))

    def count_ingest(self, domain: str, inserted: int, duplicates: int) -> None:
        self.ingested.inc(domain, "inserted", amount=inserted)
        self.ingested.inc(domain, "duplicate", amount=duplicates)

    def render(self, pool_stats: dict[str, int] | None = None) -> str:
        lines: list[str] = []
        for family in (self.requests, self.latency, self.in_flight, self.ingested, self.build):
            lines += family.lines()
        if pool_stats is not None:
            for key, name, kind, help_text in _POOL_METRICS:
                lines += _header(name, kind, help_text)
                lines.append(f"{name} {_number(pool_stats.get(key, 0))}")
        return "\n".join(lines) + "\n"


def metrics_of(request: Request) -> Metrics:
    return request.app.state.metrics


@get("/metrics", include_in_schema=False)
async def metrics_endpoint(request: Request) -> Response:
    """No API key: the output has no tenant data (see the module docstring)."""
    engine = getattr(request.app.state, "engine", None)
    pool_stats = engine.pool.get_stats() if engine is not None else None
    return Response(content=metrics_of(request).render(pool_stats).encode(),
                    media_type=CONTENT_TYPE)
