"""Load a stream of event records into one org's domain, in one transaction.

Chunk by chunk: ingest's validator checks the events, COPY puts the valid ones in a TEMP
staging table, their ids go into the event-id ledger (``ON CONFLICT DO NOTHING``) and the
rows whose ids it took move into the event table (so existing ids are skipped), and the inserted ones name their entities and are
held to the repo rule exactly as an ingest batch is. Chunks keep memory bounded whatever
the file size; each chunk's inserted rows are merged into the rollups by the statement
that inserts them, so nothing is rebuilt. The steps, and the pieces shared with ``POST
/v2/ingest``: core/ingesting.py.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from operator import itemgetter
from typing import cast

import psycopg
from psycopg import sql

from stats_gateway.bulk.sources import Record, decoded
from stats_gateway.core.domain import Domain
from stats_gateway.core.errors import ApiError, Problem
from stats_gateway.core.rollup_sql import insert_with_rollups
from stats_gateway.core.typed_batch import fast_lines
from stats_gateway.core.ingest import (
    NEW_IDS,
    REPO_PARENTS, UPSERT_ENTITIES, WRITE_LOCK, EventRow, claimed_repos, entity_params, entity_refs,
    first_inserted, out_of_range, repo_moves, validate_events,
)
from stats_gateway.core.ingesting import copy_statement, copy_types
from stats_gateway.db.schema import ledger_table
from stats_gateway.progress import Progress

CHUNK_ROWS = 50_000
MAX_SHOWN = 20
STAGE = "bulk_stage"

Lined = tuple[int, EventRow]  # (line number, validated event)


@dataclass(frozen=True)
class LineProblem:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field + ': ' if self.field else ''}{self.message}"


@dataclass
class LoadReport:
    read: int = 0  # events read (non-blank lines or CSV rows), invalid ones included
    inserted: int = 0
    invalid: int = 0  # lines rejected (or skipped, with skip_invalid)
    problems: list[LineProblem] = field(default_factory=list)  # the first max_shown
    max_shown: int = MAX_SHOWN
    seconds: float = 0.0  # the whole load: reading, writing, committing

    @property
    def duplicates(self) -> int:
        """Valid events not inserted: their eventId was stored already (or came earlier
        in the file)."""
        return self.read - self.invalid - self.inserted

    @property
    def rate(self) -> float:
        return self.read / max(self.seconds, 1e-9)

    def reject(self, problems: list[LineProblem]) -> None:
        self.invalid += len({p.line for p in problems})
        self.problems += problems[:max(self.max_shown - len(self.problems), 0)]


class LoadRejected(Exception):
    """Invalid lines and no ``skip_invalid``: the transaction rolled back."""

    def __init__(self, report: LoadReport):
        self.report = report
        super().__init__(f"{report.invalid} invalid line(s); nothing was written")


class _OutOfRange(Exception):
    """A value computed from a chunk did not fit its column (see ``ingest.out_of_range``)."""

    def __init__(self, problem: LineProblem):
        self.problem = problem


class _RepoMoves(Exception):
    def __init__(self, problems: list[Problem]):
        self.problems = problems


def find_org(conn: psycopg.Connection, org: str) -> str | None:
    """The id of an existing org given by id or by name; None if there is none."""
    try:
        by_id = uuid.UUID(org)
    except ValueError:
        by_id = None
    row = (conn.execute("SELECT id FROM orgs WHERE id = %s", (by_id,)) if by_id else
           conn.execute("SELECT id FROM orgs WHERE name = %s", (org,))).fetchone()
    return str(row[0]) if row else None


def load_events(conn: psycopg.Connection, domain: Domain, org_id: str,
                records: Iterable[Record], *, skip_invalid: bool = False,
                chunk_rows: int = CHUNK_ROWS, max_shown: int = MAX_SHOWN,
                progress: Progress | None = None, now: datetime | None = None) -> LoadReport:
    """Load ``records`` into ``org_id``'s ``domain``, rollups included, all in one
    transaction; ``progress`` advances per chunk and is finished once the input is read.
    Raises :class:`LoadRejected` (and writes nothing) when a line is invalid,
    unless ``skip_invalid``; without it, the rest of the input is still read and checked,
    so the report counts every invalid line."""
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    report = LoadReport(max_shown=max_shown)
    with conn.transaction():
        # ingest into this org's domain waits for the load (see WRITE_LOCK)
        conn.execute(WRITE_LOCK.format(mode=""), {"org": org_id, "table": domain.table})
        _create_stage(conn, domain)
        try:
            for read, rows in _validated(domain, records, chunk_rows, now, report):
                report.read += read
                if rows and (skip_invalid or not report.invalid):
                    _write_chunk(conn, domain, org_id, rows, report, skip_invalid)
                if progress:
                    progress.advance(read)
        except _OutOfRange as exc:  # no line to blame or skip: the whole load is refused
            report.reject([exc.problem])
            report.seconds = time.perf_counter() - started
            raise LoadRejected(report) from None  # leaving the block rolls everything back
        finally:
            if progress and progress.done:  # ends the bar's line before any message
                progress.finish()
        if report.invalid and not skip_invalid:
            report.seconds = time.perf_counter() - started
            raise LoadRejected(report)  # leaving the block rolls everything back
    report.seconds = time.perf_counter() - started
    return report


def analyze_after_load(conn: psycopg.Connection, domain: Domain, inserted: int) -> bool:
    """``ANALYZE`` the event table when a load changed it noticeably: autovacuum's rule
    for analyzing (50 rows plus 10% of the table), applied here because the machine's
    PostgreSQL may run without autovacuum. A partitioned table's ANALYZE samples every
    partition (seconds at millions of events), so a load of 5 events into a big org skips
    it and costs in proportion to its size."""
    (rows,) = cast(tuple, conn.execute(
        # the rows of its tables: a partitioned parent's own estimate counts them again
        "SELECT coalesce(sum(greatest(c.reltuples, 0)), 0) FROM pg_class c "
        "WHERE c.relkind = 'r' AND (c.oid = %(t)s::regclass OR c.oid IN "
        "(SELECT inhrelid FROM pg_inherits WHERE inhparent = %(t)s::regclass))",
        {"t": domain.table}).fetchone())
    if inserted < 50 + 0.1 * float(rows):
        return False
    conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(domain.table)))
    return True


def _validated(domain: Domain, records: Iterable[Record], size: int, now: datetime,
               report: LoadReport) -> Iterator[tuple[int, list[Lined]]]:
    """(records read, their valid rows) per chunk, read and validated one chunk ahead in
    a thread: the next chunk's Python work overlaps the database's work on this one
    (psycopg waits without the GIL). Problems go to ``report`` as they are found."""
    chunks = _chunks(records, size)

    def next_chunk() -> tuple[int, list[Lined]] | None:
        chunk = next(chunks, None)
        return None if chunk is None else (len(chunk), _valid_rows(domain, chunk, now, report))

    with ThreadPoolExecutor(1, thread_name_prefix="load-read") as pool:
        ahead = pool.submit(next_chunk)
        while (done := ahead.result()) is not None:
            ahead = pool.submit(next_chunk)
            yield done


def _chunks(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    iterator = iter(records)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _valid_rows(domain: Domain, chunk: list[Record], now: datetime,
                report: LoadReport) -> list[Lined]:
    """The chunk's valid events (in line order); every problem goes to ``report``."""
    raws = [r.raw for r in chunk if r.raw is not None]
    if len(raws) == len(chunk):  # NDJSON: the whole chunk decoded at once
        fast = fast_lines(domain, raws, now)
        if fast is not None:
            return [(r.line, row) for r, row in zip(chunk, fast)]
    chunk = [decoded(r) for r in chunk]
    problems = [LineProblem(r.line, "", r.problem) for r in chunk if r.problem]
    readable = [r for r in chunk if not r.problem]
    positions = list(range(len(readable)))
    rows: list[Lined] = []
    while positions:  # validate_events stops listing after MAX_PROBLEMS: go round again
        try:
            checked = validate_events(domain, [readable[i].event for i in positions], now)
        except ApiError as exc:
            # validate_events numbers every problem with its event's index
            listed = [(positions[cast(int, p.index)], p) for p in exc.problems]
            bad = {i for i, _ in listed}
            problems += [LineProblem(readable[i].line, p.field, p.message) for i, p in listed]
            positions = [i for i in positions if i not in bad]
            continue
        rows = [(readable[i].line, row) for i, row in zip(positions, checked)]
        break
    if problems:
        report.reject(sorted(problems, key=lambda p: p.line))
    return rows


def _write_chunk(conn: psycopg.Connection, domain: Domain, org_id: str, rows: list[Lined],
                 report: LoadReport, skip_invalid: bool) -> None:
    """Insert a chunk under a savepoint; events that move a repo to another workspace undo
    it, and with ``skip_invalid`` it is written again without them."""
    while rows:
        try:
            with conn.transaction():
                inserted = _insert_chunk(conn, domain, org_id, rows)
                moves = _moved_repos(conn, org_id, inserted)
                if moves:
                    raise _RepoMoves(moves)
        except psycopg.errors.NumericValueOutOfRange as exc:
            first, last = rows[0][0], rows[-1][0]
            raise _OutOfRange(LineProblem(first, "", f"{out_of_range(exc).message} (lines "
                                                     f"{first}-{last})")) from None
        except _RepoMoves as exc:
            report.reject([LineProblem(cast(int, p.index), p.field, p.message)  # line numbers
                           for p in exc.problems])
            if not skip_invalid:
                return
            moved = {p.index for p in exc.problems}
            rows = [(line, row) for line, row in rows if line not in moved]
            continue
        report.inserted += len(inserted)
        return


def _insert_chunk(conn: psycopg.Connection, domain: Domain, org_id: str,
                  rows: list[Lined]) -> list[Lined]:
    """COPY the rows to the stage, move the new ones to the event table and the
    catalogue; returns the inserted rows (the first of repeated ids) in line order."""
    columns = [f.column for f in domain.stored_fields]
    firsts: dict[str, Lined] = {}  # later lines of an id repeated in the chunk: duplicates
    for line, row in rows:
        firsts.setdefault(row.event_id, (line, row))
    with conn.cursor() as cur:
        cur.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(STAGE)))
        with cur.copy(copy_statement(STAGE, ["line", "event_id", "ts", *columns],
                                     binary=True)) as copy:
            copy.set_types(["bigint", *copy_types(domain)])
            stored = itemgetter(*columns)  # validated rows hold every stored column
            for line, row in firsts.values():
                copy.write_row((line, row.event_id, row.ts, *stored(row.values)))
        text, constants = insert_with_rollups(domain, _insert_from_stage(domain).as_string(conn),
                                              _ledger_from_stage(domain).as_string(conn))
        cur.execute(text, {**constants, "org": org_id})
        ids = {event_id for (event_id,) in cur.fetchall()}
    inserted = first_inserted(rows, ids)  # the first line of each id is stored
    refs = entity_refs(domain, [row for _, row in inserted])
    if refs:
        conn.execute(UPSERT_ENTITIES, entity_params(org_id, refs))
    return inserted


def _moved_repos(conn: psycopg.Connection, org_id: str, rows: list[Lined]) -> list[Problem]:
    """Ingest's repo rule on a synchronous connection (``index`` is the line number)."""
    claimed = claimed_repos(rows)
    if not claimed:
        return []
    parents: dict[str, str] = dict(conn.execute(REPO_PARENTS, {"org": org_id, "ids": claimed}).fetchall())
    return repo_moves(parents, rows)


def _create_stage(conn: psycopg.Connection, domain: Domain) -> None:
    """A TEMP table shaped like the event rows, dropped at commit (or rollback)."""
    columns = [sql.SQL("{} {}").format(sql.Identifier(f.column), sql.SQL(f.type.sql_type))
               for f in domain.stored_fields]
    stage = sql.Identifier(STAGE)
    conn.execute(sql.SQL("DROP TABLE IF EXISTS pg_temp.{}").format(stage))
    conn.execute(sql.SQL("CREATE TEMP TABLE {} (line bigint, event_id text, ts timestamptz, "
                         "{}) ON COMMIT DROP").format(stage, sql.SQL(", ").join(columns)))


def _insert_from_stage(domain: Domain) -> sql.Composed:
    """Stage -> event table in ingest's lock order (event ids in code-point order, as
    Python sorts them), so a load and a concurrent ingest batch cannot deadlock."""
    columns = [sql.Identifier(f.column) for f in domain.stored_fields]
    names = sql.SQL(", ").join([sql.Identifier("org_id"), sql.Identifier("event_id"),
                                sql.Identifier("ts"), *columns])
    values = sql.SQL(", ").join([sql.Identifier("event_id"), sql.Identifier("ts"), *columns])
    return sql.SQL(
        "INSERT INTO {table} ({names}) SELECT %(org)s::uuid, {values} FROM {stage} "
        "WHERE event_id IN (SELECT event_id FROM " + NEW_IDS + ") RETURNING *").format(
        table=sql.Identifier(domain.table), names=names, values=values,
        stage=sql.Identifier(STAGE))


def _ledger_from_stage(domain: Domain) -> sql.Composed:
    """The ``new_ids`` CTE: the stage's ids (unique: ``_insert_chunk`` stages the first line
    of a repeated one) into the domain's event-id ledger in ingest's lock order; only the
    events whose ids it takes are written."""
    return sql.SQL(
        NEW_IDS + " AS (INSERT INTO {ledger} (org_id, event_id, ts) "
        "SELECT %(org)s::uuid, event_id, ts FROM {stage} ORDER BY event_id COLLATE \"C\" "
        "ON CONFLICT (org_id, event_id) DO NOTHING RETURNING event_id), ").format(
        ledger=sql.Identifier(ledger_table(domain)), stage=sql.Identifier(STAGE))
