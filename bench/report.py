"""Targets, the printed tables, the JSON file and the Benchmark block of docs/benchmark.md.

A target is a ratio, a latency or a rate measured in this run, compared with its limit:
the performance claims live here, measured side by side, never in timed tests.
"""

from __future__ import annotations

import json
import math
import re
import textwrap
from dataclasses import asdict, dataclass
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "docs" / "benchmark.md"  # its Benchmark block (the name is historical)
BEGIN = "<!-- bench:begin (written by python -m bench.run) -->"
END = "<!-- bench:end -->"

# every query shape; the two shapes of the first benchmark keep their stricter limits
OVER_RAW, OVER_DUCKDB, SCALING = 0.10, 0.5, 1.3
OVER_RAW_BY_SHAPE = {"models": 0.05}
ABSOLUTE_MS = {"series": 10.0, "models": 15.0}  # gateway p50 on 2 cores
INGEST_MIN = 25_000  # events/s through POST /v2/ingest, batches of 1,000
LOAD_MIN = 100_000  # events/s of a bulk load into a fresh org
SMALL_LOAD_MAX = 1.0  # seconds for a 5-event load into the org holding the dataset
STORAGE_MAX = 2.0  # rollup tables / raw event table, per domain
WIDTH = 90  # the docs' line length


@dataclass
class Row:
    """One query shape on one dataset; times in ms (p50 unless named)."""

    size: int
    query: str  # shape key
    label: str
    gateway_p50: float
    gateway_p90: float
    engine_sql_p50: float | None  # the engine's SQL run directly; None: not one statement
    raw_p50: float
    duckdb_p50: float
    samples: dict  # way -> timed runs

    @property
    def over_raw(self) -> float:
        return self.gateway_p50 / self.raw_p50

    @property
    def over_duckdb(self) -> float:
        return self.gateway_p50 / self.duckdb_p50


@dataclass
class Target:
    name: str
    value: float
    limit: float
    at_least: bool = False  # a floor (rates) rather than a ceiling

    @property
    def ok(self) -> bool:
        return self.value >= self.limit if self.at_least else self.value <= self.limit

    @property
    def verdict(self) -> str:
        return "PASS" if self.ok else "MISS"

    @property
    def bound(self) -> str:
        return f"{'≥' if self.at_least else '≤'} {self.limit:g}"


def over_raw_limit(row: Row) -> float:
    return OVER_RAW_BY_SHAPE.get(row.query, OVER_RAW)


def targets(rows: list[Row], ops: list[dict] | None = None) -> list[Target]:
    """Every figure with a limit: per shape and dataset, across sizes, and the writes and
    storage of ``ops`` (one dict per dataset: see run.py)."""
    found = []
    for r in rows:
        where = f"{human(r.size)} {r.label}"
        found += [Target(f"{where}: gateway/raw", r.over_raw, over_raw_limit(r)),
                  Target(f"{where}: gateway/DuckDB", r.over_duckdb, OVER_DUCKDB)]
        if r.query in ABSOLUTE_MS:
            found.append(Target(f"{where}: gateway p50 ms", r.gateway_p50, ABSOLUTE_MS[r.query]))
    found += [Target(f"{label}: p50({human(big.size)})/p50({human(small.size)})",
                     big.gateway_p50 / small.gateway_p50, SCALING)
              for label, small, big in scaling_pairs(rows)]
    for o in ops or ():
        size = human(o["size"])
        if "ingest" in o:
            found.append(Target(f"{size} ingest events/s", o["ingest"]["events_per_s"],
                                INGEST_MIN, at_least=True))
        if "load" in o:
            found.append(Target(f"{size} load {human(o['load']['events'])} into a fresh org: "
                                "events/s", o["load"]["events_per_s"], LOAD_MIN, at_least=True))
        if "small_load" in o:
            found.append(Target(f"{size} load {o['small_load']['events']} events into the "
                                "dataset's org: s", o["small_load"]["seconds"], SMALL_LOAD_MAX))
        for domain, s in o.get("storage", {}).items():
            found.append(Target(f"{size} {domain} storage rollups/raw", s["ratio"], STORAGE_MAX))
    return found


def scaling_pairs(rows: list[Row]) -> list[tuple[str, Row, Row]]:
    """Per shape: (label, the smallest dataset's row, the largest's), if sizes differ."""
    pairs = []
    for key in dict.fromkeys(r.query for r in rows):
        mine = sorted((r for r in rows if r.query == key), key=lambda r: r.size)
        if mine[0].size != mine[-1].size:
            pairs.append((mine[0].label, mine[0], mine[-1]))
    return pairs


def human(size: int) -> str:
    for unit, scale in (("M", 1_000_000), ("k", 1_000)):
        if size >= scale and size % (scale // 10) == 0:
            return f"{size / scale:g}{unit}"
    return str(size)


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.0f}" if value >= 1000 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _check(value: float, limit: float, digits: int = 3, at_least: bool = False) -> str:
    ok = value >= limit if at_least else value <= limit
    return (f"{value:.{digits}f} {'PASS' if ok else 'MISS'} "
            f"({'≥' if at_least else '≤'} {limit:g})")


def table(rows: list[Row]) -> str:
    """Markdown table: one line per dataset and shape, then the cross-size ratios."""
    lines = [("| events | query | gateway p50 / p90 ms | engine SQL p50 ms | raw SQL p50 ms "
              "| DuckDB p50 ms | gateway/raw | gateway/DuckDB | runs gw/raw/duck |"),
             "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: r.size):
        absolute = (f" {'PASS' if r.gateway_p50 <= ABSOLUTE_MS[r.query] else 'MISS'} "
                    f"(≤ {ABSOLUTE_MS[r.query]:g})" if r.query in ABSOLUTE_MS else "")
        n = r.samples
        lines.append(
            f"| {human(r.size)} | {r.label} | {_ms(r.gateway_p50)} / {_ms(r.gateway_p90)}"
            f"{absolute} | {_ms(r.engine_sql_p50)} | {_ms(r.raw_p50)} "
            f"| {_ms(r.duckdb_p50)} | {_check(r.over_raw, over_raw_limit(r))} "
            f"| {_check(r.over_duckdb, OVER_DUCKDB, 2)} "
            f"| {n.get('gateway', 0)}/{n.get('raw', 0)}/{n.get('duckdb', 0)} |")
    pairs = scaling_pairs(rows)
    if pairs:
        lines.append("")
        small, big = human(pairs[0][1].size), human(pairs[0][2].size)
        lines.append(f"| query | gateway p50({big}) / p50({small}) |")
        lines.append("|---|---|")
        for label, small, big in pairs:
            lines.append(f"| {label} | {_check(big.gateway_p50 / small.gateway_p50, SCALING, 2)} |")
    return "\n".join(lines)


def ops_table(ops: list[dict]) -> str:
    """Ingest and load per dataset."""
    if not any("ingest" in o or "load" in o or "small_load" in o for o in ops):
        return ""
    lines = ["| events | ingest events/s (batches of 1,000) | batch p50 / p90 ms | exact after "
             "ingest | load into a fresh org, events/s | small load into the dataset's org, s "
             "| exact after load |",
             "|---|---|---|---|---|---|---|"]
    for o in ops:
        i, ld, sm = o.get("ingest"), o.get("load"), o.get("small_load")
        cells = [human(o["size"]),
                 _check(i["events_per_s"], INGEST_MIN, 0, True) if i else "–",
                 f"{_ms(i['batch_p50_ms'])} / {_ms(i['batch_p90_ms'])}" if i else "–",
                 o.get("exact_after_ingest", "–"),
                 (f"{human(ld['events'])}: " + _check(ld["events_per_s"], LOAD_MIN, 0, True)
                  if ld else "–"),
                 (f"{sm['events']} events: " + _check(sm["seconds"], SMALL_LOAD_MAX, 2)
                  if sm else "–"),
                 o.get("exact_after_load", "–")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def storage_table(ops: list[dict]) -> str:
    if not any(o.get("storage") for o in ops):
        return ""
    lines = ["| events | domain | raw events MB | rollups MB (tables) | rollups/raw |",
             "|---|---|---|---|---|"]
    for o in ops:
        for domain, s in o.get("storage", {}).items():
            ratio = s["ratio"]
            lines.append(f"| {human(o['size'])} | {domain} ({human(o['events'][domain])}) "
                         f"| {s['raw_bytes'] / 1e6:.1f} "
                         f"| {s['rollup_bytes'] / 1e6:.1f} ({s['rollup_tables']}) "
                         f"| {'–' if math.isnan(ratio) else _check(ratio, STORAGE_MAX, 2)} |")
    return "\n".join(lines)


def verdicts(found: list[Target]) -> str:
    misses = [t for t in found if not t.ok]
    head = f"targets: {len(found) - len(misses)} PASS, {len(misses)} MISS"
    return "\n".join([head, *(f"  MISS {t.name}: {t.value:.3f}, target {t.bound}"
                              for t in misses)])


def to_json(path: Path, rows: list[Row], context: dict) -> None:
    found = targets(rows, context.get("ops"))
    body = {**context,
            "rows": [{**asdict(r), "gateway_over_raw": r.over_raw,
                      "gateway_over_duckdb": r.over_duckdb} for r in rows],
            "targets": [{"name": t.name, "value": t.value, "limit": t.limit,
                         "at_least": t.at_least, "verdict": t.verdict} for t in found]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=2, default=str) + "\n")


def load_table(datasets: list[dict]) -> str:
    """Seconds per load phase and dataset, and the events of each domain."""
    phases = list(datasets[0]["load_seconds"])
    lines = ["| load, s | events | " + " | ".join(phases) + " | total | DuckDB export + load |",
             "|---" * (len(phases) + 4) + "|"]
    for d in datasets:
        seconds = d["load_seconds"]
        events = ", ".join(f"{name} {human(n)}" for name, n in d["events"].items())
        lines.append(f"| {human(d['size'])} | {events} | "
                     + " | ".join(f"{seconds[k]:.1f}" for k in phases)
                     + f" | {sum(seconds.values()):.1f} | "
                     f"{sum(d['duckdb_seconds'].values()):.1f} |")
    return "\n".join(lines)


def readme_block(rows: list[Row], context: dict) -> str:
    machine = context["machine"]
    before, after = context.get("load_average_before"), context.get("load_average_after")
    intro = (f"Latest run: {context['date']} on {machine['nproc']} cores ({machine['cpu']}), "
             f"PostgreSQL {machine['postgres']} (default settings), DuckDB {machine['duckdb']}, "
             f"Python {machine['python']}"
             + (f"; load average {before[0]:.1f} when the timing began, {after[0]:.1f} when "
                f"it ended (other work on the machine slows every way alike)"
                if before and after else "")
             + f". Up to {context['requests']} sequential HTTP requests per shape and dataset, "
             f"raw SQL and DuckDB up to {context['runs']} runs each (fewer for slow ones: "
             f"bench/README.md); wall time of the run {context.get('wall_seconds', 0) / 60:.0f} "
             f"min.")
    ops = context.get("ops", [])
    parts = [BEGIN, textwrap.fill(intro, WIDTH), "", table(rows), "",
             "```", verdicts(targets(rows, ops)), "```"]
    for extra in (ops_table(ops), storage_table(ops)):
        if extra:
            parts += ["", extra]
    parts += ["", load_table(context["datasets"]), END]
    return "\n".join(parts)


def write_readme(rows: list[Row], context: dict, readme: Path = README) -> None:
    """Replace the block between the markers (which must exist) with the new figures."""
    text = readme.read_text()
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(text):
        raise RuntimeError(f"{readme} has no {BEGIN} … {END} block")
    readme.write_text(pattern.sub(lambda _: readme_block(rows, context), text, count=1))
