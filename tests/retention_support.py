"""A database of its own for the retention, delete and partition tests: they drop
partitions and erase orgs, which must not touch the rows other modules share."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from litestar.testing import TestClient

from conftest import Org, throwaway_database
from expected import parse_ts
from stats_gateway.config import Settings
from stats_gateway.http.app import create_app


@dataclass
class Own:
    url: str
    client: TestClient
    db: psycopg.Connection


def own_database(server_url: str, prefix: str) -> Iterator[Own]:
    with throwaway_database(server_url, prefix) as url:
        app = create_app(Settings(database_url=url, data_dir=Path("/nonexistent"),
                                  rate_limit="off"))
        with TestClient(app) as client, psycopg.connect(url, autocommit=True) as conn:
            yield Own(url, client, conn)


def new_org(own: Own, name: str) -> Org:
    return Org(own.db, name)


def midnight(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def first_of_month(t: datetime) -> datetime:
    return midnight(t).replace(day=1)


def per_day(events, start: datetime, end: datetime, field: str | None = None) -> dict[int, int]:
    """Per UTC day (unix seconds of its midnight) in [start, end): the events' count, or
    the sum of ``field`` where present; computed from the events sent, not the database."""
    found: Counter = Counter()
    for e in events:
        t = parse_ts(e["ts"])
        if start <= t < end:
            found[int(midnight(t).timestamp())] += 1 if field is None else e.get(field) or 0
    return {day: value for day, value in found.items() if value}


def day_points(body, field: str) -> dict[int, int]:
    """A daily series' non-zero values by bucket."""
    return {p["ts"]: p[field] for p in body["series"] if p[field]}


DAY = timedelta(days=1)
