"""HTTP helpers and seeded event generators shared by the test modules."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from decimal import Decimal

import httpx
import msgspec

from domains import DOMAINS as REGISTERED
from domains.ai import ai_event  # noqa: F401 - tests import it from here
from domains.sample_events import fmt_ts, random_amount  # noqa: F401 - and these
from expected import parse_ts

_encoder = msgspec.json.Encoder(decimal_format="number")  # Decimal -> exact JSON number
# One client for the tests' plain HTTP requests: ``httpx.get`` builds a client per call,
# and with it an SSL context loading the CA bundle (about 20 ms of CPU; 10 s over the
# suite). No kept-alive connections: servers the tests stop and start must not leave a
# stale one in the pool.
HTTP = httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0))

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


# --- event generators: each domain declares its own (``Samples.event`` in its module) ---

# The five domains the older test modules parametrize over (their expectations live in
# expected.METRICS/DIMENSIONS tables); every other registered domain with sample events,
# a plugged-in one included, is a "newer" domain (test_new_domains and friends).
OLDER = ("storage", "ai", "private-chat", "policies", "credits")
SAMPLE_EVENTS = {d.name: d.samples.event for d in REGISTERED if d.samples is not None}
GENERATORS = {name: SAMPLE_EVENTS[name] for name in OLDER}
DOMAINS = tuple(GENERATORS)


def sample_events(domain, seed: int, times: list[datetime], prefix: str = "") -> list[dict]:
    """Seeded events of a domain (a ``Domain``: its declared sample generator), one per
    time, ids prefixed with ``prefix``."""
    rng = random.Random(f"{domain.name}-{seed}")
    events = [domain.samples.event(rng, i, t) for i, t in enumerate(times)]
    for e in events:
        e["eventId"] = prefix + e["eventId"]
    return events


def generate(domain: str, seed: int, times: list[datetime], prefix: str = "") -> list[dict]:
    return sample_events(_domain(domain), seed, times, prefix)


def _domain(name: str):
    return next(d for d in REGISTERED if d.name == name)


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


NEW_GENERATORS = {name: make for name, make in SAMPLE_EVENTS.items() if name not in OLDER}
NEW_DOMAINS = tuple(NEW_GENERATORS)


def generate_new(domain: str, seed: int, times: list[datetime], prefix: str = "") -> list[dict]:
    """Seeded events of a newer domain, one per time."""
    return sample_events(_domain(domain), seed, times, prefix)


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


def rollup_snapshot(db, domain, org_id: str) -> dict[str, list[tuple]]:
    """Every pre-aggregated row of the org in the domain (metric rollups and their sketch
    twins: every table ``rollup_table_names`` lists), per table, in a stable order."""
    from stats_gateway.core.rollups import rollup_table_names
    out = {}
    for table in rollup_table_names(domain):
        rows = db.execute(f"SELECT * FROM {table} WHERE org_id = %s", (org_id,)).fetchall()
        out[table] = sorted(rows, key=repr)  # any stable order: the lists are compared
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
    a far bin outweighing each histogram, 50 made-up values added to every distinct sketch. Returns
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
            # a far bin holding most of each histogram: every percentile moves (scaling
            # the counts alone leaves a slot of a single bin, or of equal bins, as it was)
            db.execute(f"UPDATE {histogram.table} "
                       "SET hist_bins = hist_bins || (hist_bins[cardinality(hist_bins)] + 40), "
                       "hist_counts = hist_counts || ((SELECT sum(n) * 1000 + 7 "
                       "FROM unnest(hist_counts) AS n)::int8) WHERE org_id = %s", (org_id,))
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
