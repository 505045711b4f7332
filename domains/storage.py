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

from domains.latency import LATENCY_PERCENTILE_NAMES, LATENCY_PERCENTILES
from stats_gateway.core.domain import (
    Attribute, BreakdownView, Count, Dimension, Domain, EventField, FieldType, Mean, Metric,
    ResourceFilter, SeriesView, Sum,
)

T = FieldType
METRICS = ("uplBytes", "dwlBytes", "sizeChange", "latencyMs", "requests",
           *LATENCY_PERCENTILE_NAMES)

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
    series=(SeriesView(path="", metrics=METRICS, primary="requests"),),
    breakdown=BreakdownView(metrics=METRICS, primary="requests"),
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
)
