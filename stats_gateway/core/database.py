"""The engine's one door to the database: a small protocol, as metricflow's ``SqlClient``.

The engine asks for rows of a query run as one org, for a transaction as one org (ingest:
several statements, atomically), and whether it may run a few queries at once. It never
sees a pool, a connection's settings or how row-level security is entered: those are the
implementation's (``db/database.PooledDatabase`` over the gateway's pool). Anything that
answers these three, over a real PostgreSQL, can serve the engine (tests/test_db_door.py
runs it over a single connection).

Who the queries run as travels as a value, ``TenantSession``: the org, and for a request
whose API key came from the key cache, the key's pending liveness check (``KeyCheck``),
settled by that request's first tenant query (db/tenant.py). A database bound to a session
(``in_session``) refuses queries for any other org, so a session cannot leak into another
tenant's request.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass
class KeyCheck:
    """A cached API key that this request has yet to see live in the database."""

    key_id: str
    live: bool | None = None  # None: not checked yet


@dataclass(frozen=True)
class TenantSession:
    """Who a request's queries run as: its org, and its cached key's check (None: the key
    was looked up in the database for this request, or no key is involved)."""

    org_id: str
    key_check: KeyCheck | None = None


class WrongTenant(RuntimeError):
    """A query for another org than the session's: a bug, never answered with rows."""


@runtime_checkable
class Database(Protocol):
    """What the engine and ingest need of the database, and nothing more."""

    async def fetch(self, org_id: str, sql: str, params: Mapping[str, object] | None = None,
                    *, tuples: bool = False) -> list:
        """Every row of one query run as ``org_id`` (dicts, or tuples if ``tuples``)."""
        ...

    def transaction(self, org_id: str) -> AbstractAsyncContextManager[Any]:
        """A connection in a transaction as ``org_id``: committed on a clean exit."""
        ...

    def can_run_at_once(self, queries: int) -> bool:
        """Whether ``queries`` independent queries may run concurrently now."""
        ...

    def in_session(self, session: TenantSession) -> Database:
        """This database for one request: its org only, its key check settled."""
        ...
