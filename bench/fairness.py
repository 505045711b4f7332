"""Two tenants, one gateway: does one key's most expensive request slow another key down?

Tenant A repeats the most expensive request the gateway allows (a breakdown by model with
``includeSeries``, 10 entities x 9,990 one-minute buckets: ~100,000 points, ~23 MB of JSON)
from several clients at once, as fast as it is answered. Meanwhile tenant B asks a cheap
series (``/v2/stats/ai?scope=org&window=24h``) over and over, and ``/livez`` is probed.
B's latency is measured alone first (baseline), then under A's load; the target is p99
under 250 ms. A's answers are counted by status (429 = admission refused it).

The gateway runs as ``stats-gateway serve`` in its own process (bench/gateway.py), so the
clients here do not share its interpreter. Against ``STATS_GATEWAY_DATABASE_URL`` when set
(a throwaway database is created and dropped), else an embedded PostgreSQL::

    .venv/bin/python -m bench.fairness [--seconds 20] [--heavy-clients 3] [--check]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import msgspec

from bench.gateway import Gateway
from domains import DOMAINS
from stats_gateway.auth import create_key, ensure_org
from stats_gateway.config import DATABASE_URL_ENV
from stats_gateway.db.connect import connect
from stats_gateway.db.embedded import EmbeddedPostgres
from stats_gateway.db.migrate import migrate
from stats_gateway.db.throwaway import throwaway_database

TARGET_P99_MS = 250.0
MODELS = 10
BUCKETS = 9_990  # one-minute buckets: 10 x 9,990 points, under the 100,000-point cap


@contextmanager
def database():
    """A fresh database URL: on STATS_GATEWAY_DATABASE_URL's server, or embedded."""
    with ExitStack() as stack:
        server = os.environ.get(DATABASE_URL_ENV)
        if not server:
            data = stack.enter_context(tempfile.TemporaryDirectory(prefix="sg-fairness-"))
            embedded = EmbeddedPostgres(Path(data), delete=True)
            stack.callback(embedded.stop)
            server = embedded.uri()
        yield stack.enter_context(throwaway_database(server, "sg_fairness"))


def ai_events(count: int, now: datetime, seed: int) -> list[dict]:
    rng = random.Random(seed)
    span = BUCKETS * 60 - 60
    return [{"eventId": f"e{i}", "model": f"model-{i % MODELS}", "tokensIn": rng.randrange(1000),
             "latencyMs": rng.random() * 900, "conversationId": f"c{rng.randrange(500)}",
             "ts": (now - timedelta(seconds=rng.randrange(span))).isoformat()}
            for i in range(count)]


def ingest(gateway: Gateway, headers: dict, events: list[dict]) -> None:
    for i in range(0, len(events), 10_000):
        body = msgspec.json.encode({"events": events[i:i + 10_000]})
        status, answer = gateway.send("POST", "/v2/ingest/ai", body, headers)
        assert status == 200, answer[:300]


def client(gateway: Gateway, headers: dict) -> Gateway:
    """Another keep-alive connection to the same gateway process, with its own key."""
    other = object.__new__(Gateway)
    other.port, other.headers, other._conn = gateway.port, headers, None
    return other


def timed_loop(conn: Gateway, target: str, stop: threading.Event, out: list,
               statuses: dict) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        status, _ = conn.get(target)
        out.append((time.perf_counter() - started) * 1000)
        statuses[status] = statuses.get(status, 0) + 1


def percentiles(samples: list[float]) -> dict:
    if not samples:
        return {"n": 0}
    ordered = sorted(samples)
    at = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"n": len(ordered), "p50_ms": round(statistics.median(ordered), 1),
            "p99_ms": round(at(0.99), 1), "max_ms": round(ordered[-1], 1)}


def measure(gateway: Gateway, cheap: tuple[Gateway, str], heavy: list[tuple[Gateway, str]],
            seconds: float) -> dict:
    stop = threading.Event()
    cheap_ms, livez_ms, heavy_ms = [], [], []
    cheap_status, livez_status, heavy_status = {}, {}, {}
    threads = [threading.Thread(target=timed_loop, args=(conn, target, stop, heavy_ms,
                                                         heavy_status)) for conn, target in heavy]
    threads.append(threading.Thread(target=timed_loop, args=(*cheap, stop, cheap_ms,
                                                             cheap_status)))
    threads.append(threading.Thread(target=timed_loop, args=(
        client(gateway, {}), "/livez", stop, livez_ms, livez_status)))
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return {"cheap_series": {**percentiles(cheap_ms), "statuses": cheap_status},
            "livez": {**percentiles(livez_ms), "statuses": livez_status},
            "expensive": {**percentiles(heavy_ms), "statuses": heavy_status}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--heavy-clients", type=int, default=3)
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--check", action="store_true",
                        help=f"exit 1 unless the cheap series' p99 stays under {TARGET_P99_MS} ms")
    args = parser.parse_args(argv)
    now = datetime.now(UTC).replace(microsecond=0)
    with database() as url:
        with connect(url, autocommit=True) as conn:
            migrate(conn, tuple(DOMAINS))
            a, b = ensure_org(conn, "tenant-a"), ensure_org(conn, "tenant-b")
            key_a, key_b = create_key(conn, a), create_key(conn, b)
        heads_a = {"Authorization": f"Bearer {key_a}"}
        heads_b = {"Authorization": f"Bearer {key_b}"}
        with Gateway(url, key_a) as gateway:
            ingest(gateway, heads_a, ai_events(args.events, now, 1))
            ingest(gateway, heads_b, ai_events(2_000, now, 2))
            start = (now - timedelta(minutes=BUCKETS - 1)).isoformat().replace("+00:00", "Z")
            expensive = "/v2/stats/ai/breakdown/models?" + urlencode(
                {"scope": "org", "start": start, "timeBucketSize": "1m",
                 "includeSeries": "true", "limit": MODELS})
            status, body = client(gateway, heads_a).get(expensive)
            assert status == 200, body[:300]
            cheap = (client(gateway, heads_b), "/v2/stats/ai?scope=org&window=24h")
            for _ in range(20):  # warm-up
                cheap[0].get(cheap[1])
            alone = measure(gateway, cheap, [], min(args.seconds, 10.0))
            heavy = [(client(gateway, heads_a), expensive) for _ in range(args.heavy_clients)]
            loaded = measure(gateway, cheap, heavy, args.seconds)
    report = {"expensive_request": {"path": expensive, "bytes": len(body),
                                    "points": MODELS * BUCKETS},
              "heavy_clients": args.heavy_clients, "seconds": args.seconds,
              "alone": alone, "under_load": loaded, "target_p99_ms": TARGET_P99_MS,
              "pass": loaded["cheap_series"].get("p99_ms", 1e9) < TARGET_P99_MS}
    print(json.dumps(report, indent=2))
    return 0 if report["pass"] or not args.check else 1


if __name__ == "__main__":
    raise SystemExit(main())
