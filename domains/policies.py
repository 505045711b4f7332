"""Policies: AI-governance rule evaluations (Flashback ``/v2/stats/policies``).

One event is one evaluation of rule ``ruleId``. ``action`` says what it did: ``none``
(no violation), ``log``, ``alert`` or ``block``. Every action but ``none`` is a violation
and must carry a ``severity`` (low|medium|high). ``policyTokensIn/Out`` are the tokens
the evaluation model consumed, counted for every evaluation, violating or not.

``/v2/stats/policies/tokens`` returns only the two token metrics (summary over
``policyTokensIn`` unless ``metric=``); breakdowns (rules, users) return only the
enforcement metrics, as Flashback's do.
"""

from stats_gateway.core.domain import (
    BreakdownView, Count, Dimension, Domain, EventField, FieldType, Metric, ResourceFilter,
    SeriesView, Sum,
)

T = FieldType
VIOLATING = ("log", "alert", "block")
ENFORCEMENT = ("violations", "alerts", "blocks", "severityLow", "severityMedium",
               "severityHigh")
TOKENS = ("policyTokensIn", "policyTokensOut")

def check_event(event: dict) -> list[tuple[str, str]]:
    """Cross-field rule: severity goes with violations only."""
    action, severity = event.get("action"), event.get("severity")
    if action == "none" and severity is not None:
        return [("severity", "must be absent when action is 'none'")]
    if action in VIOLATING and severity is None:
        return [("severity", "is required when action is a violation")]
    return []


DOMAIN = Domain(
    name="policies",
    retention=400,  # raw-event days: 13 months: year-on-year
    table="events_policies",
    title="Policies",
    doc=__doc__,
    fields=(
        EventField(name="ruleId", column="rule_id", type=T.TEXT, required=True,
                   names_kind="rule", name_field="ruleName", doc="policy rule"),
        EventField(name="ruleName", column="rule_name", type=T.TEXT, doc="rule display name"),
        EventField(name="userId", column="user_id", type=T.TEXT, high_cardinality=True, names_kind="user",
                   name_field="userName", doc="user whose request was evaluated"),
        EventField(name="userName", column="user_name", type=T.TEXT, doc="user display name"),
        EventField(name="action", column="action", type=T.CHOICE, required=True,
                   choices=("none",) + VIOLATING, doc="what the evaluation did"),
        EventField(name="severity", column="severity", type=T.CHOICE,
                   choices=("low", "medium", "high"),
                   doc="required when action is not none, refused when it is"),
        EventField(name="policyTokensIn", column="policy_tokens_in", type=T.BIGINT, default=0,
                   min_value=0),
        EventField(name="policyTokensOut", column="policy_tokens_out", type=T.BIGINT, default=0,
                   min_value=0),
    ),
    metrics=(
        Metric(name="violations", agg=Count("action", VIOLATING)),
        Metric(name="alerts", agg=Count("action", ("alert",))),
        Metric(name="blocks", agg=Count("action", ("block",))),
        Metric(name="severityLow", agg=Count("severity", ("low",))),
        Metric(name="severityMedium", agg=Count("severity", ("medium",))),
        Metric(name="severityHigh", agg=Count("severity", ("high",))),
        Metric(name="policyTokensIn", agg=Sum("policy_tokens_in")),
        Metric(name="policyTokensOut", agg=Sum("policy_tokens_out")),
    ),
    series=(
        SeriesView(path="", metrics=ENFORCEMENT + TOKENS, primary="violations"),
        SeriesView(path="tokens", metrics=TOKENS, primary="policyTokensIn"),
    ),
    breakdown=BreakdownView(metrics=ENFORCEMENT, primary="violations"),
    dimensions=(
        Dimension(by="rules", column="rule_id", names_kind="rule"),
        Dimension(by="users", column="user_id", names_kind="user"),
    ),
    filters=(
        ResourceFilter(param="ruleId", column="rule_id"),
        ResourceFilter(param="apiKeyId", column="api_key_id"),
    ),
    check_event=check_event,
)

