"""Model usage: requests, tokens and cost per model (Runtype's ``/v1/model-usage``).

One event is one model request: ``modelId`` (display name ``modelName``, newest wins),
its ``provider``, the ``modelConfigId`` it ran under, ``tokens`` used and ``cost`` (exact
decimal). ``billing`` says who pays: ``platform`` (the platform's provider keys) or
``user`` (the user's own keys); the platform*/user* metrics split cost and tokens by it.
``avgCostPerRequest`` is cost / requests.
"""

from stats_gateway.core.domain import (
    Attribute, BreakdownView, Count, Dimension, Domain, EventField, FieldType, Mean, Metric,
    ResourceFilter, SeriesView, Sum,
)

T = FieldType
METRICS = ("requests", "tokens", "cost", "platformCost", "platformTokens", "userCost",
           "userTokens", "avgCostPerRequest")

DOMAIN = Domain(
    name="model-usage",
    retention=400,  # raw-event days: 13 months: year-on-year
    table="events_model_usage",
    title="ModelUsage",
    doc=__doc__,
    fields=(
        EventField(name="modelId", column="model_id", type=T.TEXT, required=True, doc="model"),
        EventField(name="modelName", column="model_name", type=T.TEXT,
                   doc="model display name (newest wins)"),
        EventField(name="provider", column="provider", type=T.TEXT, doc="e.g. OpenAI"),
        EventField(name="modelConfigId", column="model_config_id", type=T.TEXT,
                   doc="model configuration the request used"),
        EventField(name="billing", column="billing", type=T.CHOICE, required=True,
                   choices=("platform", "user"), doc="whose provider key paid"),
        EventField(name="tokens", column="tokens", type=T.BIGINT, default=0, min_value=0,
                   doc="tokens used (input + output)"),
        EventField(name="cost", column="cost", type=T.DECIMAL, default=0, min_value=0,
                   doc="cost of the request, exact decimal"),
    ),
    metrics=(
        Metric(name="requests", agg=Count()),
        Metric(name="tokens", agg=Sum("tokens")),
        Metric(name="cost", agg=Sum("cost")),
        Metric(name="platformCost", agg=Sum("cost", "billing", ("platform",))),
        Metric(name="platformTokens", agg=Sum("tokens", "billing", ("platform",))),
        Metric(name="userCost", agg=Sum("cost", "billing", ("user",))),
        Metric(name="userTokens", agg=Sum("tokens", "billing", ("user",))),
        Metric(name="avgCostPerRequest", agg=Mean("cost")),
    ),
    series=(SeriesView(path="", metrics=METRICS, primary="requests"),),
    breakdown=BreakdownView(metrics=METRICS, primary="requests"),
    dimensions=(
        Dimension(by="models", column="model_id", name_column="model_name",
                  attributes=(Attribute("provider", "provider", latest=True),)),
        Dimension(by="providers", column="provider"),
        Dimension(by="modelConfigs", column="model_config_id"),
        Dimension(by="billing", column="billing", share_of="cost"),
        Dimension(by="workspaces", column="workspace_id", names_kind="workspace"),
        Dimension(by="repos", column="repo_id", names_kind="repo"),
    ),
    filters=(
        ResourceFilter(param="modelId", column="model_id"),
        ResourceFilter(param="modelConfigId", column="model_config_id"),
        ResourceFilter(param="provider", column="provider"),
        ResourceFilter(param="billing", column="billing"),
        ResourceFilter(param="apiKeyId", column="api_key_id"),
    ),
)
