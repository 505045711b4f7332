"""Settings read from the environment, in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DATABASE_URL_ENV = "STATS_GATEWAY_DATABASE_URL"
DATA_DIR_ENV = "STATS_GATEWAY_DATA_DIR"


class ConfigError(ValueError):
    """Settings the environment got wrong: every problem found, one line each."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def _number(name: str, default: str, kind: type, problems: list[str]):
    """``kind(os.environ[name])`` (or the default); a problem noted, and the default
    used, for a value that is not such a number."""
    text = os.environ.get(name, default)
    try:
        return kind(text)
    except ValueError:
        expected = "a whole number" if kind is int else "a number"
        problems.append(f"{name}={text!r}: expected {expected}")
        return kind(default)


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    data_dir: Path  # embedded PostgreSQL lives here when no URL is set
    pool_min: int = 1
    pool_max: int = 10
    statement_timeout_ms: int = 15_000
    use_rollups: bool = True  # STATS_GATEWAY_ROLLUPS=off answers everything from raw events
    # per-key token bucket, one per key across replicas (kept in PostgreSQL:
    # http/ratelimit.py, docs/rate-limits.md): "<n>/<period>" or "off"; a key's own
    # api_keys.rate_limit overrides it. Give every replica the same value.
    rate_limit: str = "600/min"
    # faults (docs/operations.md, "Faults and health"): wait this long for a pooled connection, then 503
    pool_timeout_s: float = 2.0
    # a lost connection is retried (backoff 1 s, 2 s, ...) this long, then given up; the next
    # request that needs one starts a fresh attempt, so recovery never waits on a long backoff
    pool_reconnect_timeout_s: float = 5.0
    readiness_timeout_s: float = 1.0  # /readyz: a connection and its check within this
    shutdown_grace_s: float = 20.0  # SIGTERM: in-flight requests get this long to finish
    # admission by cost (http/admission.py): a per-key token bucket of points (values in
    # an answer: buckets x entities), "<n>/<period>" or "off"
    cost_budget: str = "3000000/min"
    expensive_points: int = 50_000  # from this many points a request is expensive:
    expensive_per_key: int = 1  # at most this many at a time per key,
    expensive_per_org: int = 2  # and per org,
    expensive_pool: int = 2  # in the expensive lane with its own connections (http/lane.py)
    # GET /metrics needs "Authorization: Bearer <this>" when set (docs/operations.md); unset,
    # it is open as scrapers expect, and the proxy should keep it internal
    metrics_token: str | None = None

    @classmethod
    def from_env(cls) -> "Settings":
        """The settings of the environment; ``ConfigError`` lists every number that is
        not one (the formats that other modules parse are checked by ``cli``)."""
        settings, problems = cls.read_env()
        if problems:
            raise ConfigError(problems)
        return settings

    @classmethod
    def read_env(cls) -> tuple["Settings", list[str]]:
        """The settings of the environment, each number that is not one replaced by its
        default, and a line per such number."""
        problems: list[str] = []

        def number(name: str, default: str, kind: type = int):
            return _number(name, default, kind, problems)

        settings = cls(
            database_url=os.environ.get(DATABASE_URL_ENV) or None,
            data_dir=Path(os.environ.get(DATA_DIR_ENV, ".stats-gateway")).resolve(),
            pool_max=number("STATS_GATEWAY_POOL_MAX", "10"),
            statement_timeout_ms=number("STATS_GATEWAY_STATEMENT_TIMEOUT_MS", "15000"),
            use_rollups=os.environ.get("STATS_GATEWAY_ROLLUPS", "on") != "off",
            rate_limit=os.environ.get("STATS_GATEWAY_RATE_LIMIT", "600/min"),
            pool_timeout_s=number("STATS_GATEWAY_POOL_TIMEOUT_S", "2", float),
            pool_reconnect_timeout_s=number("STATS_GATEWAY_POOL_RECONNECT_TIMEOUT_S", "5",
                                            float),
            readiness_timeout_s=number("STATS_GATEWAY_READINESS_TIMEOUT_S", "1", float),
            shutdown_grace_s=number("STATS_GATEWAY_SHUTDOWN_GRACE_S", "20", float),
            cost_budget=os.environ.get("STATS_GATEWAY_COST_BUDGET", "3000000/min"),
            expensive_points=number("STATS_GATEWAY_EXPENSIVE_POINTS", "50000"),
            expensive_per_key=number("STATS_GATEWAY_EXPENSIVE_PER_KEY", "1"),
            expensive_per_org=number("STATS_GATEWAY_EXPENSIVE_PER_ORG", "2"),
            expensive_pool=number("STATS_GATEWAY_EXPENSIVE_POOL", "2"),
            metrics_token=os.environ.get("STATS_GATEWAY_METRICS_TOKEN") or None,
        )
        return settings, problems
