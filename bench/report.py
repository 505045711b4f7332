"""Targets, the printed table, the JSON file and the README's Benchmark block.

A target is a ratio or a latency measured in this run, compared with its limit: the
performance claims live here, measured side by side, never in timed tests.
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import asdict, dataclass
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
BEGIN = "<!-- bench:begin (written by python -m bench.run) -->"
END = "<!-- bench:end -->"

# query key -> limit
OVER_RAW = {"series": 0.10, "breakdown": 0.05}
OVER_DUCKDB = {"series": 0.5, "breakdown": 0.5}
ABSOLUTE_MS = {"series": 10.0, "breakdown": 15.0}
SCALING = 1.3
WIDTH = 90  # the README's line length


@dataclass
class Row:
    """One query on one dataset; times in ms (p50 unless named)."""

    size: int
    query: str  # key
    label: str
    gateway_p50: float
    gateway_p90: float
    engine_sql_p50: float  # the engine's SQL run directly: the database's share
    raw_p50: float
    duckdb_p50: float

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

    @property
    def ok(self) -> bool:
        return self.value <= self.limit

    @property
    def verdict(self) -> str:
        return "PASS" if self.ok else "MISS"


def targets(rows: list[Row]) -> list[Target]:
    found = []
    for r in rows:
        where = f"{human(r.size)} {r.label}"
        found += [Target(f"{where}: gateway/raw", r.over_raw, OVER_RAW[r.query]),
                  Target(f"{where}: gateway/DuckDB", r.over_duckdb, OVER_DUCKDB[r.query]),
                  Target(f"{where}: gateway p50 ms", r.gateway_p50, ABSOLUTE_MS[r.query])]
    found += [Target(f"{label}: p50({human(big.size)})/p50({human(small.size)})",
                     big.gateway_p50 / small.gateway_p50, SCALING)
              for label, small, big in scaling_pairs(rows)]
    return found


def scaling_pairs(rows: list[Row]) -> list[tuple[str, Row, Row]]:
    """Per query: (label, the smallest dataset's row, the largest's), if sizes differ."""
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


def _ms(value: float) -> str:
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _check(value: float, limit: float, digits: int = 3) -> str:
    return f"{value:.{digits}f} {'✓' if value <= limit else '✗'} (≤ {limit:g})"


def table(rows: list[Row]) -> str:
    """Markdown table: one line per dataset and query, then the cross-size ratios."""
    lines = [("| events | query | gateway p50 / p90 ms | engine SQL p50 ms | raw SQL p50 ms "
              "| DuckDB p50 ms | gateway/raw | gateway/DuckDB |"),
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {human(r.size)} | {r.label} | {_ms(r.gateway_p50)} / {_ms(r.gateway_p90)} "
            f"{'✓' if r.gateway_p50 <= ABSOLUTE_MS[r.query] else '✗'} "
            f"(≤ {ABSOLUTE_MS[r.query]:g}) | {_ms(r.engine_sql_p50)} | {_ms(r.raw_p50)} "
            f"| {_ms(r.duckdb_p50)} | {_check(r.over_raw, OVER_RAW[r.query])} "
            f"| {_check(r.over_duckdb, OVER_DUCKDB[r.query], 2)} |")
    pairs = scaling_pairs(rows)
    if pairs:
        lines.append("")
        small, big = human(pairs[0][1].size), human(pairs[0][2].size)
        lines.append(f"| query | gateway p50({big}) / p50({small}) |")
        lines.append("|---|---|")
        for label, small, big in pairs:
            lines.append(f"| {label} | {_check(big.gateway_p50 / small.gateway_p50, SCALING, 2)} |")
    return "\n".join(lines)


def verdicts(found: list[Target]) -> str:
    misses = [t for t in found if not t.ok]
    head = f"targets: {len(found) - len(misses)} PASS, {len(misses)} MISS"
    return "\n".join([head, *(f"  MISS {t.name}: {t.value:.3f} > {t.limit:g}" for t in misses)])


def to_json(path: Path, rows: list[Row], context: dict) -> None:
    found = targets(rows)
    body = {**context,
            "rows": [{**asdict(r), "gateway_over_raw": r.over_raw,
                      "gateway_over_duckdb": r.over_duckdb} for r in rows],
            "targets": [{"name": t.name, "value": t.value, "limit": t.limit,
                         "verdict": t.verdict} for t in found]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=2, default=str) + "\n")


def load_table(datasets: list[dict]) -> str:
    """Seconds per load phase and dataset."""
    phases = list(datasets[0]["load_seconds"])
    lines = ["| load, s | " + " | ".join(phases) + " | total | DuckDB export + load |",
             "|---" * (len(phases) + 3) + "|"]
    for d in datasets:
        seconds = d["load_seconds"]
        lines.append(f"| {human(d['size'])} | " + " | ".join(f"{seconds[k]:.1f}" for k in phases)
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
             + f". {context['requests']} sequential HTTP requests per query and dataset; raw "
             f"SQL and DuckDB p50 over {context['runs']} runs each.")
    return "\n".join([
        BEGIN,
        textwrap.fill(intro, WIDTH),
        "",
        table(rows),
        "",
        "```",
        verdicts(targets(rows)),
        "```",
        "",
        load_table(context["datasets"]),
        END])


def write_readme(rows: list[Row], context: dict, readme: Path = README) -> None:
    """Replace the block between the markers (which must exist) with the new figures."""
    text = readme.read_text()
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(text):
        raise RuntimeError(f"{readme} has no {BEGIN} … {END} block")
    readme.write_text(pattern.sub(lambda _: readme_block(rows, context), text, count=1))
