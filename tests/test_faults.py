"""Faults caused for real: slow queries (a table lock held by the test), an exhausted pool,
a database restart under load, probes, and a graceful shutdown of ``stats-gateway serve``.

Every fault must answer 503 problem+json (never a 500, never a dropped connection), and
the gateway must recover by itself once the fault is gone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from litestar.testing import TestClient

from domains import DOMAINS
from expected import UTC
from stats_gateway.auth import create_key, ensure_org
from stats_gateway.config import DATABASE_URL_ENV, Settings
from stats_gateway.db.embedded import EmbeddedPostgres
from stats_gateway.http.app import create_app
from support import HTTP, assert_problem, generate, ingest, live_server, post_events

STORAGE = next(d for d in DOMAINS if d.name == "storage")
SERIES = "/v2/stats/storage"
WINDOW = {"scope": "org", "window": "24h"}
# raw events only, so a lock on the event table is all it takes to hold a stats query
BASE = dict(data_dir=Path("/nonexistent"), use_rollups=False)


def recent_events(n: int, prefix: str) -> list[dict]:
    """n storage events within the last 24 h: ``requests`` over window=24h is exactly n."""
    now = datetime.now(UTC)
    return generate("storage", 7, [now - timedelta(minutes=5 + 3 * i) for i in range(n)],
                    prefix=prefix)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serving(settings: Settings, domains=DOMAINS):
    """The gateway with ``settings``, served by uvicorn in a thread; yields its URL."""
    return live_server(settings.database_url, settings=settings, domains=domains)


@contextlib.contextmanager
def table_locked(database_url: str, table: str):
    """Hold an ACCESS EXCLUSIVE lock on ``table`` (any query on it waits) until the block
    ends. api_keys stays free, so authentication never waits."""
    with psycopg.connect(database_url) as conn:  # not autocommit: the lock needs a transaction
        conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            conn.rollback()


def wait_for_lock_waiters(database_url: str, n: int, timeout: float = 15,
                          exact: bool = True) -> None:
    """Until ``n`` sessions of this database are blocked on a lock (the gateway's queries
    have really started and each holds a pooled connection); ``exact=False``: at least
    ``n`` (a request whose metric and sketch queries run at once on spare connections)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(database_url, autocommit=True) as conn:
        while True:
            (waiting,) = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()").fetchone()
            if waiting >= n:
                assert waiting == n or not exact, f"{waiting} sessions wait on a lock, expected {n}"
                return
            assert time.monotonic() < deadline, f"only {waiting} of {n} queries are waiting"
            time.sleep(0.05)


def stored_event_ids(database_url: str, org_id: str) -> set[str]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(f"SELECT event_id FROM {STORAGE.table} WHERE org_id = %s",
                            (org_id,)).fetchall()
    return {event_id for (event_id,) in rows}


def assert_retry_after(r) -> None:
    assert int(r.headers["retry-after"]) > 0, r.headers


def in_background(fn):
    """Start ``fn`` in a thread; the returned callable joins it and returns its result."""
    result: dict = {}

    def run():
        try:
            result["value"] = fn()
        except BaseException as exc:  # reported by the joiner
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def join(timeout: float = 30):
        thread.join(timeout)
        assert not thread.is_alive(), "the background request never finished"
        if "error" in result:
            raise result["error"]
        return result["value"]

    join.done = lambda: not thread.is_alive()
    return join


# --- 1. statement timeout -----------------------------------------------------------------

def test_a_query_past_the_statement_timeout_answers_503_query_timeout(database_url, new_org):
    org = new_org()
    events = recent_events(3, "timeout-")
    late = recent_events(2, "timeout-late-")
    settings = Settings(database_url=database_url, statement_timeout_ms=200, **BASE)
    with TestClient(create_app(settings)) as client:
        ingest(client, org, "storage", events)
        with table_locked(database_url, STORAGE.table):
            # the lock is held until the block ends, so any answer here means the
            # gateway gave up on the query instead of waiting
            r = client.get(SERIES, params=WINDOW, headers=org.headers)
            body = assert_problem(r, 503, "query_timeout")
            assert body["errors"] == []
            assert_retry_after(r)
            r = post_events(client, org.headers, "storage", late)
            assert_problem(r, 503, "query_timeout")
            assert_retry_after(r)
        # the timed-out batch left nothing behind (atomic), and the pool still works
        assert stored_event_ids(database_url, org.id) == {e["eventId"] for e in events}
        r = client.get(SERIES, params=WINDOW, headers=org.headers)
        assert r.status_code == 200, r.text
        assert r.json()["summary"]["total"] == len(events)
        ingest(client, org, "storage", late)
        r = client.get(SERIES, params=WINDOW, headers=org.headers)
        assert r.json()["summary"]["total"] == len(events) + len(late)


# --- 2. pool exhaustion -------------------------------------------------------------------

def test_an_exhausted_pool_answers_503_within_the_pool_timeout(database_url, new_org):
    org = new_org()
    events = recent_events(4, "pool-")
    pool_timeout = 1.0
    settings = Settings(database_url=database_url, pool_min=1, pool_max=2,
                        pool_timeout_s=pool_timeout, **BASE)
    with serving(settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        r = post_events(http, org.headers, "storage", events)
        assert r.status_code == 200, r.text

        def series():
            with httpx.Client(base_url=url, timeout=30) as own:
                return own.get(SERIES, params=WINDOW, headers=org.headers)

        with table_locked(database_url, STORAGE.table):
            blocked = [in_background(series) for _ in range(2)]
            wait_for_lock_waiters(database_url, 2)  # both pooled connections are held
            t0 = time.monotonic()
            r = http.get(SERIES, params=WINDOW, headers=org.headers)
            elapsed = time.monotonic() - t0
            assert_problem(r, 503, "service_unavailable")
            assert_retry_after(r)
            # it waited for a connection (the pool timeout), then answered at once
            assert pool_timeout * 0.9 <= elapsed < pool_timeout + 3, elapsed
            r = http.get("/readyz")
            assert_problem(r, 503, "not_ready")
            assert http.get("/livez").json() == {"status": "ok"}  # needs no connection
            assert not any(b.done() for b in blocked)
        for join in blocked:  # lock released: the held requests finish normally
            r = join()
            assert r.status_code == 200, r.text
            assert r.json()["summary"]["total"] == len(events)
        r = http.get(SERIES, params=WINDOW, headers=org.headers)
        assert r.status_code == 200 and r.json()["summary"]["total"] == len(events)
        assert http.get("/readyz").json() == {"status": "ready"}


# --- 3. database restart under load -------------------------------------------------------

@pytest.fixture(scope="module", autouse=True)
def own_server(tmp_path_factory):
    """A PostgreSQL of this module's own, for the restart test (never the shared server).
    Started in the background as the module begins, so its initdb overlaps other tests;
    the fixture value waits for it."""
    started: dict = {}

    def start():
        try:
            started["pg"] = EmbeddedPostgres(tmp_path_factory.mktemp("restart-pg"), delete=True)
        except BaseException as exc:
            started["error"] = exc

    thread = threading.Thread(target=start, daemon=True)
    thread.start()

    def get() -> EmbeddedPostgres:
        thread.join(timeout=120)
        if "error" in started:
            raise started["error"]
        return started["pg"]

    yield get
    thread.join(timeout=120)
    if "pg" in started:
        with contextlib.suppress(Exception):  # already down if a test failed mid-outage
            started["pg"].stop_server()  # fast (a plain stop waits for a checkpoint)
        started["pg"].stop()


class Hammer:
    """Client threads reading and ingesting until stopped; every outcome is recorded."""

    def __init__(self, url: str, headers: dict, threads: int = 4):
        self.url, self.headers = url, headers
        self.outcomes: list[tuple[str, object]] = []  # (kind, status or exception)
        self.acknowledged: list[str] = []  # event ids a 200 ingest confirmed
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(threads)]

    def record(self, kind: str, r) -> None:
        if r.status_code != 200:
            assert_problem(r, 503, "service_unavailable")
            assert_retry_after(r)
        with self.lock:
            self.outcomes.append((kind, r.status_code))

    def run(self, worker: int) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            n = 0
            while not self.stop.is_set():
                n += 1
                try:
                    if n % 2:
                        self.record("series", http.get(SERIES, params=WINDOW,
                                                       headers=self.headers))
                    else:
                        event_id = f"hammer-{worker}-{n}"
                        (event,) = recent_events(1, f"{event_id}-")
                        event["eventId"] = event_id
                        r = post_events(http, self.headers, "storage", [event])
                        self.record("ingest", r)
                        if r.status_code == 200:
                            with self.lock:
                                self.acknowledged.append(event_id)
                except BaseException as exc:  # a reset connection, or a failed check
                    with self.lock:
                        self.outcomes.append(("error", exc))
                    return

    def successes(self) -> int:
        with self.lock:
            return sum(1 for _, status in self.outcomes if status == 200)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)


def test_a_database_restart_under_load_answers_only_503s_and_recovers(own_server):
    """The module's own server, stopped and started under load."""
    pg = own_server()
    url = pg.uri()
    settings = Settings(database_url=url, pool_max=4, rate_limit="off", **BASE)  # no 429s
    # storage alone: migrating a fresh database for every domain takes many seconds
    with serving(settings, (STORAGE,)) as gateway, \
            httpx.Client(base_url=gateway, timeout=30) as http:
        with psycopg.connect(url, autocommit=True) as conn:
            org_id = ensure_org(conn, "restart")
            headers = {"Authorization": f"Bearer {create_key(conn, org_id)}"}
        with Hammer(gateway, headers) as hammer:
            deadline = time.monotonic() + 10
            while hammer.successes() < 8:
                assert time.monotonic() < deadline, hammer.outcomes[-5:]
                time.sleep(0.05)
            before = len(hammer.outcomes)
            pg.stop_server()
            time.sleep(1.5)  # an outage under load
            assert_problem(http.get("/readyz"), 503, "not_ready")
            assert http.get("/livez").status_code == 200
            pg.start_server()
            up = time.monotonic()
            while True:  # the first success after the server is back
                r = http.get(SERIES, params=WINDOW, headers=headers)
                if r.status_code == 200:
                    break
                assert_problem(r, 503, "service_unavailable")
                assert time.monotonic() - up < 5, "no recovery within 5 s"
                time.sleep(0.1)
            recovered_after = time.monotonic() - up
            served = hammer.successes()
            while hammer.successes() < served + 10:  # the load is served again too
                assert time.monotonic() - up < 15, hammer.outcomes[-5:]
                time.sleep(0.05)
        errors = [o for o in hammer.outcomes if o[0] == "error"]
        assert errors == [], errors[:3]
        statuses = [status for _, status in hammer.outcomes[before:]]
        assert set(statuses) == {200, 503}, set(statuses)  # the outage was felt, and over
        assert recovered_after < 5
        assert http.get("/readyz").json() == {"status": "ready"}
        # every ingest the gateway confirmed is stored
        stored = stored_event_ids(url, org_id)
        missing = set(hammer.acknowledged) - stored
        assert not missing, sorted(missing)[:5]

        # a quiet restart: the next request finds every pooled connection broken; the
        # first failed check sweeps them all, so that very request is served
        pg.stop_server()
        pg.start_server()
        r = http.get(SERIES, params=WINDOW, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["summary"]["total"] == len(stored)


# --- 4. probes ----------------------------------------------------------------------------

def test_probes_need_no_key_and_stay_out_of_the_openapi_document(client):
    r = client.get("/livez")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready"}
    paths = client.get("/schema/openapi.json").json()["paths"]
    assert "/livez" not in paths and "/readyz" not in paths
    assert SERIES in paths  # the document is the real one


def test_readyz_reports_a_migration_that_is_not_applied(client, db):
    name = f"domain:{STORAGE.name}"
    (checksum,) = db.execute("SELECT checksum FROM schema_migrations WHERE name = %s",
                             (name,)).fetchone()
    db.execute("DELETE FROM schema_migrations WHERE name = %s", (name,))
    try:
        r = client.get("/readyz")
        body = assert_problem(r, 503, "not_ready")
        assert name in body["message"]
        assert_retry_after(r)
    finally:
        db.execute("INSERT INTO schema_migrations (name, checksum) VALUES (%s, %s)",
                   (name, checksum))
    assert client.get("/readyz").json() == {"status": "ready"}


# --- 5. graceful shutdown -----------------------------------------------------------------

def test_sigterm_finishes_in_flight_requests_refuses_new_ones_and_exits_0(database_url,
                                                                         new_org, tmp_path):
    org = new_org()
    events = recent_events(5, "shutdown-")
    port = free_port()
    env = {**os.environ, DATABASE_URL_ENV: database_url, "STATS_GATEWAY_ROLLUPS": "off",
           "STATS_GATEWAY_SHUTDOWN_GRACE_S": "20"}
    output = tmp_path / "serve.log"
    with output.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "stats_gateway.cli", "serve", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, output.read_text()
            try:
                if HTTP.get(f"{url}/livez", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)
        with httpx.Client(base_url=url, timeout=30) as http:
            r = post_events(http, org.headers, "storage", events)
        assert r.status_code == 200, r.text

        with table_locked(database_url, STORAGE.table):
            in_flight = in_background(lambda: HTTP.get(f"{url}{SERIES}", params=WINDOW,
                                                        headers=org.headers, timeout=30))
            wait_for_lock_waiters(database_url, 1, exact=False)
            proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 5
            while True:  # the listening socket closes: new connections are refused
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                except ConnectionRefusedError:
                    break
                assert time.monotonic() < deadline, "still accepting after SIGTERM"
                time.sleep(0.05)
            assert not in_flight.done() and proc.poll() is None  # still waiting for it
            released = time.monotonic()
        r = in_flight()
        assert r.status_code == 200, r.text
        assert r.json()["summary"]["total"] == len(events)
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - released < 10
        assert "Traceback" not in output.read_text(), output.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
