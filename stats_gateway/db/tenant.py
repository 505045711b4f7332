"""Row-level security: the database's own guarantee that a query sees one org's rows.

The engine already filters every query by org; this is the backstop should a query ever
forget. Every table with an ``org_id`` column (domain events, rollups, histogram rollups,
the entity catalogue, api_keys) has row-level security enabled *and forced*, with one
policy: a row is visible and writable only when its ``org_id`` equals the transaction's
``stats_gateway.org_id`` setting. Unset (or empty), nothing is visible and nothing can be
written: it fails closed.

The gateway's pooled connections ``SET ROLE stats_gateway_app`` (``configure_app_role``),
a role that is no superuser and owns nothing, so the policies always apply to it. Each
tenant query sets the org transaction-locally (``set_config(..., true)``), so the setting
cannot outlive its transaction and the next user of the connection starts unset:

* ``tenant_fetch`` (one query, the engine's reads): the ``set_config`` and the query are
  sent together in one pipeline, before a single Sync. Statements before a Sync run as
  one implicit transaction (PostgreSQL's extended-query protocol), so this is exactly
  ``BEGIN; set_config; query; COMMIT`` in one round trip, without the BEGIN and COMMIT
  messages (measured: about half the overhead of sending them).
* ``tenant_connection`` (several statements, e.g. an ingest batch): an explicit
  transaction whose ``BEGIN`` and ``set_config`` travel with the first statement.

A request whose API key came from the gateway's key cache (``auth.KeyCache``) carries an
unsettled ``KeyCheck`` in its ``TenantSession`` (core/database.py), given explicitly by
``http/common.authorized`` to the database the request uses (``db/database.py``), which
passes it here as ``check``. Its first tenant query then sets the org *from the key*, and
only while the key is live (``_SET_ORG_OF_LIVE_KEY``), in place of the plain
``set_config``: the same round trip both re-checks the key and runs the query. A key
revoked or expired meanwhile sets nothing, so row-level security shows that query no row,
and the fetch raises ``KeyNotLive`` instead of answering.

Migrations, the bulk loader (``load``) and ``rebuild`` connect as the owner and must see
every org's rows: the owner must be a superuser or have ``BYPASSRLS`` (the embedded
server's and the usual compose setup's owner is a superuser).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any
from contextlib import asynccontextmanager

import psycopg
from psycopg import pq
from psycopg_pool import AsyncConnectionPool

from stats_gateway.core.database import KeyCheck, TenantSession

__all__ = ["KeyCheck", "KeyNotLive", "TenantSession", "configure_app_role",
           "secure_tenant_tables", "tenant_connection", "tenant_fetch"]

APP_ROLE = "stats_gateway_app"
ORG_SETTING = "stats_gateway.org_id"
POLICY = "tenant_isolation"
_SET_ORG = f"SELECT set_config('{ORG_SETTING}', %s, true)"
_SET_ORG_OF_LIVE_KEY = (f"SELECT set_config('{ORG_SETTING}', k.org_id::text, true) "
                        "FROM stats_gateway_live_key(%s) k WHERE k.org_id = %s::uuid")
# NULLIF: after a transaction-local set ends, the setting reads '' (not NULL) in that session
_CURRENT_ORG = f"NULLIF(current_setting('{ORG_SETTING}', true), '')::uuid"
_NO_APP_GRANTS = ("api_keys",)  # read only through stats_gateway_live_key()


class KeyNotLive(Exception):
    """The request's cached API key was revoked or has expired."""


async def _set_org(conn: psycopg.AsyncConnection, org_id: str,
                   check: KeyCheck | None) -> psycopg.AsyncCursor | None:
    """Queue the statement that scopes the transaction to ``org_id``: re-checking the
    request's cached key if it is unchecked (returns that statement's cursor)."""
    if check is None or check.live is not None:
        await conn.execute(_SET_ORG, (org_id,))
        return None
    guard = conn.cursor()
    await guard.execute(_SET_ORG_OF_LIVE_KEY, (check.key_id, org_id))
    return guard


async def _settle(guard: psycopg.AsyncCursor, check: KeyCheck | None) -> None:
    """Record what the key re-check (queued by ``_set_org``) found; ``KeyNotLive`` when
    the key is gone."""
    assert check is not None  # _set_org queues a guard only for a key check
    check.live = bool(await guard.fetchall())
    if not check.live:
        raise KeyNotLive()


async def configure_app_role(conn: psycopg.AsyncConnection) -> None:
    """Pool ``configure`` callback: every pooled connection acts as the app role."""
    await conn.execute(f"SET ROLE {APP_ROLE}")


@asynccontextmanager
async def _pooled(pool: AsyncConnectionPool) -> AsyncIterator[psycopg.AsyncConnection]:
    """A pool connection that is closed, not given back, when its user is cancelled (a
    request's sibling query failed, ``gather_all``; the client went away). A pipeline cut
    off mid-way leaves the connection in pipeline mode with its transaction unsettled, and
    the next user inherited it: a rate-limit take on such a connection never committed,
    and every other request of that key waited on its row until the statement timeout."""
    async with pool.connection() as conn:
        try:
            yield conn
        except asyncio.CancelledError:
            await conn.close()  # the pool replaces a closed connection
            raise


@asynccontextmanager
async def tenant_connection(pool: AsyncConnectionPool, org_id: str,
                            check: KeyCheck | None = None,
                            ) -> AsyncIterator[psycopg.AsyncConnection]:
    """A pooled connection inside a transaction that sees only ``org_id``'s rows.

    Pipelined: ``BEGIN`` and the setting travel with the first statement; commit on a
    clean exit, roll back on an exception. Nested ``conn.transaction()`` blocks become
    savepoints."""
    async with _pooled(pool) as conn:
        async with conn.pipeline(), conn.transaction():
            guard = await _set_org(conn, org_id, check)
            if guard is not None:  # write nothing for a dead key: settle it first
                await _settle(guard, check)
            yield conn


async def tenant_fetch(pool: AsyncConnectionPool, org_id: str, query: str,
                       params: Mapping[str, Any] | None = None, row_factory=None,
                       check: KeyCheck | None = None) -> list:
    """All rows of one query run as ``org_id``, in one round trip: the setting and the
    query share the implicit transaction that the pipeline's one Sync ends (committed,
    or rolled back when the query fails)."""
    async with _pooled(pool) as conn:
        cur = conn.cursor(row_factory=row_factory) if row_factory else conn.cursor()
        try:
            async with conn.pipeline():
                guard = await _set_org(conn, org_id, check)
                await cur.execute(query, params)
        except psycopg.Error:
            if conn.info.transaction_status == pq.TransactionStatus.INERROR:
                await conn.rollback()  # never expected: leave the connection clean anyway
            raise
        if guard is not None:
            await _settle(guard, check)
        return await cur.fetchall()


def secure_tenant_tables(conn: psycopg.Connection) -> list[str]:
    """Enable and force row-level security, add the org policy and grant the app role on
    every table of the schema with an ``org_id`` column that lacks any of it; returns the
    tables changed. Cheap when nothing is missing (one catalogue query), so migrations run
    it every time and tables created later (new domains, rebuilt rollups) are covered."""
    rows = conn.execute("""
        SELECT c.relname,
               c.relrowsecurity AND c.relforcerowsecurity,
               EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid
                       AND p.polname = %(policy)s),
               has_table_privilege(%(role)s, c.oid, 'SELECT')
               AND has_table_privilege(%(role)s, c.oid, 'INSERT')
               AND has_table_privilege(%(role)s, c.oid, 'UPDATE')
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'org_id'
                           AND NOT a.attisdropped
        WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
        ORDER BY c.relname""", {"policy": POLICY, "role": APP_ROLE}).fetchall()
    changed = []
    for table, forced, has_policy, granted in rows:
        wants_grant = table not in _NO_APP_GRANTS
        if forced and has_policy and (granted or not wants_grant):
            continue
        name = f'"{table}"'
        if not forced:
            conn.execute(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY")
            conn.execute(f"ALTER TABLE {name} FORCE ROW LEVEL SECURITY")
        if not has_policy:
            conn.execute(f"CREATE POLICY {POLICY} ON {name} USING (org_id = {_CURRENT_ORG}) "
                         f"WITH CHECK (org_id = {_CURRENT_ORG})")
        if wants_grant and not granted:
            conn.execute(f"GRANT SELECT, INSERT, UPDATE ON {name} TO {APP_ROLE}")
        changed.append(table)
    return changed
