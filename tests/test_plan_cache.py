"""Repeated statements keep plans made for their own parameters (issue 10).

psycopg prepares a statement on its 5th execution; under PostgreSQL's default
``plan_cache_mode = auto`` the server then switches it to a generic plan after 5 more
whenever that plan's estimate (made without the values) looks no dearer. For a query
over a range of a year that estimate is a few hundred rows, so the generic plan walks the
(org_id, ts) index over the whole year where the custom plan scans the table: a dashboard
repeating one request got 4-40x slower within a minute. Every connection the product opens
sets ``plan_cache_mode = force_custom_plan`` (``stats_gateway/db/connect.py``).

The data: one org's AI events over the last year, ingested through the API into a database
of this module's own (so its statistics are those of this data alone), then ANALYZEd. The
gateway runs with a one-connection pool, so every request below goes through the same
session, whose prepared statements ``pg_prepared_statements`` shows (PostgreSQL 14+).
"""

from __future__ import annotations

import json
import random
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from litestar.testing import TestClient
from psycopg import sql
from psycopg.conninfo import make_conninfo
from support import ai_event, ingest

from conftest import Org, throwaway_database
from domains import DOMAINS
from stats_gateway.config import Settings
from stats_gateway.db.connect import PLAN_CACHE_MODE, connect, connect_options
from stats_gateway.db.tenant import tenant_fetch
from stats_gateway.http.app import create_app

REPEATS = 30  # well past psycopg's 5 and the server's 5 more
EVENTS = 30_000
DOMAIN = "ai"
TABLE = next(d.table for d in DOMAINS if d.name == DOMAIN)
MARK = "plan-cache-test"  # finds the test's own statement in pg_prepared_statements
RANGE_QUERY = (f"SELECT /* {MARK} */ count(*), sum(tokens_in) FROM {TABLE} "
               "WHERE org_id = %(org)s AND ts >= %(start)s AND ts < %(end)s")
PREPARED = "SELECT name, statement, generic_plans, custom_plans FROM pg_prepared_statements"


@pytest.fixture(scope="module")
def plan_db(server_url) -> Iterator[str]:
    """A database of this module's own, dropped afterwards."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        if conn.info.server_version < 140000:
            pytest.skip("pg_prepared_statements counts generic plans from PostgreSQL 14")
    with throwaway_database(server_url, "sg_plan") as url:
        yield url


@pytest.fixture(scope="module")
def gateway(plan_db) -> Iterator[TestClient]:
    """The gateway as ``create_app`` builds it, on a one-connection pool."""
    app = create_app(Settings(database_url=plan_db, data_dir=Path("/nonexistent"),
                              rate_limit="off", pool_min=1, pool_max=1))
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="module")
def org(plan_db, gateway) -> Org:
    """One org with ``EVENTS`` AI events spread over the last year, ingested, ANALYZEd."""
    with psycopg.connect(plan_db, autocommit=True) as conn:
        owner = Org(conn, "plan-cache")
    rng = random.Random(10)
    now = datetime.now(UTC)
    events = [ai_event(rng, i, now - timedelta(seconds=rng.uniform(60, 365 * 86400)))
              for i in range(EVENTS)]
    ingest(gateway, owner, DOMAIN, events)
    with psycopg.connect(plan_db, autocommit=True) as conn:
        conn.execute("ANALYZE")
    return owner


def year_params(org_id: str) -> dict:
    end = datetime.now(UTC) + timedelta(days=1)
    return {"org": uuid.UUID(org_id), "start": end - timedelta(days=367), "end": end}


def pool_call(client: TestClient, fn):
    """Run ``fn(pool)`` on the app's event loop, with the app's own pool."""
    async def call():
        return await fn(client.app.state.engine.pool)
    with client.portal() as portal:
        return portal.call(call)


def explain_execute(name: str, params: dict) -> sql.Composed:
    """``EXPLAIN EXECUTE`` of prepared statement ``name`` with ``params`` (in the query's
    placeholder order), which uses the statement's cached plan: generic or custom."""
    args = sql.SQL(", ").join(sql.Literal(params[k]) for k in ("org", "start", "end"))
    return sql.SQL("EXPLAIN (FORMAT JSON) EXECUTE {}({})").format(sql.Identifier(name), args)


def assert_custom_plan(plan, params: dict) -> None:
    """A plan made for the values: they appear in it, and no ``$n`` placeholder does."""
    text = json.dumps(plan)
    assert not re.search(r"\$\d", text), f"generic plan (placeholders left): {text}"
    assert str(params["org"]) in text, f"the org id is not in the plan: {text}"


def test_repeated_gateway_requests_keep_custom_plans(gateway, org):
    """30 identical workspace breakdowns and 30 series through the app: every statement
    the pooled connection prepared was planned afresh each time, none generically."""
    paths = [f"/v2/stats/{DOMAIN}/breakdown/models?scope=workspace&id=w1&window=365d",
             f"/v2/stats/{DOMAIN}?scope=org&window=30d"]
    for path in paths:
        for _ in range(REPEATS):
            r = gateway.get(path, headers=org.headers)
            assert r.status_code == 200, r.text

    async def session_state(pool):
        async with pool.connection() as conn:
            mode = (await (await conn.execute("SHOW plan_cache_mode")).fetchone())[0]
            timeout = (await (await conn.execute("SHOW statement_timeout")).fetchone())[0]
            rows = await (await conn.execute(PREPARED)).fetchall()
            return mode, timeout, rows

    mode, timeout, prepared = pool_call(gateway, session_state)
    generic = [(statement[:120], g) for _, statement, g, _ in prepared if g]
    assert not generic, f"statements went generic: {generic}"
    reused = [row for row in prepared if row[3] >= REPEATS - 10]
    assert reused, f"the gateway's statements were not prepared and reused: {prepared}"
    assert mode == PLAN_CACHE_MODE
    assert timeout == "15s"  # the app's own connection options are still there


def test_prepared_year_range_keeps_a_custom_plan_on_the_gateway_pool(gateway, org):
    """The gateway's read path (``tenant_fetch`` on the app's pool) runs one range query
    over the whole year 30 times; the plan it then holds for those values is theirs."""
    params = year_params(org.id)

    async def run(pool):
        for _ in range(REPEATS):
            rows = await tenant_fetch(pool, org.id, RANGE_QUERY, params)
            assert rows[0][0] == EVENTS
        ((name, _, generic, custom),) = [row for row in await tenant_fetch(pool, org.id, PREPARED)
                                        if MARK in row[1]]
        async with pool.connection() as conn:
            plan = (await (await conn.execute(explain_execute(name, params))).fetchone())[0]
        return generic, custom, plan

    generic, custom, plan = pool_call(gateway, run)
    assert_custom_plan(plan, params)
    assert generic == 0 and custom >= REPEATS - 10


def test_cli_connections_keep_custom_plans(plan_db, org):
    """The connection the CLI commands open (``load``, ``rebuild``, ``migrate``, the demo)."""
    params = year_params(org.id)
    with connect(plan_db, autocommit=True) as conn:
        for _ in range(REPEATS):
            assert conn.execute(RANGE_QUERY, params, prepare=True).fetchone()[0] == EVENTS
        ((name, _, generic, custom),) = [row for row in conn.execute(PREPARED).fetchall()
                                        if MARK in row[1]]
        plan = conn.execute(explain_execute(name, params)).fetchone()[0]
        assert_custom_plan(plan, params)
        assert generic == 0 and custom >= REPEATS
        assert conn.execute("SHOW plan_cache_mode").fetchone()[0] == PLAN_CACHE_MODE


def test_options_in_the_url_are_kept(plan_db):
    """The URL's own ``options`` still apply, and a plan_cache_mode set there wins."""
    url = make_conninfo(plan_db, options="-c statement_timeout=4321 -c work_mem=5MB")
    with connect(url) as conn:
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == "4321ms"
        assert conn.execute("SHOW work_mem").fetchone()[0] == "5MB"
        assert conn.execute("SHOW plan_cache_mode").fetchone()[0] == PLAN_CACHE_MODE
    with connect(make_conninfo(plan_db, options="-c plan_cache_mode=auto")) as conn:
        assert conn.execute("SHOW plan_cache_mode").fetchone()[0] == "auto"


def test_connect_options_order(monkeypatch):
    monkeypatch.delenv("PGOPTIONS", raising=False)
    monkeypatch.delenv("STATS_GATEWAY_WORK_MEM", raising=False)
    monkeypatch.delenv("STATS_GATEWAY_PARALLEL_WORKERS", raising=False)
    monkeypatch.delenv("STATS_GATEWAY_JIT", raising=False)
    mine = (f"-c plan_cache_mode={PLAN_CACHE_MODE} -c work_mem=32MB "
            "-c max_parallel_workers_per_gather=0 -c jit=off")
    assert connect_options("dbname=x") == mine
    assert connect_options("dbname=x options='-c a=1'", "-c b=2") == f"{mine} -c a=1 -c b=2"
    monkeypatch.setenv("PGOPTIONS", "-c c=3")  # libpq's fallback when the URL has none
    assert connect_options("dbname=x", "-c b=2") == f"{mine} -c c=3 -c b=2"
    assert connect_options("dbname=x options='-c a=1'") == f"{mine} -c a=1"


def test_work_mem_is_set_on_every_connection_and_checked(plan_db, monkeypatch):
    """32MB unless ``STATS_GATEWAY_WORK_MEM`` says otherwise; anything but a size is
    refused before it reaches the options string (it could carry other settings)."""
    monkeypatch.delenv("STATS_GATEWAY_WORK_MEM", raising=False)
    with connect(plan_db) as conn:
        assert conn.execute("SHOW work_mem").fetchone()[0] == "32MB"
    monkeypatch.setenv("STATS_GATEWAY_WORK_MEM", "96MB")
    with connect(plan_db) as conn:
        assert conn.execute("SHOW work_mem").fetchone()[0] == "96MB"
    for bad in ("32MB -c statement_timeout=0", "lots", "0MB", "32mb"):
        monkeypatch.setenv("STATS_GATEWAY_WORK_MEM", bad)
        with pytest.raises(ValueError, match="STATS_GATEWAY_WORK_MEM"):
            connect_options("dbname=x")


@pytest.mark.parametrize(("env", "setting", "server", "ours", "asked", "bad"), [
    # no parallel workers per statement (docs/operations.md); PostgreSQL's default is 2
    ("STATS_GATEWAY_PARALLEL_WORKERS", "max_parallel_workers_per_gather", "2", "0", "3",
     ("0 -c statement_timeout=0", "-1", "two", "007", "100")),
    # no JIT compilation (db/connect.py has the measurements); PostgreSQL's default is on
    ("STATS_GATEWAY_JIT", "jit", "on", "off", "on", ("off -c statement_timeout=0", "OFF",
                                                      "no", "")),
])
def test_a_setting_is_ours_unless_asked_and_checked(plan_db, monkeypatch, env, setting,
                                                    server, ours, asked, bad):
    """Every connection gets the product's value unless ``env`` asks for another; a value
    of the wrong form is refused before it reaches the options string (it could carry
    other settings)."""
    monkeypatch.delenv(env, raising=False)
    monkeypatch.delenv("PGOPTIONS", raising=False)
    with psycopg.connect(plan_db) as conn:  # not through connect(): the server's default
        assert conn.execute(f"SHOW {setting}").fetchone()[0] == server
    with connect(plan_db) as conn:
        assert conn.execute(f"SHOW {setting}").fetchone()[0] == ours
    monkeypatch.setenv(env, asked)
    with connect(plan_db) as conn:
        assert conn.execute(f"SHOW {setting}").fetchone()[0] == asked
    for value in bad:
        monkeypatch.setenv(env, value)
        with pytest.raises(ValueError, match=env):
            connect_options("dbname=x")
