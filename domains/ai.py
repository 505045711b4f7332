"""AI gateway: proxied model calls, excluding Private Chat (Flashback ``/v2/stats/ai``).

One event is one model request. ``tokensIn``/``tokensOut`` are base-model tokens,
``policyTokensIn``/``policyTokensOut`` the overhead of policy-evaluation models.
``activeConversations`` counts distinct ``conversationId`` values in a bucket (for the
summary total: over the whole range, not a sum of buckets): a HyperLogLog estimate where
hourly or coarser rollup slots cover the range (off by at most 3% or 3, whichever is
larger), exact from raw events otherwise. ``latencyMs`` is the
request-weighted mean; ``latencyMsP50``/``P90``/``P95``/``P99`` are latency percentiles
from log-bucket histograms, within 4.76% of the exact (interpolated) percentile, null
without latencies; a breakdown cannot sort by them.
"""

import random
from datetime import datetime

from domains.latency import LATENCY_PERCENTILES
from domains.sample_events import MODELS, common, fmt_ts, maybe
from stats_gateway.core.domain import (
    BreakdownView, Count, Dimension, DistinctCount, Domain, EventField, FieldType, Mean,
    Metric, ResourceFilter, Samples, SeriesView, Sum,
)
from stats_gateway.demo.sampling import Columns, Picker, hour_index, placements, zipf
from stats_gateway.demo.world import MODELS as DEMO_MODELS, Org

T = FieldType


def ai_event(rng: random.Random, i: int, t: datetime) -> dict:
    model = rng.choice(list(MODELS))
    e = {"eventId": f"ai-{i}", "ts": fmt_ts(t, i), "model": model}
    common(rng, e)
    maybe(rng, e, "provider", MODELS[model], 0.9)
    cfg = rng.choice([None, "cfg1", "cfg2"])
    if cfg:
        e["aiLlmId"] = cfg
        maybe(rng, e, "aiLlmName", f"config {cfg}", 0.4)
    n = rng.choice([None, "n1", "n2", "n3"])
    if n:
        e["nodeId"] = n
        maybe(rng, e, "nodeName", f"node {n}", 0.4)
    maybe(rng, e, "conversationId", f"conv{rng.randint(1, 7)}", 0.75)
    for f, hi in (("tokensIn", 20_000), ("tokensOut", 8_000), ("policyTokensIn", 900),
                  ("policyTokensOut", 300)):
        maybe(rng, e, f, rng.randint(0, hi))
    maybe(rng, e, "latencyMs", rng.choice([rng.randint(50, 4000), round(rng.uniform(1, 5000), 2)]),
           0.7)
    return e


def ai_columns(org: Org, rng: random.Random, times: list[float], now: datetime) -> Columns:
    """Model requests: tokens lognormal around each model's medians, latency grows with
    completion length, policy-checked configs also spend evaluation tokens; a conversation
    is a few requests to one config within an hour."""
    n, lognorm, randrange = len(times), rng.lognormvariate, rng.randrange
    where = placements(org).take(rng, n)
    configs = Picker(range(len(org.ai_configs)), [c.weight for c in org.ai_configs]).take(rng, n)
    nodes = Picker([node for node, _ in org.nodes], zipf(len(org.nodes), 0.6)).take(rng, n)
    models = [DEMO_MODELS[c.model] for c in org.ai_configs]
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


DOMAIN = Domain(
    name="ai",
    retention=400,  # raw-event days: 13 months: year-on-year
    table="events_ai",
    title="Ai",
    doc=__doc__,
    fields=(
        EventField(name="model", column="model", type=T.TEXT, required=True, doc="model id"),
        EventField(name="provider", column="provider", type=T.TEXT, doc="e.g. openai"),
        EventField(name="aiLlmId", column="ai_llm_id", type=T.TEXT, names_kind="aiConfig",
                   name_field="aiLlmName", doc="AI configuration (LLM config) id"),
        EventField(name="aiLlmName", column="ai_llm_name", type=T.TEXT, doc="its display name"),
        EventField(name="nodeId", column="node_id", type=T.TEXT, names_kind="node",
                   name_field="nodeName", doc="gateway node"),
        EventField(name="nodeName", column="node_name", type=T.TEXT, doc="node display name"),
        EventField(name="conversationId", column="conversation_id", type=T.TEXT, high_cardinality=True,
                   doc="conversation the request belongs to"),
        EventField(name="tokensIn", column="tokens_in", type=T.BIGINT, default=0, min_value=0),
        EventField(name="tokensOut", column="tokens_out", type=T.BIGINT, default=0, min_value=0),
        EventField(name="policyTokensIn", column="policy_tokens_in", type=T.BIGINT, default=0,
                   min_value=0),
        EventField(name="policyTokensOut", column="policy_tokens_out", type=T.BIGINT, default=0,
                   min_value=0),
        EventField(name="latencyMs", column="latency_ms", type=T.DOUBLE, min_value=0),
    ),
    metrics=(
        Metric(name="tokensIn", agg=Sum("tokens_in")),
        Metric(name="tokensOut", agg=Sum("tokens_out")),
        Metric(name="policyTokensIn", agg=Sum("policy_tokens_in")),
        Metric(name="policyTokensOut", agg=Sum("policy_tokens_out")),
        Metric(name="requests", agg=Count()),
        Metric(name="activeConversations", agg=DistinctCount("conversation_id")),
        Metric(name="latencyMs", agg=Mean("latency_ms")),
        *LATENCY_PERCENTILES,
    ),
    series=(SeriesView(primary="requests"),),
    breakdown=BreakdownView(primary="requests"),
    dimensions=(
        Dimension(by="workspaces", column="workspace_id", names_kind="workspace"),
        Dimension(by="repos", column="repo_id", names_kind="repo"),
        Dimension(by="models", column="model"),
        Dimension(by="providers", column="provider"),
        Dimension(by="nodes", column="node_id", names_kind="node"),
        Dimension(by="aiConfigs", column="ai_llm_id", names_kind="aiConfig"),
    ),
    filters=(
        ResourceFilter(param="model", column="model"),
        ResourceFilter(param="apiKeyId", column="api_key_id"),
        ResourceFilter(param="aiLlmId", column="ai_llm_id"),
    ),
    samples=Samples(prefix="ai", event=ai_event, columns=ai_columns),
)
