"""HTTP helpers and seeded event generators shared by the test modules."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from decimal import Decimal

import msgspec

from expected import UTC, parse_ts

_encoder = msgspec.json.Encoder(decimal_format="number")  # Decimal -> exact JSON number
PROBLEM_KEYS = {"type", "title", "status", "success", "error_code", "message", "requestId",
                "errors"}


def encode(payload) -> bytes:
    return _encoder.encode(payload)


def loads(text: str):
    return json.loads(text, parse_float=Decimal)


def post_events(client, headers, domain: str, events, raw: bytes | None = None):
    body = raw if raw is not None else encode({"events": events})
    return client.post(f"/v2/ingest/{domain}", content=body,
                       headers={**headers, "Content-Type": "application/json"})


def ingest(client, org, domain: str, events, chunk: int = 10_000) -> None:
    """Ingest (in batches of at most ``chunk``), asserting every event is inserted."""
    for i in range(0, len(events), chunk):
        part = events[i:i + chunk]
        r = post_events(client, org.headers, domain, part)
        assert r.status_code == 200, r.text
        assert r.json() == {"success": True, "domain": domain, "received": len(part),
                            "inserted": len(part), "duplicates": 0}, r.text


def get(client, path: str, headers, params=None):
    """GET; returns (response, parsed body with exact decimals)."""
    r = client.get(path, params=params, headers=headers)
    assert r.status_code != 500, f"500 from {path} {params}: {r.text}"
    return r, loads(r.text) if r.text else None


def ok(client, path: str, headers, params=None):
    r, body = get(client, path, headers, params)
    assert r.status_code == 200, f"{path} {params} -> {r.status_code}: {r.text}"
    assert r.headers["content-type"].startswith("application/json")
    assert body["success"] is True
    return body


def assert_problem(r, status: int, error_code: str | None = None) -> dict:
    """A problem+json error envelope with the documented keys."""
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text}"
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body = loads(r.text)
    assert set(body) == PROBLEM_KEYS, sorted(body)
    assert body["success"] is False
    assert body["status"] == status
    assert isinstance(body["type"], str) and isinstance(body["title"], str)
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["requestId"], str) and body["requestId"]
    if error_code is not None:
        assert body["error_code"] == error_code, body
    assert isinstance(body["errors"], list)
    for e in body["errors"]:
        assert set(e) == {"field", "message", "index"}, e
        assert isinstance(e["field"], str) and isinstance(e["message"], str)
        assert e["index"] is None or isinstance(e["index"], int)
    return body


def error_fields(body) -> set[str]:
    return {e["field"] for e in body["errors"]}


def without_request_id(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "requestId"}


# --- time formats ----------------------------------------------------------------------

_OFFSETS = [timedelta(0), timedelta(hours=5, minutes=30), timedelta(hours=-4),
            timedelta(hours=2), timedelta(hours=-9, minutes=-30)]


def fmt_ts(t: datetime, style: int):
    """A ts in one of several accepted spellings (all the same instant)."""
    style %= 4
    if style == 0:
        return t.astimezone(UTC).isoformat(timespec="seconds" if not t.microsecond
                                           else "microseconds").replace("+00:00", "Z")
    if style == 1:
        if t.microsecond:
            return t.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return int(t.timestamp())
    offset = _OFFSETS[(style + t.minute) % len(_OFFSETS)]
    from datetime import timezone as tz
    return t.astimezone(tz(offset)).isoformat()


# --- event generators -----------------------------------------------------------------

WORKSPACE_REPOS = {"w1": ["r1", "r2"], "w2": ["r3"], "w3": []}
ENDPOINTS = [("s3.eu-west-1.amazonaws.com", "aws", "S3"),
             ("storage.googleapis.com", "gcp", "GCS"),
             ("acct.blob.core.windows.net", "azure", "AZURE_BLOB"),
             ("minio.local:9000", "minio", "S3")]
MODELS = {"gpt-4o": "openai", "claude-3": "anthropic", "llama-3": "meta"}


def _common(rng: random.Random, e: dict) -> None:
    ws = rng.choice([None, "w1", "w1", "w2", "w3"])
    if ws:
        e["workspaceId"] = ws
        if rng.random() < 0.5:
            e["workspaceName"] = f"Workspace {ws.upper()}"
        repos = WORKSPACE_REPOS[ws]
        if repos and rng.random() < 0.7:
            repo = rng.choice(repos)
            e["repoId"] = repo
            if rng.random() < 0.5:
                e["repoName"] = f"Repo {repo.upper()}"
    key = rng.choice([None, "k1", "k2", "k2"])
    if key:
        e["apiKeyId"] = key


def _maybe(rng, e, field, value, p=0.8):
    if rng.random() < p:
        e[field] = value


def storage_event(rng: random.Random, i: int, t: datetime) -> dict:
    e = {"eventId": f"st-{i}", "ts": fmt_ts(t, i)}
    _common(rng, e)
    b = rng.choice([None, "b1", "b2", "b3"])
    if b:
        e["bucketId"] = b
        _maybe(rng, e, "bucketName", f"bucket {b}", 0.4)
    n = rng.choice([None, "n1", "n2"])
    if n:
        e["nodeId"] = n
        _maybe(rng, e, "nodeName", f"node {n}", 0.4)
    ep = rng.choice([None] + ENDPOINTS)
    if ep:
        e["endpoint"], e["provider"], e["protocol"] = ep
    _maybe(rng, e, "uplBytes", rng.randint(0, 5_000_000_000))
    _maybe(rng, e, "dwlBytes", rng.randint(0, 5_000_000_000))
    _maybe(rng, e, "sizeChange", rng.randint(-3_000_000, 3_000_000))
    _maybe(rng, e, "latencyMs", round(rng.uniform(0.1, 900.0), 3), 0.7)
    return e


def ai_event(rng: random.Random, i: int, t: datetime) -> dict:
    model = rng.choice(list(MODELS))
    e = {"eventId": f"ai-{i}", "ts": fmt_ts(t, i), "model": model}
    _common(rng, e)
    _maybe(rng, e, "provider", MODELS[model], 0.9)
    cfg = rng.choice([None, "cfg1", "cfg2"])
    if cfg:
        e["aiLlmId"] = cfg
        _maybe(rng, e, "aiLlmName", f"config {cfg}", 0.4)
    n = rng.choice([None, "n1", "n2", "n3"])
    if n:
        e["nodeId"] = n
        _maybe(rng, e, "nodeName", f"node {n}", 0.4)
    _maybe(rng, e, "conversationId", f"conv{rng.randint(1, 7)}", 0.75)
    for f, hi in (("tokensIn", 20_000), ("tokensOut", 8_000), ("policyTokensIn", 900),
                  ("policyTokensOut", 300)):
        _maybe(rng, e, f, rng.randint(0, hi))
    _maybe(rng, e, "latencyMs", rng.choice([rng.randint(50, 4000), round(rng.uniform(1, 5000), 2)]),
           0.7)
    return e


def private_chat_event(rng: random.Random, i: int, t: datetime) -> dict:
    user = rng.choice(["u1", "u2", "u3", "u4"])
    e = {"eventId": f"pc-{i}", "ts": fmt_ts(t, i), "model": rng.choice(list(MODELS)),
         "userId": user}
    _common(rng, e)
    _maybe(rng, e, "userName", f"User {user}", 0.4)
    cfg = rng.choice([None, "cfg1", "cfg2"])
    if cfg:
        e["aiLlmId"] = cfg
    _maybe(rng, e, "conversationId", f"{user}-c{rng.randint(1, 4)}", 0.8)
    _maybe(rng, e, "tokensIn", rng.randint(0, 10_000))
    _maybe(rng, e, "tokensOut", rng.randint(0, 10_000))
    return e


def policies_event(rng: random.Random, i: int, t: datetime) -> dict:
    rule = rng.choice(["rule-pii", "rule-dlp", "rule-secrets"])
    action = rng.choice(["none", "none", "log", "alert", "block"])
    e = {"eventId": f"po-{i}", "ts": fmt_ts(t, i), "ruleId": rule, "action": action}
    _common(rng, e)
    _maybe(rng, e, "ruleName", f"Rule {rule}", 0.4)
    if action != "none":
        e["severity"] = rng.choice(["low", "medium", "high"])
    u = rng.choice([None, "u1", "u2", "u3"])
    if u:
        e["userId"] = u
        _maybe(rng, e, "userName", f"User {u}", 0.4)
    _maybe(rng, e, "policyTokensIn", rng.randint(0, 2_000))
    _maybe(rng, e, "policyTokensOut", rng.randint(0, 500))
    return e


def random_amount(rng: random.Random):
    """Exact amounts with 0..6 decimals, as decimal strings or JSON numbers."""
    places = rng.randint(0, 6)
    units = rng.randint(0, 5_000 * 10**places)
    value = Decimal(units).scaleb(-places)
    return str(value) if rng.random() < 0.5 else value


def credits_event(rng: random.Random, i: int, t: datetime) -> dict:
    kind = rng.choice(["ai", "ai", "storage", "purchase", "grant"])
    e = {"eventId": f"cr-{i}", "ts": fmt_ts(t, i), "kind": kind, "amount": random_amount(rng)}
    _common(rng, e)
    if kind == "ai":
        model = rng.choice(list(MODELS))
        _maybe(rng, e, "model", model)
        _maybe(rng, e, "provider", MODELS[model])
        cfg = rng.choice([None, "cfg1", "cfg2"])
        if cfg:
            e["aiLlmId"] = cfg
            _maybe(rng, e, "aiLlmName", f"config {cfg}", 0.4)
    elif kind == "storage":
        b = rng.choice([None, "b1", "b2"])
        if b:
            e["bucketId"] = b
            _maybe(rng, e, "bucketName", f"bucket {b}", 0.4)
    return e


GENERATORS = {
    "storage": storage_event,
    "ai": ai_event,
    "private-chat": private_chat_event,
    "policies": policies_event,
    "credits": credits_event,
}
DOMAINS = tuple(GENERATORS)


def generate(domain: str, seed: int, times: list[datetime], prefix: str = "") -> list[dict]:
    rng = random.Random(f"{domain}-{seed}")
    events = [GENERATORS[domain](rng, i, t) for i, t in enumerate(times)]
    if prefix:
        for e in events:
            e["eventId"] = prefix + e["eventId"]
    return events


def random_times(seed, start: datetime, end: datetime, n: int,
                 gaps: list[tuple[datetime, datetime]] = ()) -> list[datetime]:
    """n seeded instants in [start, end) avoiding the gaps, whole seconds mostly."""
    rng = random.Random(seed)
    span = int((end - start).total_seconds())
    out: list[datetime] = []
    while len(out) < n:
        t = start + timedelta(seconds=rng.randrange(span))
        if rng.random() < 0.1:
            t += timedelta(milliseconds=rng.randrange(1, 1000))
        if any(a <= t < b for a, b in gaps):
            continue
        out.append(t)
    return out


def event_times(events) -> list[datetime]:
    return [parse_ts(e["ts"]) for e in events]


# --- checking a time-series response ----------------------------------------------------

def series_path(domain: str, view: str = "") -> str:
    return f"/v2/stats/{domain}" + (f"/{view}" if view else "")


def check_series(body, domain: str, view: str, events, start, end, size: str, tz: str = "UTC",
                 *, metric: str | None = None, scope: str = "org", scope_id=None,
                 window: str | None = None, filters: dict | None = None) -> list[dict]:
    """Compare a whole time-series response with the independent computation."""
    from expected import (SERIES_VIEWS, assert_matches, expected_series, expected_summary,
                          in_range, select, unix)
    metrics, primary = SERIES_VIEWS[(domain, view)]
    metric = metric or primary
    filters = filters or {}
    chosen = select(events, scope, scope_id if scope != "org" else None, filters)
    points = expected_series(domain, metrics, chosen, start, end, size, tz)
    summary = expected_summary(domain, metric, points, in_range(chosen, start, end))
    meta = body["meta"]
    flist = sorted(({"type": k, "id": v} for k, v in filters.items()), key=lambda f: f["type"])
    expected_meta = {
        "start": unix(start), "end": unix(end), "scope": scope, "scopeId": scope_id,
        "window": window, "timeBucketSize": size, "timezone": tz, "metric": metric,
        "resourceFilter": flist[0] if len(flist) == 1 else None,
        "resourceFilters": flist,
    }
    got_meta = dict(meta)
    if isinstance(got_meta.get("resourceFilters"), list):
        got_meta["resourceFilters"] = sorted(got_meta["resourceFilters"],
                                             key=lambda f: f.get("type", ""))
    assert_matches(got_meta, expected_meta, "$.meta")
    assert set(body) == {"success", "meta", "summary", "series"}
    assert_matches(body["series"], points, "$.series")
    assert_matches(body["summary"], summary, "$.summary")
    return points


# --- event generators for the newer domains (runs, model-usage, workflow-cu, calls,
# call-usage). Kept apart from GENERATORS/DOMAINS, which the older modules parametrize over.

TARGET_SLUGS = ("my-slug", "upscaler", "photo-studio")  # shared across target types


def runs_event(rng: random.Random, i: int, t: datetime) -> dict:
    target_type = rng.choice(["model", "model", "flow", "comfyui"])
    slug = rng.choice(TARGET_SLUGS)
    e = {"eventId": f"ru-{i}", "ts": fmt_ts(t, i), "targetType": target_type,
         "targetSlug": slug, "source": rng.choice(["api", "api", "api", "playground", "other"])}
    _common(rng, e)
    _maybe(rng, e, "targetName", f"{target_type} {slug} v{rng.randint(1, 3)}", 0.6)
    _maybe(rng, e, "spend", random_amount(rng), 0.85)
    _maybe(rng, e, "durationMs", rng.choice([rng.randint(0, 90_000),
                                             round(rng.uniform(0, 90_000), 3)]), 0.7)
    return e


USAGE_MODELS = {"gpt-4o": "OpenAI", "claude-3": "Anthropic", "llama-3": "Meta"}


def model_usage_event(rng: random.Random, i: int, t: datetime) -> dict:
    model = rng.choice(list(USAGE_MODELS))
    e = {"eventId": f"mu-{i}", "ts": fmt_ts(t, i), "modelId": model,
         "billing": rng.choice(["platform", "platform", "user"])}
    _common(rng, e)
    _maybe(rng, e, "modelName", f"{model.upper()} rev {rng.randint(1, 3)}", 0.6)
    _maybe(rng, e, "provider", USAGE_MODELS[model], 0.8)
    _maybe(rng, e, "modelConfigId", rng.choice(["mc-1", "mc-2", "mc-3"]), 0.7)
    _maybe(rng, e, "tokens", rng.randint(0, 50_000), 0.85)
    _maybe(rng, e, "cost", random_amount(rng), 0.85)
    return e


def workflow_cu_event(rng: random.Random, i: int, t: datetime) -> dict:
    """``wf-idle`` never reports a duration (its cuPerHour is null)."""
    workflow = rng.choice(["wf-a", "wf-a", "wf-b", "wf-c", "wf-idle"])
    e = {"eventId": f"wf-{i}", "ts": fmt_ts(t, i), "workflowId": workflow,
         "cu": random_amount(rng)}
    _common(rng, e)
    _maybe(rng, e, "workflowName", f"Workflow {workflow} v{rng.randint(1, 3)}", 0.6)
    _maybe(rng, e, "isStream", rng.random() < 0.4, 0.8)
    _maybe(rng, e, "status", rng.choice(["succeeded", "succeeded", "failed", "cancelled"]), 0.85)
    _maybe(rng, e, "triggerType", rng.choice(["api", "schedule", "webhook", "manual"]), 0.85)
    if workflow != "wf-idle":
        _maybe(rng, e, "durationMs", rng.randint(0, 600_000), 0.85)
    _maybe(rng, e, "estimatedCost", rng.randint(0, 5_000), 0.7)
    return e


PROJECTS = ("acme/chatbot", "acme/evals", "globex/rag")
OPS = ("Agent.run", "openai.chat.completions.create", "retrieve", "score")


def _call_fields(rng: random.Random, i: int, e: dict) -> None:
    e.update(projectId=rng.choice(PROJECTS), callId=f"call-{i}", opName=rng.choice(OPS))
    _common(rng, e)
    trace = rng.choice([None, "t1", "t2", "t3", "t4"])
    if trace:
        e["traceId"] = trace
        _maybe(rng, e, "parentId", f"call-{rng.randint(0, max(i - 1, 0))}", 0.6)
    thread = rng.choice([None, "th-1", "th-2", "th-3"])
    if thread:
        e["threadId"] = thread
        _maybe(rng, e, "turnId", f"turn-{rng.randint(1, 5)}", 0.8)
    _maybe(rng, e, "wbUserId", rng.choice(["wbu-1", "wbu-2", "wbu-3"]), 0.8)
    _maybe(rng, e, "wbRunId", rng.choice(["acme/evals/r1", "acme/evals/r2"]), 0.5)
    for field in ("inputRefs", "outputRefs"):
        _maybe(rng, e, field, [f"weave:///{e['projectId']}/object/obj-{rng.randint(1, 6)}:v1"
                               for _ in range(rng.randint(0, 3))], 0.5)


def calls_event(rng: random.Random, i: int, t: datetime) -> dict:
    e = {"eventId": f"ca-{i}", "ts": fmt_ts(t, i)}
    _call_fields(rng, i, e)
    _maybe(rng, e, "latencyMs", rng.choice([rng.randint(1, 30_000),
                                            round(rng.uniform(0.5, 30_000), 2)]), 0.85)
    _maybe(rng, e, "error", rng.random() < 0.2, 0.7)
    return e


def call_usage_event(rng: random.Random, i: int, t: datetime) -> dict:
    e = {"eventId": f"cu-{i}", "ts": fmt_ts(t, i)}
    _call_fields(rng, i, e)
    e["model"] = rng.choice(list(USAGE_MODELS))
    _maybe(rng, e, "inputTokens", rng.randint(0, 40_000), 0.85)
    _maybe(rng, e, "outputTokens", rng.randint(0, 8_000), 0.85)
    _maybe(rng, e, "inputCost", random_amount(rng), 0.85)
    _maybe(rng, e, "outputCost", random_amount(rng), 0.85)
    return e


NEW_GENERATORS = {
    "runs": runs_event,
    "model-usage": model_usage_event,
    "workflow-cu": workflow_cu_event,
    "calls": calls_event,
    "call-usage": call_usage_event,
}
NEW_DOMAINS = tuple(NEW_GENERATORS)


def generate_new(domain: str, seed: int, times: list[datetime], prefix: str = "") -> list[dict]:
    """Seeded events of a newer domain, one per time."""
    rng = random.Random(f"{domain}-{seed}")
    events = [NEW_GENERATORS[domain](rng, i, t) for i, t in enumerate(times)]
    for e in events:
        e["eventId"] = prefix + e["eventId"]
    return events


# --- a live server, for real concurrency (the test client serialises requests) -----------

def live_server(database_url: str, settings=None, domains=None):
    """Context manager: the gateway served by uvicorn on a free local port; yields its URL.

    ``settings`` (default: the test database with default limits) and ``domains``
    (default: all) let a test serve a gateway configured its own way."""
    import contextlib
    import socket
    import threading
    import time
    from pathlib import Path

    import uvicorn

    from domains import DOMAINS
    from stats_gateway.config import Settings
    from stats_gateway.http.app import create_app

    @contextlib.contextmanager
    def serve():
        app = create_app(settings or Settings(database_url=database_url,
                                              data_dir=Path("/nonexistent")),
                         DOMAINS if domains is None else domains)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="warning", lifespan="on"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.time() + 30
        while not server.started:
            assert time.time() < deadline and thread.is_alive(), "live server did not start"
            time.sleep(0.05)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(timeout=15)

    return serve()


def in_parallel(calls):
    """Run the callables in threads released together; their results, in order."""
    import threading
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i, fn):
        barrier.wait(timeout=10)
        results[i] = fn()

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


# --- rollup tables, read directly --------------------------------------------------------


def rollup_of(domain, cube: str, grain: str):
    """A domain's rollup by what it holds (its table name is the product's to choose)."""
    from stats_gateway.core.rollups import domain_rollups
    found = [r for r in domain_rollups(domain) if r.cube.name == cube and r.grain == grain]
    assert len(found) == 1, (domain.name, cube, grain, found)
    return found[0]


def histogram_of(domain, cube: str, grain: str):
    """The histogram twin of a domain's rollup, by cube and grain."""
    from stats_gateway.core.histogram_rollups import histogram_rollups
    found = [h for h in histogram_rollups(domain)
             if h.rollup.cube.name == cube and h.rollup.grain == grain]
    assert len(found) == 1, (domain.name, cube, grain, found)
    return found[0]


def _row_key(row) -> tuple:
    return tuple((v is None, str(v)) for v in row)


def rollup_snapshot(db, domain, org_id: str) -> dict[str, list[tuple]]:
    """Every pre-aggregated row of the org in the domain (metric rollups and their sketch
    twins: every table ``rollup_table_names`` lists), per table, in a stable order."""
    from stats_gateway.core.rollups import rollup_table_names
    out = {}
    for table in rollup_table_names(domain):
        rows = db.execute(f"SELECT * FROM {table} WHERE org_id = %s", (org_id,)).fetchall()
        out[table] = sorted(rows, key=_row_key)
    return out


def assert_rollups_equal_a_rebuild(db, domain, org_id: str) -> dict[str, list[tuple]]:
    """What incremental maintenance left is what a recomputation from the raw events gives
    (the rebuild runs in a transaction rolled back afterwards, so the rows compared are
    the maintained ones, not rebuilt ones); returns the snapshot."""
    from stats_gateway.core.rollup_sql import rebuild_rollups

    class _Rollback(Exception):
        pass

    kept = rollup_snapshot(db, domain, org_id)
    assert any(kept.values()), f"no rollup rows at all for {domain.name}: nothing compared"
    try:
        with db.transaction():
            rebuild_rollups(db, domain, org_id)
            rebuilt = rollup_snapshot(db, domain, org_id)
            raise _Rollback
    except _Rollback:
        pass
    for table in kept:
        assert kept[table] == rebuilt[table], \
            f"{table}: maintained rows differ from a rebuild: {_first_row_difference(kept[table], rebuilt[table])}"
    return kept


def _first_row_difference(a: list[tuple], b: list[tuple]) -> str:
    only_a = [r for r in a if r not in b][:3]
    only_b = [r for r in b if r not in a][:3]
    return f"maintained only: {only_a}; rebuilt only: {only_b}"


def corrupting(parts: list[tuple[str, str]]) -> str:
    """A SET clause moving every rollup part far off, whatever its type: numbers +1000,
    times a day later, text and flags changed."""
    sets = []
    for name, kind in parts:
        if kind == "timestamptz":
            sets.append(f'"{name}" = "{name}" + interval \'1 day\'')
        elif kind == "text":
            sets.append(f'"{name}" = COALESCE("{name}", \'\') || \'~corrupt\'')
        elif kind == "boolean":
            sets.append(f'"{name}" = NOT COALESCE("{name}", false)')
        else:
            sets.append(f'"{name}" = COALESCE("{name}", 0) + 1000')
    return ", ".join(sets)


def corrupt_tables(db, domain, org_id: str, tables=None) -> list[str]:
    """Corrupt the org's rows in the domain's pre-aggregated tables (``tables``: a subset
    of ``rollup_table_names``; default all): metric parts moved off (``corrupting``),
    histogram counts multiplied, 50 made-up values added to every distinct sketch. Returns
    the tables touched."""
    from stats_gateway.core.distinct import distinct_rollups, sketch_column
    from stats_gateway.core.histogram_rollups import histogram_rollups
    from stats_gateway.core.rollups import part_types
    from stats_gateway.core.rollups import domain_rollups, rollup_table_names
    wanted = set(rollup_table_names(domain) if tables is None else tables)
    done = []
    for rollup in domain_rollups(domain):
        if rollup.table in wanted:
            db.execute(f"UPDATE {rollup.table} SET {corrupting(part_types(rollup))} "
                       "WHERE org_id = %s", (org_id,))
            done.append(rollup.table)
    for histogram in histogram_rollups(domain):
        if histogram.table in wanted:
            db.execute(f"UPDATE {histogram.table} SET hist_n = hist_n * 1000 + 7 "
                       "WHERE org_id = %s", (org_id,))
            done.append(histogram.table)
    for twin in distinct_rollups(domain):
        if twin.table in wanted:
            bogus = ("(SELECT hll_agg(hll_code('~corrupt-' || g)) "
                     "FROM generate_series(1, 50) AS g)")
            sets = ", ".join(f'"{s}" = hll_union("{s}", {bogus})'
                             for s in map(sketch_column, twin.columns))
            db.execute(f"UPDATE {twin.table} SET {sets} WHERE org_id = %s", (org_id,))
            done.append(twin.table)
    assert sorted(done) == sorted(wanted), sorted(wanted - set(done))
    return done
