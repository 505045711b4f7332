"""Weave's ``granularity`` (seconds) -> the engine's bucket plan: auto pick, widening, zones."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from stats_gateway.core.timebuckets import (
    AUTO_TARGET_BUCKETS, MAX_BUCKETS, BucketPlan, BucketSize, count_buckets, fixed_size,
    make_plan,
)

AUTO_GRANULARITIES = (60, 300, 600, 900, 1800, 3600, 21600, 43200, 86400, 604800)
DAY = 86400


def bucket_size(seconds: int, timezone: str) -> BucketSize:
    """Whole days outside UTC are local calendar days (23 or 25 hours across a DST change),
    so daily buckets start at local midnight; any other size is a fixed span."""
    if seconds % DAY == 0 and timezone != "UTC":
        return BucketSize(f"{seconds}s", timedelta(days=seconds // DAY), calendar_unit="day")
    return fixed_size(seconds)


def plan_for(start: datetime, end: datetime, seconds: int, timezone: str) -> BucketPlan:
    return make_plan(start, end, bucket_size(seconds, timezone), timezone)


def bucket_count(plan: BucketPlan) -> int:
    """Buckets intersecting the plan's range."""
    if plan.size.is_fixed:
        return count_buckets(plan.start, plan.end, plan.size, ZoneInfo(plan.timezone))
    return len(plan.calendar_starts)


def auto_granularity(start: datetime, end: datetime, timezone: str) -> int:
    """The smallest of AUTO_GRANULARITIES giving at most 200 buckets (else a week)."""
    for seconds in AUTO_GRANULARITIES:
        if bucket_count(plan_for(start, end, seconds, timezone)) <= AUTO_TARGET_BUCKETS:
            return seconds
    return AUTO_GRANULARITIES[-1]


def resolve_plan(start: datetime, end: datetime, granularity: int | None,
                 timezone: str) -> BucketPlan:
    """The plan for the requested (or auto-picked) granularity, widened when it would give
    more than 10,000 buckets: to ceil(range / 10,000) seconds, plus a second at a time
    while the range's unaligned ends still make it 10,001."""
    seconds = granularity or auto_granularity(start, end, timezone)
    plan = plan_for(start, end, seconds, timezone)
    if bucket_count(plan) <= MAX_BUCKETS:
        return plan
    range_us = (end - start) // timedelta(microseconds=1)
    seconds = max(seconds + 1, -(-range_us // (MAX_BUCKETS * 1_000_000)))  # ceil
    while bucket_count(plan := plan_for(start, end, seconds, timezone)) > MAX_BUCKETS:
        seconds += 1
    return plan


def granularity_of(plan: BucketPlan) -> int:
    return int(plan.size.step.total_seconds())
