"""Private Chat: the Flashback chat application's model usage (``/v2/stats/private-chat``).

One event is one chat message answered by a model, sent by ``userId``. The ``users``
breakdown adds ``conversationsCount`` (distinct ``conversationId``: a HyperLogLog estimate
where daily or 30-day rollup slots cover the range, off by at most 3% or 3, whichever is
larger; exact when the breakdown is sorted by it) and ``lastActiveAt`` (unix
seconds of the user's newest event in the range).
"""

from stats_gateway.core.domain import (
    BreakdownView, Count, Dimension, DistinctCount, Domain, EventField, FieldType,
    LatestTime, Metric, ResourceFilter, SeriesView, Sum,
)

T = FieldType
METRICS = ("tokensIn", "tokensOut", "requests")

DOMAIN = Domain(
    name="private-chat",
    retention=180,  # raw-event days: chat metadata: shorter, for privacy
    table="events_private_chat",
    title="PrivateChat",
    doc=__doc__,
    fields=(
        EventField(name="model", column="model", type=T.TEXT, required=True, doc="model id"),
        EventField(name="aiLlmId", column="ai_llm_id", type=T.TEXT, names_kind="aiConfig",
                   name_field="aiLlmName", doc="AI configuration id"),
        EventField(name="aiLlmName", column="ai_llm_name", type=T.TEXT, doc="its display name"),
        EventField(name="userId", column="user_id", type=T.TEXT, required=True,
                   names_kind="user", name_field="userName", high_cardinality=True,
                   doc="chat user"),
        EventField(name="userName", column="user_name", type=T.TEXT, doc="user display name"),
        EventField(name="conversationId", column="conversation_id", type=T.TEXT,
                   high_cardinality=True, doc="conversation"),
        EventField(name="tokensIn", column="tokens_in", type=T.BIGINT, default=0, min_value=0),
        EventField(name="tokensOut", column="tokens_out", type=T.BIGINT, default=0, min_value=0),
    ),
    metrics=(
        Metric(name="tokensIn", agg=Sum("tokens_in")),
        Metric(name="tokensOut", agg=Sum("tokens_out")),
        Metric(name="requests", agg=Count()),
        Metric(name="conversationsCount", agg=DistinctCount("conversation_id")),
        Metric(name="lastActiveAt", agg=LatestTime()),
    ),
    series=(SeriesView(path="", metrics=METRICS, primary="requests"),),
    breakdown=BreakdownView(metrics=METRICS, primary="requests"),
    dimensions=(
        Dimension(by="models", column="model"),
        Dimension(by="users", column="user_id", names_kind="user",
                  extra_metrics=("conversationsCount", "lastActiveAt")),
    ),
    filters=(
        ResourceFilter(param="model", column="model"),
        ResourceFilter(param="userId", column="user_id"),
        ResourceFilter(param="apiKeyId", column="api_key_id"),
        ResourceFilter(param="aiLlmId", column="ai_llm_id"),
    ),
)
