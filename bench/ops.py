"""Writing into a dataset, timed: ingest through the API and the bulk ``load``.

* **ingest**: ``POST /v2/ingest/private-chat`` with batches of 1,000 new events (the
  demo's generator, the benchmarked org's users, times in the last day) into the org that
  holds the dataset, one after the other over one keep-alive connection, with a key that
  may ingest. Bodies are encoded before the clock starts; events/s is events over the
  wall time of all batches.
* **load**: ``stats_gateway.bulk.load.load_events`` on a synchronous psycopg connection,
  as ``stats-gateway load`` runs it (``bulk/commands.py``): an NDJSON file (written
  beforehand) read with ``read_records``, validated, COPied, moved into the event table
  and the rollups, committed, then ``ANALYZE`` of the table; timed end to end.
  Once with ``n`` events into a fresh org (events/s), once with 5 events into the
  benchmarked org (seconds: a small load should cost in proportion to its size).

Both are checked afterwards: the private-chat series (30d/1h, which covers the new
events) from the gateway must still equal plain SQL on the raw events.
"""

from __future__ import annotations

import dataclasses
import random
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import msgspec
import psycopg

from bench import data
from bench.timing import percentile
from domains.private_chat import DOMAIN
from stats_gateway.auth import ensure_org
from stats_gateway.bulk.load import analyze_after_load, load_events
from stats_gateway.bulk.sources import read_records
from stats_gateway.demo.generate import private_chat_columns

BATCH = 1000
SMALL_LOAD = 5
FIELD_OF_COLUMN = {f.column: f.name for f in DOMAIN.stored_fields}


def wire_events(dataset: data.Dataset, n: int, prefix: str, now: datetime,
                seed: int) -> list[dict]:
    """``n`` private-chat events of the benchmarked org's world as the API takes them,
    with new event ids, at times spread over the day before ``now``."""
    org = dataclasses.replace(data.MAIN_ORG, users=dataset.users)
    rng = random.Random(f"{seed}:{prefix}")
    first = now.timestamp() - 86_400
    times = sorted(first + rng.random() * 86_000 for _ in range(n))
    events = []
    for offset in range(0, n, data.GEN_ROWS):
        part = times[offset:offset + data.GEN_ROWS]
        columns = private_chat_columns(org, rng, part, now)
        for i, t in enumerate(part):
            event = {"eventId": f"{prefix}-{offset + i:08d}",
                     "ts": datetime.fromtimestamp(t, now.tzinfo).isoformat()}
            for column, values in columns.items():
                if values[i] is not None:
                    event[FIELD_OF_COLUMN[column]] = values[i]
            events.append(event)
    return events


def ingest(gateway, dataset: data.Dataset, batches: int, now: datetime) -> dict:
    """``batches`` batches of ``BATCH`` events, sequentially: events/s and batch latency."""
    events = wire_events(dataset, batches * BATCH, "bench-ingest", now, data.SEED)
    bodies = [msgspec.json.encode({"events": events[i:i + BATCH]})
              for i in range(0, len(events), BATCH)]
    headers = {"Authorization": f"Bearer {dataset.ingest_key}"}
    path = f"/v2/ingest/{DOMAIN.name}"
    gateway.send("GET", "/livez")  # a fresh keep-alive connection
    latencies = []
    started = time.perf_counter()
    for body in bodies:
        mark = time.perf_counter()
        status, answer = gateway.send("POST", path, body, headers)
        latencies.append((time.perf_counter() - mark) * 1000)
        if status != 200:
            raise RuntimeError(f"POST {path}: HTTP {status}: {answer[:500]!r}")
        if msgspec.json.decode(answer).get("inserted") != BATCH:
            raise RuntimeError(f"POST {path}: not every event was inserted: {answer[:300]!r}")
    seconds = time.perf_counter() - started
    return {"events": len(events), "batches": len(bodies), "batch_size": BATCH,
            "seconds": seconds, "events_per_s": len(events) / seconds,
            "batch_p50_ms": percentile(latencies, 0.5), "batch_p90_ms": percentile(latencies, 0.9)}


def _load(url: str, org_id: str, events: list[dict]) -> dict:
    """``events`` through an NDJSON file into ``org_id`` as ``stats-gateway load`` does."""
    with tempfile.TemporaryDirectory(prefix="stats-bench-load-") as folder:
        path = Path(folder) / "events.ndjson"
        encoder = msgspec.json.Encoder()
        with path.open("wb") as out:
            for event in events:
                out.write(encoder.encode(event) + b"\n")
        with psycopg.connect(url, autocommit=True) as conn:
            started = time.perf_counter()
            with path.open("rb") as stream:
                report = load_events(conn, DOMAIN, org_id,
                                     read_records(stream, "ndjson", DOMAIN))
            analyze_after_load(conn, DOMAIN, report.inserted)  # as `stats-gateway load`
            seconds = time.perf_counter() - started
    if report.inserted != len(events) or report.invalid:
        raise RuntimeError(f"load: inserted {report.inserted} of {len(events)} events, "
                           f"{report.invalid} invalid: {report.problems[:3]}")
    return {"events": len(events), "seconds": seconds, "events_per_s": len(events) / seconds}


def load(url: str, dataset: data.Dataset, n: int, now: datetime) -> dict:
    """``n`` events into a fresh org."""
    with psycopg.connect(url, autocommit=True) as conn:
        org_id = ensure_org(conn, "bench-load")
    events = wire_events(dataset, n, "bench-load", now - timedelta(days=1), data.SEED)
    return _load(url, org_id, events)


def small_load(url: str, dataset: data.Dataset, now: datetime) -> dict:
    """``SMALL_LOAD`` events into the benchmarked org, which holds the dataset."""
    events = wire_events(dataset, SMALL_LOAD, "bench-small-load", now, data.SEED)
    return _load(url, dataset.org_id, events)
