"""Latency samples: run a callable, keep wall times in milliseconds, read percentiles."""

from __future__ import annotations

import time
from collections.abc import Callable


def percentile(samples: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (q in 0..1)."""
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("no samples")
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def timed(run: Callable[[], object], times: int, warmup: int = 1) -> tuple[list[float], object]:
    """``times`` wall times (ms) of ``run()`` after ``warmup`` untimed calls, and the last
    result (for checking the answer)."""
    result = None
    for _ in range(warmup):
        result = run()
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        result = run()
        samples.append((time.perf_counter() - started) * 1000)
    return samples, result
