"""Summary statistics over a series' bucket values.

``total`` is the sum of the bucket values for additive metrics (counts, sums) and the
metric over the whole range otherwise (a mean of all events, distinct values over the
range). The rest describe the non-null bucket values: ``avg`` their mean, ``stdDev`` the
population standard deviation, ``p10/p50/p90`` linear-interpolation percentiles (as
numpy's default and ``statistics.quantiles(method='inclusive')``).
"""

from __future__ import annotations

import math
from operator import mul
from typing import Any

from stats_gateway.core.envelopes import Number, Summary


def percentile(ordered: list[float], q: float) -> float:
    position = q * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(values: list[Number | None], total: Number | None) -> Summary:
    present: list[Any] = [v for v in values if v is not None] if None in values else values
    if not present:
        return Summary(total=total, avg=None, std_dev=None, min=None, max=None,
                       p10=None, p50=None, p90=None)
    ordered = sorted(present)
    n = len(ordered)
    whole = sum(ordered)
    if type(whole) is int:  # counts and integral sums: exact, then one rounding each
        mean = whole / n
        variance = (n * sum(map(mul, ordered, ordered)) - whole * whole) / (n * n)
        floats = ordered
    else:
        floats = list(map(float, ordered))  # float() keeps the order of Decimals
        mean = math.fsum(floats) / n
        variance = math.fsum([(v - mean) ** 2 for v in floats]) / n
    return Summary(total=total, avg=mean, std_dev=math.sqrt(variance),
                   min=ordered[0], max=ordered[-1], p10=float(percentile(floats, 0.1)),
                   p50=float(percentile(floats, 0.5)), p90=float(percentile(floats, 0.9)))


def additive_total(values: list[Number | None]) -> Number:
    """The sum of the bucket values: an int for counts, exact Decimal for money (a
    metric's buckets are all of one type)."""
    return sum([v for v in values if v is not None])
