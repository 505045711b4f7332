"""Sampling helpers every demo generator shares: when events happen, weighted choices in
bulk, long tails, where an event lands (workspace and repo) and exact money amounts."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from itertools import accumulate

from stats_gateway.demo.world import Org

HOURS = 365 * 24  # the dataset spans the 365 days before ``now``, hour by hour

Columns = dict[str, list]


def event_times(cumulative: list[float], n: int, now: datetime, rng: random.Random) -> list[float]:
    """``n`` sorted unix times in [now - 365 days, now), distributed as ``cumulative``."""
    first = now.timestamp() - HOURS * 3600
    hours = rng.choices(range(HOURS), cum_weights=cumulative, k=n)
    uniform = rng.random
    return sorted([first + (h + uniform()) * 3600 for h in hours])


# --- choosing things ---------------------------------------------------------------------


class Picker:
    """Weighted choice of many items at once; cumulative weights are computed once."""

    def __init__(self, items: Sequence, weights: Sequence[float]):
        self.items, self.cumulative = list(items), list(accumulate(weights))

    def take(self, rng: random.Random, k: int) -> list:
        return rng.choices(self.items, cum_weights=self.cumulative, k=k)


def zipf(n: int, s: float = 1.0) -> list[float]:
    """Long-tail weights: a few busy users/repos, many quiet ones."""
    return [1 / (i + 1) ** s for i in range(n)]


def placements(org: Org) -> Picker:
    """(workspace id, repo id or None): a repo always comes with its own workspace."""
    items: list[tuple[str, str | None]] = []
    weights: list[float] = []
    for ws in org.workspaces:
        repo_weights = zipf(len(ws.repos), 0.8)
        total = sum(repo_weights)
        items.append((ws.id, None))
        weights.append(ws.weight * 0.25)
        for (repo_id, _), w in zip(ws.repos, repo_weights):
            items.append((ws.id, repo_id))
            weights.append(ws.weight * 0.75 * w / total)
    return Picker(items, weights)


def home_workspaces(org: Org) -> list[str]:
    """Each user's workspace, fixed per org (its own seed: the same in every chunk)."""
    rng = random.Random(f"home:{org.key}")
    return [w for w, _ in placements(org).take(rng, org.users)]


def hour_index(t: float, now: datetime) -> int:
    return int((t - now.timestamp() + HOURS * 3600) // 3600)


def money(units: int, places: int) -> Decimal:
    """An exact decimal amount from integer minor units: ``money(12345, 2) == 123.45``."""
    return Decimal(units).scaleb(-places)
