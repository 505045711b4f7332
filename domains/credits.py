"""Credits: consumption, purchases and grants of platform credits (``/v2/stats/credits``).

One event is one credit movement of ``kind`` ai|storage (consumption) or
purchase|grant (additions), for ``amount`` credits (exact decimal, up to 6 decimal
places, never negative). ``creditsTotal`` is consumption: ``creditsAi + creditsStorage``.
Amounts are summed as PostgreSQL numeric and returned as exact JSON numbers.
"""

import random
from datetime import datetime

from domains.sample_events import MODELS, common, fmt_ts, maybe, random_amount
from stats_gateway.core.domain import (
    BreakdownView, Dimension, Domain, EventField, FieldType, Metric, ResourceFilter,
    Samples, SeriesView, Sum,
)
from stats_gateway.demo.sampling import Columns, Picker, money, placements
from stats_gateway.demo.world import ENDPOINTS, MODELS as DEMO_MODELS, Org

T = FieldType


def credits_event(rng: random.Random, i: int, t: datetime) -> dict:
    kind = rng.choice(["ai", "ai", "storage", "purchase", "grant"])
    e = {"eventId": f"cr-{i}", "ts": fmt_ts(t, i), "kind": kind, "amount": random_amount(rng)}
    common(rng, e)
    if kind == "ai":
        model = rng.choice(list(MODELS))
        maybe(rng, e, "model", model)
        maybe(rng, e, "provider", MODELS[model])
        cfg = rng.choice([None, "cfg1", "cfg2"])
        if cfg:
            e["aiLlmId"] = cfg
            maybe(rng, e, "aiLlmName", f"config {cfg}", 0.4)
    elif kind == "storage":
        b = rng.choice([None, "b1", "b2"])
        if b:
            e["bucketId"] = b
            maybe(rng, e, "bucketName", f"bucket {b}", 0.4)
    return e


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
            spec = DEMO_MODELS[config.model]
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


DOMAIN = Domain(
    name="credits",
    retention=800,  # raw-event days: billing: two years for audits
    table="events_credits",
    title="Credits",
    doc=__doc__,
    fields=(
        EventField(name="kind", column="kind", type=T.CHOICE, required=True,
                   choices=("ai", "storage", "purchase", "grant"), doc="what moved the credits"),
        EventField(name="amount", column="amount", type=T.DECIMAL, required=True, min_value=0,
                   doc="credits, exact decimal (string or number), up to 6 decimals"),
        EventField(name="model", column="model", type=T.TEXT, doc="model that consumed them"),
        EventField(name="provider", column="provider", type=T.TEXT, doc="provider behind them"),
        EventField(name="bucketId", column="bucket_id", type=T.TEXT, names_kind="bucket",
                   name_field="bucketName", doc="storage bucket that consumed them"),
        EventField(name="bucketName", column="bucket_name", type=T.TEXT, doc="bucket name"),
        EventField(name="aiLlmId", column="ai_llm_id", type=T.TEXT, names_kind="aiConfig",
                   name_field="aiLlmName", doc="AI configuration"),
        EventField(name="aiLlmName", column="ai_llm_name", type=T.TEXT, doc="its display name"),
    ),
    metrics=(
        Metric(name="creditsAi", agg=Sum("amount", "kind", ("ai",))),
        Metric(name="creditsStorage", agg=Sum("amount", "kind", ("storage",))),
        Metric(name="creditsTotal", agg=Sum("amount", "kind", ("ai", "storage"))),
        Metric(name="creditsPurchased", agg=Sum("amount", "kind", ("purchase",))),
        Metric(name="creditsGranted", agg=Sum("amount", "kind", ("grant",))),
    ),
    series=(SeriesView(primary="creditsTotal"),),
    breakdown=BreakdownView(primary="creditsTotal"),
    dimensions=(
        Dimension(by="workspaces", column="workspace_id", names_kind="workspace"),
        Dimension(by="repos", column="repo_id", names_kind="repo"),
        Dimension(by="models", column="model"),
        Dimension(by="providers", column="provider"),
        Dimension(by="buckets", column="bucket_id", names_kind="bucket"),
    ),
    filters=(
        ResourceFilter(param="apiKeyId", column="api_key_id"),
        ResourceFilter(param="aiLlmId", column="ai_llm_id"),
    ),
    samples=Samples(prefix="cr", event=credits_event, columns=credits_columns),
)
