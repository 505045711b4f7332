"""`./run demo`, `create-key` and `serve` as real processes on one embedded server
(issue 13): one database for every command, the demo's data reused, and real signals
(SIGTERM, SIGINT, SIGKILL) leaving no postgres process behind, even after a crash left a
stale pid in `.handle_pids.json`.

Each test has a data directory of its own and free ports; the only postgres processes
it looks for (and cleans up) are those serving that directory.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest

from stats_gateway.config import DATA_DIR_ENV, DATABASE_URL_ENV
from stats_gateway.db.embedded import EmbeddedPostgres
from support import HTTP

EVENTS = 3000  # a small demo: the point is the processes, not the volume


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_processes(pgdata: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        if proc.info["name"] == "postgres" and str(pgdata) in " ".join(
                proc.info["cmdline"] or ()):
            found.append(proc)
    return found


class Command:
    """One `stats-gateway` process with its output in a file."""

    def __init__(self, data_dir: Path, *argv: str):
        env = {k: v for k, v in os.environ.items() if k != DATABASE_URL_ENV}
        env[DATA_DIR_ENV] = str(data_dir)
        self.log = data_dir.parent / f"{argv[0]}-{time.monotonic_ns()}.log"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "stats_gateway.cli", *argv],
                                         env=env, stdout=out, stderr=subprocess.STDOUT)

    @property
    def output(self) -> str:
        return self.log.read_text()

    def wait_serving(self, port: int) -> None:
        deadline = time.monotonic() + 120
        while True:
            assert self.proc.poll() is None, self.output
            try:
                if HTTP.get(f"http://127.0.0.1:{port}/livez", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "not serving: " + self.output
            time.sleep(0.2)

    def stop(self, sig: int) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)


@pytest.fixture
def data_dir(tmp_path):
    """A data directory; whatever server is left in it is stopped afterwards."""
    path = tmp_path / "data"
    yield path
    if postgres_processes(path / "pgdata"):
        EmbeddedPostgres(path).stop()  # prunes the stale pids, so this stops it


def run(data_dir: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != DATABASE_URL_ENV}
    env[DATA_DIR_ENV] = str(data_dir)
    return subprocess.run([sys.executable, "-m", "stats_gateway.cli", *argv], env=env,
                          capture_output=True, text=True, timeout=120)


def day_range() -> tuple[datetime, datetime]:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=30), today + timedelta(days=1)


def requests_in_database(data_dir: Path, org_id: str, start, end) -> int:
    """The org's ai events in [start, end), counted in the database itself."""
    server = EmbeddedPostgres(data_dir)  # a handle of our own, let go at once
    try:
        with psycopg.connect(server.uri()) as conn:
            return conn.execute("SELECT count(*) FROM events_ai WHERE org_id = %s AND "
                                "ts >= %s AND ts < %s", (org_id, start, end)).fetchone()[0]
    finally:
        server.stop()


def ai_requests(port: int, key: str) -> int:
    start, end = day_range()
    r = HTTP.get(f"http://127.0.0.1:{port}/v2/stats/ai", headers={
        "Authorization": f"Bearer {key}"}, params={
        "scope": "org", "start": start.isoformat(), "end": end.isoformat(),
        "timeBucketSize": "1d"}, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["summary"]["total"] == sum(p["requests"] for p in body["series"])
    return body["summary"]["total"]


def test_demo_then_create_key_reads_the_demo_org_and_sigterm_stops_postgres(data_dir):
    """The issue's acceptance scenario, on a small demo."""
    port = free_port()
    demo = Command(data_dir, "demo", "--events", str(EVENTS), "--port", str(port))
    try:
        demo.wait_serving(port)
        assert f"database postgres on the embedded server in {data_dir / 'pgdata'}" \
            in demo.output
        orgs = dict(re.findall(r"other org: (.+?) \(([0-9a-f-]{36})\)", demo.output))
        name, org_id = sorted(orgs.items())[0]
        made = run(data_dir, "create-key", "--org", name, "--read-only")
        assert made.returncode == 0, made.stderr
        assert f"using the existing org '{name}'" in made.stderr
        assert f"org:  {org_id}" in made.stdout
        key = made.stdout.split("key:")[1].split()[0]
        start, end = day_range()
        expected = requests_in_database(data_dir, org_id, start, end)
        assert expected > 0
        assert ai_requests(port, key) == expected
        # revoked by another process: the serving process refuses it on the next request
        revoked = run(data_dir, "keys", "revoke", key.split("_")[1])
        assert revoked.returncode == 0 and " revoked " in revoked.stdout, revoked.stderr
        r = HTTP.get(f"http://127.0.0.1:{port}/v2/stats/ai", params={"window": "30d"},
                      headers={"Authorization": f"Bearer {key}"}, timeout=30)
        assert r.status_code == 401, r.text
        assert postgres_processes(data_dir / "pgdata")  # still up for the demo
        assert demo.stop(signal.SIGTERM) == 0, demo.output
    finally:
        if demo.proc.poll() is None:
            demo.proc.kill()
    assert postgres_processes(data_dir / "pgdata") == []
    assert json.loads((data_dir / "pgdata" / ".handle_pids.json").read_text()) == []


def test_after_a_crash_serve_and_a_second_demo_reuse_the_data_and_stop_postgres(data_dir):
    port = free_port()
    first = Command(data_dir, "demo", "--events", str(EVENTS), "--port", str(port))
    try:
        first.wait_serving(port)
        key = re.search(r"export KEY=(\S+)", first.output).group(1)
        org_id = re.search(r"biggest org: .+? \(([0-9a-f-]{36})\)", first.output).group(1)
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL  # a crash: nothing cleaned up
    finally:
        if first.proc.poll() is None:
            first.proc.kill()
    pids = json.loads((data_dir / "pgdata" / ".handle_pids.json").read_text())
    assert pids == [first.proc.pid] and postgres_processes(data_dir / "pgdata")

    serve = Command(data_dir, "serve", "--port", str(port))  # serves the demo's data
    try:
        serve.wait_serving(port)
        start, end = day_range()
        expected = requests_in_database(data_dir, org_id, start, end)
        assert expected > 0 and ai_requests(port, key) == expected
        assert serve.stop(signal.SIGINT) == 0, serve.output
    finally:
        if serve.proc.poll() is None:
            serve.proc.kill()
    assert postgres_processes(data_dir / "pgdata") == [], serve.output

    again = Command(data_dir, "demo", "--events", str(EVENTS), "--port", str(port))
    try:
        again.wait_serving(port)
        assert f"reusing the {EVENTS:,} demo events" in again.output
        assert "generated and loaded" not in again.output
        key = re.search(r"export KEY=(\S+)", again.output).group(1)
        assert ai_requests(port, key) > 0
        assert again.stop(signal.SIGTERM) == 0, again.output
    finally:
        if again.proc.poll() is None:
            again.proc.kill()
    assert postgres_processes(data_dir / "pgdata") == []
