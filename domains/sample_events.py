"""Shared pieces of the domains' sample events (``Samples.event``): the common fields,
optional fields, time spellings and exact amounts a test event may carry.

Every domain's test events draw from one seeded ``random.Random`` in a fixed order, so the
same seed gives the same events; keep that order when editing a generator.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal

WORKSPACE_REPOS = {"w1": ["r1", "r2"], "w2": ["r3"], "w3": []}
MODELS = {"gpt-4o": "openai", "claude-3": "anthropic", "llama-3": "meta"}
USAGE_MODELS = {"gpt-4o": "OpenAI", "claude-3": "Anthropic", "llama-3": "Meta"}

_OFFSETS = [timedelta(0), timedelta(hours=5, minutes=30), timedelta(hours=-4),
            timedelta(hours=2), timedelta(hours=-9, minutes=-30)]


def fmt_ts(t: datetime, style: int):
    """A ts in one of several accepted spellings (all the same instant)."""
    style %= 4
    if style == 0:
        return t.astimezone(timezone.utc).isoformat(
            timespec="seconds" if not t.microsecond else "microseconds").replace("+00:00", "Z")
    if style == 1:
        if t.microsecond:
            return t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
        return int(t.timestamp())
    offset = _OFFSETS[(style + t.minute) % len(_OFFSETS)]
    return t.astimezone(timezone(offset)).isoformat()


def common(rng: random.Random, e: dict) -> None:
    """The fields every domain's events may carry: a place (workspace, repo, their names)
    and the API key."""
    ws = rng.choice([None, "w1", "w1", "w2", "w3"])
    if ws:
        e["workspaceId"] = ws
        if rng.random() < 0.5:
            e["workspaceName"] = f"Workspace {ws.upper()}"
        repos = WORKSPACE_REPOS[ws]
        if repos and rng.random() < 0.7:
            repo = rng.choice(repos)
            e["repoId"] = repo
            if rng.random() < 0.5:
                e["repoName"] = f"Repo {repo.upper()}"
    key = rng.choice([None, "k1", "k2", "k2"])
    if key:
        e["apiKeyId"] = key


def maybe(rng: random.Random, e: dict, field: str, value, p: float = 0.8) -> None:
    """Set an optional field with probability ``p``."""
    if rng.random() < p:
        e[field] = value


def random_amount(rng: random.Random):
    """Exact amounts with 0..6 decimals, as decimal strings or JSON numbers."""
    places = rng.randint(0, 6)
    units = rng.randint(0, 5_000 * 10**places)
    value = Decimal(units).scaleb(-places)
    return str(value) if rng.random() < 0.5 else value
