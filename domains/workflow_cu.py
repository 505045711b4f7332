"""Workflow compute units: CU consumed by workflow runs (``/cu/usage-by-workflow``).

One event is one workflow run: ``workflowId`` (display name ``workflowName``, newest
wins), whether it ran as a stream (``isStream``), its ``status`` and ``triggerType``
(e.g. api, schedule, webhook), the compute units it consumed (``cu``, exact decimal), its
``durationMs`` and its ``estimatedCost`` (integer, smallest currency unit).

``cuPerHour`` is the rate of consumption while running: ``3,600,000 * sum(cu) /
sum(durationMs)``; null when no run reports a duration. ``estimatedCostPerRun`` is the mean
estimated cost over runs that report one. A workflow's ``isStream``, ``status`` and
``triggerType`` in the workflows breakdown are those of its newest run.
"""

import random
from datetime import datetime

from domains.sample_events import common, fmt_ts, maybe, random_amount
from stats_gateway.core.domain import (
    Attribute, BreakdownView, Count, Dimension, Domain, EventField, FieldType, Mean, Metric,
    Ratio, ResourceFilter, Samples, SeriesView, Sum,
)
from stats_gateway.demo.workloads import workflow_cu_columns

T = FieldType


def workflow_cu_event(rng: random.Random, i: int, t: datetime) -> dict:
    """``wf-idle`` never reports a duration (its cuPerHour is null)."""
    workflow = rng.choice(["wf-a", "wf-a", "wf-b", "wf-c", "wf-idle"])
    e = {"eventId": f"wf-{i}", "ts": fmt_ts(t, i), "workflowId": workflow,
         "cu": random_amount(rng)}
    common(rng, e)
    maybe(rng, e, "workflowName", f"Workflow {workflow} v{rng.randint(1, 3)}", 0.6)
    maybe(rng, e, "isStream", rng.random() < 0.4, 0.8)
    maybe(rng, e, "status", rng.choice(["succeeded", "succeeded", "failed", "cancelled"]), 0.85)
    maybe(rng, e, "triggerType", rng.choice(["api", "schedule", "webhook", "manual"]), 0.85)
    if workflow != "wf-idle":
        maybe(rng, e, "durationMs", rng.randint(0, 600_000), 0.85)
    maybe(rng, e, "estimatedCost", rng.randint(0, 5_000), 0.7)
    return e


DOMAIN = Domain(
    name="workflow-cu",
    retention=800,  # raw-event days: billing: two years for audits
    table="events_workflow_cu",
    title="WorkflowCu",
    doc=__doc__,
    fields=(
        EventField(name="workflowId", column="workflow_id", type=T.TEXT, high_cardinality=True, required=True,
                   doc="workflow"),
        EventField(name="workflowName", column="workflow_name", type=T.TEXT,
                   doc="workflow display name (newest wins)"),
        EventField(name="isStream", column="is_stream", type=T.BOOL, default=False,
                   doc="the run streamed its output"),
        EventField(name="status", column="status", type=T.TEXT,
                   doc="run status, e.g. succeeded, failed, cancelled"),
        EventField(name="triggerType", column="trigger_type", type=T.TEXT,
                   doc="what started the run, e.g. api, schedule, webhook, manual"),
        EventField(name="cu", column="cu", type=T.DECIMAL, required=True, min_value=0,
                   doc="compute units consumed, exact decimal"),
        EventField(name="durationMs", column="duration_ms", type=T.BIGINT, default=0,
                   min_value=0, doc="run time in milliseconds"),
        EventField(name="estimatedCost", column="estimated_cost", type=T.BIGINT, min_value=0,
                   doc="estimated cost, smallest currency unit"),
    ),
    metrics=(
        Metric(name="runCount", agg=Count()),
        Metric(name="totalCu", agg=Sum("cu")),
        Metric(name="cuPerHour", agg=Ratio("cu", "duration_ms", scale=3_600_000)),
        Metric(name="estimatedCostPerRun", agg=Mean("estimated_cost")),
        Metric(name="avgDurationMs", agg=Mean("duration_ms")),
    ),
    series=(SeriesView(primary="totalCu"),),
    breakdown=BreakdownView(primary="totalCu"),
    dimensions=(
        Dimension(by="workflows", column="workflow_id", name_column="workflow_name",
                  attributes=(Attribute("isStream", "is_stream", latest=True),
                              Attribute("status", "status", latest=True),
                              Attribute("triggerType", "trigger_type", latest=True))),
        Dimension(by="triggerTypes", column="trigger_type"),
        Dimension(by="statuses", column="status"),
        Dimension(by="workspaces", column="workspace_id", names_kind="workspace"),
        Dimension(by="repos", column="repo_id", names_kind="repo"),
    ),
    filters=(
        ResourceFilter(param="workflowId", column="workflow_id"),
        ResourceFilter(param="triggerType", column="trigger_type"),
        ResourceFilter(param="status", column="status"),
        ResourceFilter(param="isStream", column="is_stream"),
        ResourceFilter(param="apiKeyId", column="api_key_id"),
    ),
    samples=Samples(prefix="wf", event=workflow_cu_event, columns=workflow_cu_columns),
)
