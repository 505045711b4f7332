"""Runs: AI model, flow and ComfyUI workflow runs (Runflow's ``/v1/runs-stats``).

One event is one run of a target: ``targetType`` (model|flow|comfyui) and ``targetSlug``
name it (slugs are shared across target types, so a target's ``entityId`` is
``<targetType>:<targetSlug>``), ``targetName`` is its display name (newest wins), ``source``
says where the run was started (api|playground|other), ``spend`` is what it cost (exact
decimal) and ``durationMs`` how long it took. ``avgDurationMs`` is the mean over runs that
report a duration. The ``sources`` breakdown adds ``pct``, each source's share of runs.
"""

import random
from datetime import datetime

from domains.sample_events import common, fmt_ts, maybe, random_amount
from stats_gateway.core.domain import (
    Attribute, BreakdownView, Count, Dimension, Domain, EventField, FieldType, Mean, Metric,
    ResourceFilter, Samples, SeriesView, Sum,
)
from stats_gateway.demo.workloads import runs_columns

T = FieldType
TARGET_TYPES = ("model", "flow", "comfyui")
SOURCES = ("api", "playground", "other")

TARGET_SLUGS = ("my-slug", "upscaler", "photo-studio")  # shared across target types


def runs_event(rng: random.Random, i: int, t: datetime) -> dict:
    target_type = rng.choice(["model", "model", "flow", "comfyui"])
    slug = rng.choice(TARGET_SLUGS)
    e = {"eventId": f"ru-{i}", "ts": fmt_ts(t, i), "targetType": target_type,
         "targetSlug": slug, "source": rng.choice(["api", "api", "api", "playground", "other"])}
    common(rng, e)
    maybe(rng, e, "targetName", f"{target_type} {slug} v{rng.randint(1, 3)}", 0.6)
    maybe(rng, e, "spend", random_amount(rng), 0.85)
    maybe(rng, e, "durationMs", rng.choice([rng.randint(0, 90_000),
                                             round(rng.uniform(0, 90_000), 3)]), 0.7)
    return e


DOMAIN = Domain(
    name="runs",
    retention=400,  # raw-event days: 13 months: year-on-year
    # runs last minutes and come a few an hour: a 5-minute slot would hold one run (as many
    # rollup rows as runs, measured: 93k rows for 100k runs in a year), so the rollups
    # start at hours and 5-minute buckets read the raw runs, as few as those slots
    finest_grain="1h",
    table="events_runs",
    title="Runs",
    doc=__doc__,
    fields=(
        EventField(name="targetType", column="target_type", type=T.CHOICE, required=True,
                   choices=TARGET_TYPES, doc="what ran"),
        EventField(name="targetSlug", column="target_slug", type=T.TEXT, high_cardinality=True, required=True,
                   doc="slug of the model, flow or ComfyUI workflow"),
        EventField(name="targetName", column="target_name", type=T.TEXT,
                   doc="its display name (newest wins)"),
        EventField(name="source", column="source", type=T.CHOICE, required=True,
                   choices=SOURCES, doc="where the run was started"),
        EventField(name="spend", column="spend", type=T.DECIMAL, default=0, min_value=0,
                   doc="cost of the run, exact decimal"),
        EventField(name="durationMs", column="duration_ms", type=T.DOUBLE, min_value=0,
                   doc="run duration in milliseconds"),
    ),
    metrics=(
        Metric(name="runs", agg=Count()),
        Metric(name="spend", agg=Sum("spend")),
        Metric(name="avgDurationMs", agg=Mean("duration_ms")),
    ),
    series=(SeriesView(primary="runs"),),
    breakdown=BreakdownView(primary="runs"),
    dimensions=(
        Dimension(by="workspaces", column="workspace_id", names_kind="workspace"),
        Dimension(by="repos", column="repo_id", names_kind="repo"),
        Dimension(by="targets", column=("target_type", "target_slug"), name_column="target_name",
                  attributes=(Attribute("targetType", "target_type"),
                              Attribute("targetSlug", "target_slug"))),
        Dimension(by="sources", column="source", share_of="runs"),
        Dimension(by="targetTypes", column="target_type"),
    ),
    filters=(
        ResourceFilter(param="targetType", column="target_type"),
        ResourceFilter(param="source", column="source"),
        ResourceFilter(param="apiKeyId", column="api_key_id"),
    ),
    samples=Samples(prefix="ru", event=runs_event, columns=runs_columns),
)
