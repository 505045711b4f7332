"""Model usage: requests, tokens and cost per model (Runtype's ``/v1/model-usage``).

One event is one model request: ``modelId`` (display name ``modelName``, newest wins),
its ``provider``, the ``modelConfigId`` it ran under, ``tokens`` used and ``cost`` (exact
decimal). ``billing`` says who pays: ``platform`` (the platform's provider keys) or
``user`` (the user's own keys); the platform*/user* metrics split cost and tokens by it.
``avgCostPerRequest`` is cost / requests.
"""

import random
from datetime import datetime

from domains.sample_events import USAGE_MODELS, common, fmt_ts, maybe, random_amount
from stats_gateway.core.domain import (
    Attribute, BreakdownView, Count, Dimension, Domain, EventField, FieldType, Mean, Metric,
    ResourceFilter, Samples, SeriesView, Sum,
)
from stats_gateway.demo.workloads import model_usage_columns

T = FieldType


def model_usage_event(rng: random.Random, i: int, t: datetime) -> dict:
    model = rng.choice(list(USAGE_MODELS))
    e = {"eventId": f"mu-{i}", "ts": fmt_ts(t, i), "modelId": model,
         "billing": rng.choice(["platform", "platform", "user"])}
    common(rng, e)
    maybe(rng, e, "modelName", f"{model.upper()} rev {rng.randint(1, 3)}", 0.6)
    maybe(rng, e, "provider", USAGE_MODELS[model], 0.8)
    maybe(rng, e, "modelConfigId", rng.choice(["mc-1", "mc-2", "mc-3"]), 0.7)
    maybe(rng, e, "tokens", rng.randint(0, 50_000), 0.85)
    maybe(rng, e, "cost", random_amount(rng), 0.85)
    return e


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
    series=(SeriesView(primary="requests"),),
    breakdown=BreakdownView(primary="requests"),
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
    samples=Samples(prefix="mu", event=model_usage_event, columns=model_usage_columns),
)
