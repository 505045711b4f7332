"""``python -m bench.run``: the gateway against plain SQL and DuckDB on the same events.

For each dataset size: load the events (bench.data), put them in DuckDB too (bench.duck),
serve them with the real gateway (bench.gateway); then time the two questions
(bench.queries) every way, check that every way gives the same numbers, and print one
table with each target's verdict (bench.report). A full run (the default sizes) also
writes bench/results/latest.json and the README's Benchmark block.

Every way of every dataset and query is timed in turn, in rounds, so a drift of the
machine during the run (other work, caches) cannot pass for a difference between sizes
or between the gateway and its contenders.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from bench import data, duck, report
from bench.gateway import Gateway, engine_sql
from bench.queries import (
    DUCK_BREAKDOWN, DUCK_SERIES, PG_BREAKDOWN, PG_SERIES, QUERIES, Bounds,
    Query, differences, duck_params, from_body, from_rows, pg_params,
)
from bench.timing import percentile, timed
from stats_gateway.config import DATABASE_URL_ENV
from stats_gateway.db.embedded import EmbeddedPostgres

DEFAULT_SIZES = (2_000_000, 10_000_000)
QUICK_SIZES = (200_000, 1_000_000)
ROUNDS = 5  # every way of every (dataset, query) is timed in this many turns
WARMUP = 20
RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
SQL = {"series": (PG_SERIES, DUCK_SERIES), "breakdown": (PG_BREAKDOWN, DUCK_BREAKDOWN)}


class Mismatch(Exception):
    """Two ways of asking the same question gave different numbers."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def server() -> Iterator[str]:
    """STATS_GATEWAY_DATABASE_URL's server, or an embedded one in a temporary folder."""
    url = os.environ.get(DATABASE_URL_ENV)
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="stats-bench-pg-", ignore_cleanup_errors=True) as folder:
        embedded = EmbeddedPostgres(Path(folder), delete=True)
        try:
            yield embedded.uri()
        finally:
            embedded.stop()


def machine(url: str) -> dict:
    with psycopg.connect(url) as conn:
        postgres = conn.execute("SHOW server_version").fetchone()[0]
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    return {"nproc": os.cpu_count(), "cpu": cpu, "postgres": postgres,
            "duckdb": duck.duckdb.__version__, "python": platform.python_version()}


def check(query: Query, what: str, expected, actual) -> None:
    found = differences(query, expected, actual)
    if found:
        raise Mismatch(f"{query.label}: {what} differs from the gateway: " + "; ".join(found))


class Contender:
    """One (dataset, query): the four ways to time, each checked against one gateway
    answer whose bounds the SQL ways reuse."""

    def __init__(self, dataset: data.Dataset, query: Query, gateway: Gateway,
                 pg: psycopg.Connection, ducks):
        self.dataset, self.query, self.gateway = dataset, query, gateway
        body = gateway.body(query)
        self.answer = from_body(query, body)
        if query.key == "series" and body["summary"]["total"] != sum(p[3] for p in self.answer):
            raise Mismatch(f"{query.label}: summary.total is not the sum of requests")
        bounds = Bounds.of(body)
        engine = engine_sql(query, dataset.org_id, bounds.end)
        pg_text, duck_text = SQL[query.key]
        pg_args = pg_params(query, dataset.org_id, bounds)
        duck_args = duck_params(query, dataset.org_id, bounds)
        self.ways = {
            "gateway": lambda: gateway.ask(query),
            "engine": lambda: pg.execute(engine.text, engine.params).fetchall(),
            "raw": lambda: pg.execute(pg_text, pg_args).fetchall(),
            "duckdb": lambda: ducks.execute(duck_text, duck_args).fetchall(),
        }
        self.samples: dict[str, list[float]] = {way: [] for way in self.ways}

    def run(self, way: str, times: int, warmup: int = 0) -> None:
        if times + warmup == 0:
            return
        samples, result = timed(self.ways[way], times, warmup)
        self.samples[way] += samples
        if way in ("raw", "duckdb"):
            check(self.query, "raw SQL" if way == "raw" else "DuckDB", self.answer,
                  from_rows(self.query, result))

    def row(self) -> report.Row:
        p50 = {way: percentile(samples, 0.5) for way, samples in self.samples.items()}
        return report.Row(size=self.dataset.size, query=self.query.key, label=self.query.label,
                          gateway_p50=p50["gateway"],
                          gateway_p90=percentile(self.samples["gateway"], 0.9),
                          engine_sql_p50=p50["engine"], raw_p50=p50["raw"],
                          duckdb_p50=p50["duckdb"])


def measure(contenders: list[Contender], requests: int, runs: int) -> None:
    """Warm every way up, then time them in rounds: each round gives every dataset and
    query its share of every way, so the machine's drift (other work, caches) weighs on
    all of them alike and the ratios compare like with like."""
    for c in contenders:
        for way, warmup in (("gateway", WARMUP), ("engine", WARMUP), ("raw", 1), ("duckdb", 1)):
            c.run(way, 0, warmup)
    share = {"gateway": requests, "engine": requests // 2, "raw": runs, "duckdb": runs}
    for number in range(ROUNDS):
        for c in contenders:
            for way, total in share.items():
                # one untimed call first: the gateway's idle keep-alive connection may
                # have been closed meanwhile, and reconnecting is no part of a request
                c.run(way, total // ROUNDS + (number < total % ROUNDS),
                      warmup=1 if way in ("gateway", "engine") else 0)
        log(f"  round {number + 1}/{ROUNDS} done")


def run(sizes: list[int], requests: int, runs: int, keep: bool) -> tuple[list[report.Row], dict]:
    now = datetime.now(UTC)
    with server() as url:
        context = {"date": now.strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(url),
                   "requests": requests, "runs": runs, "datasets": []}
        datasets, ducks, gateways, connections = [], {}, {}, []
        try:
            for size in sizes:
                log(f"loading {size:,} events …")
                dataset = data.load(url, size, now)
                datasets.append(dataset)
                log("  " + ", ".join(f"{k} {v:.1f} s" for k, v in dataset.seconds.items()))
                ducks[size], duck_seconds = duck.load_events(dataset.url, os.cpu_count() or 1)
                log("  DuckDB: " + ", ".join(f"{k} {v:.1f} s" for k, v in duck_seconds.items()))
                context["datasets"].append({"size": size, "org_events": dataset.org_events,
                                            "load_seconds": dataset.seconds,
                                            "duckdb_seconds": duck_seconds})
            contenders = []
            for dataset in datasets:
                gateways[dataset.size] = Gateway(dataset.url, dataset.key)
                connections.append(psycopg.connect(dataset.url, autocommit=True))
                contenders += [Contender(dataset, query, gateways[dataset.size],
                                         connections[-1], ducks[dataset.size])
                               for query in QUERIES]
            log(f"timing in {ROUNDS} rounds: {requests} HTTP requests, {requests // 2} engine "
                f"SQL runs, {runs} raw SQL and {runs} DuckDB runs per dataset and query …")
            context["load_average_before"] = os.getloadavg()
            measure(contenders, requests, runs)
            context["load_average_after"] = os.getloadavg()
            log("every answer matched: gateway, raw SQL and DuckDB agree on every dataset")
            rows = [c.row() for c in contenders]
        finally:
            for gateway in gateways.values():
                gateway.stop()
            for connection in [*connections, *ducks.values()]:
                connection.close()
            if not keep:
                for dataset in datasets:
                    data.drop(url, dataset.size)
    return rows, context


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", help="comma-separated event counts (default: 2000000,10000000)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 200k and 1M events")
    parser.add_argument("--requests", type=int, default=200, help="HTTP requests per query (200)")
    parser.add_argument("--runs", type=int, default=20, help="raw SQL / DuckDB runs per query (20)")
    parser.add_argument("--keep", action="store_true", help="keep the stats_bench_* databases "
                        "(useful with STATS_GATEWAY_DATABASE_URL: an embedded server is removed)")
    parser.add_argument("--json", type=Path, help="where to write the figures (a full run: "
                        "bench/results/latest.json)")
    parser.add_argument("--no-publish", action="store_true",
                        help="a full run still leaves latest.json and README alone")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if duck.duckdb is None:
        print("DuckDB is missing: .venv/bin/pip install -e '.[bench]'", file=sys.stderr)
        return 2
    try:
        sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",")} if args.sizes
                       else set(QUICK_SIZES if args.quick else DEFAULT_SIZES))
    except ValueError:
        parser.error("--sizes takes comma-separated whole numbers, e.g. 2000000,10000000")
    if sizes[0] < 1000:
        parser.error("--sizes: at least 1000 events per dataset")
    if args.requests < 2 or args.runs < 1:
        parser.error("--requests must be at least 2 and --runs at least 1")
    publish = tuple(sizes) == DEFAULT_SIZES and not args.no_publish
    try:
        rows, context = run(sizes, args.requests, args.runs, args.keep)
    except Mismatch as error:
        print(f"MISMATCH: {error}", file=sys.stderr)
        return 1
    print(report.table(rows))
    found = report.targets(rows)
    print()
    print(report.verdicts(found))
    print()
    print(report.load_table(context["datasets"]))
    out = args.json or (RESULTS if publish else None)
    if out:
        report.to_json(out, rows, context)
        print(f"figures written to {out}")
    if publish:
        report.write_readme(rows, context)
        print("README Benchmark block updated")
    return 1 if args.strict and not all(t.ok for t in found) else 0


if __name__ == "__main__":
    sys.exit(main())
