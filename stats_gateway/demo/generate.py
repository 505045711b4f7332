"""The pure half of the demo: seeded, column-wise generation of realistic event rows.

Nothing here touches a database, so tests can regenerate exactly what the loader wrote
and count it themselves. Every (org, domain) cell has its own ``random.Random`` seeded
from (seed, org, domain), except call-usage, which is made with its calls (``traces``):
the same ``events`` and ``now`` give the same rows however the loader chunks them. Rows
are built a column at a time (bulk ``choices`` over precomputed cumulative weights, one
tight loop for the numbers) because per-row Python work is what bounds the demo's load
time. Each domain declares its own generator, event id prefix and default share
(``Samples`` in its module, e.g. ``domains/storage.py``); calls and their usage are made
together by ``traces``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate, repeat
from zoneinfo import ZoneInfo

from domains import DOMAINS
from domains.private_chat import private_chat_columns  # noqa: F401 - bench/ops.py imports it here
from stats_gateway.core.domain import Domain, Samples
from stats_gateway.demo.sampling import HOURS, Columns, event_times
from stats_gateway.demo.traces import calls_with_usage
from stats_gateway.demo.world import ORGS, Org

SEED = 20_240_917
CHUNK_ROWS = 20_000
DOMAIN_BY_NAME = {d.name: d for d in DOMAINS}
PAIRED = ("calls", "call-usage")  # generated together (``traces``): usage belongs to calls


@dataclass(frozen=True)
class Chunk:
    """Consecutive events of one org and domain, column-wise: ``event_id``, ``ts`` and
    stored columns by name; a stored column that is absent holds its field default."""

    org: Org
    domain: Domain
    columns: Columns

    def __len__(self) -> int:
        return len(self.columns["event_id"])


def rows(chunk: Chunk, *lead: object) -> Iterator[tuple]:
    """Tuples ``(*lead, event_id, ts, *stored columns)`` in ``domain.stored_fields`` order,
    ready for ``COPY table (org_id, event_id, ts, ...)`` with ``lead=(org_id,)``."""
    n, columns = len(chunk), chunk.columns
    parts: list = [repeat(value, n) for value in lead]
    parts += [columns["event_id"], columns["ts"]]
    parts += [columns[f.column] if f.column in columns else repeat(f.default, n)
              for f in chunk.domain.stored_fields]
    return zip(*parts)


def check_columns(domain: Domain, columns: Columns) -> None:
    """A generator may only fill the domain's stored columns (a typo would be lost)."""
    unknown = set(columns) - {f.column for f in domain.stored_fields}
    if unknown:
        raise ValueError(f"{domain.name}: generated unknown columns {sorted(unknown)}")


# --- how many, and when ------------------------------------------------------------------


def demo_domains(domains: tuple[Domain, ...] = DOMAINS) -> tuple[Domain, ...]:
    """The domains the demo generates: those that declare a generator, and calls and
    their usage (made together)."""
    return tuple(d for d in domains
                 if d.samples is not None and (d.samples.columns or d.name in PAIRED))


def samples(domain: Domain) -> Samples:
    """A demo domain's sample declarations (``demo_domains`` keeps only those with some)."""
    assert domain.samples is not None, domain.name
    return domain.samples


def mix(org: Org, domains: tuple[Domain, ...] = DOMAINS) -> dict[str, float]:
    """The org's share of events per domain: its own mix (``world``), else the domain's
    declared ``demo_share``."""
    return {d.name: org.mix.get(d.name, samples(d).demo_share) for d in demo_domains(domains)}


def allocate(events: int, domains: tuple[Domain, ...] = DOMAINS) -> dict[tuple[str, str], int]:
    """Events per (org key, domain name), summing exactly to ``events`` (largest remainder)."""
    shares = {(org.key, name): org.share * part
              for org in ORGS for name, part in mix(org, domains).items()}
    scale = events / sum(shares.values())
    counts = {cell: int(share * scale) for cell, share in shares.items()}
    by_remainder = sorted(shares, key=lambda c: counts[c] - shares[c] * scale)
    for cell in by_remainder[:events - sum(counts.values())]:
        counts[cell] += 1
    for org in ORGS:  # usage needs calls to belong to (only an issue in tiny datasets)
        if counts[(org.key, "calls")] == 0:
            counts[(org.key, "calls")] = counts[(org.key, "call-usage")]
            counts[(org.key, "call-usage")] = 0
    return counts


def _diurnal(hour: int, nightly_batch: bool) -> float:
    """Relative activity at a local hour: a morning and an afternoon peak, quiet nights;
    storage adds the nightly backup window around 02:00."""
    office = math.exp(-((hour - 10.5) / 2.2) ** 2) + 0.8 * math.exp(-((hour - 15.0) / 2.5) ** 2)
    if nightly_batch:
        return 0.25 + 0.7 * office + 0.9 * math.exp(-((hour - 2.0) / 1.2) ** 2)
    return 0.06 + office


WEEKDAY = (1.0, 1.05, 1.05, 1.0, 0.9, 0.3, 0.22)  # Monday .. Sunday


def hour_weights(org: Org, now: datetime, nightly_batch: bool) -> list[float]:
    """Cumulative weight of each of the 8760 hours before ``now`` (oldest first): local
    daily and weekly rhythm, a holiday lull, steady growth, and an onboarding ramp for an
    org younger than the window."""
    zone = ZoneInfo(org.timezone)
    first = now - timedelta(hours=HOURS)
    weights = []
    for k in range(HOURS):
        age_days = (HOURS - k) / 24  # how long before now this hour is
        if age_days > org.active_days:
            weights.append(0.0)
            continue
        local = (first + timedelta(hours=k)).astimezone(zone)
        new_year = (local.month, local.day) >= (12, 24) or (local.month, local.day) == (1, 1)
        holiday = 0.45 if new_year else 1.0
        ramp = 1.0 if org.active_days * 24 >= HOURS else min(
            1.0, 0.1 + (org.active_days - age_days) / 30)  # the first month, ramping up
        growth = org.growth ** (k / HOURS)
        weights.append(_diurnal(local.hour, nightly_batch) * WEEKDAY[local.weekday()]
                       * holiday * ramp * growth)
    return list(accumulate(weights))


# --- the whole dataset -------------------------------------------------------------------


def generate(events: int, now: datetime, seed: int = SEED,
             domains: tuple[Domain, ...] = DOMAINS) -> Iterator[Chunk]:
    """Every event of the demo dataset, in chunks of at most ``CHUNK_ROWS``, grouped by
    org then domain, each cell in time order with sequential event ids."""
    counts = allocate(events, domains)
    by_name = {d.name: d for d in demo_domains(domains)}
    for org in ORGS:
        weights = {batch: hour_weights(org, now, batch) for batch in (False, True)}
        for name in mix(org, domains):
            n = counts[(org.key, name)]
            rng = random.Random(f"{seed}:{org.key}:{name}")
            domain = by_name[name]
            if name == "call-usage":
                continue  # made with the calls
            if name == "calls":
                calls, usage = calls_with_usage(org, rng, n, counts[(org.key, "call-usage")],
                                                weights[False], now)
                yield from _chunks(org, domain, *calls)
                yield from _chunks(org, by_name["call-usage"], *usage)
                continue
            times = event_times(weights[samples(domain).demo_nightly], n, now, rng)
            make = samples(domain).columns
            assert make is not None  # demo_domains: a generator, or calls and their usage
            for start in range(0, n, CHUNK_ROWS):
                part = times[start:start + CHUNK_ROWS]
                yield _chunk(org, domain, start, part, make(org, rng, part, now))


def _chunks(org: Org, domain: Domain, times: list[float], columns: Columns) -> Iterator[Chunk]:
    """A cell generated in one piece, cut into chunks."""
    for start in range(0, len(times), CHUNK_ROWS):
        end = start + CHUNK_ROWS
        yield _chunk(org, domain, start, times[start:end],
                     {column: values[start:end] for column, values in columns.items()})


def _chunk(org: Org, domain: Domain, start: int, times: list[float], columns: Columns) -> Chunk:
    """Rows ``start``.. of a cell: its columns plus sequential event ids and times."""
    check_columns(domain, columns)
    columns["event_id"] = [f"{samples(domain).prefix}-{i:09d}"
                           for i in range(start, start + len(times))]
    columns["ts"] = [datetime.fromtimestamp(t, UTC) for t in times]
    return Chunk(org, domain, columns)
