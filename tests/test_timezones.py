"""Buckets in local time: DST days (23h/25h), half-hour zones, computed with zoneinfo."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from expected import UTC, bucket_edges, in_range, unix, utc
from support import check_series, generate, ingest, ok

NY, BERLIN, KOLKATA = "America/New_York", "Europe/Berlin", "Asia/Kolkata"


def local_midnight(year, month, day, tz) -> datetime:
    return datetime(year, month, day, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def grid_events(domain: str, start: datetime, end: datetime, every_min: int = 10,
                seed: int = 0) -> list[dict]:
    """One event every ``every_min`` minutes over [start, end) (plus seeded fields)."""
    times = []
    t = start
    while t < end:
        times.append(t)
        t += timedelta(minutes=every_min)
    return generate(domain, seed, times)


def query(client, org, domain, start, end, size, tz, **extra):
    return ok(client, f"/v2/stats/{domain}", org.headers,
              {"scope": "org", "start": start.isoformat(), "end": str(unix(end)),
               "timeBucketSize": size, "timezone": tz, **extra})


DST_DAYS = [
    # zone, local date, hours in that local day
    (NY, (2026, 11, 1), 25),
    (NY, (2026, 3, 8), 23),
    (BERLIN, (2026, 3, 29), 23),
    (BERLIN, (2026, 10, 25), 25),
    (KOLKATA, (2026, 5, 1), 24),
]


@pytest.mark.parametrize("tz,day,hours", DST_DAYS)
def test_local_day_with_day_6h_12h_1h_buckets(client, new_org, tz, day, hours):
    org = new_org()
    start = local_midnight(*day, tz)
    end = local_midnight(*(datetime(*day) + timedelta(days=1)).timetuple()[:3], tz)
    assert (end - start) == timedelta(hours=hours)  # the zone facts themselves
    events = grid_events("storage", start - timedelta(hours=7), end + timedelta(hours=7))
    ingest(client, org, "storage", events)
    per_hour = 6

    # 1d: exactly one bucket, starting at local midnight, holding the whole local day
    body = query(client, org, "storage", start, end, "1d", tz)
    check_series(body, "storage", "", events, start, end, "1d", tz, scope_id=org.id)
    assert [p["ts"] for p in body["series"]] == [unix(start)]
    assert body["series"][0]["requests"] == hours * per_hour

    # 1h: hours consecutive real hours
    body = query(client, org, "storage", start, end, "1h", tz)
    check_series(body, "storage", "", events, start, end, "1h", tz, scope_id=org.id)
    assert [p["ts"] for p in body["series"]] == [unix(start) + 3600 * k for k in range(hours)]
    assert all(p["requests"] == per_hour for p in body["series"])

    # 6h and 12h: local wall-clock 00/06/12/18 and 00/12
    zone = ZoneInfo(tz)
    for size, step in (("6h", 6), ("12h", 12)):
        body = query(client, org, "storage", start, end, size, tz)
        check_series(body, "storage", "", events, start, end, size, tz, scope_id=org.id)
        walls = [datetime(*day, h, tzinfo=zone).astimezone(UTC) for h in range(0, 24, step)]
        assert [p["ts"] for p in body["series"]] == [unix(w) for w in walls]
        spans = [(b - a).total_seconds() / 3600 for a, b in zip(walls, walls[1:] + [end])]
        assert [p["requests"] for p in body["series"]] == [int(s * per_hour) for s in spans]
        assert sum(spans) == hours

    # 30m over the whole day plus the hours around it
    lo, hi = start - timedelta(hours=3), end + timedelta(hours=3)
    body = query(client, org, "storage", lo, hi, "30m", tz)
    check_series(body, "storage", "", events, lo, hi, "30m", tz, scope_id=org.id)


@pytest.mark.parametrize("tz,first_day,days", [(NY, (2026, 10, 29), 6), (NY, (2026, 3, 5), 6),
                                               (BERLIN, (2026, 3, 26), 6),
                                               (BERLIN, (2026, 10, 22), 6)])
def test_days_across_a_dst_change(client, new_org, tz, first_day, days):
    org = new_org()
    start = local_midnight(*first_day, tz)
    end = start + timedelta(days=days)  # not a local midnight after the change
    events = grid_events("ai", start - timedelta(hours=6), end + timedelta(hours=6), 20, seed=3)
    ingest(client, org, "ai", events)
    body = query(client, org, "ai", start, end, "1d", tz)
    points = check_series(body, "ai", "", events, start, end, "1d", tz, scope_id=org.id)
    lengths = [b - a for a, b in zip([p["ts"] for p in points], [p["ts"] for p in points][1:])]
    assert sorted(set(lengths)) in ([23 * 3600, 24 * 3600], [24 * 3600, 25 * 3600])
    local_end = end.astimezone(ZoneInfo(tz))  # 01:00 after spring forward, 23:00 after fall back
    assert local_end.hour in (1, 23)
    local_days = (local_end.date() - datetime(*first_day).date()).days + (local_end.hour > 0)
    assert len(points) == local_days == (days + 1 if local_end.hour == 1 else days)
    for size in ("1h", "6h", "1w", "1mo"):
        body = query(client, org, "ai", start, end, size, tz, metric="activeConversations")
        check_series(body, "ai", "", events, start, end, size, tz, scope_id=org.id,
                     metric="activeConversations")


def test_new_york_week_and_month_containing_fall_back(client, new_org):
    org = new_org()
    start, end = utc(2025, 10, 20), utc(2025, 12, 10)  # 2025-11-02: fall back
    events = grid_events("policies", start - timedelta(days=2), end + timedelta(days=2), 90)
    ingest(client, org, "policies", events)
    body = query(client, org, "policies", start, end, "1w", NY)
    check_series(body, "policies", "", events, start, end, "1w", NY, scope_id=org.id)
    ts = [p["ts"] for p in body["series"]]
    assert ts[0] == unix(utc(2025, 10, 13, 4))  # Monday 00:00 EDT (start is Sunday evening local)
    i = ts.index(unix(utc(2025, 10, 27, 4)))
    assert ts[i + 1] == unix(utc(2025, 11, 3, 5))  # the week holding the change lasts 169h
    body = query(client, org, "policies", start, end, "1mo", NY)
    check_series(body, "policies", "", events, start, end, "1mo", NY, scope_id=org.id)
    assert [p["ts"] for p in body["series"]] == [unix(utc(2025, 10, 1, 4)),
                                                 unix(utc(2025, 11, 1, 4)),
                                                 unix(utc(2025, 12, 1, 5))]


def test_half_hour_zone_hour_buckets_fall_on_half_hours(client, new_org):
    org = new_org()
    start = utc(2026, 5, 1, 10, 10)  # 15:40 IST; local midnight was 2026-04-30T18:30Z
    end = utc(2026, 5, 2, 7, 0)
    events = grid_events("credits", start - timedelta(hours=4), end + timedelta(hours=4), 7)
    ingest(client, org, "credits", events)
    body = query(client, org, "credits", start, end, "1h", KOLKATA)
    points = check_series(body, "credits", "", events, start, end, "1h", KOLKATA,
                          scope_id=org.id)
    assert points[0]["ts"] == unix(utc(2026, 5, 1, 9, 30))
    assert all((p["ts"] - 1800) % 3600 == 0 for p in points)
    assert points[-1]["ts"] == unix(utc(2026, 5, 2, 6, 30))
    for size in ("15m", "6h", "1d"):
        body = query(client, org, "credits", start, end, size, KOLKATA)
        check_series(body, "credits", "", events, start, end, size, KOLKATA, scope_id=org.id)
    body = query(client, org, "credits", start, end, "1d", KOLKATA)
    assert [p["ts"] for p in body["series"]] == [unix(utc(2026, 4, 30, 18, 30)),
                                                 unix(utc(2026, 5, 1, 18, 30))]


def test_quarter_hour_zone_kathmandu(client, new_org):
    org = new_org()
    start, end = utc(2026, 2, 2, 3, 3), utc(2026, 2, 3, 1, 1)
    events = grid_events("private-chat", start - timedelta(hours=2), end + timedelta(hours=2), 4)
    ingest(client, org, "private-chat", events)
    for size in ("1h", "30m", "12h"):
        body = query(client, org, "private-chat", start, end, size, "Asia/Kathmandu")
        points = check_series(body, "private-chat", "", events, start, end, size,
                              "Asia/Kathmandu", scope_id=org.id)
        if size == "1h":
            assert all((p["ts"] - 15 * 60) % 3600 == 0 for p in points)  # +05:45


def test_same_instant_different_zones_change_grouping_not_totals(client, new_org):
    org = new_org()
    start, end = utc(2026, 7, 1), utc(2026, 7, 8)
    events = grid_events("storage", start, end, 37, seed=5)
    ingest(client, org, "storage", events)
    totals = set()
    for tz in ("UTC", NY, BERLIN, KOLKATA, "Pacific/Auckland", "America/St_Johns"):
        body = query(client, org, "storage", start, end, "1d", tz)
        check_series(body, "storage", "", events, start, end, "1d", tz, scope_id=org.id)
        totals.add(body["summary"]["total"])
    assert totals == {len(in_range(events, start, end))}


def test_reference_dst_facts():
    """The oracle agrees with hand-known DST facts."""
    e = bucket_edges(local_midnight(2026, 3, 8, NY), local_midnight(2026, 3, 9, NY), "6h", NY)
    assert [x.hour for x in e] == [5, 10, 16, 22, 4]
    e = bucket_edges(local_midnight(2026, 10, 25, BERLIN), local_midnight(2026, 10, 26, BERLIN),
                     "1h", BERLIN)
    assert len(e) - 1 == 25


HAVANA = "America/Havana"  # Cuba changes clocks at local midnight


def test_ambiguous_local_midnight_havana_fall_back(client, new_org):
    """2026-11-01 in Havana: 01:00 CDT -> 00:00 CST, so local midnight happens twice. The
    local day (and month) starts at the FIRST midnight, 04:00Z, and lasts 25h; a bucket
    never starts after an event it holds."""
    org = new_org()
    start, end = utc(2026, 10, 30, 12), utc(2026, 11, 3, 12)
    events = grid_events("storage", start, end, 10, seed=8)
    ingest(client, org, "storage", events)
    assert local_midnight(2026, 11, 1, HAVANA) == utc(2026, 11, 1, 4)
    for size in ("1d", "6h", "12h", "1mo", "1h"):
        body = query(client, org, "storage", start, end, size, HAVANA)
        check_series(body, "storage", "", events, start, end, size, HAVANA, scope_id=org.id)
    body = query(client, org, "storage", start, end, "1d", HAVANA)
    ts = [p["ts"] for p in body["series"]]
    assert unix(utc(2026, 11, 1, 4)) in ts, ts
    i = ts.index(unix(utc(2026, 11, 1, 4)))
    assert ts[i + 1] - ts[i] == 25 * 3600 and ts[i] - ts[i - 1] == 24 * 3600
    assert body["series"][i]["requests"] == 25 * 6


def test_missing_local_midnight_havana_spring_forward(client, new_org):
    """2026-03-08 in Havana: 00:00 CST -> 01:00 CDT; the local day starts at 05:00Z, 23h."""
    org = new_org()
    start, end = utc(2026, 3, 6, 12), utc(2026, 3, 10, 12)
    events = grid_events("storage", start, end, 10, seed=9)
    ingest(client, org, "storage", events)
    for size in ("1d", "6h", "12h", "1h"):
        body = query(client, org, "storage", start, end, size, HAVANA)
        check_series(body, "storage", "", events, start, end, size, HAVANA, scope_id=org.id)
    body = query(client, org, "storage", start, end, "1d", HAVANA)
    ts = [p["ts"] for p in body["series"]]
    i = ts.index(unix(utc(2026, 3, 8, 5)))
    assert ts[i + 1] - ts[i] == 23 * 3600
