"""Storage gateway: object-storage operations (Flashback ``/v2/stats/storage``).

One event is one storage operation. ``requests`` counts events; ``uplBytes``/``dwlBytes``
sum bytes moved; ``sizeChange`` sums the signed change in stored bytes; ``latencyMs`` is
the request-weighted mean over events that report a latency (null in an empty bucket).
``latencyMsP50``/``P90``/``P95``/``P99`` are latency percentiles from log-bucket
histograms: within 4.76% of the exact (interpolated) percentile, null without latencies;
a breakdown cannot sort by them.

Choice: the ``providers`` breakdown is keyed by ``endpoint`` (one provider endpoint is
one entity); ``entityName`` is empty and each entity carries ``protocol``, ``provider``
and ``endpoint`` as Flashback's detailed provider breakdown does.
"""

import random
from datetime import datetime

from domains.latency import LATENCY_PERCENTILES
from domains.sample_events import common, fmt_ts, maybe
from stats_gateway.core.domain import (
    Attribute, BreakdownView, Count, Dimension, Domain, EventField, FieldType, Mean, Metric,
    ResourceFilter, Samples, SeriesView, Sum,
)
from stats_gateway.demo.sampling import Columns, Picker, zipf
from stats_gateway.demo.world import ENDPOINTS, Org

T = FieldType

SAMPLE_ENDPOINTS = [("s3.eu-west-1.amazonaws.com", "aws", "S3"),
                    ("storage.googleapis.com", "gcp", "GCS"),
                    ("acct.blob.core.windows.net", "azure", "AZURE_BLOB"),
                    ("minio.local:9000", "minio", "S3")]
MAX_OBJECT = 5_000_000_000  # S3's single-PUT limit: keeps lognormal tails plausible


def storage_event(rng: random.Random, i: int, t: datetime) -> dict:
    e = {"eventId": f"st-{i}", "ts": fmt_ts(t, i)}
    common(rng, e)
    b = rng.choice([None, "b1", "b2", "b3"])
    if b:
        e["bucketId"] = b
        maybe(rng, e, "bucketName", f"bucket {b}", 0.4)
    n = rng.choice([None, "n1", "n2"])
    if n:
        e["nodeId"] = n
        maybe(rng, e, "nodeName", f"node {n}", 0.4)
    ep = rng.choice([None, *SAMPLE_ENDPOINTS])
    if ep:
        e["endpoint"], e["provider"], e["protocol"] = ep
    maybe(rng, e, "uplBytes", rng.randint(0, 5_000_000_000))
    maybe(rng, e, "dwlBytes", rng.randint(0, 5_000_000_000))
    maybe(rng, e, "sizeChange", rng.randint(-3_000_000, 3_000_000))
    maybe(rng, e, "latencyMs", round(rng.uniform(0.1, 900.0), 3), 0.7)
    return e


def storage_columns(org: Org, rng: random.Random, times: list[float], now: datetime) -> Columns:
    """Object operations: mostly GETs and PUTs, bytes lognormal, latency by provider plus
    transfer time; deletes shrink storage, overwrites change it less than they upload."""
    n, lognorm, uniform = len(times), rng.lognormvariate, rng.random
    buckets = Picker(org.buckets, [b.weight for b in org.buckets]).take(rng, n)
    nodes = Picker([node for node, _ in org.nodes], zipf(len(org.nodes), 0.6)).take(rng, n)
    ops = Picker("GPHLD", (0.52, 0.24, 0.12, 0.07, 0.05)).take(rng, n)  # get put head list del
    upl, dwl, size, latency = [], [], [], []
    for bucket, op in zip(buckets, ops):
        up = down = change = 0
        if op == "G":
            down = min(MAX_OBJECT, int(lognorm(12.1, 1.6)))
        elif op == "P":
            up = min(MAX_OBJECT, int(lognorm(12.4, 1.7)))
            change = up if uniform() < 0.8 else int(up * (uniform() - 0.3))
        elif op == "L":
            down = int(lognorm(9.5, 0.8))
        elif op == "D":
            change = -min(MAX_OBJECT, int(lognorm(11.8, 1.6)))
        upl.append(up)
        dwl.append(down)
        size.append(change)
        ms = ENDPOINTS[bucket.endpoint].latency_ms * lognorm(0.0, 0.45) + (up + down) / 40_000
        latency.append(round(ms, 2) if uniform() > 0.03 else None)  # old clients omit it
    endpoints = [ENDPOINTS[b.endpoint] for b in buckets]
    return {
        "workspace_id": [b.workspace for b in buckets], "repo_id": [b.repo for b in buckets],
        "bucket_id": [b.id for b in buckets], "node_id": nodes,
        "provider": [e.provider for e in endpoints], "protocol": [e.protocol for e in endpoints],
        "endpoint": [e.host for e in endpoints],
        "upl_bytes": upl, "dwl_bytes": dwl, "size_change": size, "latency_ms": latency,
    }


DOMAIN = Domain(
    name="storage",
    retention=400,  # raw-event days: 13 months: year-on-year
    table="events_storage",
    title="Storage",
    doc=__doc__,
    fields=(
        EventField(name="bucketId", column="bucket_id", type=T.TEXT,
                   names_kind="bucket", name_field="bucketName", doc="storage bucket"),
        EventField(name="bucketName", column="bucket_name", type=T.TEXT, doc="bucket display name"),
        EventField(name="nodeId", column="node_id", type=T.TEXT,
                   names_kind="node", name_field="nodeName", doc="gateway node that served it"),
        EventField(name="nodeName", column="node_name", type=T.TEXT, doc="node display name"),
        EventField(name="provider", column="provider", type=T.TEXT, doc="e.g. aws, gcp, azure"),
        EventField(name="protocol", column="protocol", type=T.TEXT, doc="e.g. S3, GCS, AZURE_BLOB"),
        EventField(name="endpoint", column="endpoint", type=T.TEXT, doc="provider endpoint host"),
        EventField(name="uplBytes", column="upl_bytes", type=T.BIGINT, default=0, min_value=0,
                   doc="bytes uploaded"),
        EventField(name="dwlBytes", column="dwl_bytes", type=T.BIGINT, default=0, min_value=0,
                   doc="bytes downloaded"),
        EventField(name="sizeChange", column="size_change", type=T.BIGINT, default=0,
                   doc="signed change of stored bytes"),
        EventField(name="latencyMs", column="latency_ms", type=T.DOUBLE, min_value=0,
                   doc="operation latency in milliseconds"),
    ),
    metrics=(
        Metric(name="uplBytes", agg=Sum("upl_bytes")),
        Metric(name="dwlBytes", agg=Sum("dwl_bytes")),
        Metric(name="sizeChange", agg=Sum("size_change")),
        Metric(name="latencyMs", agg=Mean("latency_ms")),
        Metric(name="requests", agg=Count()),
        *LATENCY_PERCENTILES,
    ),
    series=(SeriesView(primary="requests"),),
    breakdown=BreakdownView(primary="requests"),
    dimensions=(
        Dimension(by="workspaces", column="workspace_id", names_kind="workspace"),
        Dimension(by="repos", column="repo_id", names_kind="repo"),
        Dimension(by="buckets", column="bucket_id", names_kind="bucket"),
        Dimension(by="nodes", column="node_id", names_kind="node"),
        Dimension(by="providers", column="endpoint",
                  attributes=(Attribute("protocol", "protocol"), Attribute("provider", "provider"),
                              Attribute("endpoint", "endpoint"))),
    ),
    filters=(
        ResourceFilter(param="bucketId", column="bucket_id"),
        ResourceFilter(param="apiKeyId", column="api_key_id"),
    ),
    samples=Samples(prefix="st", event=storage_event, columns=storage_columns, demo_nightly=True),
)
