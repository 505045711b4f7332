"""Windows, bucket sizes and the time zone rules that place events in buckets.

Two kinds of bucket:

* fixed (1m … 1h): consecutive spans of exactly that length, aligned so that a bucket
  starts at local midnight of the range's first day. DST shifts are whole hours (or half
  hours), so these stay on local wall-clock boundaries; on a fall-back night the repeated
  local hour is two buckets, as it is two real hours.
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
from dataclasses import dataclass
from functools import cached_property
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

MAX_BUCKETS = 10_000
AUTO_TARGET_BUCKETS = 200

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

    @property
    def is_fixed(self) -> bool:
        return self.calendar_unit is None and self.calendar_bin is None


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

    @cached_property
    def calendar_starts(self) -> list[datetime]:
        return calendar_starts(self.start, self.end, self.size, ZoneInfo(self.timezone))


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
