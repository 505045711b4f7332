"""Summary statistics over a series' bucket values.

``total`` is the sum of the bucket values for additive metrics (counts, sums) and the
metric over the whole range otherwise (a mean of all events, distinct values over the
range). The rest describe the non-null bucket values: ``avg`` their mean, ``stdDev`` the
population standard deviation, ``p10/p50/p90`` linear-interpolation percentiles (as
numpy's default and ``statistics.quantiles(method='inclusive')``).
"""

from __future__ import annotations

import math
from decimal import Decimal

from stats_gateway.core.envelopes import Number, Summary


def percentile(ordered: list[float], q: float) -> float:
    position = q * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(values: list[Number | None], total: Number | None) -> Summary:
    present = [v for v in values if v is not None]
    if not present:
        return Summary(total=total, avg=None, std_dev=None, min=None, max=None,
                       p10=None, p50=None, p90=None)
    floats = sorted(float(v) for v in present)
    mean = math.fsum(floats) / len(floats)
    variance = math.fsum((v - mean) ** 2 for v in floats) / len(floats)
    return Summary(total=total, avg=mean, std_dev=math.sqrt(variance),
                   min=min(present), max=max(present), p10=percentile(floats, 0.1),
                   p50=percentile(floats, 0.5), p90=percentile(floats, 0.9))


def additive_total(values: list[Number | None]) -> Number:
    present = [v for v in values if v is not None]
    if any(isinstance(v, Decimal) for v in present):
        return sum((Decimal(v) for v in present), Decimal(0))
    return sum(present)
