"""The oracle's reading of the declarations, pinned: every metric, view and default that
existed when ``expected.py`` started reading them from the domain modules, written out by
hand as before, must still mean the same (a declaration changed by mistake is caught here,
not silently followed by the oracle). New metrics need no entry: the pins are a floor."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

import expected
from expected import (
    NewDimension, _approx_percentile, _count, _dec_sum, _distinct, _int_sum, _latest, _max,
    _mean, _ratio, _sum, assert_matches, with_defaults,
)
from support import generate, random_times

VIOLATING = ("log", "alert", "block")


def _latency_percentiles():
    return {f"latencyMsP{q}": _approx_percentile("latencyMs", q / 100) for q in (50, 90, 95, 99)}


LATENCY_PERCENTILES = tuple(_latency_percentiles())


def _credits(*kinds):
    return lambda evs: sum((Decimal(str(e["amount"])) for e in evs if e["kind"] in kinds),
                           Decimal(0))


def _billing(kind):
    return lambda e: e["billing"] == kind


PINNED_METRICS = {
    "storage": {
        "uplBytes": _sum("uplBytes"),
        "dwlBytes": _sum("dwlBytes"),
        "sizeChange": _sum("sizeChange"),
        "latencyMs": _mean("latencyMs"),
        "requests": _count(),
        **_latency_percentiles(),
    },
    "ai": {
        "tokensIn": _sum("tokensIn"),
        "tokensOut": _sum("tokensOut"),
        "policyTokensIn": _sum("policyTokensIn"),
        "policyTokensOut": _sum("policyTokensOut"),
        "requests": _count(),
        "activeConversations": _distinct("conversationId"),
        "latencyMs": _mean("latencyMs"),
        **_latency_percentiles(),
    },
    "private-chat": {
        "tokensIn": _sum("tokensIn"),
        "tokensOut": _sum("tokensOut"),
        "requests": _count(),
        "conversationsCount": _distinct("conversationId"),
        "lastActiveAt": _latest,
    },
    "policies": {
        "violations": _count(lambda e: e["action"] in VIOLATING),
        "alerts": _count(lambda e: e["action"] == "alert"),
        "blocks": _count(lambda e: e["action"] == "block"),
        "severityLow": _count(lambda e: e.get("severity") == "low"),
        "severityMedium": _count(lambda e: e.get("severity") == "medium"),
        "severityHigh": _count(lambda e: e.get("severity") == "high"),
        "policyTokensIn": _sum("policyTokensIn"),
        "policyTokensOut": _sum("policyTokensOut"),
    },
    "credits": {
        "creditsAi": _credits("ai"),
        "creditsStorage": _credits("storage"),
        "creditsTotal": _credits("ai", "storage"),
        "creditsPurchased": _credits("purchase"),
        "creditsGranted": _credits("grant"),
    },
}
PINNED_NON_ADDITIVE = {"latencyMs", "activeConversations", "conversationsCount", "lastActiveAt",
                *LATENCY_PERCENTILES}
PINNED_APPROXIMATE = set(LATENCY_PERCENTILES)

# (domain, view path) -> (metrics of each point, default summary metric)
PINNED_SERIES_VIEWS = {
    ("storage", ""): (("uplBytes", "dwlBytes", "sizeChange", "latencyMs", "requests",
                       *LATENCY_PERCENTILES), "requests"),
    ("ai", ""): (("tokensIn", "tokensOut", "policyTokensIn", "policyTokensOut", "requests",
                  "activeConversations", "latencyMs", *LATENCY_PERCENTILES), "requests"),
    ("private-chat", ""): (("tokensIn", "tokensOut", "requests"), "requests"),
    ("policies", ""): (("violations", "alerts", "blocks", "severityLow", "severityMedium",
                        "severityHigh", "policyTokensIn", "policyTokensOut"), "violations"),
    ("policies", "tokens"): (("policyTokensIn", "policyTokensOut"), "policyTokensIn"),
    ("credits", ""): (("creditsAi", "creditsStorage", "creditsTotal", "creditsPurchased",
                       "creditsGranted"), "creditsTotal"),
}
# breakdown metrics (before dimension extras), and default sort metric
PINNED_BREAKDOWN_METRICS = {
    "storage": (PINNED_SERIES_VIEWS[("storage", "")][0], "requests"),
    "ai": (PINNED_SERIES_VIEWS[("ai", "")][0], "requests"),
    "private-chat": (("tokensIn", "tokensOut", "requests"), "requests"),
    "policies": (("violations", "alerts", "blocks", "severityLow", "severityMedium",
                  "severityHigh"), "violations"),
    "credits": (PINNED_SERIES_VIEWS[("credits", "")][0], "creditsTotal"),
}
PINNED_EXTRA_METRICS = {("private-chat", "users"): ("conversationsCount", "lastActiveAt")}

PINNED_DEFAULTS = {
    "runs": {"spend": 0},
    "model-usage": {"tokens": 0, "cost": 0},
    "workflow-cu": {"isStream": False, "durationMs": 0},
    "calls": {"error": False},
    "call-usage": {"inputTokens": 0, "outputTokens": 0, "inputCost": 0, "outputCost": 0},
}

PINNED_METRICS.update({
    "runs": {
        "runs": _count(),
        "spend": _dec_sum("spend"),
        "avgDurationMs": _mean("durationMs"),
    },
    "model-usage": {
        "requests": _count(),
        "tokens": _int_sum("tokens"),
        "cost": _dec_sum("cost"),
        "platformCost": _dec_sum("cost", where=_billing("platform")),
        "platformTokens": _int_sum("tokens", where=_billing("platform")),
        "userCost": _dec_sum("cost", where=_billing("user")),
        "userTokens": _int_sum("tokens", where=_billing("user")),
        "avgCostPerRequest": _mean("cost"),
    },
    "workflow-cu": {
        "runCount": _count(),
        "totalCu": _dec_sum("cu"),
        "cuPerHour": _ratio("cu", "durationMs", 3_600_000),
        "estimatedCostPerRun": _mean("estimatedCost"),
        "avgDurationMs": _mean("durationMs"),
    },
    "calls": {
        "callCount": _count(),
        "errorCount": _count(lambda e: e.get("error") is True),
        "latencyMs": _mean("latencyMs"),
        "latencyMsMax": _max("latencyMs"),
        **_latency_percentiles(),
    },
    "call-usage": {
        "inputTokens": _int_sum("inputTokens"),
        "outputTokens": _int_sum("outputTokens"),
        "totalTokens": _int_sum("inputTokens", "outputTokens"),
        "inputCost": _dec_sum("inputCost"),
        "outputCost": _dec_sum("outputCost"),
        "totalCost": _dec_sum("inputCost", "outputCost"),
        "requests": _count(),
    },
})
PINNED_NON_ADDITIVE |= {"avgDurationMs", "avgCostPerRequest", "cuPerHour", "estimatedCostPerRun",
                 "latencyMsMax"}
PINNED_NEW_METRICS = {domain: tuple(PINNED_METRICS[domain]) for domain in PINNED_DEFAULTS}
PINNED_NEW_PRIMARY = {"runs": "runs", "model-usage": "requests", "workflow-cu": "totalCu",
               "calls": "callCount", "call-usage": "totalTokens"}
PINNED_SERIES_VIEWS.update({(d, ""): (PINNED_NEW_METRICS[d], PINNED_NEW_PRIMARY[d]) for d in PINNED_DEFAULTS})
PINNED_BREAKDOWN_METRICS.update({d: (PINNED_NEW_METRICS[d], PINNED_NEW_PRIMARY[d]) for d in PINNED_DEFAULTS})


def _place_dimensions(domain):
    return {(domain, "workspaces"): NewDimension("workspaceId", catalogue="workspaceName"),
            (domain, "repos"): NewDimension("repoId", catalogue="repoName")}


PINNED_NEW_DIMENSIONS = {
    **_place_dimensions("runs"),
    ("runs", "targets"): NewDimension(
        "targetType", "targetSlug", column="targetName",
        attributes=(("targetType", "targetType", False), ("targetSlug", "targetSlug", False))),
    ("runs", "sources"): NewDimension("source", share="runs"),
    ("runs", "targetTypes"): NewDimension("targetType"),
    ("model-usage", "models"): NewDimension("modelId", column="modelName",
                                            attributes=(("provider", "provider", True),)),
    ("model-usage", "providers"): NewDimension("provider"),
    ("model-usage", "modelConfigs"): NewDimension("modelConfigId"),
    ("model-usage", "billing"): NewDimension("billing", share="cost"),
    **_place_dimensions("model-usage"),
    ("workflow-cu", "workflows"): NewDimension(
        "workflowId", column="workflowName",
        attributes=(("isStream", "isStream", True), ("status", "status", True),
                    ("triggerType", "triggerType", True))),
    ("workflow-cu", "triggerTypes"): NewDimension("triggerType"),
    ("workflow-cu", "statuses"): NewDimension("status"),
    **_place_dimensions("workflow-cu"),
    ("calls", "ops"): NewDimension("opName"),
    ("calls", "projects"): NewDimension("projectId"),
    ("calls", "users"): NewDimension("wbUserId"),
    ("calls", "runs"): NewDimension("wbRunId"),
    ("calls", "threads"): NewDimension("threadId"),
    ("call-usage", "models"): NewDimension("model"),
    ("call-usage", "ops"): NewDimension("opName"),
    ("call-usage", "projects"): NewDimension("projectId"),
    ("call-usage", "users"): NewDimension("wbUserId"),
}


PINNED_FILTERS = {
    "storage": ("bucketId", "apiKeyId"),
    "ai": ("model", "apiKeyId", "aiLlmId"),
    "private-chat": ("model", "userId", "apiKeyId", "aiLlmId"),
    "policies": ("ruleId", "apiKeyId"),
    "credits": ("apiKeyId", "aiLlmId"),
}
CALL_FILTERS = ("projectId", "opName", "traceId", "threadId", "wbUserId", "wbRunId", "apiKeyId")
PINNED_FILTERS.update({
    "runs": ("targetType", "source", "apiKeyId"),
    "model-usage": ("modelId", "modelConfigId", "provider", "billing", "apiKeyId"),
    "workflow-cu": ("workflowId", "triggerType", "status", "isStream", "apiKeyId"),
    "calls": CALL_FILTERS,
    "call-usage": CALL_FILTERS + ("model",),
})


TIMES = random_times(41, datetime(2026, 3, 1, tzinfo=timezone.utc),
                     datetime(2026, 3, 20, tzinfo=timezone.utc), 600)


def _events(domain: str) -> list[dict]:
    events = generate(domain, 41, TIMES)
    return with_defaults(domain, events) if domain in PINNED_DEFAULTS else events


def _subsets(events: list[dict]) -> list[list[dict]]:
    """The whole set, halves, a few odd slices and nothing: references must agree on all."""
    rng = random.Random(7)
    return [events, events[:300], events[300:], events[::7], rng.sample(events, 25), []]


@pytest.mark.parametrize("domain", sorted(PINNED_METRICS))
def test_every_pinned_metric_means_what_it_meant(domain):
    """The reference read from the declaration computes what the hand-written one did."""
    events = _events(domain)
    assert set(PINNED_METRICS[domain]) <= set(expected.METRICS[domain])
    for name, pinned in PINNED_METRICS[domain].items():
        derived = expected.METRICS[domain][name]
        for i, part in enumerate(_subsets(events)):
            want = pinned(part)
            got = derived(part)
            if isinstance(want, expected.Approx):
                assert isinstance(got, expected.Approx) and got.exact == want.exact, (name, i)
            else:
                assert type(got) is type(want), (domain, name, i, got, want)
                assert_matches(got, want, f"{domain}.{name}[{i}]")


def _in_order(pinned, derived) -> bool:
    positions = [derived.index(m) for m in pinned if m in derived]
    return len(positions) == len(pinned) and positions == sorted(positions)


def test_pinned_views_still_serve_their_metrics():
    for key, (metrics, primary) in PINNED_SERIES_VIEWS.items():
        got_metrics, got_primary = expected.SERIES_VIEWS[key]
        assert _in_order(metrics, got_metrics), (key, got_metrics)
        assert got_primary == primary, key
    for domain, (metrics, primary) in PINNED_BREAKDOWN_METRICS.items():
        got_metrics, got_primary = expected.BREAKDOWN_METRICS[domain]
        assert _in_order(metrics, got_metrics), (domain, got_metrics)
        assert got_primary == primary, domain
    for key, extras in PINNED_EXTRA_METRICS.items():
        assert expected.EXTRA_METRICS[key] == extras, key


def test_pinned_kinds_and_defaults():
    pinned_names = {m for metrics in PINNED_METRICS.values() for m in metrics}
    assert PINNED_NON_ADDITIVE <= expected.NON_ADDITIVE
    assert expected.NON_ADDITIVE & pinned_names == PINNED_NON_ADDITIVE
    assert expected.APPROXIMATE & pinned_names == PINNED_APPROXIMATE
    for domain, defaults in PINNED_DEFAULTS.items():
        declared = expected.DEFAULTS[domain]
        assert {k: declared[k] for k in defaults} == defaults, domain


def test_pinned_breakdowns_read_from_the_declarations_are_the_same():
    assert set(PINNED_NEW_DIMENSIONS) <= set(expected.NEW_DIMENSIONS)
    for key, pinned in PINNED_NEW_DIMENSIONS.items():
        assert expected.NEW_DIMENSIONS[key] == pinned, key


def test_pinned_filters_are_declared():
    for domain, params in PINNED_FILTERS.items():
        assert expected.FILTERS[domain] == params, domain
