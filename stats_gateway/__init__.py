"""stats-gateway: one time-series/breakdown engine over PostgreSQL for many usage domains."""

__version__ = "0.1.0"
