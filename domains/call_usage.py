"""Call usage: tokens and cost per call and model (W&B Weave's ``POST /calls/stats``,
usage metrics).

One event is the usage of one ``model`` by one call: it repeats the call's identity and
place (the ``calls`` fields: ``projectId``, ``callId``, ``opName``, trace, thread, user,
run, refs) so usage filters exactly as calls do. Token counts and costs (exact decimal)
default to 0; ``totalTokens`` and ``totalCost`` are input + output.
"""

import random
from datetime import datetime

from domains.calls import CALL_FIELDS, CALL_FILTERS, call_fields
from domains.sample_events import USAGE_MODELS, fmt_ts, maybe, random_amount
from stats_gateway.core.domain import (
    BreakdownView, Count, Dimension, Domain, EventField, FieldType, Metric, ResourceFilter,
    Samples, SeriesView, Sum,
)

T = FieldType


def call_usage_event(rng: random.Random, i: int, t: datetime) -> dict:
    e = {"eventId": f"cu-{i}", "ts": fmt_ts(t, i)}
    call_fields(rng, i, e)
    e["model"] = rng.choice(list(USAGE_MODELS))
    maybe(rng, e, "inputTokens", rng.randint(0, 40_000), 0.85)
    maybe(rng, e, "outputTokens", rng.randint(0, 8_000), 0.85)
    maybe(rng, e, "inputCost", random_amount(rng), 0.85)
    maybe(rng, e, "outputCost", random_amount(rng), 0.85)
    return e


DOMAIN = Domain(
    name="call-usage",
    retention=400,  # raw-event days: 13 months: year-on-year
    table="events_call_usage",
    title="CallUsage",
    doc=__doc__,
    fields=CALL_FIELDS + (
        EventField(name="model", column="model", type=T.TEXT, required=True, doc="model used"),
        EventField(name="inputTokens", column="input_tokens", type=T.BIGINT, default=0,
                   min_value=0),
        EventField(name="outputTokens", column="output_tokens", type=T.BIGINT, default=0,
                   min_value=0),
        EventField(name="inputCost", column="input_cost", type=T.DECIMAL, default=0,
                   min_value=0, doc="exact decimal"),
        EventField(name="outputCost", column="output_cost", type=T.DECIMAL, default=0,
                   min_value=0, doc="exact decimal"),
    ),
    metrics=(
        Metric(name="inputTokens", agg=Sum("input_tokens")),
        Metric(name="outputTokens", agg=Sum("output_tokens")),
        Metric(name="totalTokens", agg=Sum("input_tokens", plus=("output_tokens",))),
        Metric(name="inputCost", agg=Sum("input_cost")),
        Metric(name="outputCost", agg=Sum("output_cost")),
        Metric(name="totalCost", agg=Sum("input_cost", plus=("output_cost",))),
        Metric(name="requests", agg=Count()),
    ),
    series=(SeriesView(primary="totalTokens"),),
    breakdown=BreakdownView(primary="totalTokens"),
    dimensions=(
        Dimension(by="models", column="model"),
        Dimension(by="ops", column="op_name"),
        Dimension(by="projects", column="project_id"),
        Dimension(by="users", column="wb_user_id"),
    ),
    filters=CALL_FILTERS + (ResourceFilter(param="model", column="model"),),
    samples=Samples(prefix="cu", event=call_usage_event),
)
