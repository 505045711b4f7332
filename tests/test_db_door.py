"""The engine's one door to the database (core/database.py), pinned by its properties.

* The engine and ingest run over *any* object with the ``Database`` protocol's four
  methods: here one plain psycopg connection on the real test database (no pool, no
  ``db/`` code), answering exactly as the gateway does over HTTP.
* A database bound to a request's ``TenantSession`` runs that org's queries only.
* The pool keeps its bookkeeping to itself: no attribute is ever set on a psycopg
  connection object.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import msgspec
import psycopg
import pytest
from psycopg.rows import dict_row, tuple_row

from domains import DOMAINS
from stats_gateway.config import Settings
from stats_gateway.core.database import Database, TenantSession, WrongTenant
from stats_gateway.core.engine import StatsEngine, gather_all
from stats_gateway.core.ingesting import ingest_batch
from stats_gateway.core.restriction import UNRESTRICTED
from stats_gateway.db.database import PooledDatabase
from stats_gateway.db.pool import GatewayPool
from stats_gateway.db.tenant import APP_ROLE, ORG_SETTING
from tests.support import ingest

STORAGE = next(d for d in DOMAINS if d.name == "storage")


class OneConnection:
    """A ``Database`` over a single connection as the app role: what the protocol asks,
    written from scratch (row-level security entered by its own ``set_config``)."""

    def __init__(self, conn: psycopg.AsyncConnection):
        self.conn = conn
        self.lock = asyncio.Lock()  # one connection: one statement at a time
        self.orgs: list[str] = []  # every org a query ran as

    async def fetch(self, org_id, sql, params=None, *, tuples=False) -> list:
        async with self.transaction(org_id) as conn:
            cur = conn.cursor(row_factory=tuple_row if tuples else dict_row)
            await cur.execute(sql, params)
            return await cur.fetchall()

    @asynccontextmanager
    async def transaction(self, org_id):
        async with self.lock, self.conn.transaction():
            self.orgs.append(org_id)
            await self.conn.execute(f"SELECT set_config('{ORG_SETTING}', %s, true)",
                                    (org_id,))
            yield self.conn

    def can_run_at_once(self, queries: int) -> bool:
        return False

    def in_session(self, session: TenantSession) -> OneConnection:
        return self


def _events(now: datetime) -> list[dict]:
    return [{"eventId": f"d{i}", "ts": (now - timedelta(minutes=37 * i + 5)).isoformat(),
             "bucketId": f"b{i % 3}", "uplBytes": 1000 + i * 7, "dwlBytes": i}
            for i in range(40)]


def test_engine_and_ingest_answer_alike_over_any_database(client, database_url, new_org):
    org = new_org()
    now = datetime.now(UTC).replace(microsecond=0)
    events = _events(now)
    params = {"scope": "org", "window": "24h", "timeBucketSize": "1h"}

    async def through_one_connection():
        async with await psycopg.AsyncConnection.connect(database_url,
                                                         autocommit=True) as conn:
            await conn.execute(f"SET ROLE {APP_ROLE}")
            db = OneConnection(conn)
            assert isinstance(db, Database) and Database not in type(db).__mro__  # structural
            body = json.dumps({"events": events}).encode()
            result = await ingest_batch(db, org.id, STORAGE, body, UNRESTRICTED, now)
            engine = StatsEngine(db, DOMAINS)
            series = await engine.series(org.id, "storage", "", {k: [v] for k, v in
                                                                 params.items()}, now=now)
            return result, msgspec.json.decode(msgspec.json.encode(series)), db.orgs

    result, ours, orgs = asyncio.run(through_one_connection())
    assert (result.received, result.inserted, result.duplicates) == (40, 40, 0)
    assert set(orgs) == {org.id}
    in_range = [e for e in events
                if datetime.fromisoformat(e["ts"]) >= now - timedelta(hours=24)]
    assert ours["summary"]["total"] == len(in_range)  # requests: one per event
    assert sum(p["uplBytes"] for p in ours["series"]) == sum(e["uplBytes"] for e in in_range)
    # the gateway, over its pool, sees the very events ingested through the other door
    r = client.get("/v2/stats/storage", params=params, headers=org.headers)
    assert r.status_code == 200, r.text
    theirs = r.json()
    ours["meta"].pop("end"), theirs["meta"].pop("end")  # "now" differs by the call
    ours["meta"].pop("start"), theirs["meta"].pop("start")
    assert [p for p in ours["series"] if p["requests"]] == \
        [p for p in theirs["series"] if p["requests"]]
    assert ours["summary"] == theirs["summary"]


def test_a_tenant_session_runs_its_own_org_only(client, new_org):
    a, b = new_org(), new_org()
    ingest(client, b, "storage", [{"eventId": "x", "ts": "2026-09-01T10:00:00Z",
                                   "uplBytes": 5}])
    database: PooledDatabase = client.app.state.engine.db

    async def probe():
        as_a = database.in_session(TenantSession(a.id))
        mine = await as_a.fetch(a.id, "SELECT count(*) AS n FROM events_storage")
        with pytest.raises(WrongTenant):
            await as_a.fetch(b.id, "SELECT count(*) AS n FROM events_storage")
        with pytest.raises(WrongTenant):
            async with as_a.transaction(b.id):
                pass
        theirs = await database.in_session(TenantSession(b.id)).fetch(
            b.id, "SELECT sum(upl_bytes) AS s FROM events_storage")
        return mine, theirs

    mine, theirs = client.blocking_portal.call(probe)
    assert mine == [{"n": 0}]
    assert theirs == [{"s": Decimal(5)}]


def test_no_attribute_is_set_on_psycopg_connections(database_url):
    """The pool's checkout check needs when a connection came back; it keeps that itself
    (the old pool wrote ``conn._returned_at``)."""
    settings = Settings(database_url=database_url, data_dir=Path("/nonexistent"))

    async def probe():
        pool = GatewayPool(database_url, settings, min_size=1, max_size=1, open=False)
        await pool.open(wait=True, timeout=30)
        try:
            database = PooledDatabase(pool)
            async with pool.connection() as conn:
                own = set(vars(conn))  # what psycopg itself keeps on the object
            seen = []
            for _ in range(3):  # returned, checked (the fast path) and handed out again
                await database.fetch("00000000-0000-0000-0000-000000000000", "SELECT 1")
                async with pool.connection() as again:
                    seen.append((again is conn, set(vars(again))))
            return own, seen
        finally:
            await pool.close()

    own, seen = asyncio.run(probe())
    assert seen == [(True, own)] * 3


def test_a_cancelled_query_gives_back_no_connection_in_pipeline_mode(database_url):
    """A request's query cancelled mid-pipeline (a sibling query failed, or the client
    left): its connection is closed and replaced, not handed to the next user in pipeline
    mode with an unsettled transaction (where a rate-limit take once never committed and
    held up every other request of its key until the statement timeout). One connection
    in the pool: the next user gets a new one (another server process), in no
    transaction."""
    from psycopg import pq

    from stats_gateway.db.tenant import tenant_connection, tenant_fetch

    settings = Settings(database_url=database_url, data_dir=Path("/nonexistent"))
    org = "00000000-0000-0000-0000-000000000000"

    async def probe():
        pool = GatewayPool(database_url, settings, min_size=1, max_size=1, open=False)
        await pool.open(wait=True, timeout=30)
        found = []
        try:
            for delay in (0.05, 0.2):
                for cancelled in (tenant_fetch(pool, org, "SELECT pg_sleep(2)"),
                                  _sleep_in_transaction(tenant_connection(pool, org))):
                    async with pool.connection() as conn:
                        before = conn.info.backend_pid
                    task = asyncio.ensure_future(cancelled)
                    await asyncio.sleep(delay)  # the sleep is running: mid-pipeline
                    task.cancel()
                    with pytest.raises(asyncio.CancelledError):
                        await task
                    async with pool.connection() as conn:
                        found.append((conn.info.backend_pid != before,
                                      conn.info.transaction_status))
        finally:
            await pool.close()
        return found

    assert asyncio.run(probe()) == [(True, pq.TransactionStatus.IDLE)] * 4


async def _sleep_in_transaction(connection):
    async with connection as conn:
        await conn.execute("SELECT 1")
        await conn.execute("SELECT pg_sleep(2)")


def test_queries_one_after_the_other_close_those_a_failure_left_unstarted():
    """When the pool has no room, a request's queries run in turn; the first failure is
    raised as itself and the coroutines not yet started are closed, so none is left
    never awaited (a RuntimeWarning each, seen in the database-restart fault test)."""
    async def fails():
        raise psycopg.OperationalError("the server went away")

    async def never() -> int:
        return 1

    later = never()
    with pytest.raises(psycopg.OperationalError, match="went away"):
        asyncio.run(gather_all([fails(), later], at_once=False))
    assert later.cr_frame is None  # closed: a coroutine not closed keeps its frame
