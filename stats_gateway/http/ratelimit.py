"""Per-key rate limits: a token bucket per API key, in this process.

A limit reads ``<n>/<period>``: ``600/min``, ``5/s``, ``3/6s``, ``1000/h``, or ``off``. The
bucket holds at most ``n`` tokens (a burst of ``n`` requests) and refills at ``n`` per
period; each authenticated request takes one token (so unknown keys get their 401, never a
429). An empty bucket answers 429 problem+json ``rate_limited`` with ``Retry-After``: the
whole seconds (at least 1) until a token is back. The gateway's default comes from
``STATS_GATEWAY_RATE_LIMIT`` (default ``600/min``); a key's ``rate_limit`` column overrides
it. Buckets live in memory: with several replicas each enforces the limit on its own, so
a key may get up to (replicas x n) per period in all.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from functools import lru_cache

from litestar.types import Message, Scope

from stats_gateway.core.errors import ApiError

_LIMIT = re.compile(r"^([1-9][0-9]{0,8})/([1-9][0-9]{0,5})?(s|min|h)$")  # as in sql/0003
_UNIT_S = {"s": 1, "min": 60, "h": 3600}
RETRY_AFTER_STATE = "rate_limit_retry_after"


@dataclass(frozen=True)
class Rate:
    requests: int
    period_s: float

    @property
    def per_second(self) -> float:
        return self.requests / self.period_s


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


class RateLimited(ApiError):
    def __init__(self, retry_after_s: int):
        super().__init__(429, "rate_limited", "too many requests for this API key; retry "
                         f"after {retry_after_s} s")
        self.retry_after_s = retry_after_s


class RateLimiter:
    """Token buckets by key id; ``default`` applies to keys without a limit of their own."""

    def __init__(self, default: str, clock=time.monotonic):
        self.default = parse_rate(default)
        self.clock = clock
        self._buckets: dict[str, tuple[Rate, float, float]] = {}  # key -> rate, tokens, at

    def take(self, key_id: str, override: str | None = None) -> None:
        """Spend one of the key's tokens, or raise ``RateLimited``. No awaits: atomic
        within the event loop."""
        rate = self.default if override is None else parse_rate(override)
        if rate is None:
            return
        now = self.clock()
        old = self._buckets.get(key_id)
        if old is None or old[0] != rate:  # new key, or its limit changed: a full bucket
            tokens = float(rate.requests)
        else:
            tokens = min(float(rate.requests), old[1] + (now - old[2]) * rate.per_second)
        if tokens < 1:
            self._buckets[key_id] = (rate, tokens, now)
            raise RateLimited(max(1, math.ceil((1 - tokens) / rate.per_second)))
        self._buckets[key_id] = (rate, tokens - 1, now)


async def add_retry_after(message: Message, scope: Scope) -> None:
    """``before_send`` hook: a 429 carries ``Retry-After`` whichever error shape answered
    it (problem+json, or a seed API's own envelope)."""
    if message["type"] != "http.response.start" or message["status"] != 429:
        return
    seconds = scope.get("state", {}).get(RETRY_AFTER_STATE)
    headers = list(message.get("headers", []))
    if seconds is not None and not any(k.lower() == b"retry-after" for k, _ in headers):
        headers.append((b"retry-after", str(seconds).encode()))
        message["headers"] = headers
