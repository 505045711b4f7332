"""``python -m bench.run``: the gateway against plain SQL and DuckDB on the same events.

For each dataset size: load the events (bench.data), put them in DuckDB too (bench.duck),
serve them with the real gateway (bench.gateway); then time every query shape
(bench.queries) every way, check that every way gives the same numbers, measure ingest
and bulk loads (bench.ops) and storage, and print the tables with each target's verdict
(bench.report). A full run (the default sizes) also writes bench/results/latest.json and
the Benchmark block of docs/benchmark.md.

Every way of every dataset and shape is timed in turn, in rounds, so a drift of the
machine during the run (other work, caches) cannot pass for a difference between sizes
or between the gateway and its contenders.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from bench import data, duck, ops, report
from bench.gateway import Gateway, engine_sql
from bench.queries import (
    DUCK, PG, SHAPE_BY_KEY, SHAPES, USERS_OFFSET, Context, Series, Shape,
)
from bench.timing import percentile, timed
from stats_gateway.config import DATABASE_URL_ENV
from stats_gateway.db.connect import connect
from stats_gateway.db.embedded import EmbeddedPostgres

DEFAULT_SIZES = (2_000_000, 10_000_000)
QUICK_SIZES = (200_000, 1_000_000)
ROUNDS = 5  # every way of every (dataset, shape) is timed in this many turns
WARMUP = 20  # untimed gateway requests / engine runs first (or WARMUP_SECONDS' worth)
WARMUP_SECONDS = 2.0
ROUND_BUDGET = {"default": 1.0, "quick": 0.5}  # seconds per way, (dataset, shape) and round
SLOW_ROUNDS = (0, 2, 4)  # a way slower than ROUND_BUDGET runs once in each of these rounds
SLOW_ENGINE_ROUNDS = (2,)  # and the engine SQL diagnostic once
RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
OPS = ("ingest", "load", "storage")
INGEST_BATCHES = {"default": 50, "quick": 10}
LOAD_EVENTS = {"default": 200_000, "quick": 20_000}


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
    with tempfile.TemporaryDirectory(prefix="stats-bench-pg-",
                                     ignore_cleanup_errors=True) as folder:
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


def commit() -> str | None:
    """The code measured: HEAD, and whether the tree had uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, check=True,
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None  # not a git checkout (e.g. a git archive)
    return head + (" with uncommitted changes" if dirty.strip() else "")


def check(shape: Shape, what: str, gateway_answer, exact) -> None:
    found = shape.differences(gateway_answer, exact)
    if found:
        raise Mismatch(f"{shape.label}: {what} differs from the gateway: " + "; ".join(found))


class Contender:
    """One (dataset, shape): the ways to time, each checked against one gateway answer
    whose range the SQL ways reuse."""

    def __init__(self, dataset: data.Dataset, shape: Shape, ctx: Context, gateway: Gateway,
                 pg: psycopg.Connection, ducks, engine_pg: psycopg.Connection):
        self.dataset, self.shape, self.gateway = dataset, shape, gateway
        now = datetime.now(UTC)
        request = shape.request(ctx, now)
        mark = time.perf_counter()
        body = gateway.body(request)
        first = time.perf_counter() - mark  # the first request: a warm-up too
        self.answer = shape.from_body(body)
        if isinstance(shape, Series) and shape.primary:
            column = shape.columns.index(shape.primary)
            total = sum(v[column] for v in self.answer.values.values())
            if body["summary"]["total"] != total:
                raise Mismatch(f"{shape.label}: summary.total {body['summary']['total']} is "
                               f"not the sum of {shape.primary} ({total})")
        start, end = shape.bounds(request, body, now)
        engine = engine_sql(shape, request, dataset.org_id, end)
        values = shape.params(ctx, start, end)
        pg_text, duck_text = shape.sql(PG), shape.sql(DUCK)
        pg_args, duck_args = PG.params(values, pg_text), DUCK.params(values, duck_text)
        self.ways = {
            "gateway": lambda: gateway.ask(request),
            "raw": lambda: pg.execute(pg_text, pg_args).fetchall(),
            "duckdb": lambda: ducks.execute(duck_text, duck_args).fetchall(),
        }
        if engine is not None:
            # with the gateway's connection settings (db/connect.py), not the server's
            self.ways["engine"] = lambda: engine_pg.execute(engine.text,
                                                            engine.params).fetchall()
        self.samples: dict[str, list[float]] = {way: [] for way in self.ways}
        self.estimate: dict[str, float] = {"gateway": first}  # way -> seconds per run

    def warm_up(self) -> None:
        for way in self.ways:
            if way == "gateway" and self.estimate["gateway"] > WARMUP_SECONDS:
                continue  # the first request was warm-up enough
            if way == "engine" and self.estimate["gateway"] > WARMUP_SECONDS:
                self.estimate[way] = self.estimate["gateway"]  # a slow shape: the engine's
                continue  # SQL is a diagnostic, timed once (SLOW_ENGINE_ROUNDS), unwarmed
            runs = WARMUP if way in ("gateway", "engine") else 1
            started = time.perf_counter()
            for done in range(1, runs + 1):
                self.run(way, 0, 1)
                if time.perf_counter() - started > WARMUP_SECONDS:
                    break
            self.estimate[way] = (time.perf_counter() - started) / done

    def run(self, way: str, times: int, warmup: int = 0) -> None:
        if times + warmup == 0:
            return
        samples, result = timed(self.ways[way], times, warmup)
        self.samples[way] += samples
        if way in ("raw", "duckdb"):
            check(self.shape, "raw SQL" if way == "raw" else "DuckDB", self.answer,
                  self.shape.from_rows(result))

    def budgeted(self, way: str, quota: int, number: int, budget: float) -> int:
        """Runs in round ``number``: the quota, or as many as fit in ``budget`` seconds; a
        way slower than that runs once in each of SLOW_ROUNDS (the engine diagnostic:
        once)."""
        samples = self.samples[way]
        seconds = percentile(samples, 0.5) / 1000 if samples else self.estimate[way]
        if seconds > budget:
            return int(number in (SLOW_ENGINE_ROUNDS if way == "engine" else SLOW_ROUNDS))
        return max(1, min(quota, int(budget / max(seconds, 1e-6))))

    def row(self) -> report.Row:
        p50 = {way: percentile(samples, 0.5) for way, samples in self.samples.items()}
        return report.Row(size=self.dataset.size, query=self.shape.key, label=self.shape.label,
                          gateway_p50=p50["gateway"],
                          gateway_p90=percentile(self.samples["gateway"], 0.9),
                          engine_sql_p50=p50.get("engine"), raw_p50=p50["raw"],
                          duckdb_p50=p50["duckdb"],
                          samples={way: len(s) for way, s in self.samples.items()})


def measure(contenders: list[Contender], requests: int, runs: int, budget: float) -> None:
    """Warm every way up, then time them in rounds: each round gives every dataset and
    shape its share of every way (fewer for a slow way: ``budget``, SLOW_ROUNDS),
    so the machine's drift (other work, caches) weighs on all of them alike and the
    ratios compare like with like."""
    for c in contenders:
        c.warm_up()
    log(f"  warmed up {len(contenders)} (dataset, shape) pairs")
    share = {"gateway": requests, "engine": requests // 2, "raw": runs, "duckdb": runs}
    for number in range(ROUNDS):
        started = time.perf_counter()
        for c in contenders:
            for way in c.ways:
                quota = share[way] // ROUNDS + (number < share[way] % ROUNDS)
                times = c.budgeted(way, quota, number, budget)
                if way == "gateway" and times:  # the idle keep-alive connection may have
                    c.gateway.get("/livez")  # closed: reconnecting is no part of a request
                c.run(way, times)
        log(f"  round {number + 1}/{ROUNDS} done in {time.perf_counter() - started:.0f} s")


def check_series(dataset: data.Dataset, gateway: Gateway, pg: psycopg.Connection,
                 ctx: Context, after: str) -> str:
    """The private-chat series 30d/1h from the gateway equals plain SQL (after a write)."""
    shape = SHAPE_BY_KEY["series"]
    now = datetime.now(UTC)
    request = shape.request(ctx, now)
    body = gateway.body(request)
    start, end = shape.bounds(request, body, now)
    text = shape.sql(PG)
    rows = pg.execute(text, PG.params(shape.params(ctx, start, end), text)).fetchall()
    check(shape, f"raw SQL after {after}", shape.from_body(body), shape.from_rows(rows))
    return "yes"


def writes(dataset: data.Dataset, gateway: Gateway, pg: psycopg.Connection,
           ctx: Context, wanted: set[str], quick: bool) -> dict:
    """Ingest and load into the dataset (after the query timing: they change its data)."""
    found: dict = {}
    mode = "quick" if quick else "default"
    if "ingest" in wanted:
        log(f"  {human(dataset.size)}: ingest, {INGEST_BATCHES[mode]} batches of {ops.BATCH} …")
        found["ingest"] = ops.ingest(gateway, dataset, INGEST_BATCHES[mode], datetime.now(UTC))
        log(f"    {found['ingest']['events_per_s']:,.0f} events/s")
        found["exact_after_ingest"] = check_series(dataset, gateway, pg, ctx, "ingest")
    if "load" in wanted:
        log(f"  {human(dataset.size)}: load {LOAD_EVENTS[mode]:,} events into a fresh org, "
            f"{ops.SMALL_LOAD} into the dataset's …")
        found["load"] = ops.load(dataset.url, dataset, LOAD_EVENTS[mode], datetime.now(UTC))
        found["small_load"] = ops.small_load(dataset.url, dataset, datetime.now(UTC))
        log(f"    {found['load']['events_per_s']:,.0f} events/s; small load "
            f"{found['small_load']['seconds']:.2f} s")
        found["exact_after_load"] = check_series(dataset, gateway, pg, ctx, "load")
    return found


def human(size: int) -> str:
    return report.human(size)


def run(sizes: list[int], shapes: list[Shape], wanted_ops: set[str], requests: int, runs: int,
        keep: bool, quick: bool) -> tuple[list[report.Row], dict]:
    started = time.perf_counter()
    now = datetime.now(UTC)
    domains = list(dict.fromkeys(s.domain for s in shapes))
    if wanted_ops and "private-chat" not in domains:
        domains.insert(0, "private-chat")  # ingest and load write private-chat events
    users_offset = min(USERS_OFFSET, data.users_for(sizes[0]) // 2)
    with server() as url:
        context = {"date": now.strftime("%Y-%m-%d %H:%M UTC"), "commit": commit(),
                   "machine": machine(url),
                   "requests": requests, "runs": runs, "shapes": [s.key for s in shapes],
                   "users_offset": users_offset, "datasets": [], "ops": []}
        datasets, ducks, gateways, connections = [], {}, {}, {}
        engine_connections: dict[int, psycopg.Connection] = {}
        try:
            for size in sizes:
                log(f"loading {size:,} events ({', '.join(domains)}) …")
                dataset = data.load(url, size, now, domains)
                datasets.append(dataset)
                log("  " + ", ".join(f"{k} {v:.1f} s" for k, v in dataset.seconds.items())
                    + " (rollups: " + ", ".join(f"{k} {v:.1f} s" for k, v in
                                                dataset.rollup_seconds.items()) + ")")
                tables = [data.DOMAIN_BY_NAME[name].table for name in domains
                          if any(s.domain == name for s in shapes)]
                ducks[size], duck_seconds = duck.load_events(dataset.url, tables,
                                                             os.cpu_count() or 1)
                log("  DuckDB: " + ", ".join(f"{k} {v:.1f} s" for k, v in duck_seconds.items()))
                context["datasets"].append({
                    "size": size, "events": dataset.events, "org_events": dataset.org_events,
                    "users": dataset.users, "load_seconds": dataset.seconds,
                    "rollup_seconds": dataset.rollup_seconds, "duckdb_seconds": duck_seconds})
            contenders = []
            contexts = {}
            for dataset in datasets:
                gateways[dataset.size] = Gateway(dataset.url, dataset.key)
                connections[dataset.size] = psycopg.connect(dataset.url, autocommit=True)
                engine_connections[dataset.size] = connect(dataset.url, autocommit=True)
                contexts[dataset.size] = Context(dataset.org_id, users_offset)
                for shape in shapes:
                    contenders.append(Contender(dataset, shape, contexts[dataset.size],
                                                gateways[dataset.size],
                                                connections[dataset.size], ducks[dataset.size],
                                                engine_connections[dataset.size]))
            rows = []
            if contenders:
                budget = ROUND_BUDGET["quick" if quick else "default"]
                log(f"timing in {ROUNDS} rounds: up to {requests} HTTP requests, "
                    f"{requests // 2} engine SQL runs, {runs} raw SQL and {runs} DuckDB runs "
                    f"per dataset and shape ({budget:g} s per way and round at most; slower "
                    f"ways once in rounds {', '.join(str(n + 1) for n in SLOW_ROUNDS)}) …")
                context["load_average_before"] = os.getloadavg()
                context["round_budget_s"] = budget
                measure(contenders, requests, runs, budget)
                context["load_average_after"] = os.getloadavg()
                log("every answer matched: gateway, raw SQL and DuckDB agree on every dataset")
                rows = [c.row() for c in contenders]
            for dataset in datasets:
                found = {"size": dataset.size, "events": dataset.events}
                found |= writes(dataset, gateways[dataset.size], connections[dataset.size],
                                contexts[dataset.size], wanted_ops, quick)
                if "storage" in wanted_ops:
                    found["storage"] = dataset.storage
                context["ops"].append(found)
        finally:
            for gateway in gateways.values():
                gateway.stop()
            for connection in [*connections.values(), *engine_connections.values(),
                               *ducks.values()]:
                connection.close()
            if not keep:
                for dataset in datasets:
                    data.drop(url, dataset.size)
    context["wall_seconds"] = time.perf_counter() - started
    return rows, context


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", help="comma-separated event counts (default: 2000000,10000000)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 200k and 1M events, fewer requests and runs")
    parser.add_argument("--shapes", help="comma-separated shapes and measurements (default: "
                        "all): " + ", ".join([s.key for s in SHAPES] + list(OPS)))
    parser.add_argument("--requests", type=int,
                        help="HTTP requests per shape and dataset (200; --quick 50)")
    parser.add_argument("--runs", type=int,
                        help="raw SQL / DuckDB runs per shape and dataset (20; --quick 5)")
    parser.add_argument("--keep", action="store_true", help="keep the stats_bench_* databases "
                        "(useful with STATS_GATEWAY_DATABASE_URL: an embedded server is removed)")
    parser.add_argument("--json", type=Path, help="where to write the figures (a full run: "
                        "bench/results/latest.json)")
    parser.add_argument("--no-publish", action="store_true",
                        help="a full run still leaves latest.json and docs/benchmark.md alone")
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
    requests = args.requests or (50 if args.quick else 200)
    runs = args.runs or (5 if args.quick else 20)
    if requests < 2 or runs < 1:
        parser.error("--requests must be at least 2 and --runs at least 1")
    known = [s.key for s in SHAPES] + list(OPS)
    picked = [k.strip() for k in args.shapes.split(",") if k.strip()] if args.shapes else known
    unknown = [k for k in picked if k not in known]
    if unknown or not picked:
        parser.error(f"--shapes: unknown {', '.join(unknown) or '(none given)'}; "
                     f"choose from {', '.join(known)}")
    shapes = [s for s in SHAPES if s.key in picked]
    wanted_ops = {k for k in picked if k in OPS}
    complete = set(picked) == set(known)
    publish = tuple(sizes) == DEFAULT_SIZES and complete and not args.no_publish
    try:
        rows, context = run(sizes, shapes, wanted_ops, requests, runs, args.keep, args.quick)
    except Mismatch as error:
        print(f"MISMATCH: {error}", file=sys.stderr)
        return 1
    found = report.targets(rows, context["ops"])
    if rows:
        print(report.table(rows))
        print()
    print(report.verdicts(found))
    for extra in (report.ops_table(context["ops"]), report.storage_table(context["ops"])):
        if extra:
            print()
            print(extra)
    print()
    print(report.load_table(context["datasets"]))
    print(f"\nwall time {context['wall_seconds'] / 60:.1f} min")
    out = args.json or (RESULTS if publish else None)
    if out:
        report.to_json(out, rows, context)
        print(f"figures written to {out}")
    if publish:
        report.write_readme(rows, context)
        print("docs/benchmark.md Benchmark block updated")
    return 1 if args.strict and not all(t.ok for t in found) else 0


if __name__ == "__main__":
    sys.exit(main())
