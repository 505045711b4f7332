"""``stats-gateway demo``: a realistic multi-org dataset in a fresh database, then the gateway.

Split so each part can be used alone: ``world`` (the fictional orgs and their resources),
``generate`` (pure, seeded rows), ``load`` (database: prepare, COPY, ANALYZE) and
``report`` (what gets printed). This module only wires them together.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from datetime import UTC, datetime


from stats_gateway.config import Settings
from stats_gateway.db.connect import connect
from stats_gateway.db.embedded import database_url
from stats_gateway.demo.load import DEMO_DATABASE, load_dataset, prepare_database
from stats_gateway.demo.report import keys_and_examples, summary_table

__all__ = ["run_demo"]


def run_demo(settings: Settings, *, host: str, port: int, events: int, serve: bool) -> int:
    """Load ``events`` demo events into ``stats_demo`` (on the configured server, or an
    embedded one stopped on exit), print what to try, and serve unless ``serve`` is off."""
    if events < 1:
        print("--events must be at least 1", file=sys.stderr)
        return 2
    try:
        with database_url(settings) as server_url:
            url = prepare_database(server_url)
            started = time.perf_counter()
            with connect(url, autocommit=True) as conn:  # custom plans: db/connect.py
                loaded = load_dataset(conn, events=events, now=datetime.now(UTC),
                                      progress=True)
            print(summary_table(loaded, time.perf_counter() - started))
            print(f"database: {DEMO_DATABASE} (dropped and recreated by every demo run)")
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
    import uvicorn

    from stats_gateway.http.app import create_app

    print(f"\nserving on {host}:{port} (Ctrl-C stops the gateway and the database)", flush=True)
    uvicorn.run(create_app(settings), host=host, port=port, access_log=False,
                log_level="warning")
