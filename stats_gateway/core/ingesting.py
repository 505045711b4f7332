"""Ingesting events, step by step: the one sequence behind ``POST /v2/ingest/<domain>``
and ``load``.

1. **Read and validate** the events (``typed_batch.parse_batch`` for a request body,
   ``ingest.validate_events``/``typed_batch.fast_lines`` for a file's chunks): a 422
   listing every problem, or rows ready to write.
2. **Keep the key's limit** (ingest only; ``load`` runs as the owner): an event outside
   the key's workspaces or repos is refused whole (``outside_limit``), and so is an event
   naming a repo its workspaces do not already hold (``refuse_hidden_repos``: unknown or
   another workspace's, with the very same answer, so the key learns nothing of others).
3. **Write** in one transaction as the org: existing event ids skipped, rollups merged by
   the same statement (``ingest.write_batch``; ``load`` COPYs through a staging table).
4. **Name and place** the inserted events' entities and hold them to the repo rule (a
   repo never moves workspace): ``ingest.first_inserted``, ``ingest.entity_refs``,
   ``ingest.repo_moves``, shared by both writers.

The HTTP handler only authorizes, hands the body here and renders the result; ``load``
(bulk/load.py) reads files and reports lines. Neither sequences the steps itself.
"""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg import sql

from stats_gateway.core.database import Database
from stats_gateway.core.domain import Domain
from stats_gateway.core.errors import ApiError, Problem
from stats_gateway.core.ingest import (
    REPO_PARENTS, EventRow, IngestResult, claimed_repos, write_batch,
)
from stats_gateway.core.restriction import Restriction
from stats_gateway.core.typed_batch import parse_batch

OUTSIDE_REPOS = ("this API key may write events only to repos its workspaces already hold "
                 "(a new repo's first events need a key without workspace limits)")


async def ingest_batch(db: Database, org_id: str, domain: Domain, body: bytes,
                       restriction: Restriction, now: datetime) -> IngestResult:
    """One request body of events into ``org_id``'s ``domain``, atomically, within the
    key's ``restriction``: every step above, in order."""
    rows = parse_batch(domain, body, now)
    if refused := restriction.refused_events(row.values for row in rows):
        raise outside_limit(refused)
    async with db.transaction(org_id) as conn:
        # a repo of a workspace the key may not see: as any event outside its limit
        await refuse_hidden_repos(conn, org_id, restriction, rows)
        try:
            return await write_batch(conn, org_id, domain, rows)
        except ApiError:  # such a repo may have been made meanwhile: look again
            await refuse_hidden_repos(conn, org_id, restriction, rows)
            raise


def outside_limit(problems: list[Problem]) -> ApiError:
    """The 403 every event outside a key's limit gets."""
    return ApiError(403, "forbidden", f"{len(problems)} event(s) are outside this API key's "
                    "workspaces or repos; nothing was written", problems)


async def refuse_hidden_repos(conn: psycopg.AsyncConnection, org_id: str,
                              restriction: Restriction, rows: list[EventRow]) -> None:
    """403 for events naming a repo not (yet) catalogued under one of the key's workspaces.

    A key limited to workspaces writes only to repos its workspaces already hold. The
    catalogue refuses to move a repo to another workspace and names the workspace it
    belongs to. A key limited to ``w1`` that names repo ``r2`` of workspace ``w2`` must not
    learn ``w2``, nor even that ``r2`` exists: a foreign id must answer exactly as an
    unknown one. Had an unknown repo been created (200) while a foreign one is refused
    (403), the difference would tell the key which repo ids other workspaces hold. So
    every other repo, unknown or foreign, gets the one refusal of any event outside the
    key's limit: 403 ``forbidden`` with ``repoId`` :data:`OUTSIDE_REPOS`, as
    ``scope=repo&id=r2`` answers the 404 of a missing repo. A new repo's first events
    come from a key without workspace limits (docs/security.md)."""
    if restriction.workspaces is None:
        return
    indexed = list(enumerate(rows))
    claimed = claimed_repos(indexed)
    if not claimed:
        return
    cur = await conn.execute(REPO_PARENTS, {"org": org_id, "ids": claimed})
    parents: dict[str, str] = dict(await cur.fetchall())
    hidden = [Problem("repoId", OUTSIDE_REPOS, index) for index, row in indexed
              if (repo := row.values.get("repo_id")) is not None
              and parents.get(repo) not in restriction.workspaces]
    if hidden:
        raise outside_limit(hidden)


def copy_statement(table: str, columns: list[str], binary: bool = False) -> sql.Composed:
    """``COPY table (columns) FROM STDIN``: how ``load`` stages a chunk."""
    return sql.SQL("COPY {} ({}) FROM STDIN" + (" (FORMAT BINARY)" if binary else "")).format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)))


def copy_types(domain: Domain) -> list[str]:
    """The PostgreSQL type of each stored column (``event_id``, ``ts``, then the domain's
    fields), as binary COPY needs them."""
    return ["text", "timestamptz"] + [f.type.sql_type.split("(")[0]
                                      for f in domain.stored_fields]
