"""``stats-gateway load`` and ``rebuild``: COPY loading, atomicity, idempotency, rollups.

Each test loads files it generates into a fresh org, through the bulk module's functions
on a connection of its own (``main()`` once, in-process), and reads the result back over
HTTP. Expected values are computed here from the generated events with plain loops; the
engine answers aligned queries from rollups, so a match proves the load kept them up to
date (each chunk's statement merges the rows it inserts; nothing is rebuilt), and the same
query with the engine forced to raw events must give the very same body. Rollup rows a
load leaves are compared with a recomputation from the raw events.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
import sys
import time
import tracemalloc
from collections import defaultdict
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import psycopg
import pytest

from support import (
    assert_rollups_equal_a_rebuild, encode, generate, generate_new, live_server, loads,
    random_times,
)
from domains import DOMAINS
from stats_gateway.bulk import LoadRejected, load_events, read_records, rebuild
from stats_gateway.bulk import rollups as bulk_rollups
from stats_gateway.cli import main
from stats_gateway.core import rollup_sql
from stats_gateway.core.rollups import domain_rollups, rollup_table_names
from stats_gateway.progress import Progress

STORAGE = next(d for d in DOMAINS if d.name == "storage")
CALLS = next(d for d in DOMAINS if d.name == "calls")
CHAT = next(d for d in DOMAINS if d.name == "private-chat")
NOW = datetime.now(UTC).replace(microsecond=0)
START = (NOW - timedelta(days=6)).replace(hour=0, minute=0, second=0)  # a UTC midnight
END = NOW.replace(minute=0, second=0)  # an hour boundary: every 1h bucket is whole
KOLKATA = timezone(timedelta(hours=5, minutes=30))
REPOS = {"w1": ["r1", "r2"], "w2": ["r3"], "w3": []}
STORAGE_METRICS = ("requests", "uplBytes", "dwlBytes", "sizeChange")


# --- generating files -------------------------------------------------------------------


def storage_events(n: int, seed: int, prefix: str = "e") -> list[dict]:
    """Events inside [START, END), ts in three spellings, some names, some latencies."""
    rng = random.Random(seed)
    span = int((END - START).total_seconds())
    events = []
    for i in range(n):
        t = START + timedelta(seconds=rng.randrange(span), microseconds=rng.randrange(10**6))
        ts = [t.isoformat().replace("+00:00", "Z"), t.astimezone(KOLKATA).isoformat(),
              int(t.timestamp())][i % 3]
        e = {"eventId": f"{prefix}{i}", "ts": ts, "uplBytes": rng.randrange(10**10),
             "sizeChange": rng.randrange(-10**6, 10**6)}
        if rng.random() < 0.8:
            e["dwlBytes"] = rng.randrange(10**9)
        if rng.random() < 0.7:
            e["latencyMs"] = Decimal(rng.randrange(1, 900_000)) / 1000
        ws = rng.choice([None, "w1", "w2", "w3"])
        if ws:
            e["workspaceId"] = ws
            if rng.random() < 0.3:
                e["workspaceName"] = f"Workspace {ws} #{i}"
            if REPOS[ws] and rng.random() < 0.6:
                e["repoId"] = rng.choice(REPOS[ws])
        if rng.random() < 0.5:
            e["bucketId"] = rng.choice(["b1", "b2"])
        events.append(e)
    return events


def write_ndjson(path, events: list[dict]) -> None:
    with open(path, "w") as f:
        for e in events:
            f.write(json.dumps(e, default=_exact) + "\n")


def _exact(value):
    if isinstance(value, Decimal):
        return float(value)  # the file holds e.g. 123.456, read back exactly as Decimal
    raise TypeError(value)


def write_csv(path, events: list[dict]) -> None:
    columns = sorted({k for e in events for k in e})
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for e in events:
            writer.writerow([_cell(e.get(c)) for c in columns])


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return json.dumps(value)
    return str(value)


def load_file(database_url, domain, org_id, path, fmt="ndjson", **options):
    with psycopg.connect(database_url, autocommit=True) as conn, open(path, "rb") as f:
        return load_events(conn, domain, org_id, read_records(f, fmt, domain), **options)


# --- expected values, computed here -----------------------------------------------------


def ts_of(e: dict) -> datetime:
    value = e["ts"]
    if isinstance(value, int):
        return datetime.fromtimestamp(value, UTC)
    return datetime.fromisoformat(value).astimezone(UTC)


def expected_hours(events: list[dict]) -> list[dict]:
    """Per hour in [START, END): the exact metrics and the mean latency (None if none)."""
    hours = int((END - START).total_seconds()) // 3600
    sums = [defaultdict(int) for _ in range(hours)]
    latencies: list[list[float]] = [[] for _ in range(hours)]
    for e in events:
        i = int((ts_of(e) - START).total_seconds()) // 3600
        sums[i]["requests"] += 1
        for m in STORAGE_METRICS[1:]:
            sums[i][m] += e.get(m, 0)
        if "latencyMs" in e:
            latencies[i].append(float(e["latencyMs"]))
    return [{"ts": int((START + timedelta(hours=i)).timestamp()),
             **{m: sums[i][m] for m in STORAGE_METRICS},
             "latencyMs": math.fsum(latencies[i]) / len(latencies[i]) if latencies[i] else None}
            for i in range(hours)]


def newest_names(events: list[dict]) -> dict[str, str]:
    best: dict[str, tuple[datetime, str]] = {}
    for e in events:
        if "workspaceName" in e and (e["workspaceId"] not in best
                                     or ts_of(e) >= best[e["workspaceId"]][0]):
            best[e["workspaceId"]] = (ts_of(e), e["workspaceName"])
    return {ws: name for ws, (_, name) in best.items()}


# --- reading back over HTTP ----------------------------------------------------------------


def series(client, org, raw: bool = False) -> dict:
    params = {"scope": "org", "start": int(START.timestamp()), "end": int(END.timestamp()),
              "timeBucketSize": "1h"}
    engine = client.app.state.engine
    engine.use_rollups = not raw
    try:
        r = client.get("/v2/stats/storage", params=params, headers=org.headers)
    finally:
        engine.use_rollups = True
    assert r.status_code == 200, r.text
    return loads(r.text)


def workspace_names(client, org) -> dict[str, str | None]:
    params = {"scope": "org", "start": int(START.timestamp()), "end": int(END.timestamp())}
    r = client.get("/v2/stats/storage/breakdown/workspaces", params=params,
                   headers=org.headers)
    assert r.status_code == 200, r.text
    return {e["entityId"]: e["entityName"] for e in loads(r.text)["entities"]}


def assert_series_matches(body: dict, events: list[dict]) -> None:
    expected = expected_hours(events)
    got = body["series"]
    assert [p["ts"] for p in got] == [p["ts"] for p in expected]
    for point, want in zip(got, expected):
        assert {m: point[m] for m in STORAGE_METRICS} == {m: want[m] for m in STORAGE_METRICS}, \
            point["ts"]
        if want["latencyMs"] is None:
            assert point["latencyMs"] is None, point["ts"]
        else:
            assert math.isclose(point["latencyMs"], want["latencyMs"], rel_tol=1e-9), point
    assert body["summary"]["total"] == len(events)


def stored_rows(db, org_id: str) -> tuple[int, int, int]:
    """(events, catalogue entries, rollup rows) of the org."""
    events = db.execute("SELECT count(*) FROM events_storage WHERE org_id = %s",
                        (org_id,)).fetchone()[0]
    entities = db.execute("SELECT count(*) FROM entities WHERE org_id = %s",
                          (org_id,)).fetchone()[0]
    rollup_rows = sum(db.execute(f"SELECT count(*) FROM {table} WHERE org_id = %s",
                                 (org_id,)).fetchone()[0]
                      for table in rollup_table_names(STORAGE))
    return events, entities, rollup_rows


# --- tests -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def events() -> list[dict]:
    return storage_events(3_000, seed=11)


def test_ndjson_load_answers_like_the_events_from_rollups_and_raw(
        client, db, new_org, database_url, tmp_path, events):
    org = new_org()
    path = tmp_path / "events.ndjson"
    write_ndjson(path, events)
    report = load_file(database_url, STORAGE, org.id, path)
    assert (report.read, report.inserted, report.duplicates, report.invalid) == \
        (len(events), len(events), 0, 0)
    from_rollups, from_raw = series(client, org), series(client, org, raw=True)
    assert_series_matches(from_rollups, events)
    assert from_rollups == from_raw
    names = workspace_names(client, org)
    assert {ws: name for ws, name in names.items() if name} == newest_names(events)

    again = load_file(database_url, STORAGE, org.id, path)  # the same file once more
    assert (again.read, again.inserted, again.duplicates) == (len(events), 0, len(events))
    assert series(client, org) == from_rollups
    assert stored_rows(db, org.id)[0] == len(events)


def test_csv_load_gives_the_same_answers(client, new_org, database_url, tmp_path, events):
    org = new_org()
    path = tmp_path / "events.csv"
    write_csv(path, events)
    report = load_file(database_url, STORAGE, org.id, path, fmt="csv")
    assert (report.read, report.inserted, report.invalid) == (len(events), len(events), 0)
    body = series(client, org)
    assert_series_matches(body, events)
    assert body == series(client, org, raw=True)


def test_csv_booleans_lists_and_defaults(client, db, new_org, database_url, tmp_path):
    org = new_org()
    rng = random.Random(5)
    calls = []
    for i in range(300):
        e = {"eventId": f"c{i}", "ts": int((START + timedelta(minutes=17 * i)).timestamp()),
             "projectId": "p1", "callId": f"call{i}", "opName": rng.choice(["a", "b"])}
        if i % 3:
            e["error"] = rng.random() < 0.4  # absent: the default, false
        if i % 4 == 0:
            e["inputRefs"] = [f"ref{j}" for j in range(rng.randrange(3))]
        calls.append(e)
    path = tmp_path / "calls.csv"
    write_csv(path, calls)
    report = load_file(database_url, CALLS, org.id, path, fmt="csv")
    assert (report.inserted, report.invalid) == (len(calls), 0)
    r = client.get("/v2/stats/calls", headers=org.headers, params={
        "scope": "org", "start": int(START.timestamp()), "end": int(END.timestamp()),
        "timeBucketSize": "1d"})
    assert r.status_code == 200, r.text
    series_ = r.json()["series"]
    assert sum(p["callCount"] for p in series_) == len(calls)
    assert sum(p["errorCount"] for p in series_) == sum(1 for e in calls if e.get("error"))
    stored = dict(db.execute("SELECT event_id, input_refs FROM events_calls WHERE org_id = %s",
                             (org.id,)).fetchall())
    assert stored == {e["eventId"]: e.get("inputRefs") for e in calls}


def test_an_invalid_line_writes_nothing_and_names_line_and_field(
        client, db, new_org, database_url, tmp_path, events):
    org = new_org()
    lines = [json.dumps(e, default=_exact) for e in events[:40]]
    lines[6] = lines[6].replace('"uplBytes": ', '"uplBytes": -')  # line 7
    lines[8] = lines[8][:-1]  # line 9: cut short
    lines[11] = lines[11].replace('"eventId"', '"evntId"')  # line 12: misspelt
    lines.insert(20, "")  # a blank line (21) is skipped, later lines keep their numbers
    path = tmp_path / "bad.ndjson"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(LoadRejected) as caught:
        load_file(database_url, STORAGE, org.id, path)
    report = caught.value.report
    shown = {(p.line, p.field) for p in report.problems}
    assert {(7, "uplBytes"), (9, ""), (12, "evntId"), (12, "eventId")} <= shown
    assert {p.line for p in report.problems} == {7, 9, 12}
    assert (report.read, report.invalid) == (40, 3)
    assert stored_rows(db, org.id) == (0, 0, 0)
    assert series(client, org)["summary"]["total"] == 0

    skipped = load_file(database_url, STORAGE, org.id, path, skip_invalid=True)
    assert (skipped.read, skipped.invalid, skipped.inserted) == (40, 3, 37)
    kept = [e for i, e in enumerate(events[:40]) if i not in (6, 8, 11)]
    assert_series_matches(series(client, org), kept)


def test_a_repo_moved_to_another_workspace_is_refused_with_its_line(
        db, new_org, database_url, tmp_path, events):
    org = new_org()
    base = {"ts": events[0]["ts"], "uplBytes": 1}
    moving = [{**base, "eventId": "m1", "workspaceId": "w1", "repoId": "rx"},
              {**base, "eventId": "m2", "workspaceId": "w1", "repoId": "rx"},
              {**base, "eventId": "m3", "workspaceId": "w2", "repoId": "rx"}]
    path = tmp_path / "moves.ndjson"
    write_ndjson(path, moving)
    with pytest.raises(LoadRejected) as caught:
        load_file(database_url, STORAGE, org.id, path)
    assert [(p.line, p.field) for p in caught.value.report.problems] == [(3, "workspaceId")]
    assert stored_rows(db, org.id) == (0, 0, 0)
    report = load_file(database_url, STORAGE, org.id, path, skip_invalid=True)
    assert (report.inserted, report.invalid) == (2, 1)
    assert db.execute("SELECT parent_id FROM entities WHERE org_id = %s AND kind = 'repo'",
                      (org.id,)).fetchall() == [("w1",)]


def test_rebuild_restores_rollup_rows_deleted_by_hand(
        client, db, new_org, database_url, tmp_path, events):
    org = new_org()
    path = tmp_path / "events.ndjson"
    write_ndjson(path, events[:800])
    load_file(database_url, STORAGE, org.id, path)
    before = series(client, org)
    for rollup in domain_rollups(STORAGE):
        db.execute(f"DELETE FROM {rollup.table} WHERE org_id = %s", (org.id,))
    assert series(client, org)["summary"]["total"] == 0  # the answer came from rollups
    with psycopg.connect(database_url, autocommit=True) as conn:
        done = rebuild(conn, [STORAGE], org.id)
    assert [d.domain for d in done] == ["storage"] and done[0].tables >= 3
    assert series(client, org) == before
    with psycopg.connect(database_url, autocommit=True) as conn:
        rebuild(conn, [STORAGE])  # every org
    assert series(client, org) == before
    assert_series_matches(before, events[:800])


def test_a_load_merges_what_it_inserts_and_rebuilds_nothing(
        client, db, new_org, database_url, tmp_path, events, monkeypatch):
    """No rebuild runs during a load (any call fails the test); the rollup rows the chunks
    merged, chunk after chunk into the same slots, equal a recomputation from the events."""
    org = new_org()
    path = tmp_path / "events.ndjson"
    write_ndjson(path, events[:1200])
    calls = []

    def refuse(*args, **kw):
        calls.append(args)
        raise AssertionError("load must not rebuild rollups")

    monkeypatch.setattr(bulk_rollups, "rebuild_rollups", refuse)
    monkeypatch.setattr(rollup_sql, "rebuild_rollups", refuse)
    report = load_file(database_url, STORAGE, org.id, path, chunk_rows=100)
    assert calls == [] and report.inserted == 1200
    assert not hasattr(report, "rollup_tables") and not hasattr(report, "rebuild_seconds")
    monkeypatch.undo()
    assert_rollups_equal_a_rebuild(db, STORAGE, org.id)
    body = series(client, org)
    assert_series_matches(body, events[:1200])
    assert body == series(client, org, raw=True)


def test_a_rebuild_attempt_that_collides_is_retried(
        client, db, new_org, database_url, tmp_path, events, monkeypatch):
    """``rebuild``: a real duplicate-key error in the first attempt (as a concurrent ingest
    would cause) is rolled back to its savepoint and the rebuild runs again."""
    org = new_org()
    path = tmp_path / "events.ndjson"
    write_ndjson(path, events[:300])
    load_file(database_url, STORAGE, org.id, path)
    calls = []
    real = bulk_rollups.rebuild_rollups

    def colliding(conn, domain, org_id=None):
        calls.append(org_id)
        tables = real(conn, domain, org_id)
        if len(calls) == 1:
            table = domain_rollups(domain)[0].table
            conn.execute(f"INSERT INTO {table} SELECT * FROM {table} WHERE org_id = %s "
                         "LIMIT 1", (org_id,))
        return tables

    monkeypatch.setattr(bulk_rollups, "rebuild_rollups", colliding)
    with psycopg.connect(database_url, autocommit=True) as conn:
        done = rebuild(conn, [STORAGE], org.id)
    assert calls == [org.id, org.id] and [d.domain for d in done] == ["storage"]
    assert_series_matches(series(client, org), events[:300])
    monkeypatch.undo()
    assert_rollups_equal_a_rebuild(db, STORAGE, org.id)


def write_chat_file(path, n: int) -> None:
    """``n`` small private-chat events (a domain with few rollup tables), written fast."""
    rng = random.Random(3)
    span, base = int((END - START).total_seconds()), int(START.timestamp())
    with open(path, "w") as f:
        for i in range(n):
            f.write(f'{{"eventId":"big{i}","ts":{base + rng.randrange(span)},'
                    f'"model":"m{i % 3}","userId":"u{i % 7}","tokensIn":{i}}}\n')


def test_memory_does_not_grow_with_the_file(new_org, database_url, tmp_path):
    """The traced peak of a file four times longer stays that of one chunk."""
    peaks = []
    for n in (4_000, 16_000):
        path = tmp_path / f"chat{n}.ndjson"
        write_chat_file(path, n)
        tracemalloc.start()
        try:
            report = load_file(database_url, CHAT, new_org().id, path, chunk_rows=1_000)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert report.inserted == n
    assert peaks[1] < 1.5 * peaks[0], [f"{p / 2**20:.1f} MiB" for p in peaks]


def test_a_large_file_loads_in_reasonable_time(db, new_org, database_url, tmp_path):
    org = new_org()
    n = 150_000
    path = tmp_path / "large.ndjson"
    write_chat_file(path, n)
    started = time.perf_counter()
    report = load_file(database_url, CHAT, org.id, path)
    seconds = time.perf_counter() - started
    print(f"\nbulk load: {n:,} private-chat events in {seconds:.1f} s, "
          f"{n / seconds:,.0f} events/s")
    assert (report.read, report.inserted) == (n, n)
    total = db.execute("SELECT count(*), sum(tokens_in) FROM events_private_chat "
                       "WHERE org_id = %s", (org.id,)).fetchone()
    assert total == (n, n * (n - 1) // 2)


def test_cli_load_and_rebuild(client, new_org, database_url, tmp_path, monkeypatch, capsys,
                              events):
    monkeypatch.setenv("STATS_GATEWAY_DATABASE_URL", database_url)
    org = new_org()
    path = tmp_path / "events.ndjson"
    write_ndjson(path, events[:500])
    assert main(["load", "storage", str(path), "--org", org.id]) == 0
    out = capsys.readouterr().out
    assert "read 500 events, inserted 500, duplicates 0" in out, out
    assert_series_matches(series(client, org), events[:500])

    assert main(["load", "storage", str(path), "--org", "no such org"]) == 2
    assert "no org has the id or name" in capsys.readouterr().err

    bad = tmp_path / "bad.ndjson"
    bad.write_text(path.read_text().replace('"uplBytes": ', '"uplBytes": -', 1))
    assert main(["load", "storage", str(bad), "--org", org.id]) == 1
    err = capsys.readouterr().err
    assert "line 1: uplBytes: must be at least 0" in err and "nothing was written" in err, err

    assert main(["load", "storage", str(tmp_path / "missing.ndjson"), "--org", org.id]) == 2
    assert "No such file" in capsys.readouterr().err

    more = events[500:600]  # from stdin, one of them invalid, skipped
    text = "\n".join(json.dumps(e, default=_exact) for e in more)
    text = text.replace(f'"eventId": "{more[3]["eventId"]}"', '"eventId": ""')
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    assert main(["load", "storage", "-", "--org", org.id, "--skip-invalid"]) == 0
    captured = capsys.readouterr()
    assert "read 100 events, inserted 99, duplicates 0, skipped 1 invalid" in captured.out
    assert "line 4: eventId: required string" in captured.err, captured.err

    assert main(["rebuild", "--domain", "storage", "--org", org.id]) == 0
    assert "rebuilt storage" in capsys.readouterr().out
    assert_series_matches(series(client, org), events[:503] + events[504:600])


def test_csv_header_with_an_unknown_column_is_refused_once(new_org, database_url, tmp_path):
    org = new_org()
    path = tmp_path / "typo.csv"
    path.write_text("eventId,ts,uplBytez\ne1,1700000000,5\n")
    from stats_gateway.bulk.sources import SourceError
    with pytest.raises(SourceError, match="uplBytez"):
        load_file(database_url, STORAGE, org.id, path, fmt="csv")


def test_progress_without_a_total_counts_and_rates():
    out = io.StringIO()
    bar = Progress(None, out)
    bar.advance(1234)
    bar.finish()
    assert "1,234 events" in out.getvalue() and "ev/s" in out.getvalue()


# --- loads next to existing data and concurrent ingest -----------------------------------


def domain_events(name: str, seed, times, prefix: str) -> list[dict]:
    """Seeded events of any domain, documented defaults filled in for the reference."""
    from expected import with_defaults
    from support import GENERATORS, NEW_GENERATORS
    if name in GENERATORS:
        return generate(name, seed, times, prefix=prefix)
    assert name in NEW_GENERATORS, name
    return with_defaults(name, generate_new(name, seed, times, prefix=prefix))


def write_events(path, events: list[dict]) -> None:
    with open(path, "wb") as f:
        for e in events:
            f.write(encode(e) + b"\n")


def both_ways(client, org, path: str, params: dict) -> dict:
    """The body with rollups and without; they must be byte-identical."""
    engine = client.app.state.engine
    try:
        on = client.get(path, params=params, headers=org.headers)
        engine.use_rollups = False
        off = client.get(path, params=params, headers=org.headers)
    finally:
        engine.use_rollups = True
    assert on.status_code == off.status_code == 200, (on.text[:300], off.text[:300])
    assert on.text == off.text, f"rollups disagree with raw events: {path} {params}"
    return loads(on.text)


@pytest.mark.parametrize("name", ["storage", "calls", "private-chat", "runs", "workflow-cu"])
def test_a_load_into_an_org_with_data_leaves_rollups_equal_to_a_rebuild(
        client, db, new_org, database_url, tmp_path, name):
    """The org already holds events (API ingest) in the very slots the file fills, over 75
    days (1d and 30-day slots of the high-cardinality cubes too); the file repeats 200 of
    them (moved three days earlier: counted, they would show) and adds new ones, in chunks.
    Every rollup row equals a recomputation; answers equal raw events and the reference."""
    from support import check_series, ingest
    domain = next(d for d in DOMAINS if d.name == name)
    org = new_org()
    first, last = (START - timedelta(days=70)).replace(hour=0), START
    times = random_times(f"load-into-{name}", first + timedelta(days=3), last, 900)
    events = domain_events(name, 41, times, prefix="li-")
    ingest(client, org, name, events[:500])
    moved = [{**e, "ts": (ts_of(e) - timedelta(days=3)).isoformat()} for e in events[300:500]]
    rest = events[500:]
    file_events = moved + rest
    random.Random(name).shuffle(file_events)
    path = tmp_path / f"{name}.ndjson"
    write_events(path, file_events)
    report = load_file(database_url, domain, org.id, path, chunk_rows=97)
    assert (report.inserted, report.duplicates, report.invalid) == (len(rest), len(moved), 0)
    assert_rollups_equal_a_rebuild(db, domain, org.id)
    params = {"scope": "org", "start": int(first.timestamp()), "end": int(last.timestamp()),
              "timeBucketSize": "1d"}
    body = both_ways(client, org, f"/v2/stats/{name}", params)
    check_series(body, name, "", events, first, last, "1d", scope_id=org.id)
    for dim in domain.dimensions:
        both_ways(client, org, f"/v2/stats/{name}/breakdown/{dim.by}",
                  {**params, "start": params["start"] + 3600 * 5 + 17, "offset": "1"})


def test_concurrent_ingest_and_load_into_one_org_leave_rollups_equal_to_a_rebuild(
        client, db, new_org, database_url, tmp_path):
    """API ingest goes on while a load runs (chunks of 100, one transaction) into the same
    org and the same slots, ids overlapping between the file and the batches: the load
    succeeds, every batch is answered 200 (a batch may wait for the load, as it waits for
    another batch), every id is stored once, and the rollups equal a recomputation."""
    import threading

    import httpx

    org = new_org()
    events = storage_events(7_000, seed=23, prefix="cl")
    file_events, api_events = events[:4_500], events[3_500:]  # 1,000 ids in both
    path = tmp_path / "concurrent.ndjson"
    write_ndjson(path, file_events)
    outcome: dict = {}
    answers: list = []
    started = threading.Event()

    def loader():
        started.set()
        try:
            outcome["report"] = load_file(database_url, STORAGE, org.id, path, chunk_rows=100)
        except Exception as exc:  # reported below, with the batches' answers
            outcome["report"] = exc

    with live_server(database_url) as base:
        def poster(first: int, threads: int):
            started.wait(10)
            with httpx.Client(base_url=base, timeout=120) as http:
                for i in range(first * 50, len(api_events), 50 * threads):
                    batch = api_events[i:i + 50]
                    answers.append((batch, http.post(
                        "/v2/ingest/storage", content=encode({"events": batch}),
                        headers={**org.headers, "Content-Type": "application/json"})))

        threads = [threading.Thread(target=loader)]
        threads += [threading.Thread(target=poster, args=(k, 4)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
    report = outcome["report"]
    refused = [(r.status_code, r.text[:200]) for _, r in answers if r.status_code != 200]
    assert not isinstance(report, Exception) and not refused, \
        f"load: {report!r}; batches refused: {len(refused)} of {len(answers)}: {refused[:3]}"
    assert sum(len(b) for b, _ in answers) == len(api_events)
    union = {e["eventId"]: e for e in [*file_events, *api_events]}
    inserted = report.inserted + sum(r.json()["inserted"] for _, r in answers)
    assert inserted == len(union)
    (stored,) = db.execute("SELECT count(*) FROM events_storage WHERE org_id = %s",
                           (org.id,)).fetchone()
    assert stored == len(union)
    assert_rollups_equal_a_rebuild(db, STORAGE, org.id)
    body = series(client, org)
    assert_series_matches(body, list(union.values()))
    assert body == series(client, org, raw=True)


def test_a_load_analyzes_the_event_table_only_when_it_changed_it_noticeably(db, client):
    """autovacuum's rule (50 rows plus 10% of the table): a 5-event load into a big org
    does not pay for sampling every partition."""
    from stats_gateway.bulk.load import analyze_after_load
    storage = next(d for d in DOMAINS if d.name == "storage")
    db.execute("ANALYZE events_storage")  # row estimates exact for a table this small
    (count,) = db.execute("SELECT count(*) FROM events_storage").fetchone()
    threshold = 50 + count / 10
    assert analyze_after_load(db, storage, math.ceil(threshold) - 1) is False
    assert analyze_after_load(db, storage, math.ceil(threshold)) is True
