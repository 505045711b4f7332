"""Calls: traced function/LLM calls (W&B Weave's ``POST /calls/stats``, call metrics).

One event is one call of op ``opName`` in project ``projectId``, with its place in a trace
(``traceId``, ``parentId``: absent for a trace root, ``threadId``, ``turnId``), who ran it
(``wbUserId``, ``wbRunId``), the object refs it read and wrote (``inputRefs``,
``outputRefs``), its ``latencyMs`` and whether it raised (``error``). Token usage and cost
per model are a separate domain, ``call-usage``, with one event per call and model.

``latencyMsP50``/``P90``/``P95``/``P99`` are latency percentiles from log-bucket
histograms, within 4.76% of the exact (interpolated) percentile, null without latencies;
a breakdown cannot sort by them. (The ``/calls/stats`` endpoint computes its own exact
percentiles.)
"""

import random
from datetime import datetime

from domains.latency import LATENCY_PERCENTILES
from domains.sample_events import common, fmt_ts, maybe
from stats_gateway.core.domain import (
    BreakdownView, Count, Dimension, Domain, EventField, FieldType, Max, Mean, Metric,
    ResourceFilter, Samples, SeriesView,
)

T = FieldType

CALL_FIELDS = (
    EventField(name="projectId", column="project_id", type=T.TEXT, required=True,
               doc="project, e.g. entity/project"),
    EventField(name="callId", column="call_id", type=T.TEXT, high_cardinality=True, required=True, doc="the call"),
    EventField(name="opName", column="op_name", type=T.TEXT, required=True, doc="op called"),
    EventField(name="traceId", column="trace_id", type=T.TEXT, high_cardinality=True, doc="trace it belongs to"),
    EventField(name="parentId", column="parent_id", type=T.TEXT, high_cardinality=True,
               doc="parent call; absent for a trace root"),
    EventField(name="threadId", column="thread_id", type=T.TEXT, high_cardinality=True, doc="conversation thread"),
    EventField(name="turnId", column="turn_id", type=T.TEXT, high_cardinality=True, doc="turn within the thread"),
    EventField(name="wbUserId", column="wb_user_id", type=T.TEXT, high_cardinality=True,
               doc="user who ran it"),
    EventField(name="wbRunId", column="wb_run_id", type=T.TEXT, high_cardinality=True, doc="W&B run it ran in"),
    EventField(name="inputRefs", column="input_refs", type=T.TEXT_LIST,
               doc="object refs among its inputs"),
    EventField(name="outputRefs", column="output_refs", type=T.TEXT_LIST,
               doc="object refs among its outputs"),
)
"""The call's identity and place, shared with call-usage events so both filter alike."""

CALL_FILTERS = (
    ResourceFilter(param="projectId", column="project_id"),
    ResourceFilter(param="opName", column="op_name"),
    ResourceFilter(param="traceId", column="trace_id"),
    ResourceFilter(param="threadId", column="thread_id"),
    ResourceFilter(param="wbUserId", column="wb_user_id"),
    ResourceFilter(param="wbRunId", column="wb_run_id"),
    ResourceFilter(param="apiKeyId", column="api_key_id"),
)

PROJECTS = ("acme/chatbot", "acme/evals", "globex/rag")
OPS = ("Agent.run", "openai.chat.completions.create", "retrieve", "score")


def call_fields(rng: random.Random, i: int, e: dict) -> None:
    e.update(projectId=rng.choice(PROJECTS), callId=f"call-{i}", opName=rng.choice(OPS))
    common(rng, e)
    trace = rng.choice([None, "t1", "t2", "t3", "t4"])
    if trace:
        e["traceId"] = trace
        maybe(rng, e, "parentId", f"call-{rng.randint(0, max(i - 1, 0))}", 0.6)
    thread = rng.choice([None, "th-1", "th-2", "th-3"])
    if thread:
        e["threadId"] = thread
        maybe(rng, e, "turnId", f"turn-{rng.randint(1, 5)}", 0.8)
    maybe(rng, e, "wbUserId", rng.choice(["wbu-1", "wbu-2", "wbu-3"]), 0.8)
    maybe(rng, e, "wbRunId", rng.choice(["acme/evals/r1", "acme/evals/r2"]), 0.5)
    for field in ("inputRefs", "outputRefs"):
        maybe(rng, e, field, [f"weave:///{e['projectId']}/object/obj-{rng.randint(1, 6)}:v1"
                               for _ in range(rng.randint(0, 3))], 0.5)


def calls_event(rng: random.Random, i: int, t: datetime) -> dict:
    e = {"eventId": f"ca-{i}", "ts": fmt_ts(t, i)}
    call_fields(rng, i, e)
    maybe(rng, e, "latencyMs", rng.choice([rng.randint(1, 30_000),
                                            round(rng.uniform(0.5, 30_000), 2)]), 0.85)
    maybe(rng, e, "error", rng.random() < 0.2, 0.7)
    return e


DOMAIN = Domain(
    name="calls",
    retention=90,  # raw-event days: traces are many and read recent
    table="events_calls",
    title="Calls",
    doc=__doc__,
    fields=CALL_FIELDS + (
        EventField(name="latencyMs", column="latency_ms", type=T.DOUBLE, min_value=0,
                   doc="call latency in milliseconds"),
        EventField(name="error", column="error", type=T.BOOL, default=False,
                   doc="the call raised an exception"),
    ),
    metrics=(
        Metric(name="callCount", agg=Count()),
        Metric(name="errorCount", agg=Count("error", (True,))),
        Metric(name="latencyMs", agg=Mean("latency_ms")),
        Metric(name="latencyMsMax", agg=Max("latency_ms")),
        *LATENCY_PERCENTILES,
    ),
    series=(SeriesView(primary="callCount"),),
    breakdown=BreakdownView(primary="callCount"),
    dimensions=(
        Dimension(by="ops", column="op_name"),
        Dimension(by="projects", column="project_id"),
        Dimension(by="users", column="wb_user_id"),
        Dimension(by="runs", column="wb_run_id"),
        Dimension(by="threads", column="thread_id"),
    ),
    filters=CALL_FILTERS,
    samples=Samples(prefix="ca", event=calls_event),
)
