"""DuckDB over the very same events: exported once from PostgreSQL, loaded in memory.

DuckDB cannot read PostgreSQL here (its postgres extension is a download), so the raw
events go through a CSV file: ``COPY (SELECT ...) TO STDOUT`` into a temporary file,
then ``read_csv`` into an in-memory table, with ``SET threads`` to the cores the gateway
has. Only the columns the queries read are exported: a column store never reads the
others. Rows are sorted by (org, time), DuckDB's best layout (tight zone maps).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import psycopg

try:
    import duckdb
except ImportError:  # pragma: no cover - told to the user by run.py
    duckdb = None

EXPORT = ("COPY (SELECT org_id, ts AT TIME ZONE 'UTC' AS ts, model, tokens_in, tokens_out "
          "FROM events_private_chat ORDER BY org_id, ts) TO STDOUT (FORMAT csv)")
COLUMNS = {"org_id": "UUID", "ts": "TIMESTAMP", "model": "VARCHAR", "tokens_in": "BIGINT",
           "tokens_out": "BIGINT"}


def load_events(url: str, threads: int) -> tuple[duckdb.DuckDBPyConnection, dict[str, float]]:
    """An in-memory DuckDB with table ``events``; the export and load times."""
    seconds = {}
    with tempfile.TemporaryDirectory(prefix="stats-bench-") as folder:
        path = Path(folder) / "events.csv"
        mark = time.perf_counter()
        with (psycopg.connect(url) as conn, conn.cursor() as cur, path.open("wb") as out,
              cur.copy(EXPORT) as copy):
            for block in copy:
                out.write(block)
        seconds["export"] = time.perf_counter() - mark
        mark = time.perf_counter()
        duck = duckdb.connect(":memory:")
        duck.execute(f"SET threads = {int(threads)}")
        columns = ", ".join(f"'{name}': '{kind}'" for name, kind in COLUMNS.items())
        duck.execute(f"CREATE TABLE events AS SELECT * FROM read_csv(?, header = false, "
                     f"columns = {{{columns}}})", [str(path)])
        seconds["load"] = time.perf_counter() - mark
    return duck, seconds
