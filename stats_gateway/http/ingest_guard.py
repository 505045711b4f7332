"""Ingest by a key limited to workspaces writes only to repos its workspaces already hold.

The catalogue refuses to move a repo to another workspace and names the workspace it
belongs to (``core/ingest.py``). A key limited to ``w1`` that names repo ``r2`` of
workspace ``w2`` must not learn ``w2``, nor even that ``r2`` exists: a foreign id must
answer exactly as an unknown one. Had an unknown repo been created (200) while a foreign
one is refused (403), the difference would tell the key which repo ids other workspaces
hold. So such a key writes only to repos already catalogued under one of its workspaces;
every other repo, unknown or foreign, gets the one refusal of any event outside the key's
limit: 403 ``forbidden`` with ``repoId`` :data:`OUTSIDE_REPOS`, as ``scope=repo&id=r2``
answers the 404 of a missing repo. A new repo's first events come from a key without
workspace limits (docs/security.md).
"""

from __future__ import annotations

import psycopg

from stats_gateway.core.errors import ApiError, Problem
from stats_gateway.core.ingest import REPO_PARENTS, EventRow, claimed_repos
from stats_gateway.core.restriction import Restriction

OUTSIDE_REPOS = ("this API key may write events only to repos its workspaces already hold "
                 "(a new repo's first events need a key without workspace limits)")


def outside_limit(problems: list[Problem]) -> ApiError:
    """The 403 every event outside a key's limit gets (the ingest route's own wording)."""
    return ApiError(403, "forbidden", f"{len(problems)} event(s) are outside this API key's "
                    "workspaces or repos; nothing was written", problems)


async def refuse_hidden_repos(conn: psycopg.AsyncConnection, org_id: str,
                              restriction: Restriction, rows: list[EventRow]) -> None:
    """403 for events naming a repo not (yet) catalogued under one of the key's workspaces."""
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
