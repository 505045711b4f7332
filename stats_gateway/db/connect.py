"""How the product opens its database connections: every statement is planned for its own
parameters (``plan_cache_mode = force_custom_plan``), on every connection; with the
gateway's ``work_mem``, no parallel workers per statement (``parallel_workers_option``)
and no JIT compilation (``jit_option``).

Why: psycopg prepares a statement on its 5th execution (``prepare_threshold``) and
PostgreSQL, under the default ``plan_cache_mode = auto``, then tries a *generic* plan (one
plan for any parameter values) after 5 custom ones, keeping it whenever its estimated cost
is not above the custom plans' average. The estimate knows nothing of the values, so the
queries whose best plan depends on them (an org, a workspace id, a range of a few hours
or of a year, an ``= ANY($ids)`` list) kept plans 4-40x slower once a dashboard or an
ingest client had repeated them ten times: a workspace breakdown went 205 ms -> 3.8 s, an
ingest batch 2 s -> 60 s (its rollup refresh ``... WHERE event_id = ANY($ids)`` went
generic). See ``tests/test_plan_cache.py``.

The choice, measured on the embedded PostgreSQL 18 (2 cores shared with other work; 600k
demo events; the gateway's own queries for one request, captured and re-run through
``tenant_fetch`` on one-connection pools that differ only in the setting; 3 runs of 200
interleaved executions each, after a warm-up past the generic switch; ms per request,
10th percentile, the steadiest figure under the machine's load; medians in brackets):

    setting                                   AI series, 24 h     credits series, 30 d
                                              (2 statements)      (1 statement)
    auto, prepare after 5 (before: generic)   0.89-0.93 (1.0-1.2) 1.38-1.53 (1.6-2.8)
    force_custom_plan, prepare after 5 (this) 1.13-1.15 (1.2-1.5) 1.40-1.42 (1.6-2.3)
    auto, prepare_threshold=None              1.26-1.33 (1.4-1.7) 1.56-1.64 (1.9-2.6)
    force_custom_plan, prepare_threshold=None 1.24-1.31 (1.5-1.8) 1.56-1.59 (1.9-2.6)

So planning every execution does cost something on the ~1 ms hot path: about 0.1 ms per
non-trivial statement (0.2 ms on the two-statement AI series, nothing measurable on the
credits one). Only a generic plan skips planning, and the generic plan is what has to go:
0.1 ms against seconds. Keeping psycopg's prepared statements still saves parsing and
analysis, so custom plans of prepared statements beat not preparing at all (a further
0.1-0.15 ms). ``force_custom_plan`` also governs the plans the server caches by itself
(the queries inside PL/pgSQL functions: none of the schema's needs it today), which
``prepare_threshold=None`` would not reach. Hence: prepare as psycopg does by default,
never plan generically.

How: as a libpq startup option (``-c plan_cache_mode=force_custom_plan``), like the
gateway's ``statement_timeout``. It costs no round trip, holds from the connection's first
statement (the pool's configure callback and checks included), and is the session's
default, so ``RESET ALL`` or ``DISCARD ALL`` keep it. ``connect_options`` builds the
options string for every connection; ``connect`` (the CLI commands: ``migrate``,
``create-key``, ``load``, ``rebuild``, the demo, the gateway's start-up migration) and
``GatewayPool`` (the gateway's pool, ``db/pool.py``) go through it. A ``-c plan_cache_mode=...`` in the database URL's own
``options`` comes later in the string, so it still wins for whoever sets it on purpose.
A connection pooler in front of PostgreSQL must pass startup ``options`` through (the
gateway's statement timeout needed that already).
"""

from __future__ import annotations

import os
import re

import psycopg
from psycopg.conninfo import conninfo_to_dict

PLAN_CACHE_MODE = "force_custom_plan"
PLAN_CACHE_OPTION = f"-c plan_cache_mode={PLAN_CACHE_MODE}"
# Memory per sort or hash of a statement. PostgreSQL's 4MB spilled to disk the hash of a
# year-long users breakdown (20k users) and of a year of distinct-count registers (71k
# groups); 32MB keeps both in memory: 10-15% faster, measured on 2M events (docs/operations.md).
WORK_MEM_ENV, WORK_MEM_DEFAULT = "STATS_GATEWAY_WORK_MEM", "32MB"
_SIZE = re.compile(r"[1-9][0-9]{0,6}(kB|MB|GB)")
# Parallel workers per statement (max_parallel_workers_per_gather). The gateway already
# runs a request's statements side by side (core/engine.py's gather_all) and requests
# side by side; PostgreSQL's default of 2 workers per statement made each of those
# statements three processes sharing the same cores, plus a Gather Merge and a sort of
# the workers' partial groups. On 2 cores (PostgreSQL 15, 2M and 10M events, over HTTP,
# alternated twice): a year's users page 124 -> 81 ms at 2M and 505 -> 406 ms at 10M, its
# offset page 117 -> 72 ms and 493 -> 389 ms, a year's ai breakdown by model 142 -> 103
# ms; no measured shape got slower, a full raw scan included (a users page filtered by
# model, 854 -> 831 ms). A database with many more cores than concurrent requests may do
# better with workers: raise it there (docs/operations.md).
PARALLEL_WORKERS_ENV, PARALLEL_WORKERS_DEFAULT = "STATS_GATEWAY_PARALLEL_WORKERS", "0"
# JIT compilation of a statement's expressions (PostgreSQL's ``jit``, on by default above
# an estimated cost of 100k). The gateway's costly statements are aggregates over rollup
# rows and sketches, where compiled expressions save little; compiling them does not: at
# 10M events the planner's estimates pass the inlining and optimisation thresholds too,
# and one users page ranked by conversationsCount spent 0.8 s of 3.9 s compiling 87
# functions. Off, over HTTP (PostgreSQL 15, 10M events, 3 runs each): the year's users
# page 616 -> 535 ms, its offset page 546 -> 454, by conversationsCount 5.6 -> 4.9 s; at
# 2M nothing of 15 shapes got slower beyond noise (a raw scan of 1M events, 960-966 ->
# 972-1028 ms, is the closest). On for whoever's statements gain (docs/operations.md).
JIT_ENV, JIT_DEFAULT = "STATS_GATEWAY_JIT", "off"
_ON_OFF = re.compile(r"on|off")
_WORKERS = re.compile(r"0|[1-9][0-9]?")


def _env_option(env: str, default: str, pattern: re.Pattern, setting: str,
                expected: str) -> str:
    """``-c setting=…`` from the environment variable ``env`` (or ``default``); a value
    ``pattern`` does not match whole is refused before it reaches the options string (it
    could carry other settings)."""
    value = os.environ.get(env, default).strip()
    if not pattern.fullmatch(value):
        raise ValueError(f"{env}={value!r}: expected {expected}")
    return f"-c {setting}={value}"


def work_mem_option() -> str:
    """``-c work_mem=…`` from ``STATS_GATEWAY_WORK_MEM`` (a size such as 64MB)."""
    return _env_option(WORK_MEM_ENV, WORK_MEM_DEFAULT, _SIZE, "work_mem",
                       "a size such as 32MB (a number and kB, MB or GB)")


def parallel_workers_option() -> str:
    """``-c max_parallel_workers_per_gather=…`` from ``STATS_GATEWAY_PARALLEL_WORKERS``
    (a whole number, 0 to 99)."""
    return _env_option(PARALLEL_WORKERS_ENV, PARALLEL_WORKERS_DEFAULT, _WORKERS,
                       "max_parallel_workers_per_gather", "a whole number of workers from 0 to 99")


def jit_option() -> str:
    """``-c jit=…`` from ``STATS_GATEWAY_JIT`` (on or off)."""
    return _env_option(JIT_ENV, JIT_DEFAULT, _ON_OFF, "jit", "on or off")


def connect_options(conninfo: str = "", options: str | None = None) -> str:
    """The libpq ``options`` for a connection to ``conninfo``: the plan, memory and
    parallelism settings, then the URL's own ``options`` (or ``PGOPTIONS`` when it has
    none, which libpq would otherwise have used), then the caller's ``options``. A later
    ``-c`` of the same setting wins."""
    given = conninfo_to_dict(conninfo).get("options") if conninfo else None
    own = None if given is None else str(given)
    if own is None:
        own = os.environ.get("PGOPTIONS")
    parts = [PLAN_CACHE_OPTION, work_mem_option(), parallel_workers_option(), jit_option(),
             own, options]
    return " ".join(p.strip() for p in parts if p and p.strip())


def connection_kwargs(conninfo: str, kwargs: dict | None = None) -> dict:
    """``kwargs`` for ``psycopg.connect`` (or a pool's ``kwargs``) to ``conninfo``, with
    ``options`` merged by ``connect_options``."""
    merged = dict(kwargs or {})
    merged["options"] = connect_options(conninfo, merged.get("options"))
    return merged


def connect(conninfo: str, **kwargs) -> psycopg.Connection:
    """``psycopg.connect`` with the product's connection settings (see the module
    docstring): what the CLI commands and the demo use."""
    return psycopg.connect(conninfo, **connection_kwargs(conninfo, kwargs))
