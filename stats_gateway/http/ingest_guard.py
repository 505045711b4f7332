"""Ingest by a key limited to workspaces: a repo outside its workspaces is outside the key.

The catalogue refuses to move a repo to another workspace and names the workspace it
belongs to (``core/ingest.py``). A key limited to ``w1`` that names repo ``r2`` of
workspace ``w2`` must not learn ``w2`` (nor that ``r2`` lives there), so such an event gets
the very refusal of any other event outside the key's limit: 403 ``forbidden`` with
``repoId`` "outside its repos", as ``scope=repo&id=r2`` answers the 404 of a missing repo.
"""

from __future__ import annotations

import psycopg

from stats_gateway.core.errors import ApiError, Problem
from stats_gateway.core.ingest import REPO_PARENTS, EventRow, claimed_repos
from stats_gateway.core.restriction import Restriction

OUTSIDE_REPOS = "this API key may not write events outside its repos"


def outside_limit(problems: list[Problem]) -> ApiError:
    """The 403 every event outside a key's limit gets (the ingest route's own wording)."""
    return ApiError(403, "forbidden", f"{len(problems)} event(s) are outside this API key's "
                    "workspaces or repos; nothing was written", problems)


async def refuse_hidden_repos(conn: psycopg.AsyncConnection, org_id: str,
                              restriction: Restriction, rows: list[EventRow]) -> None:
    """403 for events naming a repo that belongs to a workspace outside the key's limit."""
    if restriction.workspaces is None:
        return
    indexed = list(enumerate(rows))
    claimed = claimed_repos(indexed)
    if not claimed:
        return
    cur = await conn.execute(REPO_PARENTS, {"org": org_id, "ids": claimed})
    parents = dict(await cur.fetchall())
    hidden = [Problem("repoId", OUTSIDE_REPOS, index) for index, row in indexed
              if (repo := row.values.get("repo_id")) in parents
              and parents[repo] not in restriction.workspaces]
    if hidden:
        raise outside_limit(hidden)
