"""Windows, bucket sizes and the time zone rules that place events in buckets.

Two kinds of bucket:

* fixed (1m … 1h): spans of exactly that length counted from each local midnight: a
  day's buckets start at its midnight plus whole steps, and its last one ends at the next
  midnight. On a fall-back night the repeated local hour is two buckets, as it is two real
  hours. Where every midnight of the range is a whole number of steps from the first (all
  whole-hour DST shifts, fixed-offset zones), that is one even grid, ``date_bin`` from the
  first midnight; where not (1h in Australia/Lord_Howe, whose DST shift is 30 minutes, on
  a range holding a shift) the plan lists its starts as calendar plans do (``per_day``;
  such a range reads raw events, as no rollup slot sits inside all its buckets),
  and the last bucket of a 23.5- or 24.5-hour day lasts 30 minutes. Either way an event's
  bucket depends on the event alone, never on where the range starts.
* calendar (6h, 12h, 1d, 1w, 1mo): local wall-clock spans (00/06/12/18h, local days, ISO
  weeks from Monday, months) which last 23 or 25 hours across a DST change.

Local wall-clock boundaries become instants here, with zoneinfo, taking the earlier
instant when a boundary happens twice (a fall-back at midnight) and the transition itself
when it never happens (a spring-forward at midnight). The SQL then only compares instants
(``date_bin`` for fixed sizes, ``width_bucket`` over these starts for calendar ones), so
the database's own time zone rules never enter and the grid and the events always agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

MAX_BUCKETS = 10_000
AUTO_TARGET_BUCKETS = 200
_MICROSECOND = timedelta(microseconds=1)

WINDOWS: dict[str, timedelta] = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
    "180d": timedelta(days=180),
    "365d": timedelta(days=365),
}


@dataclass(frozen=True)
class BucketSize:
    name: str
    step: timedelta  # exact for fixed sizes; nominal for calendar ones
    calendar_unit: str | None = None  # date_trunc unit, or None for date_bin
    calendar_bin: timedelta | None = None  # local wall-clock span from midnight (6h, 12h)
    per_day: bool = False  # a fixed step whose grid restarts at each midnight (see above)

    @property
    def is_fixed(self) -> bool:
        return self.calendar_unit is None and self.calendar_bin is None and not self.per_day


def _fixed(name: str, **kw) -> BucketSize:
    return BucketSize(name, timedelta(**kw))


BUCKET_SIZES: dict[str, BucketSize] = {b.name: b for b in (
    _fixed("1m", minutes=1),
    _fixed("5m", minutes=5),
    _fixed("10m", minutes=10),
    _fixed("15m", minutes=15),
    _fixed("30m", minutes=30),
    _fixed("1h", hours=1),
    BucketSize("6h", timedelta(hours=6), calendar_bin=timedelta(hours=6)),
    BucketSize("12h", timedelta(hours=12), calendar_bin=timedelta(hours=12)),
    BucketSize("1d", timedelta(days=1), calendar_unit="day"),
    BucketSize("1w", timedelta(days=7), calendar_unit="week"),
    BucketSize("1mo", timedelta(days=30), calendar_unit="month"),
)}


@dataclass(frozen=True)
class BucketPlan:
    """Everything needed to bucket ``[start, end)`` in ``timezone``."""

    start: datetime  # inclusive, UTC
    end: datetime  # exclusive, UTC
    size: BucketSize
    timezone: str
    origin: datetime  # fixed sizes: a bucket boundary (local midnight of start's day)

    def __post_init__(self) -> None:
        # the one place every plan passes: a fixed size that is no even grid here lists its
        # starts instead, so the SQL (width_bucket over them) follows each day's midnight
        if self.size.is_fixed and not even_grid(self.start, self.end, self.size.step,
                                                ZoneInfo(self.timezone)):
            object.__setattr__(self, "size", replace(self.size, per_day=True))
        # in a zone without offset changes a day (or 6h, 12h from midnight) is a fixed
        # step from the first midnight: date_bin, and rollup slots read whole, instead of
        # width_bucket over a list of calendar starts
        elif (self.size.calendar_unit == "day" or self.size.calendar_bin is not None) \
                and fixed_offset(self.timezone):
            object.__setattr__(self, "size", replace(self.size, calendar_unit=None,
                                                     calendar_bin=None))

    @cached_property
    def calendar_starts(self) -> list[datetime]:
        return calendar_starts(self.start, self.end, self.size, ZoneInfo(self.timezone))

    @cached_property
    def calendar_grid(self) -> tuple[datetime, int] | None:
        """(first calendar start, gcd in microseconds of every start's distance from it),
        None without starts: a grid of step s from the first start holds every start
        exactly when s divides the gcd, so a rollup's fit is two modulos, not one per
        bucket (a year of weeks is asked of every grain of every cube, per statement)."""
        starts = self.calendar_starts
        if not starts:
            return None
        first = starts[0]
        return first, math.gcd(*((start - first) // _MICROSECOND for start in starts[1:]))


def fixed_offset(timezone: str) -> bool:
    """Whether the zone's offset never changes (UTC and the Etc/GMT±n zones)."""
    return timezone in ("UTC", "Etc/UTC", "GMT", "Etc/GMT", "Zulu", "Etc/Zulu") or \
        timezone.startswith("Etc/GMT")


def fixed_size(seconds: int) -> BucketSize:
    """A fixed bucket of any whole number of seconds (e.g. call stats' ``granularity``)."""
    return BucketSize(f"{seconds}s", timedelta(seconds=seconds))


def make_plan(start: datetime, end: datetime, size: BucketSize, timezone: str = "UTC",
              ) -> BucketPlan:
    """A plan for ``[start, end)`` (UTC-aware) in ``timezone`` (a valid IANA name)."""
    zone = ZoneInfo(timezone)
    return BucketPlan(start=start, end=end, size=size, timezone=timezone,
                      origin=local_midnight(start, zone))


def local_midnight(instant: datetime, zone: ZoneInfo) -> datetime:
    local = instant.astimezone(zone)
    return datetime(local.year, local.month, local.day, tzinfo=zone).astimezone(UTC)


def _midnight_of(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of a local day: the earlier one when midnight happens twice, the
    transition itself when it never happens."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)


def _per_day_step(step: timedelta) -> bool:
    """Steps that restart at each midnight: those dividing an hour (all of /v2's fixed
    sizes). Others (a Weave granularity of 7000 s) cannot tile a day, so they keep one even
    grid from the midnight of the day holding ``start``."""
    return step <= _HOUR and _HOUR % step == timedelta(0)


@lru_cache(maxsize=4096)
def _year_offsets(zone: ZoneInfo, year: int) -> frozenset[int]:
    """The UTC offsets (seconds) in force at the local midnights of one year."""
    day, offsets = date(year, 1, 1), set()
    while day.year == year:
        offset = datetime(day.year, day.month, day.day, tzinfo=zone).utcoffset()
        assert offset is not None  # aware: a ZoneInfo always gives one
        offsets.add(int(offset.total_seconds()))
        day += _DAY
    return frozenset(offsets)


def even_grid(start: datetime, end: datetime, step: timedelta, zone: ZoneInfo) -> bool:
    """Whether every local midnight from the day holding ``start`` to ``end`` is a whole
    number of steps after the first, so ``date_bin`` from the first is the per-day rule."""
    if not _per_day_step(step) or zone.key == "UTC" or (end - start) > 2 * MAX_BUCKETS * step:
        # past twice the bucket cap the request is refused whatever the grid, and the even
        # grid's count is off by at most one a day (1/24 of it): no scan of a century
        return True
    first, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    step_s = int(step.total_seconds())
    offsets = set().union(*(_year_offsets(zone, y) for y in range(first.year, last.year + 1)))
    if len({o % step_s for o in offsets}) <= 1:
        return True  # the years around the range: enough, and cached per (zone, year)
    origin, day = _midnight_of(first, zone), first + _DAY
    while day <= last:
        if (_midnight_of(day, zone) - origin) % step:
            return False
        day += _DAY
    return True


def day_starts(start: datetime, end: datetime, step: timedelta,
               zone: ZoneInfo) -> list[datetime]:
    """UTC starts of the per-day fixed buckets intersecting ``[start, end)``: each local
    day from its midnight in whole steps, the last one cut at the next midnight."""
    day = start.astimezone(zone).date()
    midnight = _midnight_of(day, zone)
    t = midnight + (start - midnight) // step * step
    starts: list[datetime] = []
    while t < end:
        following = _midnight_of(day + _DAY, zone)
        while t < following and t < end:
            starts.append(t)
            t += step
        day, t = day + _DAY, following
    return starts


def _calendar_floor(local: datetime, size: BucketSize) -> datetime:
    """Naive local wall-clock start of the calendar bucket holding ``local``."""
    day = datetime(local.year, local.month, local.day)
    if size.calendar_bin is not None:
        hours = int(size.calendar_bin.total_seconds() // 3600)
        return day + timedelta(hours=(local.hour // hours) * hours)
    if size.calendar_unit == "day":
        return day
    if size.calendar_unit == "week":
        return day - timedelta(days=day.weekday())
    return datetime(local.year, local.month, 1)


def _next_label(label: datetime, size: BucketSize) -> datetime:
    if size.calendar_unit == "month":
        return (label.replace(day=1) + timedelta(days=32)).replace(day=1)
    return label + size.step  # wall-clock arithmetic on naive local time


def calendar_starts(start: datetime, end: datetime, size: BucketSize,
                    zone: ZoneInfo) -> list[datetime]:
    """UTC starts of the calendar buckets intersecting ``[start, end)``, ascending."""
    if size.per_day:
        return day_starts(start, end, size.step, zone)
    label = _calendar_floor(start.astimezone(zone).replace(tzinfo=None), size)
    starts: list[datetime] = []
    while (instant := label.replace(tzinfo=zone).astimezone(UTC)) < end:  # fold=0: earlier
        if not starts or instant > starts[-1]:
            starts.append(instant)
        label = _next_label(label, size)
    return starts


def count_buckets(start: datetime, end: datetime, size: BucketSize, zone: ZoneInfo) -> int:
    """Number of buckets that intersect ``[start, end)`` (computed without the database)."""
    if end <= start:
        return 0
    if size.per_day or (size.is_fixed and not even_grid(start, end, size.step, zone)):
        return len(day_starts(start, end, size.step, zone))  # within twice the cap
    if size.is_fixed:
        origin = local_midnight(start, zone)
        first = origin + math.floor((start - origin) / size.step) * size.step
        return math.ceil((end - first) / size.step)
    first = _calendar_floor(start.astimezone(zone).replace(tzinfo=None), size)
    last = _calendar_floor((end - timedelta(microseconds=1)).astimezone(zone)
                           .replace(tzinfo=None), size)
    if size.calendar_unit == "month":
        return (last.year - first.year) * 12 + last.month - first.month + 1
    # local wall-clock steps are uniform for 6h/12h/1d/1w (DST does not move local labels)
    return round((last - first) / size.step) + 1


def auto_bucket_size(start: datetime, end: datetime, zone: ZoneInfo) -> BucketSize:
    """Smallest size giving at most 200 buckets: 24h->10m, 7d->1h, 30d->6h, 90d->12h,
    180d->1d, 365d->1w (10m for a 24h window is Flashback's documented default)."""
    for size in BUCKET_SIZES.values():
        if count_buckets(start, end, size, zone) <= AUTO_TARGET_BUCKETS:
            return size
    return BUCKET_SIZES["1mo"]


def sizes_that_fit(start: datetime, end: datetime, zone: ZoneInfo) -> list[str]:
    return [name for name, size in BUCKET_SIZES.items()
            if count_buckets(start, end, size, zone) <= MAX_BUCKETS]
