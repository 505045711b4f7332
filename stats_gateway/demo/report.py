"""What the demo prints once the data is in: events per org and domain, the keys, and
curl lines to paste, built from the loaded orgs so every id in them exists."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from domains import DOMAINS
from stats_gateway.demo.load import LoadedOrg


def summary_table(loaded: list[LoadedOrg], seconds: float) -> str:
    """Events per org per domain, with totals and the load rate."""
    names = [d.name for d in DOMAINS]
    width = max(len(o.name) for o in loaded) + 2
    header = "org".ljust(width) + "".join(n.rjust(14) for n in names) + "total".rjust(12)
    lines = [header, "-" * len(header)]
    for o in loaded:
        lines.append(o.name.ljust(width) + "".join(f"{o.events.get(n, 0):>14,}" for n in names)
                     + f"{sum(o.events.values()):>12,}")
    total = sum(sum(o.events.values()) for o in loaded)
    lines.append("-" * len(header))
    lines.append("all".ljust(width) + "".join(
        f"{sum(o.events.get(n, 0) for o in loaded):>14,}" for n in names) + f"{total:>12,}")
    lines.append(f"generated and loaded {total:,} events in {seconds:.1f} s "
                 f"({total / max(seconds, 1e-9):,.0f} events/s)")
    return "\n".join(lines)


def base_url(host: str, port: int) -> str:
    """Where a client reaches a server bound to ``host`` (a wildcard means this machine)."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def curl_examples(org: LoadedOrg, base: str, now: datetime | None = None) -> list[str]:
    """Read examples across domains and features, one ingest POST, then one request to each
    seed-compatible endpoint (Runflow, Runtype, workflow CU, Weave), dated around ``now``."""
    now = now or datetime.now(UTC)
    workspace, project = org.org.workspaces[0], org.org.projects[0]
    auth = '-H "Authorization: Bearer $KEY"'
    reads = [
        "/v2/stats/ai?scope=org&window=30d",
        ("/v2/stats/storage/breakdown/buckets?scope=org&window=7d&includeSeries=true"
         "&timeBucketSize=1d&limit=5"),
        f"/v2/stats/ai/breakdown/models?scope=workspace&id={workspace.id}&window=90d",
        (f"/v2/stats/private-chat?scope=org&window=30d&timezone={org.org.timezone}"
         "&timeBucketSize=1d"),
        "/v2/stats/policies/tokens?scope=org&window=7d",
        "/v2/stats/credits?scope=org&window=365d&timeBucketSize=1mo",
        "/v2/stats/runs/breakdown/targets?scope=org&window=30d",
        "/v2/stats/model-usage/breakdown/billing?scope=org&window=30d",
        "/v2/stats/workflow-cu/breakdown/workflows?scope=org&window=7d&isStream=true",
        f"/v2/stats/calls/breakdown/ops?scope=org&window=24h&projectId={project.id}",
        "/v2/stats/call-usage?scope=org&window=7d&timeBucketSize=1d&metric=totalCost",
    ]
    event = {"eventId": "demo-curl-1", "ts": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
             "model": "gpt-4o", "provider": "openai", "workspaceId": workspace.id,
             "repoId": workspace.repos[0][0], "tokensIn": 1200, "tokensOut": 350,
             "latencyMs": 840.5}
    body = json.dumps({"events": [event]}, separators=(",", ":"))
    lines = [f"curl {auth} '{base}{path}'" for path in reads]
    lines.append(f"curl -X POST {auth} -H 'Content-Type: application/json' "
                 f"'{base}/v2/ingest/ai' -d '{body}'")
    return lines + seed_examples(org, base, now)


def seed_examples(org: LoadedOrg, base: str, now: datetime) -> list[str]:
    """One request per seed-compatible endpoint, over the last 30 days."""
    auth = '-H "Authorization: Bearer $KEY"'
    start = (now - timedelta(days=30)).replace(hour=0, minute=0, second=0, microsecond=0)
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    millis = (int(start.timestamp()) * 1000, int(now.timestamp()) * 1000)
    stats = {"project_id": org.org.projects[0].id, "start": start.strftime(stamp),
             "end": now.strftime(stamp), "granularity": 86400,
             "usage_metrics": [{"metric": "total_cost", "aggregations": ["sum"]}],
             "call_metrics": [{"metric": "latency_ms", "aggregations": ["avg"],
                               "percentiles": [95]}]}
    return [
        f"curl {auth} '{base}/v1/runs-stats?start={start.strftime(stamp)}"
        f"&end={now.strftime(stamp)}'",
        f"curl {auth} '{base}/v1/model-usage?period=last_7_days'",
        f"curl {auth} '{base}/v1/organizations/{org.id}/cu/usage-by-workflow"
        f"?from={millis[0]}&to={millis[1]}'",
        f"curl -u x:$KEY -X POST -H 'Content-Type: application/json' '{base}/calls/stats' "
        f"-d '{json.dumps(stats, separators=(',', ':'))}'",
    ]


def keys_and_examples(loaded: list[LoadedOrg], host: str, port: int) -> str:
    """The biggest org's key and examples, then a line per other org's key."""
    big, others = loaded[0], loaded[1:]
    lines = [f"dashboard: {base_url(host, port)}/dashboard (paste a key below into it)",
             f"API docs:  {base_url(host, port)}/schema", "",
             f"biggest org: {big.name} ({big.id}), key with read+ingest:",
             f"  export KEY={big.key}", "", "try:"]
    lines += [f"  {line}" for line in curl_examples(big, base_url(host, port))]
    lines += [""] + [f"other org: {o.name} ({o.id}) key: {o.key}" for o in others]
    return "\n".join(lines)
