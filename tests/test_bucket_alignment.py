"""Fixed buckets (1m…1h) restart at each local midnight, so an event's bucket depends on
the event alone, never on where the queried range starts (issue 11, point 7).

Australia/Lord_Howe moves its clocks by 30 minutes (+10:30 <-> +11): its local midnights
are 13:30Z in winter and 13:00Z in summer, so one even 1h grid cannot hold them all. The
expected bucket is computed here per event, with zoneinfo alone: the local day holding the
event, that day's midnight, whole steps from it, cut at the next midnight.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from expected import UTC, unix, utc
from support import generate, ingest, ok
from stats_gateway.core.sql import bucket_keys
from stats_gateway.core.timebuckets import BUCKET_SIZES, count_buckets, make_plan

LORD_HOWE, NY, BERLIN, KOLKATA = ("Australia/Lord_Howe", "America/New_York",
                                  "Europe/Berlin", "Asia/Kolkata")
# the 2026 shifts: Lord_Howe 04-05 02:00 +11 -> 01:30 +10:30, 10-04 02:00 -> 02:30 +11
SHIFTS = {LORD_HOWE: [utc(2026, 4, 4, 15), utc(2026, 10, 3, 15, 30)],
          NY: [utc(2026, 3, 8, 7), utc(2026, 11, 1, 6)],
          BERLIN: [utc(2026, 3, 29, 1), utc(2026, 10, 25, 1)],
          KOLKATA: [utc(2026, 3, 1), utc(2026, 9, 1)]}  # no DST: plain reference days


def midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def expected_bucket(event: datetime, step: timedelta, tz: str) -> datetime:
    """The start of the bucket holding ``event``: its local day's midnight + whole steps."""
    zone = ZoneInfo(tz)
    day = event.astimezone(zone).date()
    first = midnight(day, zone)
    if first > event:  # a day starting at a repeated midnight's earlier instant
        day -= timedelta(days=1)
        first = midnight(day, zone)
    start = first + (event - first) // step * step
    assert start < midnight(day + timedelta(days=1), zone)
    return start


def bucket_of(keys: list[int], event: datetime) -> datetime:
    return datetime.fromtimestamp(max(k for k in keys if k <= unix(event)), UTC)


def around(shift: datetime) -> list[datetime]:
    """Events from 30 h before to 30 h after a shift, every 17 minutes."""
    return [shift - timedelta(hours=30) + timedelta(minutes=17 * i) for i in range(212)]


def starts_before(event: datetime) -> list[datetime]:
    """Range starts on several days and times of day before ``event``."""
    return [event - timedelta(hours=h, minutes=m)
            for h, m in ((0, 0), (0, 13), (5, 0), (11, 30), (23, 45), (26, 0), (49, 20),
                         (24 * 9, 0), (24 * 40, 7))]


@pytest.mark.parametrize("tz", list(SHIFTS))
@pytest.mark.parametrize("size", ["1h", "30m", "15m"])
def test_an_events_bucket_does_not_depend_on_the_start(tz, size):
    step = BUCKET_SIZES[size].step
    for shift in SHIFTS[tz]:
        for event in around(shift)[::7]:
            want = expected_bucket(event, step, tz)
            for start in starts_before(event):
                end = event + timedelta(hours=3, minutes=1)
                plan = make_plan(start, end, BUCKET_SIZES[size], tz)
                keys = bucket_keys(plan)
                assert bucket_of(keys, event) == want, (tz, size, event, start)
                assert len(keys) == count_buckets(start, end, BUCKET_SIZES[size], ZoneInfo(tz))
                assert keys == sorted(set(keys))


def test_lord_howe_days_of_23_5_and_24_5_hours():
    """Each local day has 1h buckets from its midnight; the last one of the shift days is
    30 minutes, and the next day starts at its own midnight."""
    zone = ZoneInfo(LORD_HOWE)
    for day, hours in ((date(2026, 4, 5), 24.5), (date(2026, 10, 4), 23.5)):
        first, nxt = midnight(day, zone), midnight(day + timedelta(days=1), zone)
        assert (nxt - first) / timedelta(hours=1) == hours  # the zone facts themselves
        start = first - timedelta(hours=2)
        keys = bucket_keys(make_plan(start, nxt + timedelta(hours=2), BUCKET_SIZES["1h"],
                                     LORD_HOWE))
        inside = [k for k in keys if unix(first) <= k < unix(nxt)]
        assert inside == [unix(first) + 3600 * i for i in range(int(hours + 0.5))]
        assert unix(nxt) in keys and unix(nxt) - inside[-1] == 1800


def test_whole_hour_zones_keep_the_even_grid():
    """Where every midnight is whole steps apart the plan stays a date_bin grid."""
    for tz in (NY, BERLIN, KOLKATA, "UTC"):
        plan = make_plan(utc(2026, 1, 1), utc(2026, 12, 31), BUCKET_SIZES["1h"], tz)
        assert plan.size.is_fixed
    plan = make_plan(utc(2026, 1, 1), utc(2026, 12, 31), BUCKET_SIZES["1h"], LORD_HOWE)
    assert not plan.size.is_fixed and plan.size.name == "1h"
    # one season of Lord_Howe alone is even too
    assert make_plan(utc(2026, 5, 1), utc(2026, 9, 1), BUCKET_SIZES["1h"], LORD_HOWE).size.is_fixed


def _series(client, org, start, end, size, tz, raw: bool) -> dict[int, int]:
    engine = client.app.state.engine
    engine.use_rollups = not raw
    try:
        body = ok(client, "/v2/stats/storage", org.headers,
                  {"scope": "org", "start": str(unix(start)), "end": str(unix(end)),
                   "timeBucketSize": size, "timezone": tz})
    finally:
        engine.use_rollups = True
    return {p["ts"]: p["requests"] for p in body["series"]}


def _breakdown(client, org, start, end, tz, raw: bool) -> list[dict]:
    engine = client.app.state.engine
    engine.use_rollups = not raw
    try:
        body = ok(client, "/v2/stats/storage/breakdown/workspaces", org.headers,
                  {"scope": "org", "start": str(unix(start)), "end": str(unix(end)),
                   "timeBucketSize": "1h", "timezone": tz, "includeSeries": "true",
                   "limit": "10"})
    finally:
        engine.use_rollups = True
    return body["entities"]


@pytest.mark.parametrize("tz", [LORD_HOWE, NY])
def test_series_follow_each_midnight_rollups_and_raw_agree(client, new_org, tz):
    """Over HTTP, for ranges starting on different days and hours around both shifts of
    2026: every bucket holds exactly the events the per-event rule puts there, read from
    rollups and from raw events alike."""
    org = new_org()
    times = [t for shift in SHIFTS[tz] for t in around(shift)]
    times += [utc(2026, 6, 10) + timedelta(minutes=23 * i) for i in range(150)]  # one season
    events = generate("storage", 11, times)
    ingest(client, org, "storage", events)
    step = timedelta(hours=1)
    ranges = [(shift - timedelta(hours=h), shift + timedelta(hours=h2))
              for shift in SHIFTS[tz] for h, h2 in ((29, 29), (7.25, 20), (13.5, 3))]
    ranges.append((utc(2026, 6, 10, 5, 10), utc(2026, 6, 12, 9)))  # an even grid
    ranges.append((SHIFTS[tz][0] - timedelta(days=1), SHIFTS[tz][1] + timedelta(days=1)))
    for start, end in ranges:
        got = _series(client, org, start, end, "1h", tz, raw=False)
        assert got == _series(client, org, start, end, "1h", tz, raw=True), (start, end)
        want = Counter(unix(expected_bucket(t, step, tz)) for t in times if start <= t < end)
        assert {k: v for k, v in got.items() if v} == dict(want), (start, end)
        assert set(want) <= set(got)
        grid = sorted(got)
        entities = _breakdown(client, org, start, end, tz, raw=False)
        assert entities == _breakdown(client, org, start, end, tz, raw=True), (start, end)
        for entity in entities:
            assert [p["ts"] for p in entity["series"]] == grid


@pytest.mark.parametrize("tz", [*SHIFTS, "UTC", "Asia/Kathmandu"])
@pytest.mark.parametrize("size", ["6h", "12h", "1d", "1w", "1mo"])
def test_a_rollup_fits_calendar_buckets_exactly_when_it_holds_every_bucket_start(tz, size):
    """``_grid_fits`` decides from the first start and the starts' gcd; here it must agree,
    for every grain of every domain, with asking each bucket start in turn, over ranges
    across both of the year's shifts, starting on any day of the week."""
    from domains import DOMAINS
    from stats_gateway.core.rollups import _grid_fits, aligned, domain_rollups

    grains = {(r.step, r.origin): r for d in DOMAINS for r in domain_rollups(d)}.values()
    zone = ZoneInfo(tz)
    seen = Counter()
    for first_day, days in [(date(2026, 1, 1), 365), (date(2026, 3, 2), 40),
                            (date(2026, 10, 20), 20), (date(2026, 4, 1), 3),
                            (date(2026, 6, 3), 1)]:
        start = midnight(first_day, zone)
        plan = make_plan(start, start + timedelta(days=days, hours=5), BUCKET_SIZES[size], tz)
        if plan.size.is_fixed:  # a zone without shifts: one even grid, a fixed step
            continue
        for rollup in grains:
            expected = all(aligned(s, rollup.step, rollup.origin) for s in plan.calendar_starts)
            assert _grid_fits(plan, rollup) is expected, (first_day, days, rollup.step)
            seen[expected] += 1
    if tz not in ("UTC", KOLKATA, "Asia/Kathmandu"):
        assert seen[True] and seen[False], seen  # both answers were asked
