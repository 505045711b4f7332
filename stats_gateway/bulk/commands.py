"""``stats-gateway load`` and ``stats-gateway rebuild``: open things, run, print.

Both use ``STATS_GATEWAY_DATABASE_URL`` or else the embedded server, and migrate first.
Exit status: 0 done, 1 the file had invalid lines (nothing was written), 2 the command
could not run (unknown org, unreadable file, bad CSV header).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import BinaryIO, TextIO

import psycopg

from domains import DOMAINS
from stats_gateway.bulk.load import (
    LoadRejected, LoadReport, analyze_after_load, find_org, load_events,
)
from stats_gateway.bulk.rollups import RebuildRefused, rebuild
from stats_gateway.bulk.sources import SourceError, count_records, guess_format, read_records
from stats_gateway.config import Settings
from stats_gateway.core.domain import Domain
from stats_gateway.db.connect import connect
from stats_gateway.db.embedded import database_url
from stats_gateway.db.migrate import migrate
from stats_gateway.progress import Progress

DOMAINS_BY_NAME = {d.name: d for d in DOMAINS}


def load_command(settings: Settings, domain_name: str, path: str, org: str, *,
                 fmt: str | None = None, skip_invalid: bool = False, max_errors: int = 20,
                 out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    domain = DOMAINS_BY_NAME[domain_name]
    fmt = fmt or ("ndjson" if path == "-" else guess_format(path))
    try:
        with _opened(path) as stream, _connected(settings) as conn:
            org_id = find_org(conn, org)
            if org_id is None:
                print(f"stats-gateway: no org has the id or name {org!r} (create it with "
                      f"`stats-gateway create-key --org NAME`)", file=err)
                return 2
            total = None
            if stream.seekable():  # a file, not a pipe: read ahead for the bar's total
                position = stream.tell()
                total = count_records(stream, fmt)
                stream.seek(position)
            report = load_events(conn, domain, org_id, read_records(stream, fmt, domain),
                                 skip_invalid=skip_invalid, max_shown=max_errors,
                                 progress=Progress(total, err))
            analyze_after_load(conn, domain, report.inserted)
    except LoadRejected as exc:
        _print_problems(exc.report, err)
        print(f"stats-gateway: {exc.report.invalid:,} invalid line(s) of "
              f"{exc.report.read:,} events; nothing was written (--skip-invalid loads the "
              "valid ones)", file=err)
        return 1
    except (OSError, SourceError) as exc:
        print(f"stats-gateway: {path}: {exc}", file=err)
        return 2
    _print_problems(report, err)
    print(_summary(domain, org_id, report), file=out)
    return 0


def rebuild_command(settings: Settings, domain_names: list[str] | None, org: str | None, *,
                    force: bool = False, out: TextIO | None = None,
                    err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    wanted = set(domain_names or DOMAINS_BY_NAME)
    domains = [d for d in DOMAINS if d.name in wanted]  # one lock order for every run
    with _connected(settings) as conn:
        org_id = None
        if org is not None:
            org_id = find_org(conn, org)
            if org_id is None:
                print(f"stats-gateway: no org has the id or name {org!r}", file=err)
                return 2
        started = time.perf_counter()
        try:
            done = rebuild(conn, domains, org_id, force=force)
        except RebuildRefused as exc:
            print(f"stats-gateway: {exc}; nothing was changed (--force rebuilds anyway)",
                  file=err)
            return 1
        seconds = time.perf_counter() - started
    whose = f"org {org_id}" if org_id else "every org"
    for item in done:
        print(f"rebuilt {item.domain}: {item.tables} rollup tables for {whose} in "
              f"{item.seconds:.2f} s", file=out)
    print(f"done in {seconds:.2f} s (one transaction)", file=out)
    return 0


@contextlib.contextmanager
def _opened(path: str) -> Iterator[BinaryIO]:
    """The input, opened before the database starts, so a wrong path fails fast."""
    if path == "-":
        yield sys.stdin.buffer
        return
    with open(path, "rb") as stream:
        yield stream


@contextlib.contextmanager
def _connected(settings: Settings) -> Iterator[psycopg.Connection]:
    with database_url(settings) as url, connect(url, autocommit=True) as conn:
        migrate(conn, DOMAINS)
        yield conn


def _print_problems(report: LoadReport, err: TextIO) -> None:
    for problem in report.problems:
        print(f"  {problem}", file=err)
    if report.invalid > len({p.line for p in report.problems}):
        print(f"  … and more: {report.invalid:,} invalid line(s) in all", file=err)


def _summary(domain: Domain, org_id: str, report: LoadReport) -> str:
    skipped = f", skipped {report.invalid:,} invalid" if report.invalid else ""
    return (f"{domain.name}: read {report.read:,} events, inserted {report.inserted:,}, "
            f"duplicates {report.duplicates:,}{skipped}\n"
            f"org {org_id}: rollups kept up to date as the events went in\n"
            f"elapsed {report.seconds:.1f} s, {report.rate:,.0f} events/s")
