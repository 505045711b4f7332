"""Credits: consumption, purchases and grants of platform credits (``/v2/stats/credits``).

One event is one credit movement of ``kind`` ai|storage (consumption) or
purchase|grant (additions), for ``amount`` credits (exact decimal, up to 6 decimal
places, never negative). ``creditsTotal`` is consumption: ``creditsAi + creditsStorage``.
Amounts are summed as PostgreSQL numeric and returned as exact JSON numbers.
"""

from stats_gateway.core.domain import (
    BreakdownView, Dimension, Domain, EventField, FieldType, Metric, ResourceFilter,
    SeriesView, Sum,
)

T = FieldType
METRICS = ("creditsAi", "creditsStorage", "creditsTotal", "creditsPurchased", "creditsGranted")

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
    series=(SeriesView(path="", metrics=METRICS, primary="creditsTotal"),),
    breakdown=BreakdownView(metrics=METRICS, primary="creditsTotal"),
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
)
