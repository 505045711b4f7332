"""The real gateway over HTTP: ``stats-gateway serve`` in a subprocess on a free loopback
port, asked sequentially over one keep-alive connection; and the engine's own SQL for the
same request, to see how much of a request's time is the database's.
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

from bench.queries import Query
from domains.private_chat import DOMAIN
from stats_gateway.config import DATABASE_URL_ENV
from stats_gateway.core.request import parse_breakdown, parse_series
from stats_gateway.core.sql import Sql, breakdown_sql, series_parts_sql

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent


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
        # the per-key rate limit (600/min by default) would refuse the timed requests
        env = {**os.environ, DATABASE_URL_ENV: url, "STATS_GATEWAY_RATE_LIMIT": "off"}
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
        """One GET on the kept-alive connection: (status, body). The server closes an
        idle connection after a few seconds (uvicorn's keep-alive timeout): then once
        more on a new one."""
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(HOST, self.port, timeout=60)
            try:
                self._conn.request("GET", target, headers=self.headers)
                response = self._conn.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, ConnectionError):
                self._conn.close()
                self._conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def ask(self, query: Query) -> bytes:
        status, body = self.get(query.url)
        if status != 200:
            raise RuntimeError(f"{query.url}: HTTP {status}: {body[:500]!r}")
        return body

    def body(self, query: Query) -> dict:
        return json.loads(self.ask(query))

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


def engine_sql(query: Query, org_id: str, end: datetime) -> Sql:
    """The SQL the engine runs for ``query`` when asked at ``end`` (a response's meta.end)."""
    params = {name: [value] for name, value in query.params.items()}
    now = end.astimezone(UTC)
    if query.key == "series":
        request = parse_series(DOMAIN, DOMAIN.series_view(""), params, now)
        metrics = [DOMAIN.metric(name) for name in request.view.metrics]
        return series_parts_sql(DOMAIN, request, metrics, org_id)
    request = parse_breakdown(DOMAIN, DOMAIN.dimension("models"), params, now)
    return breakdown_sql(DOMAIN, request, org_id)

