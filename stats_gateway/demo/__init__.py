"""``stats-gateway demo``: a realistic multi-org dataset, then the gateway.

The demo uses the one database every command uses (``STATS_GATEWAY_DATABASE_URL``, or the
embedded server's ``postgres`` database), so a key made with ``create-key`` right after
reads the demo's data and ``serve`` serves it. A second run reuses what the first loaded
(new keys are printed, since secrets are not stored); ``--fresh`` regenerates it.

Split so each part can be used alone: ``world`` (the fictional orgs and their resources),
``generate`` (pure, seeded rows), ``load`` (database: prepare, COPY, ANALYZE) and
``report`` (what gets printed). This module only wires them together.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import time
from datetime import UTC, datetime

from stats_gateway.config import Settings

__all__ = ["run_demo"]


def run_demo(settings: Settings, *, host: str, port: int, events: int, serve: bool,
             fresh: bool = False) -> int:
    """Load ``events`` demo events (unless an earlier demo did and ``fresh`` is off), print
    what to try, and serve unless ``serve`` is off. An embedded server stops on exit, on
    SIGTERM and on Ctrl-C (unless another process still uses it)."""
    # imported here: domain modules import the demo's world to declare their generators,
    # so importing this package must not import the domains
    from domains import DOMAINS
    from stats_gateway.db.connect import connect
    from stats_gateway.db.embedded import database_url
    from stats_gateway.db.migrate import migrate
    from stats_gateway.demo.load import clear_demo, load_dataset, loaded_demo, newest_event
    from stats_gateway.demo.report import keys_and_examples, summary_table

    if events < 1:
        print("--events must be at least 1", file=sys.stderr)
        return 2
    try:
        with database_url(settings, announce=True) as url:
            with connect(url, autocommit=True) as conn:  # custom plans: db/connect.py
                migrate(conn, DOMAINS)
                loaded = None if fresh else loaded_demo(conn)
                if loaded:
                    total = sum(sum(o.events.values()) for o in loaded)
                    newest = newest_event(conn, loaded)
                    print(f"reusing the {total:,} demo events an earlier demo loaded (newest "
                          f"{newest:%Y-%m-%d %H:%M %Z}); --fresh regenerates them")
                else:
                    if fresh and (removed := clear_demo(conn)):
                        print(f"--fresh: removed {removed:,} rows of the demo orgs' data")
                    started = time.perf_counter()
                    loaded = load_dataset(conn, events=events, now=datetime.now(UTC),
                                          progress=True)
                    print(summary_table(loaded, time.perf_counter() - started))
            print()
            print(keys_and_examples(loaded, host, port))
            sys.stdout.flush()
            if serve:
                _serve(dataclasses.replace(settings, database_url=url), host, port)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    return 0


def _serve(settings: Settings, host: str, port: int) -> None:
    """Serve until SIGTERM or Ctrl-C: uvicorn shuts down gracefully, then re-raises the
    signal, which is swallowed here so the caller stops the database and exits 0."""
    import uvicorn

    from stats_gateway.http.app import create_app

    app = create_app(settings)
    print(f"\nserving on {host}:{port} (Ctrl-C or SIGTERM stops the gateway and the "
          "database)", flush=True)
    handlers = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGTERM,
                                                                    signal.SIGINT)}
    try:
        uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning",
                    timeout_graceful_shutdown=settings.shutdown_grace_s)  # type: ignore[arg-type]  # any seconds
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
