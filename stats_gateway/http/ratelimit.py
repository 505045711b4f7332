"""Per-key rate limits, one budget per key across every replica (docs/rate-limits.md).

A limit reads ``<n>/<period>``: ``600/min``, ``5/s``, ``3/6s``, ``1000/h``, or ``off``. The
bucket holds at most ``n`` tokens (a burst of ``n`` requests) and refills at ``n`` per
period; each authenticated request takes one token (so unknown keys get their 401, never a
429). The gateway's default comes from ``STATS_GATEWAY_RATE_LIMIT`` (default ``600/min``);
a key's ``rate_limit`` column overrides it.

The bucket lives in PostgreSQL, not in the process: one row per key in the UNLOGGED table
``rate_limit_buckets``, changed by one call per request (``stats_gateway_take_request``,
sql/0007 and 0009), so any number of gateway processes against one database enforce one
budget per key, on the database's clock. PostgreSQL rather than Redis:
the gateway needs the database for every request anyway, so this adds no moving part and
no second way to fail; a key with ``off`` costs no query at all.

Every response to a limited key carries ``RateLimit-Limit``, ``RateLimit-Remaining`` and
``RateLimit-Reset`` (IETF draft names); a refused request answers 429 ``rate_limited`` with
``Retry-After``, in problem+json or a seed endpoint's own error shape. With the limit
``off`` none of the three is sent.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from litestar.types import Message, Scope

from stats_gateway.core.errors import ApiError

_LIMIT = re.compile(r"^([1-9][0-9]{0,8})/([1-9][0-9]{0,5})?(s|min|h)$")  # as in sql/0003
_UNIT_S = {"s": 1, "min": 60, "h": 3600}
RETRY_AFTER_STATE = "rate_limit_retry_after"
BUDGET_STATE = "rate_limit_budget"
_SLACK_S = 1e-6  # float rounding of epoch seconds: far below the headers' whole seconds
_TAKE = ("SELECT passed, full_in_s FROM stats_gateway_take_request("
         "%(key_id)s, %(requests)s, %(period_s)s, %(at)s)")


@dataclass(frozen=True)
class Rate:
    requests: int
    period_s: float

    @property
    def per_second(self) -> float:
        return self.requests / self.period_s

    @property
    def step_s(self) -> float:
        """Seconds one token takes to come back."""
        return self.period_s / self.requests


@lru_cache(maxsize=256)
def parse_rate(text: str) -> Rate | None:
    """A limit's ``Rate``, or None for ``off``; ValueError when it is neither."""
    if text.strip() == "off":
        return None
    match = _LIMIT.match(text.strip())
    if not match:
        raise ValueError(f"rate limit {text!r} must look like 600/min, 5/s, 3/6s, 1000/h "
                         "or off")
    count, times, unit = match.groups()
    return Rate(int(count), int(times or 1) * _UNIT_S[unit])


@dataclass(frozen=True)
class Budget:
    """What is left of a key's bucket after a request: the ``RateLimit-*`` header values.

    ``reset_s``: whole seconds until the bucket is full again (``remaining`` back to
    ``limit``), which is when a client that stops now has its whole burst back."""

    limit: int
    remaining: int
    reset_s: int
    retry_after_s: int | None  # a refused request: whole seconds until one token is back

    @classmethod
    def of(cls, rate: Rate, passed: bool, full_in_s: float) -> "Budget":
        """From the bucket's state: ``full_in_s`` seconds until it is full (tokens left
        = requests - full_in_s / step)."""
        full_in_s = max(0.0, full_in_s)
        reset = math.ceil(full_in_s - _SLACK_S)
        if not passed:  # one token is back once full_in_s drops to (requests - 1) steps
            wait = full_in_s - (rate.period_s - rate.step_s)
            return cls(rate.requests, 0, reset, max(1, math.ceil(wait - _SLACK_S)))
        left = math.floor(rate.requests - full_in_s / rate.step_s + _SLACK_S)
        return cls(rate.requests, min(rate.requests - 1, max(0, left)), reset, None)

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"ratelimit-limit", str(self.limit).encode()),
                (b"ratelimit-remaining", str(self.remaining).encode()),
                (b"ratelimit-reset", str(self.reset_s).encode())]


class RateLimited(ApiError):
    def __init__(self, retry_after_s: int):
        super().__init__(429, "rate_limited", "too many requests for this API key; retry "
                         f"after {retry_after_s} s")
        self.retry_after_s = retry_after_s


class RateLimiter:
    """Takes requests from keys' buckets in the database; ``default`` applies to keys
    without a limit of their own. The time is the database's clock, shared by every
    replica; ``clock`` (epoch seconds) replaces it, for tests only."""

    def __init__(self, default: str, clock: Callable[[], float] | None = None):
        self.default = parse_rate(default)
        self.clock = clock

    def rate_of(self, override: str | None) -> Rate | None:
        return self.default if override is None else parse_rate(override)

    async def take(self, pool, scope: Scope, key_id: str, override: str | None = None
                   ) -> None:
        """Spend one of the key's tokens (one query; none when its limit is ``off``) and
        note the budget left for the response's headers, or raise ``RateLimited``."""
        rate = self.rate_of(override)
        if rate is None:
            return
        async with pool.connection() as conn:
            cur = await conn.execute(_TAKE, {"key_id": key_id, "requests": rate.requests,
                                             "period_s": float(rate.period_s),
                                             "at": self.clock() if self.clock else None})
            passed, full_in_s = await cur.fetchone()
        budget = Budget.of(rate, passed, full_in_s)
        state = scope.setdefault("state", {})
        state[BUDGET_STATE] = budget
        if budget.retry_after_s is not None:
            state[RETRY_AFTER_STATE] = budget.retry_after_s
            raise RateLimited(budget.retry_after_s)


async def add_limit_headers(message: Message, scope: Scope) -> None:
    """``before_send`` hook, so that every answer has them whichever shape it has (JSON,
    CSV, a seed API's own envelope, an error): the key's ``RateLimit-*`` headers, and
    ``Retry-After`` on a 429 (rate limit or cost budget, http/admission.py). A 401 gets
    none: the key was not accepted after all (revoked meanwhile)."""
    if message["type"] != "http.response.start" or message["status"] == 401:
        return
    state = scope.get("state", {})
    budget: Budget | None = state.get(BUDGET_STATE)
    seconds = state.get(RETRY_AFTER_STATE) if message["status"] == 429 else None
    if budget is None and seconds is None:
        return
    headers = list(message.get("headers", []))
    if budget is not None:
        headers += budget.headers()
    if seconds is not None and not any(k.lower() == b"retry-after" for k, _ in headers):
        headers.append((b"retry-after", str(seconds).encode()))
    message["headers"] = headers
