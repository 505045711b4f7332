"""Raw-event retention (docs/retention.md): whole month partitions dropped, an org's own
retention honoured, and the rollups still answering long windows with the values of every
event ever ingested (computed here from the events sent)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domains.private_chat import DOMAIN as CHAT
from retention_support import (
    DAY, day_points, first_of_month, midnight, new_org, own_database, per_day,
)
from stats_gateway.cli import main
from stats_gateway.config import DATABASE_URL_ENV
from stats_gateway.db.partitions import existing_months, maintain_partitions
from stats_gateway.db.retention import apply_retention, set_override
from support import generate, ingest, ok, post_events, random_times
from expected import parse_ts

NOW = datetime.now(UTC)
PATH = "/v2/stats/private-chat"


@pytest.fixture(scope="module")
def world(server_url):
    """Two orgs' private-chat events over the last 14 months; the second org keeps raw
    events 400 days (an override of the domain's 180); retention applied once."""
    for own in own_database(server_url, "sg_ret"):
        a, b = new_org(own, "ret-a"), new_org(own, "ret-b")
        span = (NOW - timedelta(days=420), NOW - timedelta(hours=1))
        events_a = generate("private-chat", 1, random_times(1, *span, 1500), prefix="a-")
        events_b = generate("private-chat", 2, random_times(2, *span, 1500), prefix="b-")
        # the start of a range before A's horizon, 150 s past midnight, with one event in
        # the first 5 minutes (raw only: gone) and one just after (in the 5-minute rollup)
        sliver = midnight(NOW - timedelta(days=300)) + timedelta(seconds=150)
        events_a += [{"eventId": "a-sliver-in", "ts": (sliver + timedelta(seconds=10)).isoformat(),
                      "model": "gpt-4o", "userId": "u1", "tokensIn": 7},
                     {"eventId": "a-sliver-after", "ts": (sliver + timedelta(minutes=10)).isoformat(),
                      "model": "gpt-4o", "userId": "u1", "tokensIn": 11}]
        ingest(own.client, a, "private-chat", events_a, chunk=1000)
        ingest(own.client, b, "private-chat", events_b, chunk=1000)
        set_override(own.db, b.id, CHAT, 400)
        # the months got partitions as they came (earlier daily runs would have made them)
        with own.db.transaction():
            maintain_partitions(own.db, CHAT, NOW)
        removed = apply_retention(own.db, (CHAT,), NOW)
        yield own, a, b, events_a, events_b, removed, sliver


def horizons():
    """From when each org's raw events are kept: the month start on or before now - days."""
    return first_of_month(NOW - timedelta(days=180)), first_of_month(NOW - timedelta(days=400))


def stored(own, org) -> list[datetime]:
    return [t for (t,) in own.db.execute(
        f"SELECT ts FROM {CHAT.table} WHERE org_id = %s", (org.id,)).fetchall()]


def test_old_months_are_dropped_whole_and_each_org_keeps_its_own_retention(world):
    own, a, b, events_a, events_b, removed, _ = world
    keep_a, keep_b = horizons()
    times_a = [parse_ts(e["ts"]) for e in events_a]
    times_b = [parse_ts(e["ts"]) for e in events_b]
    # what is left is exactly the events within each org's retention
    assert sorted(stored(own, a)) == sorted(t for t in times_a if t >= keep_a)
    assert sorted(stored(own, b)) == sorted(t for t in times_b if t >= keep_b)
    # months before the longest retention are gone as whole partitions; the rest of
    # A's old events went row by row (B still needs those months)
    months = existing_months(own.db, CHAT)
    assert min(months) == keep_b
    dropped = [r for r in removed if r.how == "partition dropped"]
    deleted = [r for r in removed if r.how == "rows deleted"]
    assert dropped and all(r.table.startswith(f"{CHAT.table}_p") for r in dropped)
    assert sum(r.rows for r in dropped) == (sum(t < keep_b for t in times_a)
                                            + sum(t < keep_b for t in times_b))
    assert sum(r.rows for r in deleted) == sum(keep_b <= t < keep_a for t in times_a)
    (in_default,) = own.db.execute(
        f"SELECT count(*) FROM {CHAT.table}_pdefault").fetchone()
    assert in_default == 0  # every month with events got its own partition first
    recorded = dict(own.db.execute(
        "SELECT org_id::text, raw_from FROM raw_horizons WHERE domain = %s",
        (CHAT.name,)).fetchall())
    assert recorded[a.id] == keep_a and recorded[b.id] == keep_b


@pytest.mark.parametrize("org_index", [0, 1])
def test_daily_rollups_answer_a_long_window_with_every_event_ever_sent(world, org_index):
    own, a, b, events_a, events_b, *_ = world
    org, events = ((a, events_a), (b, events_b))[org_index]
    start, end = midnight(NOW - timedelta(days=415)), midnight(NOW) + DAY
    body = ok(own.client, PATH, org.headers, {
        "scope": "org", "start": start.isoformat(), "end": end.isoformat(),
        "timeBucketSize": "1d"})
    assert day_points(body, "requests") == per_day(events, start, end)
    assert day_points(body, "tokensIn") == per_day(events, start, end, "tokensIn")
    assert [w["code"] for w in body["meta"]["warnings"]] == ["raw_events_expired"]


def test_raw_events_after_the_horizon_answer_exactly_without_a_warning(world):
    own, a, _, events_a, *_ = world
    keep_a, _ = horizons()
    start = keep_a + timedelta(hours=3, seconds=17)  # unaligned: raw events at the edge
    end = midnight(NOW) + DAY
    body = ok(own.client, PATH, a.headers, {
        "scope": "org", "start": start.isoformat(), "end": end.isoformat(),
        "timeBucketSize": "1d"})
    assert day_points(body, "requests") == per_day(events_a, start, end)
    assert "warnings" not in body["meta"]


def test_a_range_starting_in_a_gone_slot_counts_the_rollups_whole_slots_only(world):
    """Before the horizon, the range's first 5-minute slot is cut by its start: its raw
    events are gone and no rollup holds that part alone, so it counts nothing (as the
    documentation and the warning say); every whole slot after it is exact."""
    own, a, _, events_a, _, _, sliver = world
    end = sliver + timedelta(days=2) - timedelta(seconds=150)
    body = ok(own.client, PATH, a.headers, {
        "scope": "org", "start": sliver.isoformat(), "end": end.isoformat(),
        "timeBucketSize": "1d"})
    whole_slots_from = sliver + timedelta(seconds=150)  # the next 5-minute boundary
    assert day_points(body, "requests") == per_day(events_a, whole_slots_from, end)
    assert per_day(events_a, sliver, end) != per_day(events_a, whole_slots_from, end)
    assert body["meta"]["warnings"][0]["code"] == "raw_events_expired"


def test_a_late_event_into_a_dropped_month_is_taken_and_counted_by_the_rollups(world):
    own, a, _, events_a, *_ = world
    late_ts = midnight(NOW - timedelta(days=390)) + timedelta(hours=5)
    late = {"eventId": "a-late", "ts": late_ts.isoformat(), "model": "gpt-4o",
            "userId": "u2", "tokensIn": 5}
    r = post_events(own.client, a.headers, "private-chat", [late])
    assert r.status_code == 200 and r.json()["inserted"] == 1, r.text
    day = midnight(late_ts)
    body = ok(own.client, PATH, a.headers, {
        "scope": "org", "start": day.isoformat(), "end": (day + DAY).isoformat(),
        "timeBucketSize": "1d"})
    assert day_points(body, "requests") == per_day(events_a + [late], day, day + DAY)
    # it waits in DEFAULT (its month is gone); the next run removes the raw row only
    again = apply_retention(own.db, (CHAT,), NOW)
    assert [(r.how, r.rows) for r in again] == [("rows deleted", 1)]
    body = ok(own.client, PATH, a.headers, {
        "scope": "org", "start": day.isoformat(), "end": (day + DAY).isoformat(),
        "timeBucketSize": "1d"})
    assert day_points(body, "requests") == per_day(events_a + [late], day, day + DAY)


def test_an_org_override_is_set_shown_and_reset_by_the_cli(world, monkeypatch, capsys):
    own = world[0]
    org = new_org(own, "ret-cli")
    monkeypatch.setenv(DATABASE_URL_ENV, own.url)
    assert main(["retention", "set", "--org", "ret-cli", "--domain", "private-chat",
                 "--days", "30"]) == 0
    assert own.db.execute("SELECT days FROM retention_overrides WHERE org_id = %s "
                          "AND domain = 'private-chat'", (org.id,)).fetchone() == (30,)
    capsys.readouterr()
    assert main(["retention", "show", "--org", org.id]) == 0
    shown = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    mine = {row[0]: row[2] for row in shown if row[1] == org.id}
    assert mine["private-chat"] == "30 days" and mine["calls"] == "90 days"
    assert main(["retention", "set", "--org", org.id, "--domain", "private-chat",
                 "--default"]) == 0
    assert own.db.execute("SELECT count(*) FROM retention_overrides WHERE org_id = %s",
                          (org.id,)).fetchone() == (0,)
    with pytest.raises(SystemExit):
        main(["retention", "set", "--org", org.id, "--domain", "private-chat", "--days", "0"])
