"""SQL snapshots: the statements ``StatsEngine.explain`` lists for representative request
shapes, one file each in tests/snapshots/<shape>.sql, like metricflow's snapshots, so a
planner or SQL-builder change shows in review as a diff of these files.

A fixed ``now`` (an unaligned instant, so edges fall mid-slot where a shape has them) and
a fixed org id placeholder make them deterministic. After an intended change, regenerate
them with ``STATS_GATEWAY_UPDATE_SNAPSHOTS=1 pytest tests/test_snapshots.py`` and review the
diff. Besides the text, each shape checks what it stands for (the planner's segments), so
a regenerated snapshot that lost its rollup does not pass unnoticed.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stats_gateway.core.explain import Explanation, explain_text, placeholder_org
from stats_gateway.core.query import QueryBody, QueryFilter, QueryOrder
from stats_gateway.core.timebuckets import BUCKET_SIZES, make_plan
from stats_gateway.seeds import runs as runs_seed
from conftest import Org
from support import ingest

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("STATS_GATEWAY_UPDATE_SNAPSHOTS") == "1"
NOW = datetime(2026, 5, 17, 13, 27, 41, tzinfo=UTC)  # mid-slot on every grain
ORG = "<org>"
WORKSPACE = "w-snap"


@pytest.fixture(scope="module")
def org(db, client):
    """An org that knows workspace ``w-snap`` (a workspace-scope request checks it)."""
    org = Org(db, f"org-{uuid.uuid4().hex[:10]}")
    ingest(client, org, "ai", [{
        "eventId": "snap-1", "ts": "2026-05-10T00:00:00Z", "workspaceId": WORKSPACE,
        "repoId": "r-snap", "model": "m", "provider": "p", "tokensIn": 1, "tokensOut": 1,
        "conversationId": "c", "latencyMs": 1}])
    return org


def _get(path: str, **params: str):
    params = {"scope": "org", **params}
    return lambda org_id: lambda engine: engine.explain_url(
        org_id, path, {k: [v] for k, v in params.items()}, now=NOW)


def _query(domain: str, body: QueryBody):
    return lambda org_id: lambda engine: engine.explain(
        org_id, lambda e: e.query(org_id, domain, body, now=NOW))


def _runs_seed(org_id: str):
    """``GET /v1/runs-stats``'s three engine calls, as its handler makes them."""
    async def answer(engine):
        domain = engine.domain("runs")
        plan = make_plan(NOW - timedelta(days=30), NOW, BUCKET_SIZES["1d"])
        await runs_seed.timeline(engine, org_id, domain, plan)
        await runs_seed.source_split(engine, org_id, domain, plan)
    return lambda engine: engine.explain(org_id, answer)


SHAPES = {
    # the whole range on the hourly scope rollup
    "org_series_30d_1h": (_get("/v2/stats/storage", window="30d", timeBucketSize="1h"),
                          {"rollup"}),
    # 5-minute rollup slots inside, raw events for the unaligned ends
    "org_series_7d_5m_unaligned": (_get("/v2/stats/ai", timeBucketSize="5m",
                                        end="2026-05-17T13:27:41Z",
                                        start="2026-05-10T13:27:41Z"),
                                   {"rollup", "raw"}),
    "workspace_breakdown_models": (_get("/v2/stats/ai/breakdown/models", window="30d",
                                        scope="workspace", id=WORKSPACE), {"rollup"}),
    # a high-cardinality dimension's own cube (day and 30-day grains)
    "users_breakdown": (_get("/v2/stats/private-chat/breakdown/users", window="90d"),
                        {"rollup"}),
    # ranked by its sketches' estimates (day and 30-day sketches, raw ends)
    "users_by_distinct_count": (_get("/v2/stats/private-chat/breakdown/users", window="90d",
                                     sort="conversationsCount"), {"rollup", "raw"}),
    # a dimension of few entities: every model's estimate in one pass over its codes
    "models_by_distinct_count": (_get("/v2/stats/ai/breakdown/models", window="90d",
                                      sort="activeConversations"), {"rollup", "raw"}),
    # other: every user's sketches but the page's, unnested code by code
    "users_breakdown_include_other": (_get("/v2/stats/private-chat/breakdown/users",
                                           window="90d", includeOther="true"), {"rollup"}),
    "breakdown_include_series": (_get("/v2/stats/runs/breakdown/targets", window="7d",
                                      timeBucketSize="1d", includeSeries="true"),
                                 {"rollup"}),
    "distinct_count_series": (_get("/v2/stats/ai", window="30d", timeBucketSize="1d",
                                   metric="activeConversations"), {"rollup"}),
    "percentile_series": (_get("/v2/stats/calls", window="24h", timeBucketSize="1h",
                               metric="latencyMsP95"), {"rollup"}),
    "query_filtered_negated_grouped": (_query("ai", QueryBody(
        metrics=["tokensIn", "requests"], group_by=["models", "workspaces"],
        filters=[QueryFilter(field="model", values=["gpt-4o", "o3"], op="in"),
                 QueryFilter(field="apiKeyId", values=["k1"], op="nin")],
        window="30d", time_bucket_size="1d",
        order_by=[QueryOrder(by="tokensIn", direction="desc")], limit=50)), {"raw"}),
    "seed_runs_stats": (_runs_seed, {"rollup", "raw"}),
}


def _explain(client, org, shape: str) -> Explanation:
    make, _ = SHAPES[shape]
    engine = client.app.state.engine
    found = client.blocking_portal.call(make(org.id), engine)
    return placeholder_org(found, org.id, ORG)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_snapshot(client, org, shape):
    found = _explain(client, org, shape)
    text = explain_text(found)
    path = SNAPSHOTS / f"{shape}.sql"
    if UPDATE or not path.exists():
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(text)
        if not UPDATE:
            pytest.fail(f"{path.name} was missing and has been written: review and commit it")
    assert text == path.read_text(), (
        f"{path.name} changed: review the diff and regenerate with "
        "STATS_GATEWAY_UPDATE_SNAPSHOTS=1 if the change is meant")
    assert org.id not in text
    sources = {seg.source for q in found.queries for seg in q.segments}
    assert SHAPES[shape][1] <= sources, sources


def test_snapshots_have_no_strays():
    """Every snapshot file belongs to a shape (a renamed shape leaves no stale file)."""
    assert {p.stem for p in SNAPSHOTS.glob("*.sql")} == set(SHAPES)
