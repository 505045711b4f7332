"""The real gateway over HTTP: ``stats-gateway serve`` in a subprocess on a free loopback
port, asked sequentially over one keep-alive connection (GET, or POST with a JSON body);
and the engine's own SQL for the same request, to see how much of a request's time is the
database's.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from bench.queries import Request, Series, Shape
from domains import DOMAINS
from stats_gateway.config import DATABASE_URL_ENV
from stats_gateway.core.engine import breakdown_sql_metrics
from stats_gateway.core.request import parse_breakdown, parse_series
from stats_gateway.core.sql import Sql, breakdown_sql, series_parts_sql

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent
DOMAINS_BY_NAME = {d.name: d for d in DOMAINS}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class Gateway:
    """A gateway process serving ``url``'s database; a context manager that stops it."""

    def __init__(self, url: str, key: str):
        self.port = free_port()
        self.headers = {"Authorization": f"Bearer {key}"}
        self._log = tempfile.TemporaryFile()
        # the per-key rate limit (600/min by default) and cost budget (3M points a minute)
        # would refuse the timed requests: this measures latency, not admission
        env = {**os.environ, DATABASE_URL_ENV: url, "STATS_GATEWAY_RATE_LIMIT": "off",
               "STATS_GATEWAY_COST_BUDGET": "off"}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "stats_gateway.cli", "serve", "--host", HOST,
             "--port", str(self.port)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=self._log)
        self._conn: http.client.HTTPConnection | None = None
        self._wait_ready(timeout=60)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"gateway exited:\n{self._stderr()}")
            try:
                if self.get("/livez")[0] == 200:
                    return
            except OSError:
                self._conn = None
            time.sleep(0.1)
        raise RuntimeError(f"gateway not ready after {timeout}s:\n{self._stderr()}")

    def _stderr(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-4000:]

    def get(self, target: str) -> tuple[int, bytes]:
        return self.send("GET", target)

    def send(self, method: str, target: str, body: bytes | None = None,
             headers: dict | None = None) -> tuple[int, bytes]:
        """One request on the kept-alive connection: (status, body). The server closes an
        idle connection after a few seconds (uvicorn's keep-alive timeout): then once
        more on a new one."""
        headers = {**self.headers, **(headers or {})}
        if body is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(HOST, self.port, timeout=600)
            try:
                self._conn.request(method, target, body=body, headers=headers)
                response = self._conn.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, ConnectionError):
                self._conn.close()
                self._conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def ask(self, request: Request) -> bytes:
        status, body = self.send(request.method, request.path, request.body)
        if status != 200:
            raise RuntimeError(f"{request.method} {request.path}: HTTP {status}: {body[:500]!r}")
        return body

    def body(self, request: Request) -> dict:
        return json.loads(self.ask(request))

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._process.terminate()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._log.close()

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def engine_sql(shape: Shape, request: Request, org_id: str, end: datetime) -> Sql | None:
    """The SQL the engine builds for a shape's request when asked at ``end`` (a response's
    meta.end): the series or breakdown query, for shapes answered by one statement; None
    for the others or when the engine's builders changed shape (a diagnostic only)."""
    if not shape.engine:
        return None
    domain = DOMAINS_BY_NAME[shape.domain]
    params = {name: [value] for name, value in parse_qsl(urlsplit(request.path).query)}
    now = end.astimezone(UTC)
    try:
        if isinstance(shape, Series):
            parsed = parse_series(domain, domain.series_view(""), params, now)
            metrics = [domain.metric(name) for name in parsed.view.metrics]
            return series_parts_sql(domain, parsed, metrics, org_id)
        by = urlsplit(request.path).path.rsplit("/", 1)[1]
        parsed = parse_breakdown(domain, domain.dimension(by), params, now)
        return breakdown_sql(domain, parsed, org_id,
                             metric_names=breakdown_sql_metrics(domain, parsed))
    except Exception as error:  # noqa: BLE001 - the engine may be mid-change: no diagnostic
        print(f"  (no engine SQL for {shape.key}: {type(error).__name__}: {error})",
              file=sys.stderr)
        return None
