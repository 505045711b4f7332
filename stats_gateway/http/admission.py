"""Admission by cost: what a request will cost is known before it runs, and bounded per key.

Rate limits count requests; one breakdown with ``includeSeries`` can cost as much as
thousands of cheap series. So every ``/v2/stats`` request is priced before any SQL runs, in
**points**: the values its answer holds, ``buckets`` for a series and ``buckets × limit``
for a breakdown with ``includeSeries`` (``buckets`` without it). Then:

* **Per-key budget.** Each key has a second token bucket, of points
  (``STATS_GATEWAY_COST_BUDGET``, default ``3000000/min``). A request costing more than is
  left answers 429 ``cost_budget_exceeded`` with ``Retry-After``; one costing more than the
  whole budget could never pass and answers 400. Both messages give the cost and say how to
  narrow the request.
* **Expensive requests** (at least ``STATS_GATEWAY_EXPENSIVE_POINTS`` points, default
  20,000) run at most ``STATS_GATEWAY_EXPENSIVE_PER_KEY`` (1) at a time per key and
  ``STATS_GATEWAY_EXPENSIVE_PER_ORG`` (2) per org. A request waits up to
  ``STATS_GATEWAY_POOL_TIMEOUT_S`` for a slot, then answers 429
  ``too_many_expensive_requests``. They run in the expensive lane (``http/lane.py``): a
  thread with its own event loop and connections, so they neither block the event loop that
  answers everyone else nor take the main pool's connections.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from stats_gateway.core.errors import ApiError, Problem
from stats_gateway.core.request import BreakdownRequest, StatsRequest
from stats_gateway.core.timebuckets import count_buckets
from stats_gateway.http.ratelimit import RETRY_AFTER_STATE, parse_rate

NARROW = ("ask for fewer entities (limit), coarser buckets (timeBucketSize), a shorter range "
          "or includeSeries=false")


@dataclass(frozen=True)
class Cost:
    """A request's price in points (values in its answer)."""

    points: int

    @classmethod
    def of(cls, request: StatsRequest) -> "Cost":
        plan = request.plan
        buckets = count_buckets(plan.start, plan.end, plan.size, ZoneInfo(plan.timezone))
        entities = request.limit if isinstance(request, BreakdownRequest) \
            and request.include_series else 1
        return cls(max(1, buckets) * entities)


class Refused(ApiError):
    """A 429 whose ``Retry-After`` the ``before_send`` hook adds (http/ratelimit.py)."""

    def __init__(self, code: str, message: str, retry_after_s: int):
        super().__init__(429, code, message, [Problem("cost", message)])
        self.retry_after_s = retry_after_s


class Admission:
    """Per-key point buckets and per-key/per-org slots for expensive requests."""

    def __init__(self, budget: str, expensive_points: int, per_key: int, per_org: int,
                 wait_s: float, clock=time.monotonic):
        self.rate = parse_rate(budget)
        self.expensive_points = expensive_points
        self.per_key, self.per_org, self.wait_s = per_key, per_org, wait_s
        self.clock = clock
        self._points: dict[str, tuple[float, float]] = {}  # key -> (points left, at)
        self._running: Counter = Counter()  # ("key", id) / ("org", id) -> expensive in flight
        self._changed = asyncio.Condition()

    def expensive(self, cost: Cost) -> bool:
        return cost.points >= self.expensive_points

    def charge(self, scope: dict, key_id: str, cost: Cost) -> None:
        """Take the request's points from the key's bucket, or refuse it (400 or 429)."""
        if self.rate is None:
            return
        capacity, per_s = float(self.rate.requests), self.rate.per_second
        if cost.points > capacity:
            raise ApiError(400, "too_expensive", f"this request costs {cost.points} points "
                           f"(buckets x entities), more than this key's whole budget of "
                           f"{self.rate.requests} per {self.rate.period_s:g} s; {NARROW}",
                           [Problem("cost", f"{cost.points} > {self.rate.requests}")])
        now = self.clock()
        left, at = self._points.get(key_id, (capacity, now))
        left = min(capacity, left + (now - at) * per_s)
        if left < cost.points:
            self._points[key_id] = (left, now)
            wait = max(1, math.ceil((cost.points - left) / per_s))
            scope.setdefault("state", {})[RETRY_AFTER_STATE] = wait
            raise Refused("cost_budget_exceeded", f"this request costs {cost.points} points "
                          f"(buckets x entities); this key has {int(left)} of its "
                          f"{self.rate.requests} per {self.rate.period_s:g} s left; retry "
                          f"after {wait} s, or {NARROW}", wait)
        self._points[key_id] = (left - cost.points, now)

    @asynccontextmanager
    async def slot(self, scope: dict, key_id: str, org_id: str, cost: Cost
                   ) -> AsyncIterator[bool]:
        """Hold an expensive-request slot of the key and its org for the block (True), or
        nothing for a cheap request (False); 429 after waiting ``wait_s`` in vain."""
        if not self.expensive(cost):
            yield False
            return
        key, org = ("key", key_id), ("org", org_id)

        def free() -> bool:
            return self._running[key] < self.per_key and self._running[org] < self.per_org

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(free), self.wait_s)
            except TimeoutError:
                scope.setdefault("state", {})[RETRY_AFTER_STATE] = 1
                raise Refused("too_many_expensive_requests", f"this key may run "
                              f"{self.per_key} and its org {self.per_org} expensive requests "
                              f"(>= {self.expensive_points} points) at a time; retry after "
                              f"1 s, or {NARROW}", 1) from None
            self._running[key] += 1
            self._running[org] += 1
        try:
            yield True
        finally:
            async with self._changed:
                for held in (key, org):
                    self._running[held] -= 1
                    if not self._running[held]:
                        del self._running[held]
                self._changed.notify_all()
