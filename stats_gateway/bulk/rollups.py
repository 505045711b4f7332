"""Recompute rollups from raw events: after a COPY load, manual SQL edits or a restore."""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg
from psycopg import errors, sql

from stats_gateway.core.domain import Domain
from stats_gateway.core.rollup_sql import rebuild_rollups
from stats_gateway.db.retention import expired_history, history_loss

ATTEMPTS = 3


@dataclass(frozen=True)
class Rebuilt:
    domain: str
    tables: int
    seconds: float


def rebuild_domain(conn: psycopg.Connection, domain: Domain, org_id: str | None = None,
                   attempts: int = ATTEMPTS) -> int:
    """Rebuild ``domain``'s rollups (one org, or all) in the caller's transaction; returns
    the number of rollup tables.

    An ingest batch committing meanwhile can add a rollup row the rebuild is about to
    insert (a duplicate key) or wait on one it deleted (a deadlock): never a wrong count,
    but a failed attempt. Each attempt runs under a savepoint and is retried; the last one
    first takes a SHARE lock on the event table, so ingest into the domain waits for the
    commit instead of colliding."""
    for _ in range(attempts - 1):
        try:
            with conn.transaction():
                return rebuild_rollups(conn, domain, org_id)
        except (errors.UniqueViolation, errors.DeadlockDetected):
            pass  # an ingest batch collided with this attempt, which left nothing
    with conn.transaction():
        conn.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(sql.Identifier(domain.table)))
        return rebuild_rollups(conn, domain, org_id)


class RebuildRefused(Exception):
    """A rebuild would erase rollup history whose raw events retention has dropped."""


def rebuild(conn: psycopg.Connection, domains: list[Domain],
            org_id: str | None = None, force: bool = False) -> list[Rebuilt]:
    """Rebuild every rollup of ``domains`` (one org, or all) in one transaction; refused
    (``RebuildRefused``, nothing changed) where retention has dropped raw events the
    rollups still count, unless ``force``."""
    if not force:
        for domain in domains:
            if expired := expired_history(conn, domain, org_id):
                raise RebuildRefused(history_loss(domain, expired))
    done = []
    with conn.transaction():
        for domain in domains:
            started = time.perf_counter()
            tables = rebuild_domain(conn, domain, org_id)
            done.append(Rebuilt(domain.name, tables, time.perf_counter() - started))
    return done
