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
from stats_gateway.core.domain import Metric
from stats_gateway.core.rollups import domain_rollups
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
