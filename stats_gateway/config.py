"""Settings read from the environment, in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DATABASE_URL_ENV = "STATS_GATEWAY_DATABASE_URL"
DATA_DIR_ENV = "STATS_GATEWAY_DATA_DIR"


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    data_dir: Path  # embedded PostgreSQL lives here when no URL is set
    pool_min: int = 1
    pool_max: int = 10
    statement_timeout_ms: int = 15_000
    use_rollups: bool = True  # STATS_GATEWAY_ROLLUPS=off answers everything from raw events

    @classmethod
    def from_env(cls) -> "Settings":
        return cls(
            database_url=os.environ.get(DATABASE_URL_ENV) or None,
            data_dir=Path(os.environ.get(DATA_DIR_ENV, ".stats-gateway")).resolve(),
            pool_max=int(os.environ.get("STATS_GATEWAY_POOL_MAX", "10")),
            statement_timeout_ms=int(os.environ.get("STATS_GATEWAY_STATEMENT_TIMEOUT_MS",
                                                    "15000")),
            use_rollups=os.environ.get("STATS_GATEWAY_ROLLUPS", "on") != "off",
        )
