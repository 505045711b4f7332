"""What an API key may see inside its org: optionally only some workspaces and/or repos.

A restriction is turned into ordinary filters (``workspace_id = ANY(...)``,
``repo_id = ANY(...)``) added to every query the key makes, so every series, breakdown and
seed endpoint counts only allowed events, and the rollup planner treats them like any
other filter (it picks the workspace or repo rollups, or raw events: the answer is the
raw answer either way). With both sets an event must be in one of the workspaces *and*
one of the repos; an event without a workspace (or repo) is outside a workspace (or repo)
restriction. An empty set allows nothing. Every domain has both columns (they are common
fields), so no domain needs a special case.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TypeVar

from stats_gateway.core.errors import Problem
from stats_gateway.core.request import Filter, StatsRequest

R = TypeVar("R", bound=StatsRequest)


@dataclass(frozen=True)
class Restriction:
    workspaces: frozenset[str] | None = None  # None: every workspace
    repos: frozenset[str] | None = None  # None: every repo

    @property
    def unrestricted(self) -> bool:
        return self.workspaces is None and self.repos is None

    def filters(self) -> tuple[Filter, ...]:
        found = []
        if self.workspaces is not None:
            found.append(Filter("(key) workspaces", "workspace_id", sorted(self.workspaces),
                                "any"))
        if self.repos is not None:
            found.append(Filter("(key) repos", "repo_id", sorted(self.repos), "any"))
        return tuple(found)

    def apply(self, request: R) -> R:
        """``request`` with the restriction's filters added (unchanged when unrestricted)."""
        if self.unrestricted:
            return request
        return replace(request, filters=request.filters + self.filters())

    def scope_condition(self, kind: str, scope_id: str) -> tuple[bool, str, dict]:
        """Whether a workspace/repo scope can be inside the restriction, and the extra SQL
        condition on its catalogue row ``e`` (in ``entities``) that decides it.

        A workspace is inside when it is allowed and, with a repo restriction, holds an
        allowed repo; a repo when it is allowed and, with a workspace restriction, belongs
        to an allowed workspace. Outside answers the very 404 of a missing id."""
        if kind == "workspace":
            if self.workspaces is not None and scope_id not in self.workspaces:
                return False, "", {}
            if self.repos is not None:
                return True, (" AND EXISTS (SELECT 1 FROM entities r WHERE r.org_id = e.org_id"
                              " AND r.kind = 'repo' AND r.id = ANY(%(allowed_repos)s)"
                              " AND r.parent_id = e.id)"), {"allowed_repos": sorted(self.repos)}
        elif kind == "repo":
            if self.repos is not None and scope_id not in self.repos:
                return False, "", {}
            if self.workspaces is not None:
                return True, " AND e.parent_id = ANY(%(allowed_workspaces)s)", {
                    "allowed_workspaces": sorted(self.workspaces)}
        return True, "", {}

    def refused_events(self, rows: Iterable[Mapping[str, object]]) -> list[Problem]:
        """One problem per event (by its column values) the key may not write."""
        problems = []
        for index, values in enumerate(rows):
            workspace, repo = values.get("workspace_id"), values.get("repo_id")
            if self.workspaces is not None and workspace not in self.workspaces:
                problems.append(Problem("workspaceId", "this API key may not write events "
                                        "outside its workspaces", index))
            elif self.repos is not None and repo not in self.repos:
                problems.append(Problem("repoId", "this API key may not write events "
                                        "outside its repos", index))
        return problems


UNRESTRICTED = Restriction()
