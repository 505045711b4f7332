"""The benchmark's datasets: ``size`` private-chat events in a fresh database of their own.

The rows come from the demo's own private-chat generator (same world, daily and weekly
rhythm, growth and long tails) for two orgs: the benchmarked one holds 90% of the events
and a neighbour the other 10%, so every query also pays for filtering by tenant. They are
streamed in with the demo's binary COPY, then the rollups are rebuilt from them (COPY
bypasses ingest) and the tables vacuumed and analysed, as after a bulk load in production.

Generating rows is Python work, so the load runs on every core: each org's events (their
times drawn once, in order) are cut into pieces of consecutive times, and worker
processes generate and COPY the pieces over connections of their own. Every piece has
its own seeded random stream, so the same size, ``now`` and seed give the same rows
whatever the number of workers. The rollups are likewise rebuilt a cube per worker.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from domains.private_chat import DOMAIN
from stats_gateway.auth import create_key, ensure_org
from stats_gateway.core.histogram_rollups import histogram_rollups
from stats_gateway.core.rollup_sql import rebuild_sql
from stats_gateway.core.rollups import domain_rollups
from stats_gateway.core.sql import Sql
from stats_gateway.demo.generate import (
    CHUNK_ROWS, Chunk, _chunk, hour_weights, private_chat_columns,
)
from stats_gateway.demo.load import MAINTENANCE_DATABASE, copy_events, prepare_database
from stats_gateway.demo.sampling import event_times
from stats_gateway.demo.world import ORGS, Org

SEED = 20_250_101
MAIN_SHARE = 0.9  # of the events: the org every query reads; the rest is its neighbour's
MAIN_ORG, NEIGHBOUR_ORG = ORGS[0], ORGS[1]  # Acme (New York, 5 AI configs), Globex (Berlin)
PIECE = 500_000  # events per generate-and-COPY job


@dataclass
class Dataset:
    size: int  # events in the table (both orgs)
    url: str
    org_id: str  # the benchmarked org
    key: str  # its read-only key
    org_events: int
    seconds: dict[str, float] = field(default_factory=dict)  # load phase -> wall time


def database_name(size: int) -> str:
    return f"stats_bench_{size}"


def workers() -> int:
    return max(os.cpu_count() or 1, 1)


@dataclass(frozen=True)
class Piece:
    """Events ``start``.. of one org, at the given (sorted) unix times."""

    org: Org
    org_id: str
    start: int
    times: list[float]
    now: datetime
    seed: int


def pieces(org: Org, org_id: str, n: int, now: datetime, seed: int) -> Iterator[Piece]:
    """``n`` events of ``org`` over the 365 days before ``now``, in time order, cut up."""
    rng = random.Random(f"{seed}:{org.key}:times")
    times = event_times(hour_weights(org, now, False), n, now, rng)
    for start in range(0, n, PIECE):
        yield Piece(org, org_id, start, times[start:start + PIECE], now, seed)


def piece_chunks(piece: Piece) -> Iterator[Chunk]:
    rng = random.Random(f"{piece.seed}:{piece.org.key}:{piece.start}")
    for offset in range(0, len(piece.times), CHUNK_ROWS):
        part = piece.times[offset:offset + CHUNK_ROWS]
        columns = private_chat_columns(piece.org, rng, part, piece.now)
        yield _chunk(piece.org, "private-chat", piece.start + offset, part, columns)


def _copy_piece(job: tuple[str, Piece]) -> int:
    url, piece = job
    with psycopg.connect(url, autocommit=True) as conn:
        return copy_events(conn, piece.org_id, DOMAIN, piece_chunks(piece), None)


def _copy_all(url: str, jobs: list[Piece]) -> int:
    with multiprocessing.get_context("fork").Pool(workers()) as pool:
        return sum(pool.imap_unordered(_copy_piece, [(url, p) for p in jobs]))


def _rebuild_rollups(url: str) -> int:
    """Every rollup table of the domain (histogram ones included) recomputed from the raw
    events of all orgs, a cube per connection and ``workers()`` at a time: what
    ``rebuild_rollups`` does. A cube's grains stay in ``domain_rollups`` order, in one
    transaction, as its coarse grains are computed from its finest."""
    def rebuild(statements: list[Sql]) -> None:
        with psycopg.connect(url) as conn, conn.transaction():
            for statement in statements:
                conn.execute(statement.text, statement.params)

    cubes: dict[tuple[str, ...], list[Sql]] = {}
    rollups = domain_rollups(DOMAIN)
    for rollup in rollups:
        cubes.setdefault(rollup.columns, []).extend(rebuild_sql(rollup))
    jobs = [*cubes.values(), *(h.rebuild_sql() for h in histogram_rollups(DOMAIN))]
    with ThreadPoolExecutor(workers()) as pool:
        list(pool.map(rebuild, jobs))
    return len(rollups) + len(jobs) - len(cubes)


def load(server_url: str, size: int, now: datetime, seed: int = SEED) -> Dataset:
    """Drop and recreate the dataset's database, COPY ``size`` events, rebuild rollups,
    VACUUM ANALYZE; every phase timed."""
    seconds: dict[str, float] = {}
    mark = time.perf_counter()
    url = prepare_database(server_url, database_name(size))
    org_events = round(size * MAIN_SHARE)
    with psycopg.connect(url, autocommit=True) as conn:
        org_id = ensure_org(conn, "bench")
        neighbour_id = ensure_org(conn, "neighbour")
        key = create_key(conn, org_id, read=True, ingest=False, name="bench")
    jobs = [*pieces(MAIN_ORG, org_id, org_events, now, seed),
            *pieces(NEIGHBOUR_ORG, neighbour_id, size - org_events, now, seed)]
    seconds["prepare"] = time.perf_counter() - mark
    mark = time.perf_counter()
    written = _copy_all(url, jobs)
    if written != size:
        raise RuntimeError(f"wrote {written} events, expected {size}")
    seconds["generate+copy"] = time.perf_counter() - mark
    mark = time.perf_counter()
    _rebuild_rollups(url)
    seconds["rollups"] = time.perf_counter() - mark
    mark = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")  # statistics, and visibility for index-only scans
    seconds["vacuum analyze"] = time.perf_counter() - mark
    return Dataset(size=size, url=url, org_id=org_id, key=key, org_events=org_events,
                   seconds=seconds)


def drop(server_url: str, size: int) -> None:
    with psycopg.connect(make_conninfo(server_url, dbname=MAINTENANCE_DATABASE),
                         autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(database_name(size))))
