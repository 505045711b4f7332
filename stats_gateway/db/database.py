"""``PooledDatabase``: the engine's ``Database`` (core/database.py) over a psycopg pool.

Every query and transaction goes through row-level security as one org (db/tenant.py).
``in_session`` gives a request its own view of the one shared database: bound to the
request's ``TenantSession``, it runs only that org's queries and settles the session's
cached-key check with the first of them. ``connection`` is the door for the few callers
that are not an org yet (authentication, readiness): a pooled connection as the app role,
outside any org.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager

import psycopg
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import AsyncConnectionPool

from stats_gateway.core.database import KeyCheck, TenantSession, WrongTenant
from stats_gateway.db.tenant import tenant_connection, tenant_fetch


class PooledDatabase:
    """The gateway's ``Database``: ``pool`` is shared; ``session`` is the request's, if
    bound (None: any org, no key check, e.g. the engine's tests and the CLI)."""

    def __init__(self, pool: AsyncConnectionPool, session: TenantSession | None = None):
        self.pool = pool
        self.session = session

    def in_session(self, session: TenantSession) -> PooledDatabase:
        return PooledDatabase(self.pool, session)

    def _check_for(self, org_id: str) -> KeyCheck | None:
        if self.session is None:
            return None
        if org_id != self.session.org_id:
            raise WrongTenant("a tenant session runs its own org's queries only")
        return self.session.key_check

    async def fetch(self, org_id: str, sql: str, params: Mapping[str, object] | None = None,
                    *, tuples: bool = False) -> list:
        return await tenant_fetch(self.pool, org_id, sql, params,
                                  tuple_row if tuples else dict_row,
                                  check=self._check_for(org_id))

    def transaction(self, org_id: str,
                    ) -> AbstractAsyncContextManager[psycopg.AsyncConnection]:
        return tenant_connection(self.pool, org_id, self._check_for(org_id))

    def connection(self, timeout: float | None = None,
                   ) -> AbstractAsyncContextManager[psycopg.AsyncConnection]:
        """A pooled connection as the app role, in no org (sees no tenant row)."""
        return self.pool.connection(timeout=timeout)

    def can_run_at_once(self, queries: int) -> bool:
        """Room in the pool (idle connections, or room to open more) for each query and
        one more left for the next request, and nobody waiting: a request only borrows
        spare capacity, never queueing for a second connection."""
        stats = self.pool.get_stats()
        room = (stats.get("pool_available", 0)
                + self.pool.max_size - stats.get("pool_size", self.pool.max_size))
        return room > queries and not stats.get("requests_waiting", 0)
