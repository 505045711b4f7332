"""Demo generators for the workload domains: runs, model-usage and workflow-cu.

Same contract as the generators in ``generate``: (org, rng, sorted unix times, now) ->
columns. Money is built from integer minor units (``money``) so every amount is an exact
decimal, never a float rounded on the way in.
"""

from __future__ import annotations

import random
from datetime import datetime

from stats_gateway.demo.sampling import Columns, Picker, money, placements
from stats_gateway.demo.world import (
    MODELS,
    PROVIDER_NAMES,
    RENAMED_DAYS_AGO,
    RUN_TARGETS,
    TRIGGERS,
    Model,
    Org,
)

SOURCES = ("api", "playground", "other")
STATUSES = ("succeeded", "failed", "cancelled")
ESTIMATES_SINCE_DAYS = 330  # cost estimates exist only for runs newer than this
CENTS_PER_CU = 12  # list price of a compute unit


def runs_columns(org: Org, rng: random.Random, times: list[float], now: datetime) -> Columns:
    """Runs of hosted models, flows and ComfyUI workflows: mostly started through the API,
    durations lognormal per target, spend = duration x the target's rate (exact, 6 places).
    A few runs report no duration (still queued when they were billed at the median); one
    flow was renamed ``RENAMED_DAYS_AGO`` days ago, so older runs carry its old name."""
    n, lognorm, uniform = len(times), rng.lognormvariate, rng.random
    targets = Picker([RUN_TARGETS[k] for k, _ in org.run_targets],
                     [w for _, w in org.run_targets]).take(rng, n)
    where = placements(org).take(rng, n)
    renamed = now.timestamp() - RENAMED_DAYS_AGO * 86_400
    names, sources, spend, durations = [], [], [], []
    for t, target in zip(times, targets):
        names.append(target.old_name if target.old_name and t < renamed else target.name)
        u = uniform()
        sources.append("playground" if u < target.playground
                       else "other" if u > 0.97 else "api")
        ms = target.median_ms * lognorm(0.0, target.sigma)
        durations.append(round(ms, 1) if uniform() > 0.015 else None)
        spend.append(money(int(ms * target.micro_usd_per_s / 1000), 6))
    return {
        "workspace_id": [w for w, _ in where], "repo_id": [r for _, r in where],
        "target_type": [t.type for t in targets], "target_slug": [t.slug for t in targets],
        "target_name": names, "source": sources, "spend": spend, "duration_ms": durations,
    }


def token_cost(model: Model, tokens_in: int, tokens_out: int) -> tuple[int, int]:
    """(input, output) cost in millionths of a dollar, rounded half up."""
    return (tokens_in * model.cents_in + 50) // 100, (tokens_out * model.cents_out + 50) // 100


def model_usage_columns(org: Org, rng: random.Random, times: list[float],
                        now: datetime) -> Columns:
    """Model requests through the org's model configurations (a few direct, without one);
    configurations on the user's own key are billed ``user``, the rest ``platform``; cost
    is the model's list price for the tokens, exact to the micro-dollar."""
    n, lognorm, uniform = len(times), rng.lognormvariate, rng.random
    configs = Picker(org.ai_configs, [c.weight for c in org.ai_configs]).take(rng, n)
    where = placements(org).take(rng, n)
    columns: Columns = {name: [] for name in ("model_id", "model_name", "provider",
                                              "model_config_id", "billing", "tokens", "cost")}
    for config in configs:
        model = MODELS[config.model]
        direct = uniform() < 0.12  # called by model id, not through a configuration
        tokens_in = int(model.tokens_in * lognorm(0.0, 0.8))
        tokens_out = int(model.tokens_out * lognorm(0.0, 0.7))
        cost_in, cost_out = token_cost(model, tokens_in, tokens_out)
        for name, value in (("model_id", model.id), ("model_name", model.name),
                            ("provider", PROVIDER_NAMES[model.provider]),
                            ("model_config_id", None if direct else config.id),
                            ("billing", "user" if config.byok and not direct else "platform"),
                            ("tokens", tokens_in + tokens_out),
                            ("cost", money(cost_in + cost_out, 6))):
            columns[name].append(value)
    columns["workspace_id"] = [w for w, _ in where]
    columns["repo_id"] = [r for _, r in where]
    return columns


def workflow_cu_columns(org: Org, rng: random.Random, times: list[float],
                        now: datetime) -> Columns:
    """Workflow runs: mostly succeeded; failed and cancelled runs stop early and use less;
    CU grows with run time (3 decimals); estimated cost in cents, only for runs since
    estimates were introduced."""
    n, lognorm, uniform, choices = len(times), rng.lognormvariate, rng.random, rng.choices
    workflows = Picker(org.workflows, [w.weight for w in org.workflows]).take(rng, n)
    statuses = Picker(STATUSES, (0.93, 0.05, 0.02)).take(rng, n)
    estimates_since = now.timestamp() - ESTIMATES_SINCE_DAYS * 86_400
    stream, triggers, cu, durations, estimates = [], [], [], [], []
    for t, wf, status in zip(times, workflows, statuses):
        stream.append(uniform() < wf.stream)
        triggers.append(choices(TRIGGERS, wf.triggers)[0])
        ms = wf.median_ms * lognorm(0.0, 0.5) * (1.0 if status == "succeeded"
                                                 else 0.05 + 0.55 * uniform())
        durations.append(int(ms))
        units = int(ms / 60_000 * wf.cu_per_minute * lognorm(0.0, 0.15) * 1000)
        cu.append(money(units, 3))
        estimates.append(round(units / 1000 * CENTS_PER_CU) if t >= estimates_since else None)
    return {
        "workspace_id": [w.workspace for w in workflows], "workflow_id": [w.id for w in workflows],
        "workflow_name": [w.name for w in workflows], "is_stream": stream, "status": statuses,
        "trigger_type": triggers, "cu": cu, "duration_ms": durations,
        "estimated_cost": estimates,
    }
