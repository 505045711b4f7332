"""Rollups are the only history left where retention dropped raw events: a rebuild from raw
events (``stats-gateway rebuild``, or the start-up migration building a new or changed
rollup) would erase it, so both refuse, naming whose history, unless told to go ahead."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from domains import DOMAINS
from domains.private_chat import DOMAIN as CHAT
from retention_support import new_org, own_database
from stats_gateway.bulk.commands import rebuild_command
from stats_gateway.config import Settings
from stats_gateway.core.aggregations import Max
from stats_gateway.core.domain import Cube, Metric
from stats_gateway.core.rollup_sql import sketch_rollups
from stats_gateway.core.rollups import default_cubes, domain_rollups, source_rollup
from stats_gateway.db.migrate import REBUILD_EXPIRED_ENV, MigrationError, migrate
from support import generate, ingest, random_times

NOW = datetime.now(UTC)


@pytest.fixture
def expired(server_url):
    """An org with a month of private-chat events whose raw events before a horizon are
    marked gone (the row retention writes), and one without."""
    for own in own_database(server_url, "sg_guard"):
        old, fresh = new_org(own, "guard-old"), new_org(own, "guard-fresh")
        times = random_times(3, NOW - timedelta(days=30), NOW - timedelta(hours=1), 300)
        ingest(own.client, old, "private-chat", generate("private-chat", 3, times))
        ingest(own.client, fresh, "private-chat", generate("private-chat", 4, times))
        horizon = datetime(NOW.year, NOW.month, 1, tzinfo=UTC)
        own.db.execute("INSERT INTO raw_horizons (org_id, domain, raw_from) "
                       "VALUES (%s, %s, %s)", (old.id, CHAT.name, horizon))
        yield own, old, fresh, horizon


def rollup_rows(own, org) -> dict[str, list]:
    return {r.table: own.db.execute(f"SELECT * FROM {r.table} WHERE org_id = %s ORDER BY 1, 2, 3",
                                    (org.id,)).fetchall() for r in domain_rollups(CHAT)}


def test_rebuild_refuses_where_raw_events_are_gone_unless_forced(expired, capsys):
    own, old, fresh, horizon = expired
    settings = Settings(database_url=own.url, data_dir=Path("/nonexistent"))
    before = rollup_rows(own, old)
    own.db.execute(f"DELETE FROM {CHAT.table} WHERE org_id = %s", (old.id,))  # retention did
    assert rebuild_command(settings, [CHAT.name], old.id) == 1
    err = capsys.readouterr().err
    assert old.id in err and f"before {horizon:%Y-%m-%d} are gone" in err
    assert "nothing was changed" in err and fresh.id not in err
    assert rollup_rows(own, old) == before  # the history is still there
    # every org at once is refused too; an org without a horizon rebuilds
    assert rebuild_command(settings, [CHAT.name], None) == 1
    assert rebuild_command(settings, [CHAT.name], fresh.id) == 0
    # --force goes ahead: the rollups now hold what the raw events hold, nothing
    assert rebuild_command(settings, [CHAT.name], old.id, force=True) == 0
    assert all(rows == [] for rows in rollup_rows(own, old).values())


def test_a_new_or_changed_rollup_is_not_built_where_raw_events_are_gone(expired,
                                                                        monkeypatch):
    own, old, _, _ = expired
    more = dataclasses.replace(CHAT, metrics=CHAT.metrics + (
        Metric(name="tokensInMax", agg=Max("tokens_in")),))
    domains = tuple(more if d.name == CHAT.name else d for d in DOMAINS)
    with pytest.raises(MigrationError) as refused:
        migrate(own.db, domains)
    assert old.id in str(refused.value) and REBUILD_EXPIRED_ENV in str(refused.value)
    # refused whole: the old rollups still answer, the new ones were not made
    tables = {t for (t,) in own.db.execute("SELECT name FROM rollup_tables").fetchall()}
    assert {r.table for r in domain_rollups(CHAT)} <= tables
    assert not {r.table for r in domain_rollups(more)} - {r.table for r in domain_rollups(CHAT)} \
        & tables
    monkeypatch.setenv(REBUILD_EXPIRED_ENV, "1")
    migrate(own.db, domains)
    tables = {t for (t,) in own.db.execute("SELECT name FROM rollup_tables").fetchall()}
    assert {r.table for r in domain_rollups(more)} <= tables


def test_a_new_coarser_grain_is_merged_from_the_finest_where_raw_events_are_gone(expired):
    """A grain added to a cube reads no raw event: its slots merge the cube's finest rows
    (sums added, newest time kept, HyperLogLog registers at their largest rank), so it is
    built even where retention dropped the raw events, and holds exactly that merge
    (computed here from the daily rows, weeks starting on Mondays)."""
    own, old, _, _ = expired
    own.db.execute(f"DELETE FROM {CHAT.table} WHERE org_id = %s", (old.id,))  # retention did
    users = next(c for c in default_cubes(CHAT) if c.name == "users")
    weekly = dataclasses.replace(users, grains=(*users.grains, "7d"),
                                 sketch_grains=(*users.sketch_grains, "7d"))
    more = dataclasses.replace(CHAT, rollups=tuple(
        weekly if c.name == "users" else c for c in default_cubes(CHAT)))
    domains = tuple(more if d.name == CHAT.name else d for d in DOMAINS)
    before = {t for (t,) in own.db.execute("SELECT name FROM rollup_tables").fetchall()}
    migrate(own.db, domains)  # no MigrationError: nothing read the raw events
    daily, new = (next(r for r in domain_rollups(more) if r.cube.name == "users"
                       and r.grain == g) for g in ("1d", "7d"))
    after = {t for (t,) in own.db.execute("SELECT name FROM rollup_tables").fetchall()}
    assert after - before == {new.table, new.table.replace("ru_", "rd_", 1)}

    def week(t: datetime) -> datetime:
        return datetime(t.year, t.month, t.day, tzinfo=UTC) - timedelta(days=t.weekday())

    def rows(table):
        return own.db.execute(f"SELECT * FROM {table} WHERE org_id = %s", (old.id,)).fetchall()

    expected: dict[tuple, list] = {}
    for org, slot, user, ws, repo, t_in, t_out, requests, last in rows(daily.table):
        acc = expected.setdefault((org, week(slot), user, ws, repo), [0, 0, 0, None])
        acc[0] += t_in or 0
        acc[1] += t_out or 0
        acc[2] += requests or 0
        acc[3] = last if acc[3] is None or (last and last > acc[3]) else acc[3]
    got = {tuple(r[:5]): [r[5] or 0, r[6] or 0, r[7] or 0, r[8]] for r in rows(new.table)}
    assert got == expected and len(got) > 10
    sketches = {t.rollup.grain: t for t in sketch_rollups(more) if t.rollup.cube.name == "users"}
    merged: dict[tuple, dict[int, int]] = {}
    for org, slot, user, ws, repo, codes in rows(sketches["1d"].table):
        registers = merged.setdefault((org, week(slot), user, ws, repo), {})
        for code in codes or ():
            registers[code >> 6] = max(registers.get(code >> 6, 0), code)
    got_sketches = {tuple(r[:5]): r[5] for r in rows(sketches["7d"].table)}
    assert got_sketches == {k: sorted(v.values()) for k, v in merged.items()}
    assert any(len(codes) > 1 for codes in got_sketches.values())


def test_a_new_cube_is_merged_from_an_earlier_cube_where_raw_events_are_gone(expired):
    """A cube added beside the defaults reads no raw event either: its finest grain merges
    the rows of the first earlier cube holding its columns on a dividing grid (here a
    workspace cube from the scope cube's hours, its days from its own hours), so it is
    built where retention dropped the raw events, and holds that merge (computed here from
    the scope cube's hourly rows)."""
    own, old, _, _ = expired
    own.db.execute(f"DELETE FROM {CHAT.table} WHERE org_id = %s", (old.id,))  # retention did
    workspaces = Cube(name="workspaces", columns=("workspace_id",), grains=("1h", "1d"))
    more = dataclasses.replace(CHAT, rollups=(*default_cubes(CHAT), workspaces))
    domains = tuple(more if d.name == CHAT.name else d for d in DOMAINS)
    hourly, daily = (r for r in domain_rollups(more) if r.cube.name == "workspaces")
    scope_hours = next(r for r in domain_rollups(more) if r.cube.name == "scope"
                       and r.grain == "1h")
    assert source_rollup(hourly) == scope_hours and source_rollup(daily) == hourly
    migrate(own.db, domains)  # no MigrationError: nothing read the raw events

    def day(t: datetime) -> datetime:
        return datetime(t.year, t.month, t.day, tzinfo=UTC)

    expected_hours: dict[tuple, list] = {}
    expected_days: dict[tuple, list] = {}
    for org, slot, ws, _repo, t_in, t_out, requests, last in own.db.execute(
            f"SELECT * FROM {scope_hours.table} WHERE org_id = %s", (old.id,)).fetchall():
        for expected, key in ((expected_hours, (org, slot, ws)),
                              (expected_days, (org, day(slot), ws))):
            acc = expected.setdefault(key, [0, 0, 0, None])
            acc[0] += t_in or 0
            acc[1] += t_out or 0
            acc[2] += requests or 0
            acc[3] = last if acc[3] is None or (last and last > acc[3]) else acc[3]
    for rollup, expected in ((hourly, expected_hours), (daily, expected_days)):
        got = {tuple(r[:3]): [r[3] or 0, r[4] or 0, r[5] or 0, r[6]] for r in own.db.execute(
            f"SELECT * FROM {rollup.table} WHERE org_id = %s", (old.id,)).fetchall()}
        assert got == expected and len(got) > 10, rollup.table
    assert len({ws for _, _, ws in expected_days}) > 1
