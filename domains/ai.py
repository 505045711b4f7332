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

from domains.latency import LATENCY_PERCENTILE_NAMES, LATENCY_PERCENTILES
from stats_gateway.core.domain import (
    BreakdownView, Count, Dimension, DistinctCount, Domain, EventField, FieldType, Mean,
    Metric, ResourceFilter, SeriesView, Sum,
)

T = FieldType
METRICS = ("tokensIn", "tokensOut", "policyTokensIn", "policyTokensOut", "requests",
           "activeConversations", "latencyMs", *LATENCY_PERCENTILE_NAMES)

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
    series=(SeriesView(path="", metrics=METRICS, primary="requests"),),
    breakdown=BreakdownView(metrics=METRICS, primary="requests"),
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
)
