"""DuckDB over the very same events: exported once from PostgreSQL, loaded in memory.

DuckDB cannot read PostgreSQL here (its postgres extension is a download), so each
loaded domain's raw events go through a CSV file: ``COPY (SELECT ...) TO STDOUT`` into a
temporary file, then ``read_csv`` into an in-memory table of the same name as in
PostgreSQL, with ``SET threads`` to the cores the gateway has. Only the columns the
queries read are exported: a column store never reads the others. Rows are sorted by
(org, time), DuckDB's best layout (tight zone maps).
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

# table -> column -> (PostgreSQL expression exported, DuckDB type)
COLUMNS: dict[str, dict[str, tuple[str, str]]] = {
    "events_private_chat": {
        "org_id": ("org_id", "UUID"), "ts": ("ts AT TIME ZONE 'UTC'", "TIMESTAMP"),
        "workspace_id": ("workspace_id", "VARCHAR"), "model": ("model", "VARCHAR"),
        "user_id": ("user_id", "VARCHAR"), "conversation_id": ("conversation_id", "VARCHAR"),
        "tokens_in": ("tokens_in", "BIGINT"), "tokens_out": ("tokens_out", "BIGINT")},
    "events_ai": {
        "org_id": ("org_id", "UUID"), "ts": ("ts AT TIME ZONE 'UTC'", "TIMESTAMP"),
        "conversation_id": ("conversation_id", "VARCHAR"),
        "model": ("model", "VARCHAR"), "workspace_id": ("workspace_id", "VARCHAR"),
        "tokens_in": ("tokens_in", "BIGINT"), "tokens_out": ("tokens_out", "BIGINT"),
        "policy_tokens_in": ("policy_tokens_in", "BIGINT"),
        "policy_tokens_out": ("policy_tokens_out", "BIGINT"),
        "latency_ms": ("latency_ms", "DOUBLE")},
    "events_runs": {
        "org_id": ("org_id", "UUID"), "ts": ("ts AT TIME ZONE 'UTC'", "TIMESTAMP"),
        "event_id": ("event_id", "VARCHAR"), "target_type": ("target_type", "VARCHAR"),
        "target_slug": ("target_slug", "VARCHAR"), "target_name": ("target_name", "VARCHAR"),
        "source": ("source", "VARCHAR"), "spend": ("spend", "DECIMAL(38, 6)"),
        "duration_ms": ("duration_ms", "DOUBLE")},
    "events_calls": {
        "org_id": ("org_id", "UUID"), "ts": ("ts AT TIME ZONE 'UTC'", "TIMESTAMP"),
        "project_id": ("project_id", "VARCHAR"), "op_name": ("op_name", "VARCHAR"),
        "parent_id": ("parent_id", "VARCHAR"), "error": ("error::text", "BOOLEAN"),
        "latency_ms": ("latency_ms", "DOUBLE")},
}


def load_events(url: str, tables: list[str],
                threads: int) -> tuple[duckdb.DuckDBPyConnection, dict[str, float]]:
    """An in-memory DuckDB holding ``tables``; the export and load times."""
    seconds = {"export": 0.0, "load": 0.0}
    duck = duckdb.connect(":memory:")
    duck.execute(f"SET threads = {int(threads)}")
    with tempfile.TemporaryDirectory(prefix="stats-bench-") as folder:
        for table in tables:
            columns = COLUMNS[table]
            path = Path(folder) / f"{table}.csv"
            exported = ", ".join(f"{expr} AS {name}" for name, (expr, _) in columns.items())
            statement = (f"COPY (SELECT {exported} FROM {table} ORDER BY org_id, ts) "
                         f"TO STDOUT (FORMAT csv)")
            mark = time.perf_counter()
            with (psycopg.connect(url) as conn, conn.cursor() as cur, path.open("wb") as out,
                  cur.copy(statement) as copy):
                for block in copy:
                    out.write(block)
            seconds["export"] += time.perf_counter() - mark
            mark = time.perf_counter()
            types = ", ".join(f"'{name}': '{kind}'" for name, (_, kind) in columns.items())
            duck.execute(f"CREATE TABLE {table} AS SELECT * FROM read_csv(?, header = false, "
                         f"columns = {{{types}}})", [str(path)])
            path.unlink()
            seconds["load"] += time.perf_counter() - mark
    return duck, seconds
