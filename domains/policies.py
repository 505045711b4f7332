"""Policies: AI-governance rule evaluations (Flashback ``/v2/stats/policies``).

One event is one evaluation of rule ``ruleId``. ``action`` says what it did: ``none``
(no violation), ``log``, ``alert`` or ``block``. Every action but ``none`` is a violation
and must carry a ``severity`` (low|medium|high). ``policyTokensIn/Out`` are the tokens
the evaluation model consumed, counted for every evaluation, violating or not.

``/v2/stats/policies/tokens`` returns only the two token metrics (summary over
``policyTokensIn`` unless ``metric=``); breakdowns (rules, users) return only the
enforcement metrics, as Flashback's do.
"""

import random
from datetime import datetime

from domains.sample_events import common, fmt_ts, maybe
from stats_gateway.core.domain import (
    BreakdownView, Count, Dimension, Domain, EventField, FieldType, Metric, ResourceFilter,
    Samples, SeriesView, Sum,
)
from stats_gateway.demo.sampling import Columns, Picker, placements, zipf
from stats_gateway.demo.world import Org, RULES, user_names

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


ACTIONS = ("log", "alert", "block")
SEVERITIES = ("low", "medium", "high")


def policies_event(rng: random.Random, i: int, t: datetime) -> dict:
    rule = rng.choice(["rule-pii", "rule-dlp", "rule-secrets"])
    action = rng.choice(["none", "none", "log", "alert", "block"])
    e = {"eventId": f"po-{i}", "ts": fmt_ts(t, i), "ruleId": rule, "action": action}
    common(rng, e)
    maybe(rng, e, "ruleName", f"Rule {rule}", 0.4)
    if action != "none":
        e["severity"] = rng.choice(["low", "medium", "high"])
    u = rng.choice([None, "u1", "u2", "u3"])
    if u:
        e["userId"] = u
        maybe(rng, e, "userName", f"User {u}", 0.4)
    maybe(rng, e, "policyTokensIn", rng.randint(0, 2_000))
    maybe(rng, e, "policyTokensOut", rng.randint(0, 500))
    return e


def policies_columns(org: Org, rng: random.Random, times: list[float], now: datetime) -> Columns:
    """Rule evaluations: most find nothing (action ``none``, no severity); a violation
    takes an action and a severity from its rule's own odds."""
    n, lognorm, uniform, choices = len(times), rng.lognormvariate, rng.random, rng.choices
    where = placements(org).take(rng, n)
    users = [user_id for user_id, _ in user_names(org)]
    who = Picker(users, zipf(len(users), 1.1)).take(rng, n)
    rules = [RULES[r] for r in org.rules]
    evaluated = Picker(rules, [1.0] * len(rules)).take(rng, n)
    severities: list[str | None]
    actions, severities, pin, pout = [], [], [], []
    for rule in evaluated:
        if uniform() < rule.violation_rate:
            actions.append(choices(ACTIONS, rule.actions)[0])
            severities.append(choices(SEVERITIES, rule.severities)[0])
        else:
            actions.append("none")
            severities.append(None)
        pin.append(int(380 * lognorm(0.0, 0.6)))
        pout.append(int(12 * lognorm(0.0, 0.4)))
    return {
        "workspace_id": [w for w, _ in where], "repo_id": [r for _, r in where],
        "rule_id": [r.id for r in evaluated], "user_id": who, "action": actions,
        "severity": severities, "policy_tokens_in": pin, "policy_tokens_out": pout,
    }


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
        SeriesView(primary="violations"),
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
    samples=Samples(prefix="po", event=policies_event, columns=policies_columns),
)

