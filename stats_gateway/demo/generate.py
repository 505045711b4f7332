"""The pure half of the demo: seeded, column-wise generation of realistic event rows.

Nothing here touches a database, so tests can regenerate exactly what the loader wrote
and count it themselves. Every (org, domain) cell has its own ``random.Random`` seeded
from (seed, org, domain), except call-usage, which is made with its calls (``traces``):
the same ``events`` and ``now`` give the same rows however the loader chunks them. Rows
are built a column at a time (bulk ``choices`` over precomputed cumulative weights, one
tight loop for the numbers) because per-row Python work is what bounds the demo's load
time. The generators of the newer domains live in ``workloads`` and ``traces``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate, repeat
from zoneinfo import ZoneInfo

from domains import DOMAINS
from stats_gateway.core.domain import Domain
from stats_gateway.demo.sampling import (
    HOURS, Columns, Picker, event_times, home_workspaces, hour_index, money, placements, zipf,
)
from stats_gateway.demo.traces import calls_with_usage
from stats_gateway.demo.workloads import model_usage_columns, runs_columns, workflow_cu_columns
from stats_gateway.demo.world import ENDPOINTS, MODELS, ORGS, RULES, Org, user_names

SEED = 20_240_917
CHUNK_ROWS = 20_000
MAX_OBJECT = 5_000_000_000  # S3's single-PUT limit: keeps lognormal tails plausible
DOMAIN_BY_NAME = {d.name: d for d in DOMAINS}
EVENT_PREFIX = {"storage": "st", "ai": "ai", "private-chat": "pc", "policies": "po",
                "credits": "cr", "runs": "ru", "model-usage": "mu", "workflow-cu": "wf",
                "calls": "ca", "call-usage": "cu"}


@dataclass(frozen=True)
class Chunk:
    """Consecutive events of one org and domain, column-wise: ``event_id``, ``ts`` and
    stored columns by name; a stored column that is absent holds its field default."""

    org: Org
    domain: Domain
    columns: Columns

    def __len__(self) -> int:
        return len(self.columns["event_id"])


def rows(chunk: Chunk, *lead: object) -> Iterator[tuple]:
    """Tuples ``(*lead, event_id, ts, *stored columns)`` in ``domain.stored_fields`` order,
    ready for ``COPY table (org_id, event_id, ts, ...)`` with ``lead=(org_id,)``."""
    n, columns = len(chunk), chunk.columns
    parts: list = [repeat(value, n) for value in lead]
    parts += [columns["event_id"], columns["ts"]]
    parts += [columns[f.column] if f.column in columns else repeat(f.default, n)
              for f in chunk.domain.stored_fields]
    return zip(*parts)


def check_columns(domain: Domain, columns: Columns) -> None:
    """A generator may only fill the domain's stored columns (a typo would be lost)."""
    unknown = set(columns) - {f.column for f in domain.stored_fields}
    if unknown:
        raise ValueError(f"{domain.name}: generated unknown columns {sorted(unknown)}")


# --- how many, and when ------------------------------------------------------------------


def allocate(events: int) -> dict[tuple[str, str], int]:
    """Events per (org key, domain name), summing exactly to ``events`` (largest remainder)."""
    shares = {(org.key, name): org.share * part for org in ORGS for name, part in org.mix.items()}
    scale = events / sum(shares.values())
    counts = {cell: int(share * scale) for cell, share in shares.items()}
    by_remainder = sorted(shares, key=lambda c: counts[c] - shares[c] * scale)
    for cell in by_remainder[:events - sum(counts.values())]:
        counts[cell] += 1
    for org in ORGS:  # usage needs calls to belong to (only an issue in tiny datasets)
        if counts[(org.key, "calls")] == 0:
            counts[(org.key, "calls")] = counts[(org.key, "call-usage")]
            counts[(org.key, "call-usage")] = 0
    return counts


def _diurnal(hour: int, nightly_batch: bool) -> float:
    """Relative activity at a local hour: a morning and an afternoon peak, quiet nights;
    storage adds the nightly backup window around 02:00."""
    office = math.exp(-((hour - 10.5) / 2.2) ** 2) + 0.8 * math.exp(-((hour - 15.0) / 2.5) ** 2)
    if nightly_batch:
        return 0.25 + 0.7 * office + 0.9 * math.exp(-((hour - 2.0) / 1.2) ** 2)
    return 0.06 + office


WEEKDAY = (1.0, 1.05, 1.05, 1.0, 0.9, 0.3, 0.22)  # Monday .. Sunday


def hour_weights(org: Org, now: datetime, nightly_batch: bool) -> list[float]:
    """Cumulative weight of each of the 8760 hours before ``now`` (oldest first): local
    daily and weekly rhythm, a holiday lull, steady growth, and an onboarding ramp for an
    org younger than the window."""
    zone = ZoneInfo(org.timezone)
    first = now - timedelta(hours=HOURS)
    weights = []
    for k in range(HOURS):
        age_days = (HOURS - k) / 24  # how long before now this hour is
        if age_days > org.active_days:
            weights.append(0.0)
            continue
        local = (first + timedelta(hours=k)).astimezone(zone)
        new_year = (local.month, local.day) >= (12, 24) or (local.month, local.day) == (1, 1)
        holiday = 0.45 if new_year else 1.0
        ramp = 1.0 if org.active_days * 24 >= HOURS else min(
            1.0, 0.1 + (org.active_days - age_days) / 30)  # the first month, ramping up
        growth = org.growth ** (k / HOURS)
        weights.append(_diurnal(local.hour, nightly_batch) * WEEKDAY[local.weekday()]
                       * holiday * ramp * growth)
    return list(accumulate(weights))


# --- one generator per domain: (org, rng, sorted times, now) -> columns ------------------


def storage_columns(org: Org, rng: random.Random, times: list[float], now: datetime) -> Columns:
    """Object operations: mostly GETs and PUTs, bytes lognormal, latency by provider plus
    transfer time; deletes shrink storage, overwrites change it less than they upload."""
    n, lognorm, uniform = len(times), rng.lognormvariate, rng.random
    buckets = Picker(org.buckets, [b.weight for b in org.buckets]).take(rng, n)
    nodes = Picker([node for node, _ in org.nodes], zipf(len(org.nodes), 0.6)).take(rng, n)
    ops = Picker("GPHLD", (0.52, 0.24, 0.12, 0.07, 0.05)).take(rng, n)  # get put head list del
    upl, dwl, size, latency = [], [], [], []
    for bucket, op in zip(buckets, ops):
        up = down = change = 0
        if op == "G":
            down = min(MAX_OBJECT, int(lognorm(12.1, 1.6)))
        elif op == "P":
            up = min(MAX_OBJECT, int(lognorm(12.4, 1.7)))
            change = up if uniform() < 0.8 else int(up * (uniform() - 0.3))
        elif op == "L":
            down = int(lognorm(9.5, 0.8))
        elif op == "D":
            change = -min(MAX_OBJECT, int(lognorm(11.8, 1.6)))
        upl.append(up)
        dwl.append(down)
        size.append(change)
        ms = ENDPOINTS[bucket.endpoint].latency_ms * lognorm(0.0, 0.45) + (up + down) / 40_000
        latency.append(round(ms, 2) if uniform() > 0.03 else None)  # old clients omit it
    endpoints = [ENDPOINTS[b.endpoint] for b in buckets]
    return {
        "workspace_id": [b.workspace for b in buckets], "repo_id": [b.repo for b in buckets],
        "bucket_id": [b.id for b in buckets], "node_id": nodes,
        "provider": [e.provider for e in endpoints], "protocol": [e.protocol for e in endpoints],
        "endpoint": [e.host for e in endpoints],
        "upl_bytes": upl, "dwl_bytes": dwl, "size_change": size, "latency_ms": latency,
    }


def ai_columns(org: Org, rng: random.Random, times: list[float], now: datetime) -> Columns:
    """Model requests: tokens lognormal around each model's medians, latency grows with
    completion length, policy-checked configs also spend evaluation tokens; a conversation
    is a few requests to one config within an hour."""
    n, lognorm, randrange = len(times), rng.lognormvariate, rng.randrange
    where = placements(org).take(rng, n)
    configs = Picker(range(len(org.ai_configs)), [c.weight for c in org.ai_configs]).take(rng, n)
    nodes = Picker([node for node, _ in org.nodes], zipf(len(org.nodes), 0.6)).take(rng, n)
    models = [MODELS[c.model] for c in org.ai_configs]
    tin, tout, pin, pout, latency, conversations = [], [], [], [], [], []
    for t, c in zip(times, configs):
        model = models[c]
        tokens_in = int(model.tokens_in * lognorm(0.0, 0.8))
        tokens_out = int(model.tokens_out * lognorm(0.0, 0.7))
        tin.append(tokens_in)
        tout.append(tokens_out)
        checked = org.ai_configs[c].policy_checked
        pin.append(120 + tokens_in // 6 if checked else 0)
        pout.append(4 + randrange(28) if checked else 0)
        ms = (model.latency_ms + tokens_out * model.ms_per_token) * lognorm(0.0, 0.3)
        latency.append(round(ms, 1))
        conversations.append(f"cv-{c}-{hour_index(t, now)}-{randrange(4)}")
    return {
        "workspace_id": [w for w, _ in where], "repo_id": [r for _, r in where],
        "model": [models[c].id for c in configs], "provider": [models[c].provider for c in configs],
        "ai_llm_id": [org.ai_configs[c].id for c in configs], "node_id": nodes,
        "conversation_id": conversations, "tokens_in": tin, "tokens_out": tout,
        "policy_tokens_in": pin, "policy_tokens_out": pout, "latency_ms": latency,
    }


def private_chat_columns(org: Org, rng: random.Random, times: list[float],
                         now: datetime) -> Columns:
    """Chat messages: a long tail of users, each with a home workspace; prompts carry the
    conversation history, so they are longer than API prompts; a few chats a day each."""
    n, lognorm, randrange = len(times), rng.lognormvariate, rng.randrange
    users = user_names(org)
    home = home_workspaces(org)
    who = Picker(range(len(users)), zipf(len(users), 1.1)).take(rng, n)
    configs = Picker(org.ai_configs, [c.weight for c in org.ai_configs]).take(rng, n)
    tin, tout, conversations = [], [], []
    for t, u, config in zip(times, who, configs):
        model = MODELS[config.model]
        tin.append(int(model.tokens_in * 1.6 * lognorm(0.0, 0.9)))
        tout.append(int(model.tokens_out * lognorm(0.0, 0.7)))
        conversations.append(f"chat-{u}-{hour_index(t, now) // 24}-{randrange(3)}")
    return {
        "workspace_id": [home[u] for u in who], "user_id": [users[u][0] for u in who],
        "model": [c.model for c in configs], "ai_llm_id": [c.id for c in configs],
        "conversation_id": conversations, "tokens_in": tin, "tokens_out": tout,
    }


ACTIONS = ("log", "alert", "block")
SEVERITIES = ("low", "medium", "high")


def policies_columns(org: Org, rng: random.Random, times: list[float], now: datetime) -> Columns:
    """Rule evaluations: most find nothing (action ``none``, no severity); a violation
    takes an action and a severity from its rule's own odds."""
    n, lognorm, uniform, choices = len(times), rng.lognormvariate, rng.random, rng.choices
    where = placements(org).take(rng, n)
    users = [user_id for user_id, _ in user_names(org)]
    who = Picker(users, zipf(len(users), 1.1)).take(rng, n)
    rules = [RULES[r] for r in org.rules]
    evaluated = Picker(rules, [1.0] * len(rules)).take(rng, n)
    severities: list[str | None]
    actions, severities, pin, pout = [], [], [], []
    for rule in evaluated:
        if uniform() < rule.violation_rate:
            actions.append(choices(ACTIONS, rule.actions)[0])
            severities.append(choices(SEVERITIES, rule.severities)[0])
        else:
            actions.append("none")
            severities.append(None)
        pin.append(int(380 * lognorm(0.0, 0.6)))
        pout.append(int(12 * lognorm(0.0, 0.4)))
    return {
        "workspace_id": [w for w, _ in where], "repo_id": [r for _, r in where],
        "rule_id": [r.id for r in evaluated], "user_id": who, "action": actions,
        "severity": severities, "policy_tokens_in": pin, "policy_tokens_out": pout,
    }


def credits_columns(org: Org, rng: random.Random, times: list[float], now: datetime) -> Columns:
    """Credit movements: AI consumption priced per token (4 decimals), storage consumption
    (2 decimals), and occasional top-up purchases and grants at the org level."""
    n, lognorm, choice = len(times), rng.lognormvariate, rng.choice
    kinds = Picker(("ai", "storage", "purchase", "grant"), (0.72, 0.26, 0.012, 0.008)).take(rng, n)
    configs = Picker(org.ai_configs, [c.weight for c in org.ai_configs]).take(rng, n)
    buckets = Picker(org.buckets, [b.weight for b in org.buckets]).take(rng, n)
    where = placements(org).take(rng, n)
    columns: Columns = {name: [] for name in ("kind", "amount", "model", "provider", "bucket_id",
                                              "ai_llm_id", "workspace_id", "repo_id")}
    for kind, config, bucket, (ws, repo) in zip(kinds, configs, buckets, where):
        model = bucket_id = llm = provider = None
        if kind == "ai":
            spec = MODELS[config.model]
            tokens = (spec.tokens_in + spec.tokens_out) * lognorm(0.0, 0.8)
            amount = money(int(tokens * spec.credits_per_mtok / 100), 4)
            model, provider, llm = spec.id, spec.provider, config.id
        elif kind == "storage":
            amount = money(int(85 * lognorm(0.0, 0.9)), 2)
            bucket_id, provider = bucket.id, ENDPOINTS[bucket.endpoint].provider
            ws, repo = bucket.workspace, bucket.repo
        else:
            amount = money(choice((10_000, 25_000, 50_000, 100_000) if kind == "purchase"
                                  else (2_500, 5_000, 10_000)), 2)
            ws = repo = None
        for name, value in (("kind", kind), ("amount", amount), ("model", model),
                            ("provider", provider), ("bucket_id", bucket_id),
                            ("ai_llm_id", llm), ("workspace_id", ws), ("repo_id", repo)):
            columns[name].append(value)
    return columns


GENERATORS: dict[str, Callable[[Org, random.Random, list[float], datetime], Columns]] = {
    "storage": storage_columns,
    "ai": ai_columns,
    "private-chat": private_chat_columns,
    "policies": policies_columns,
    "credits": credits_columns,
    "runs": runs_columns,
    "model-usage": model_usage_columns,
    "workflow-cu": workflow_cu_columns,
}


# --- the whole dataset -------------------------------------------------------------------


def generate(events: int, now: datetime, seed: int = SEED) -> Iterator[Chunk]:
    """Every event of the demo dataset, in chunks of at most ``CHUNK_ROWS``, grouped by
    org then domain, each cell in time order with sequential event ids."""
    counts = allocate(events)
    for org in ORGS:
        weights = {batch: hour_weights(org, now, batch) for batch in (False, True)}
        for name in org.mix:
            n = counts[(org.key, name)]
            rng = random.Random(f"{seed}:{org.key}:{name}")
            if name == "call-usage":
                continue  # made with the calls
            if name == "calls":
                calls, usage = calls_with_usage(org, rng, n, counts[(org.key, "call-usage")],
                                                weights[False], now)
                yield from _chunks(org, "calls", *calls)
                yield from _chunks(org, "call-usage", *usage)
                continue
            times = event_times(weights[name == "storage"], n, now, rng)
            for start in range(0, n, CHUNK_ROWS):
                part = times[start:start + CHUNK_ROWS]
                yield _chunk(org, name, start, part, GENERATORS[name](org, rng, part, now))


def _chunks(org: Org, name: str, times: list[float], columns: Columns) -> Iterator[Chunk]:
    """A cell generated in one piece, cut into chunks."""
    for start in range(0, len(times), CHUNK_ROWS):
        end = start + CHUNK_ROWS
        yield _chunk(org, name, start, times[start:end],
                     {column: values[start:end] for column, values in columns.items()})


def _chunk(org: Org, name: str, start: int, times: list[float], columns: Columns) -> Chunk:
    """Rows ``start``.. of a cell: its columns plus sequential event ids and times."""
    domain = DOMAIN_BY_NAME[name]
    check_columns(domain, columns)
    columns["event_id"] = [f"{EVENT_PREFIX[name]}-{i:09d}"
                           for i in range(start, start + len(times))]
    columns["ts"] = [datetime.fromtimestamp(t, UTC) for t in times]
    return Chunk(org, domain, columns)
