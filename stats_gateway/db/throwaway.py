"""A database that lives for one block: created empty on a server, dropped (forcibly)
afterwards. The tests' session database, migration and plan tests, and the fairness
benchmark each take one, so nothing they write outlives them."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import psycopg
from psycopg.conninfo import make_conninfo


@contextlib.contextmanager
def throwaway_database(server_url: str, prefix: str) -> Iterator[str]:
    """A new empty database named ``<prefix>_<random>``: its URL, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        # its data is thrown away: commits need not wait for the WAL to reach the disk
        conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    try:
        yield make_conninfo(server_url, dbname=name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
