"""Rollups: an answer read from rollup tables is exactly the answer raw events give.

The evidence, each piece able to fail:

* equivalence: seeded random queries over messy ingests (retries, in-batch duplicates,
  shuffled batches) must give byte-identical ``/v2/stats`` bodies with rollups on and off,
  and a subset must match the reference computed here from the events (``expected``);
* the path is live: the planner takes, among the cubes holding every column a query
  needs, the one with the fewest columns, cut coarsest grain first with raw ends (table
  names are the product's: tests find rollups by cube and grain); a rollup row corrupted
  by hand changes the answer (until ``rebuild_rollups``), while queries that must not read
  rollups (distinct counts, list-overlap filters, breakdowns with names or attributes,
  grids no grain of the fitting cubes divides) stay right over corrupted tables;
* ingest is exactly-once: retries, rejected batches and concurrent batches leave rollups
  equal to a rebuild from the raw events;
* migration rebuilds a rollup whose definition changed, builds a missing one, builds a
  changed declaration's tables beside the old ones and drops undeclared ones.

The acceptance tests of the cube design (every domain, scope, dimension and cube; late
events; loads next to ingest) are in ``test_cubes.py``.

Choices pinned down here where the engine is silent:

* A breakdown with attributes or a ``name_column`` totals its entities from raw events,
  but its ``includeSeries`` per-entity series may come from rollups (they are exact).
* ``POST /calls/stats`` asks for ad-hoc metrics, which have no rollup parts: it always
  reads raw events. Rollups serve ``/v2`` and the value API with declared metrics.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from conftest import Org
from expected import (
    BREAKDOWN_METRICS, DIMENSIONS, FILTERS, NEW_DIMENSIONS, UTC, assert_matches,
    auto_size, breakdown_metrics, compute, count_fast, expected_series,
    group_by_bucket, group_entities, in_range, local_to_utc, order_entities, parse_ts,
    select, sizes_that_fit, unix, utc, with_defaults,
)
from support import (
    HTTP, GENERATORS, NEW_GENERATORS, assert_rollups_equal_a_rebuild, check_series, corrupt_tables,
    encode, generate, generate_new, in_parallel, live_server, loads, post_events,
    random_times, rollup_of, rollup_snapshot,
)
from stats_gateway.auth import create_key
from stats_gateway.core.distinct import distinct_rollups
from domains.private_chat import DOMAIN as PRIVATE_CHAT_DOMAIN
from stats_gateway.core.domain import (
    Cube, DomainDeclarationError, Metric, Sum, sortable, validate_domains,
)
from stats_gateway.core.request import Filter, parse_breakdown, parse_series
from stats_gateway.core.rollup_sql import ddl_checksum, rebuild_rollups, sketch_rollups
from stats_gateway.core.rollups import (
    ceil_to_every, default_cubes, domain_rollups, floor_to_every, plan_segments, rollup_table_names,
)

DOMAINS = ("storage", "private-chat", "credits", "runs", "model-usage", "workflow-cu",
           "call-usage", "policies")
ZONES = ("UTC", "Asia/Kolkata", "Asia/Kathmandu", "America/New_York")
MAIN = (utc(2026, 10, 10), utc(2026, 11, 19))  # New York falls back on 2026-11-01
SPRING = (utc(2026, 3, 6), utc(2026, 3, 11))  # New York springs forward on 2026-03-08
EDGES = [utc(2026, 10, 20), utc(2026, 10, 20, 13), utc(2026, 10, 20, 13, 45),
         utc(2026, 10, 20, 18, 30), utc(2026, 10, 20, 18, 15), utc(2026, 11, 1, 4),
         utc(2026, 11, 1, 5), utc(2026, 11, 1, 6), utc(2026, 3, 8, 7), utc(2026, 3, 8, 5)]
# busy minutes around the anchor queries' unaligned ends, which raw events must answer
DENSE = [(utc(2026, 10, 30, 12, 55), utc(2026, 10, 30, 13, 20)),
         (utc(2026, 11, 2, 18, 25), utc(2026, 11, 2, 18, 50)),
         (utc(2026, 10, 14, 4, 55), utc(2026, 10, 14, 5, 20)),
         (utc(2026, 11, 2, 21, 40), utc(2026, 11, 2, 22, 5))]
# a field changed in retried or repeated copies: counting a copy would show
ALTER = {"storage": ("uplBytes", 777_777), "private-chat": ("tokensIn", 777_777),
         "credits": ("amount", "777.777"), "runs": ("spend", "777.777"),
         "model-usage": ("tokens", 777_777), "workflow-cu": ("cu", "777.777"),
         "call-usage": ("inputTokens", 777_777), "policies": ("policyTokensIn", 777_777)}
QUERIES_PER_DOMAIN = 40


def engine(client):
    return client.app.state.engine


def domain_of(client, name: str):
    return engine(client).domain(name)


def make_events(domain: str, seed, times) -> list[dict]:
    if domain in GENERATORS:
        return generate(domain, seed, times, prefix=f"{seed}-")
    return generate_new(domain, seed, times, prefix=f"{seed}-")


def reference(domain: str, events) -> list[dict]:
    """Events as the reference computations expect them (documented defaults filled)."""
    return with_defaults(domain, events) if domain in NEW_GENERATORS else list(events)


def ingest_messily(client, org, domain: str, events, seed) -> list[dict]:
    """Ingest in shuffled batches with in-batch duplicates (changed copies first and
    last), a retried batch with changed content, and a batch mixing old and new ids.
    Returns the events stored: the first copy of every id."""
    rng = random.Random(f"messy-{seed}")
    events = list(events)
    rng.shuffle(events)
    q = len(events) // 4
    chunks = [events[:q], events[q:2 * q], events[2 * q:3 * q], events[3 * q:]]
    field, value = ALTER[domain]
    stored: dict[str, dict] = {}

    def post(batch, inserted, duplicates):
        r = post_events(client, org.headers, domain, batch)
        assert r.status_code == 200, r.text
        assert r.json() == {"success": True, "domain": domain, "received": len(batch),
                            "inserted": inserted, "duplicates": duplicates}, r.text
        for e in batch:
            stored.setdefault(e["eventId"], e)

    def altered(e):
        return {**e, field: value}

    post(chunks[0], len(chunks[0]), 0)
    c1 = chunks[1]
    post([altered(e) for e in c1[:3]] + c1 + [altered(e) for e in c1[3:6]], len(c1), 6)
    post(chunks[2], len(chunks[2]), 0)
    post([altered(e) for e in chunks[2]], 0, len(chunks[2]))
    mixed = chunks[3] + [altered(e) for e in chunks[0][:20]]
    rng.shuffle(mixed)
    post(mixed, len(chunks[3]), 20)
    return list(stored.values())


@dataclass
class World:
    org: Org
    events: dict[str, list[dict]]  # stored events per domain


@pytest.fixture(scope="module")
def world(client, db) -> World:
    org = Org(db, f"rollups-{uuid.uuid4().hex[:10]}")
    now = datetime.now(UTC)
    stored = {}
    for k, domain in enumerate(DOMAINS):
        times = random_times(f"ru-{domain}", *MAIN, 400)
        times += random_times(f"ru-{domain}-spring", *SPRING, 50)
        times += random_times(f"ru-{domain}-recent", now - timedelta(days=35),
                              now - timedelta(minutes=1), 100)
        times += EDGES + [t - timedelta(microseconds=1) for t in EDGES]
        for a, b in DENSE:
            times += random_times(f"ru-{domain}-{a}", a, b, 15)
        stored[domain] = ingest_messily(client, org, domain,
                                        make_events(domain, k, list(dict.fromkeys(times))),
                                        domain)
    return World(org, stored)


# --- comparing rollups on and off ---------------------------------------------------------


def first_difference(a, b, where="$") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return f"{where}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            if (d := first_difference(a[k], b[k], f"{where}.{k}")) is not None:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{where}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            if (d := first_difference(x, y, f"{where}[{i}]")) is not None:
                return d
        return None
    if type(a) is not type(b) or a != b:
        return f"{where}: {a!r} != {b!r}"
    return None


def both_ways(client, path: str, headers, params: dict):
    """(with rollups, without) responses; a window query is retried if the clock ticked."""
    eng = engine(client)
    try:
        for _ in range(3):
            eng.use_rollups = True
            on = client.get(path, params=params, headers=headers)
            eng.use_rollups = False
            off = client.get(path, params=params, headers=headers)
            if on.text == off.text or "window" not in params:
                break
            if loads(on.text)["meta"]["start"] == loads(off.text)["meta"]["start"]:
                break
    finally:
        eng.use_rollups = True
    return on, off


def assert_same(on, off, what) -> dict:
    """Both 200 and byte-identical; the parsed body (exact decimals)."""
    assert on.status_code == 200, f"{what}: {on.status_code} {on.text[:300]}"
    assert off.status_code == 200, f"{what}: {off.status_code} {off.text[:300]}"
    a, b = loads(on.text), loads(off.text)
    assert a == b and on.text == off.text, \
        f"rollups disagree with raw events for {what}: {first_difference(a, b)}"
    return a


# --- random queries -----------------------------------------------------------------------


def snap(rng: random.Random, t: datetime, tz: str) -> datetime:
    """``t`` put on a boundary of some kind, or left unaligned (seconds, sub-seconds)."""
    how = rng.choice(["day", "hour", "quarter", "local-midnight", "second", "subsecond",
                      "subsecond"])
    if how == "day":
        return t.replace(hour=0, minute=0, second=0, microsecond=0)
    if how == "hour":
        return t.replace(minute=0, second=0, microsecond=0)
    if how == "quarter":
        return t.replace(minute=t.minute - t.minute % 15, second=0, microsecond=0)
    if how == "local-midnight":
        zone = ZoneInfo(tz)
        local = t.astimezone(zone)
        return local_to_utc(datetime(local.year, local.month, local.day), zone)
    if how == "second":
        return t.replace(microsecond=0)
    return t.replace(microsecond=rng.randrange(1, 10**6))


def spell(rng: random.Random, t: datetime) -> str:
    """An instant as unix seconds, RFC 3339 in UTC or with a +05:30 offset."""
    style = rng.randrange(3)
    if style == 0 and not t.microsecond:
        return str(unix(t))
    if style == 1:
        return t.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()
    return t.isoformat().replace("+00:00", "Z")


@dataclass
class Query:
    path: str
    params: dict
    kind: str  # series | breakdown
    name: str  # view path or breakdown by
    start: datetime | None  # None: a window
    end: datetime | None
    tz: str
    size: str | None  # None: auto
    scope: str
    scope_id: str | None
    filters: dict
    metric: str | None = None
    sort: str | None = None
    descending: bool = True
    limit: int = 50
    offset: int = 0
    include_series: bool = False


def random_query(rng: random.Random, client, domain: str, world: World) -> Query:
    dom = domain_of(client, domain)
    events = world.events[domain]
    tz = rng.choice(ZONES)
    params: dict[str, str] = {}
    start = end = None
    if rng.random() < 0.2:
        window = rng.choice(["24h", "7d", "30d"])
        params["window"] = window
        now = datetime.now(UTC).replace(microsecond=0)
        lo, hi = now - timedelta(hours={"24h": 24, "7d": 168, "30d": 720}[window]), now
    else:
        a, b = rng.choice([MAIN, MAIN, MAIN, SPRING])
        span = int((b - a).total_seconds()) + 2 * 86400
        t = a - timedelta(days=1) + timedelta(seconds=rng.randrange(span))
        start = snap(rng, t, tz)
        length = rng.choice([timedelta(minutes=rng.randint(10, 240)),
                             timedelta(hours=rng.randint(2, 96)),
                             timedelta(days=rng.randint(2, 45))])
        end = snap(rng, start + length, tz)
        if end <= start:
            end = start + timedelta(hours=1, seconds=7)
        params["start"], params["end"] = spell(rng, start), spell(rng, end)
        lo, hi = start, end
    if tz != "UTC" or rng.random() < 0.3:
        params["timezone"] = tz
    include = False
    kind = "series" if rng.random() < 0.55 else "breakdown"
    if kind == "breakdown":
        include = rng.random() < 0.35
    fits = [s for s in sizes_that_fit(lo, hi, tz)
            if not include or count_fast(lo, hi, s, tz) <= 400]
    size = None if rng.random() < 0.15 else rng.choice(fits)
    if size:
        params["timeBucketSize"] = size
    r = rng.random()
    if r < 0.5:
        scope, scope_id = "org", None
        if rng.random() < 0.5:
            params["id"] = world.org.id
    elif r < 0.75:
        scope, scope_id = "workspace", rng.choice(["w1", "w2"])
    else:
        scope, scope_id = "repo", rng.choice(["r1", "r3"])
    params["scope"] = scope
    if scope_id:
        params["id"] = scope_id
    filters = {}
    for param in rng.sample(FILTERS[domain], k=rng.choice([0, 0, 0, 0, 1, 1, 2])):
        values = sorted({e[param] for e in events if e.get(param) is not None}, key=str)
        value = rng.choice(values)
        filters[param] = ("true" if value else "false") if isinstance(value, bool) else value
    params.update(filters)
    q = Query("", params, kind, "", start, end, tz, size, scope, scope_id, filters,
              include_series=include)
    if kind == "series":
        view = rng.choice(dom.series)
        q.name, q.path = view.path, f"/v2/stats/{domain}" + (f"/{view.path}" if view.path else "")
        if rng.random() < 0.3:
            q.metric = params["metric"] = rng.choice(view.metrics)
    else:
        dim = rng.choice(dom.dimensions)
        q.name, q.path = dim.by, f"/v2/stats/{domain}/breakdown/{dim.by}"
        if rng.random() < 0.4:
            q.sort = params["sort"] = rng.choice([m for m in dom.breakdown_metrics(dim)
                                                  if sortable(dom.metric(m))])
        if rng.random() < 0.5:
            params["order"] = rng.choice(["asc", "desc"])
            q.descending = params["order"] == "desc"
        if (limit := rng.choice([None, 1, 2, 3, 5, 10])) is not None:
            q.limit = limit
            params["limit"] = str(limit)
        if (offset := rng.choice([None, None, 0, 1, 3])) is not None:
            q.offset = offset
            params["offset"] = str(offset)
        if include or rng.random() < 0.2:
            params["includeSeries"] = "true" if include else "false"
    return q


def planned_segments(client, domain: str, q: Query, now: datetime):
    """The planner's segments for the query's main aggregate (None: raw by design)."""
    dom = domain_of(client, domain)
    multi = {k: [v] for k, v in q.params.items()}
    if q.kind == "series":
        view = dom.series_view(q.name)
        request = parse_series(dom, view, multi, now)
        return plan_segments(dom, request, [dom.metric(m) for m in view.metrics], None)
    dim = dom.dimension(q.name)
    if dim.attributes or dim.name_column:
        return None
    request = parse_breakdown(dom, dim, multi, now)
    return plan_segments(dom, request, [dom.metric(m) for m in request.metrics], dim, False)


# --- the independent reference ----------------------------------------------------------


def range_of(q: Query, body) -> tuple[datetime, datetime, str]:
    if q.start is None:  # a window: whole seconds from the server's clock
        start = datetime.fromtimestamp(body["meta"]["start"], UTC)
        end = datetime.fromtimestamp(body["meta"]["end"], UTC)
    else:
        start, end = q.start, q.end
    return start, end, q.size or auto_size(start, end, q.tz)


def entity_fields(domain: str, by: str) -> tuple[str, ...]:
    if (domain, by) in NEW_DIMENSIONS:
        return NEW_DIMENSIONS[(domain, by)].key
    return (DIMENSIONS[(domain, by)][0],)


def check_breakdown(body, domain: str, q: Query, events) -> None:
    """Entity order, page, totals, totalEntities and per-entity series from the events."""
    start, end, size = range_of(q, body)
    chosen = select(events, q.scope, q.scope_id, q.filters)
    groups = group_entities(in_range(chosen, start, end), entity_fields(domain, q.name))
    metrics = breakdown_metrics(domain, q.name)
    totals = {k: compute(domain, metrics, g) for k, g in groups.items()}
    ordered = order_entities(totals, q.sort or BREAKDOWN_METRICS[domain][1], q.descending)
    page = ordered[q.offset:q.offset + q.limit]
    assert [e["entityId"] for e in body["entities"]] == page, (q.params, page)
    assert body["meta"]["totalEntities"] == len(totals)
    for entity in body["entities"]:
        key = entity["entityId"]
        assert_matches(entity["totals"], totals[key], f"$.{key}.totals")
        if q.include_series:
            assert_matches(entity["series"], expected_series(
                domain, metrics, groups[key], start, end, size, q.tz), f"$.{key}.series")


def check_reference(body, domain: str, q: Query, events, org_id: str) -> None:
    if q.kind == "breakdown":
        check_breakdown(body, domain, q, events)
        return
    start, end, size = range_of(q, body)
    check_series(body, domain, q.name, events, start, end, size, q.tz, metric=q.metric,
                 scope=q.scope, scope_id=q.scope_id if q.scope != "org" else org_id,
                 window=q.params.get("window"), filters=q.filters)


def anchor_queries(client, domain: str) -> list[Query]:
    """Three queries every domain answers from each grain and raw ends: whole UTC days;
    New York hours with unaligned ends; a breakdown with series over unaligned days."""
    dom = domain_of(client, domain)
    days = {"scope": "org", "start": "2026-10-12T00:00:00Z", "end": "2026-11-10T00:00:00Z",
            "timeBucketSize": "1d"}
    hours = {"scope": "org", "start": "2026-10-30T13:07:00.5Z", "end": "2026-11-02T18:40:10Z",
             "timeBucketSize": "1h", "timezone": "America/New_York"}
    dim = next(d for d in dom.dimensions
               if not d.attributes and not d.name_column and not d.extra_metrics)
    page = {"scope": "org", "start": "2026-10-14T05:05:05Z", "end": "2026-11-02T21:59:59.999Z",
            "timeBucketSize": "1d", "includeSeries": "true", "limit": "3"}
    path = f"/v2/stats/{domain}"
    return [
        Query(path, days, "series", "", utc(2026, 10, 12), utc(2026, 11, 10), "UTC", "1d",
              "org", None, {}),
        Query(path, hours, "series", "", datetime(2026, 10, 30, 13, 7, 0, 500000, UTC),
              utc(2026, 11, 2, 18, 40, 10), "America/New_York", "1h", "org", None, {}),
        Query(f"{path}/breakdown/{dim.by}", page, "breakdown", dim.by, utc(2026, 10, 14, 5, 5, 5),
              datetime(2026, 11, 2, 21, 59, 59, 999000, UTC), "UTC", "1d", "org", None, {},
              limit=3, include_series=True)]


@pytest.mark.parametrize("domain", DOMAINS)
def test_random_queries_answer_the_same_with_and_without_rollups(client, world, domain):
    rng = random.Random(f"queries-{domain}")
    events = reference(domain, world.events[domain])
    used = checked = 0
    grains, cubes, pairs = set(), set(), set()
    queries = anchor_queries(client, domain)
    queries += [random_query(rng, client, domain, world) for _ in range(QUERIES_PER_DOMAIN)]
    for i, q in enumerate(queries):
        on, off = both_ways(client, q.path, world.org.headers, q.params)
        body = assert_same(on, off, f"{q.path} {q.params}")
        segments = planned_segments(client, domain, q, datetime.now(UTC))
        if segments and any(s.rollup for s in segments):
            used += 1
            grains |= {s.rollup.grain for s in segments if s.rollup}
            cubes |= {s.rollup.cube.name for s in segments if s.rollup}
            pairs |= {(s.rollup.cube.name, s.rollup.grain) for s in segments if s.rollup}
        if i % 3 == 0 and "isStream" not in q.filters:
            check_reference(body, domain, q, events, world.org.id)
            checked += 1
    # the comparison means something only if many answers did come from rollups
    assert used >= QUERIES_PER_DOMAIN // 4, (domain, used)
    assert checked >= QUERIES_PER_DOMAIN // 4
    # the org and scope cubes' 5-minute slots (none where the domain's rollups start at
    # hours: runs), every cube's hours, days and ISO weeks (and a high-cardinality cube's
    # 30 days, when a range happens to hold one); no cube keeps quarter hours
    fine = {"5m"} if domain_of(client, domain).finest_grain == "5m" else set()
    assert {"1h", "1d", "7d"} | fine <= grains <= {"1h", "1d", "7d", "30d"} | fine, grains
    # whole-org queries read the org cube, a workspace's or repo's the scope cube
    assert {"org", "scope", "main"} <= cubes, cubes
    # the main cube (hours, days, weeks) did answer, at hours and days at least
    assert {("main", "1h"), ("main", "1d")} <= pairs, pairs
    assert {g for c, g in pairs if c == "main"} <= {"1h", "1d", "7d"}, pairs


# --- the planner --------------------------------------------------------------------------

NOW = utc(2026, 11, 20, 12)


def _series_plan(client, domain, **params):
    dom = domain_of(client, domain)
    view = dom.series_view("")
    request = parse_series(dom, view, {k: [v] for k, v in params.items()}, NOW)
    return request, dom, [dom.metric(m) for m in view.metrics]


def _label(segment):
    """A segment as (start, end, (cube, grain)), or (start, end, None) for raw events; a
    range's tail (``TailGuard``) adds ``"open"`` (its open slot, read when no event
    follows the range in it) or ``"stand-in"`` (read only when one does)."""
    r = segment.rollup
    label = segment.start, segment.end, r and (r.cube.name, r.grain)
    if segment.guard is None:
        return label
    return *label, "stand-in" if segment.guard.when_events else "open"


def segments_of(client, domain, by_bucket=True, sketches=False, metrics=None, **params):
    request, dom, view_metrics = _series_plan(client, domain, **params)
    chosen = [dom.metric(m) for m in metrics] if metrics else view_metrics
    return [_label(s) for s in plan_segments(dom, request, chosen, None, by_bucket, sketches)]


def breakdown_segments(client, domain, by, **params):
    dom = domain_of(client, domain)
    dim = dom.dimension(by)
    request = parse_breakdown(dom, dim, {k: [v] for k, v in params.items()}, NOW)
    metrics = [dom.metric(m) for m in request.metrics]
    return [_label(s) for s in plan_segments(dom, request, metrics, dim, False)]


def thirty_day_slot(t: datetime) -> datetime:
    """The start of the 30-day slot holding ``t``: slots are aligned on 2000-01-01 UTC."""
    epoch = utc(2000, 1, 1)
    return epoch + timedelta(days=30) * ((t - epoch) // timedelta(days=30))


def test_thirty_day_slots_of_2026_used_below():
    for t in (utc(2026, 8, 12), utc(2026, 9, 11), utc(2026, 10, 11), utc(2026, 11, 10)):
        assert thirty_day_slot(t) == t and (t - utc(2000, 1, 1)).days % 30 == 0
    assert thirty_day_slot(utc(2026, 8, 11, 23, 59)) == utc(2026, 7, 13)


def test_planner_answers_aligned_days_from_the_daily_rollup(client):
    got = segments_of(client, "private-chat", scope="org", start="2026-10-12T00:00:00Z",
                      end="2026-11-10T00:00:00Z", timeBucketSize="1d")
    assert got == [(utc(2026, 10, 12), utc(2026, 11, 10), ("org", "1d"))]
    # a workspace's days: the scope cube's
    got = segments_of(client, "private-chat", scope="workspace", id="w1",
                      start="2026-10-12T00:00:00Z", end="2026-11-10T00:00:00Z",
                      timeBucketSize="1d")
    assert got == [(utc(2026, 10, 12), utc(2026, 11, 10), ("scope", "1d"))]
    # the tables read are the ones those rollups name, and they exist with those names
    dom = domain_of(client, "private-chat")
    assert rollup_of(dom, "org", "1d").table in rollup_table_names(dom)
    assert rollup_of(dom, "scope", "1d").table in rollup_table_names(dom)


def test_planner_answers_iso_weeks_from_the_weekly_rollup(client):
    """A year in ISO weeks (the default bucket of long windows): whole weeks from the
    7-day slots, which start on Mondays (2026-01-05 and 2026-11-16 are Mondays), the
    partial days around them from days and hours; a filter moves it to the main cube, which
    keeps weeks too. Sketched metrics (percentiles, distinct counts) read the weekly
    twins of the org cube."""
    assert utc(2026, 1, 5).weekday() == 0 and utc(2026, 11, 16).weekday() == 0
    params = dict(scope="org", start="2026-01-01T00:00:00Z", end="2026-11-20T00:00:00Z",
                  timeBucketSize="1w")
    plain = ["tokensIn", "requests"]
    got = segments_of(client, "ai", metrics=plain, **params)
    assert (utc(2026, 1, 5), utc(2026, 11, 16), ("org", "7d")) in got, got
    assert {grain for _, _, (_, grain) in got} == {"1d", "7d"}, got
    filtered = segments_of(client, "ai", metrics=plain, model="gpt-4o", **params)
    assert (utc(2026, 1, 5), utc(2026, 11, 16), ("main", "7d")) in filtered, filtered
    sketched = segments_of(client, "ai", sketches=True,
                           metrics=["latencyMsP50", "activeConversations"], **params)
    assert (utc(2026, 1, 5), utc(2026, 11, 16), ("org", "7d")) in sketched, sketched
    # a week in New York starts at 04:00 or 05:00 UTC: no 7-day slot fits it
    local = segments_of(client, "ai", metrics=plain, timezone="America/New_York", **params)
    assert all(label is None or label[1] != "7d" for _, _, label in local), local


def test_slot_edges_common_to_weeks_and_thirty_days(client):
    """Weekly slots start on Mondays, 30-day ones every 30 days from 2000-01-01: the
    instants both grids share, found here by walking day by day."""
    dom = domain_of(client, "private-chat")
    rollups = [r for r in domain_rollups(dom) if r.grain in ("7d", "30d")]
    assert {r.grain for r in rollups} == {"7d", "30d"}  # the users cube keeps 30 days

    def shared(day: datetime) -> bool:
        return day.weekday() == 0 and (day - utc(2000, 1, 1)).days % 30 == 0

    t = utc(2026, 5, 17, 13)
    up = utc(2026, 5, 18)
    while not shared(up):
        up += timedelta(days=1)
    down = utc(2026, 5, 17)
    while not shared(down):
        down -= timedelta(days=1)
    assert ceil_to_every(t, rollups) == up and floor_to_every(t, rollups) == down
    assert ceil_to_every(up, rollups) == up == floor_to_every(up, rollups)


def test_planner_cuts_unaligned_ends_down_to_raw_events(client):
    """Coarsest grain first: days, then hours, then the cube's finest slots, raw ends. The
    whole-org series reads the org cube (5-minute slots); a filter moves it to the main
    cube, whose finest slots are hours: the unaligned ends are raw up to the hour."""
    start = datetime(2026, 10, 12, 7, 13, 20, 250000, UTC)
    end = utc(2026, 10, 14, 18, 43)
    params = dict(scope="org", start="2026-10-12T07:13:20.25Z", end="2026-10-14T18:43:00Z")
    hourly = segments_of(client, "private-chat", timeBucketSize="1h", **params)
    assert hourly == [
        (start, utc(2026, 10, 12, 7, 15), None),
        (utc(2026, 10, 12, 7, 15), utc(2026, 10, 12, 8), ("org", "5m")),
        (utc(2026, 10, 12, 8), utc(2026, 10, 14, 18), ("org", "1h")),
        (utc(2026, 10, 14, 18), utc(2026, 10, 14, 18, 40), ("org", "5m")),
        (utc(2026, 10, 14, 18, 40), end, None)]
    daily = segments_of(client, "private-chat", timeBucketSize="1d", **params)
    assert daily == [
        (start, utc(2026, 10, 12, 7, 15), None),
        (utc(2026, 10, 12, 7, 15), utc(2026, 10, 12, 8), ("org", "5m")),
        (utc(2026, 10, 12, 8), utc(2026, 10, 13), ("org", "1h")),
        (utc(2026, 10, 13), utc(2026, 10, 14), ("org", "1d")),
        (utc(2026, 10, 14), utc(2026, 10, 14, 18), ("org", "1h")),
        (utc(2026, 10, 14, 18), utc(2026, 10, 14, 18, 40), ("org", "5m")),
        (utc(2026, 10, 14, 18, 40), end, None)]
    filtered = segments_of(client, "private-chat", timeBucketSize="1d", model="gpt-4o",
                           **params)
    assert filtered == [
        (start, utc(2026, 10, 12, 8), None),
        (utc(2026, 10, 12, 8), utc(2026, 10, 13), ("main", "1h")),
        (utc(2026, 10, 13), utc(2026, 10, 14), ("main", "1d")),
        (utc(2026, 10, 14), utc(2026, 10, 14, 18), ("main", "1h")),
        (utc(2026, 10, 14, 18), end, None)]
    filtered_hourly = segments_of(client, "private-chat", timeBucketSize="1h", model="gpt-4o",
                                  **params)
    assert filtered_hourly == [
        (start, utc(2026, 10, 12, 8), None),
        (utc(2026, 10, 12, 8), utc(2026, 10, 14, 18), ("main", "1h")),
        (utc(2026, 10, 14, 18), end, None)]


def test_planner_uses_only_grains_that_divide_the_local_grid(client):
    """Kolkata and Kathmandu days start at :30 and :15 UTC: only 5-minute slots (the org
    cube's, as the scope cube's) divide them; the main cube (hours and days) does not, so a filtered series there reads
    raw events. New York days start on UTC hours, 23 or 25 hours long across the DST
    change: hours serve them, filtered or not."""
    for tz, first in (("Asia/Kolkata", utc(2026, 10, 11, 18, 30)),
                      ("Asia/Kathmandu", utc(2026, 10, 11, 18, 15))):
        for size in ("1h", "1d", "30m"):
            common = dict(scope="org", start=unix_text(first), end="2026-10-20T00:00:00Z",
                          timeBucketSize=size, timezone=tz)
            assert segments_of(client, "storage", **common) == [
                (first, utc(2026, 10, 20), ("org", "5m"))], (tz, size)
            assert segments_of(client, "storage", bucketId="b1", **common) == [
                (first, utc(2026, 10, 20), None)], (tz, size)
    got = segments_of(client, "storage", scope="org", start="2026-10-25T04:00:00Z",
                      end="2026-11-05T05:00:00Z", timeBucketSize="1d",
                      timezone="America/New_York")
    assert got == [(utc(2026, 10, 25, 4), utc(2026, 11, 5, 5), ("org", "1h"))]
    got = segments_of(client, "storage", scope="org", start="2026-10-25T04:00:00Z",
                      end="2026-11-05T05:00:00Z", timeBucketSize="1d",
                      timezone="America/New_York", bucketId="b1")
    assert got == [(utc(2026, 10, 25, 4), utc(2026, 11, 5, 5), ("main", "1h"))]
    day = dict(scope="org", start="2026-10-25T00:00:00Z", end="2026-10-26T00:00:00Z")
    # 5-minute buckets: the org cube's finest grain divides them, the main cube's does not
    assert segments_of(client, "storage", timeBucketSize="5m", **day) == [
        (utc(2026, 10, 25), utc(2026, 10, 26), ("org", "5m"))]
    assert segments_of(client, "storage", timeBucketSize="5m", bucketId="b1", **day) == [
        (utc(2026, 10, 25), utc(2026, 10, 26), None)]
    # 1-minute buckets: no grain divides them; a total over the same range may use any
    assert segments_of(client, "storage", timeBucketSize="1m", **day) == [
        (utc(2026, 10, 25), utc(2026, 10, 26), None)]
    assert segments_of(client, "storage", by_bucket=False, timeBucketSize="1m", **day) == [
        (utc(2026, 10, 25), utc(2026, 10, 26), ("org", "1d"))]
    assert segments_of(client, "storage", by_bucket=False, timeBucketSize="5m",
                       bucketId="b1", **day) == [
        (utc(2026, 10, 25), utc(2026, 10, 26), ("main", "1d"))]


def test_histograms_plan_only_grains_of_an_hour_or_more(client):
    """Percentiles read histogram twins, kept at 1h and coarser only: where the metric
    rollups use 5-minute or quarter-hour slots, the histograms read raw events. A whole
    org's hours are the org cube's (one histogram per hour), a workspace's the scope
    cube's."""
    params = dict(scope="org", start="2026-10-12T07:15:00Z", end="2026-10-14T18:40:00Z",
                  timeBucketSize="1h")
    assert segments_of(client, "calls", metrics=["callCount"], **params) == [
        (utc(2026, 10, 12, 7, 15), utc(2026, 10, 12, 8), ("org", "5m")),
        (utc(2026, 10, 12, 8), utc(2026, 10, 14, 18), ("org", "1h")),
        (utc(2026, 10, 14, 18), utc(2026, 10, 14, 18, 40), ("org", "5m"))]
    assert segments_of(client, "calls", metrics=["latencyMsP99"], sketches=True,
                       **params) == [
        (utc(2026, 10, 12, 7, 15), utc(2026, 10, 12, 8), None),
        (utc(2026, 10, 12, 8), utc(2026, 10, 14, 18), ("org", "1h")),
        (utc(2026, 10, 14, 18), utc(2026, 10, 14, 18, 40), None)]
    workspace = {**params, "scope": "workspace", "id": "w1"}
    assert segments_of(client, "calls", metrics=["latencyMsP99"], sketches=True,
                       **workspace) == [
        (utc(2026, 10, 12, 7, 15), utc(2026, 10, 12, 8), None),
        (utc(2026, 10, 12, 8), utc(2026, 10, 14, 18), ("scope", "1h")),
        (utc(2026, 10, 14, 18), utc(2026, 10, 14, 18, 40), None)]
    # a thread's cube keeps no histograms: a thread-filtered percentile is from raw events
    days = dict(scope="org", start="2026-10-12T00:00:00Z", end="2026-10-14T00:00:00Z",
                timeBucketSize="1d", threadId="th-1")
    assert segments_of(client, "calls", metrics=["callCount"], **days) == [
        (utc(2026, 10, 12), utc(2026, 10, 14), ("threads", "1d"))]
    assert segments_of(client, "calls", metrics=["latencyMsP99"], sketches=True, **days) == [
        (utc(2026, 10, 12), utc(2026, 10, 14), None)]


def test_distinct_counts_plan_their_sketch_twins(client):
    """A distinct count is asked on its own, planned like the histograms: the cube's sketch
    grains (the org and scope cubes' hours, days and weeks, the main cube's days only),
    raw events at the
    ends; the other metrics of the view plan the metric rollups without it."""
    dom = domain_of(client, "ai")
    others = [m for m in dom.series_view("").metrics
              if m != "activeConversations" and not m.startswith("latencyMsP")]
    days = dict(scope="org", start="2026-10-12T00:00:00Z", end="2026-10-14T00:00:00Z",
                timeBucketSize="1d")
    assert segments_of(client, "ai", metrics=others, **days) == [
        (utc(2026, 10, 12), utc(2026, 10, 14), ("org", "1d"))]
    assert segments_of(client, "ai", metrics=["activeConversations"], sketches=True,
                       **days) == [(utc(2026, 10, 12), utc(2026, 10, 14), ("org", "1d"))]
    hours = dict(scope="workspace", id="w1", start="2026-10-12T07:15:00Z",
                 end="2026-10-12T18:40:00Z", timeBucketSize="1h")
    # the scope cube keeps sketches by the hour
    assert segments_of(client, "ai", metrics=["activeConversations"], sketches=True,
                       **hours) == [
        (utc(2026, 10, 12, 7, 15), utc(2026, 10, 12, 8), None),
        (utc(2026, 10, 12, 8), utc(2026, 10, 12, 18), ("scope", "1h")),
        (utc(2026, 10, 12, 18), utc(2026, 10, 12, 18, 40), None)]
    # the main cube by the day only: filtered hourly buckets read raw events, while the
    # metric rollups of the same query use its hours
    assert segments_of(client, "ai", metrics=["activeConversations"], sketches=True,
                       model="gpt-4o", **hours) == [
        (utc(2026, 10, 12, 7, 15), utc(2026, 10, 12, 18, 40), None)]
    assert segments_of(client, "ai", metrics=others, model="gpt-4o", **hours) == [
        (utc(2026, 10, 12, 7, 15), utc(2026, 10, 12, 8), None),
        (utc(2026, 10, 12, 8), utc(2026, 10, 12, 18), ("main", "1h")),
        (utc(2026, 10, 12, 18), utc(2026, 10, 12, 18, 40), None)]
    # filtered daily buckets: its days in the middle, raw events up to the days (not hours)
    days = dict(scope="workspace", id="w1", start="2026-10-12T07:15:00Z",
                end="2026-10-15T18:40:00Z", timeBucketSize="1d", model="gpt-4o")
    assert segments_of(client, "ai", metrics=["activeConversations"], sketches=True,
                       **days) == [
        (utc(2026, 10, 12, 7, 15), utc(2026, 10, 13), None),
        (utc(2026, 10, 13), utc(2026, 10, 15), ("main", "1d")),
        (utc(2026, 10, 15), utc(2026, 10, 15, 18, 40), None)]
    # whole-org daily buckets: the org cube's days, then its hours at the ends, and raw
    # events the rest
    org_days = dict(scope="org", start="2026-10-12T07:15:00Z", end="2026-10-15T18:40:00Z",
                    timeBucketSize="1d")
    for metric in ("activeConversations", "latencyMsP95"):
        assert segments_of(client, "ai", metrics=[metric], sketches=True, **org_days) == [
            (utc(2026, 10, 12, 7, 15), utc(2026, 10, 12, 8), None),
            (utc(2026, 10, 12, 8), utc(2026, 10, 13), ("org", "1h")),
            (utc(2026, 10, 13), utc(2026, 10, 15), ("org", "1d")),
            (utc(2026, 10, 15), utc(2026, 10, 15, 18), ("org", "1h")),
            (utc(2026, 10, 15, 18), utc(2026, 10, 15, 18, 40), None)], metric


def test_a_domain_s_finest_grain_shapes_its_default_cubes():
    """``finest_grain`` drops every finer default grain (and sketch grain); a grain that is
    not a day or finer is a declaration problem, reported with the domain's others."""
    hourly = {c.name: (c.grains, c.sketch_grains)
              for c in default_cubes(replace(PRIVATE_CHAT_DOMAIN, finest_grain="1h"))}
    assert hourly == {"scope": (("1h", "1d", "7d"), None),
                      "org": (("1h", "1d", "7d"), ("1h", "1d", "7d")),
                      "main": (("1h", "1d", "7d"), ("1d",)),
                      "users": (("1d", "30d", "90d"), ("1d", "30d"))}
    daily = {c.name: c.grains
             for c in default_cubes(replace(PRIVATE_CHAT_DOMAIN, finest_grain="1d"))}
    assert daily == {"scope": ("1d", "7d"), "org": ("1d", "7d"), "main": ("1d", "7d"),
                     "users": ("1d", "30d", "90d")}
    assert {c.name: c.grains for c in default_cubes(PRIVATE_CHAT_DOMAIN)}["scope"] == \
        ("5m", "1h", "1d", "7d")
    bad = replace(PRIVATE_CHAT_DOMAIN, finest_grain="30d",
                  metrics=PRIVATE_CHAT_DOMAIN.metrics + (
                      Metric(name="nothing", agg=Sum("no_such_column")),))
    with pytest.raises(DomainDeclarationError) as err:
        validate_domains((bad,))
    problems = err.value.problems
    assert any("finest_grain '30d' is not one of 5m, 15m, 1h, 1d" in p for p in problems), \
        problems
    assert any("no_such_column" in p for p in problems), problems


def unix_text(t: datetime) -> str:
    return str(unix(t))


def test_planner_picks_the_smallest_cube_holding_every_column(client):
    day = dict(start="2026-10-12T00:00:00Z", end="2026-10-13T00:00:00Z", timeBucketSize="1d")
    one_day = [(utc(2026, 10, 12), utc(2026, 10, 13), ("scope", "1d"))]
    # workspace and repo scopes: the scope cube
    assert segments_of(client, "private-chat", scope="workspace", id="w1", **day) == one_day
    assert segments_of(client, "private-chat", scope="repo", id="r1", **day) == one_day
    # low-cardinality filters and dimensions, with any scope: the main cube
    main = [(utc(2026, 10, 12), utc(2026, 10, 13), ("main", "1d"))]
    assert segments_of(client, "private-chat", scope="org", model="gpt-4o", **day) == main
    assert segments_of(client, "private-chat", scope="workspace", id="w1", model="gpt-4o",
                       **day) == main
    assert segments_of(client, "storage", scope="repo", id="r1", apiKeyId="k1", bucketId="b1",
                       **day) == main
    assert breakdown_segments(client, "private-chat", "models", scope="org", model="gpt-4o",
                              **day) == main
    assert breakdown_segments(client, "policies", "rules", scope="workspace", id="w1",
                              **day) == main
    # a high-cardinality dimension or filter: its own cube (day and 30-day slots)
    assert breakdown_segments(client, "policies", "users", scope="org", **day) == [
        (utc(2026, 10, 12), utc(2026, 10, 13), ("users", "1d"))]
    assert segments_of(client, "private-chat", scope="repo", id="r1", userId="u1", **day) == [
        (utc(2026, 10, 12), utc(2026, 10, 13), ("users", "1d"))]
    assert breakdown_segments(client, "calls", "runs", scope="org", **day) == [
        (utc(2026, 10, 12), utc(2026, 10, 13), ("runs", "1d"))]
    # a cube without high-cardinality columns is read first, whatever its width: runs'
    # target cube (type, slug, workspace, repo) holds the target type too, with one column
    # fewer than the main cube, but a row per target
    assert breakdown_segments(client, "runs", "targetTypes", scope="org", targetType="flow",
                              **day) == main
    raw = [(utc(2026, 10, 12), utc(2026, 10, 13), None)]
    # no cube holds both columns (a low- and a high-cardinality one; two high ones)
    assert breakdown_segments(client, "private-chat", "models", scope="org", userId="u1",
                              **day) == raw
    assert segments_of(client, "calls", scope="org", threadId="th-1", wbRunId="acme/evals/r1",
                       **day) == raw
    # a high-cardinality filter column no dimension groups by has no cube at all
    assert segments_of(client, "calls", scope="org", traceId="t1", **day) == raw
    # distinct counts have no parts in the metric rollups (they are asked on their own, from
    # their sketch twins): a metric query holding one reads raw events
    assert segments_of(client, "ai", scope="org", **day) == raw
    assert breakdown_segments(client, "private-chat", "users", scope="org", **day) == raw
    # a list-overlap filter (only the value API offers one) and an is-null filter
    request, dom, metrics = _series_plan(client, "call-usage", scope="org", **day)
    for flt in (Filter("inputRefs", "input_refs", ["x"], "overlaps"),
                Filter("roots", "parent_id", True, "is_null")):
        got = plan_segments(dom, replace(request, filters=(flt,)), metrics, None)
        assert [_label(s) for s in got] == raw
    anyof = Filter("models", "model", ["gpt-4o", "llama-3"], "any")
    got = plan_segments(dom, replace(request, filters=(anyof,)), metrics, None)
    assert [_label(s) for s in got] == main


def test_a_long_high_cardinality_breakdown_reads_90_and_30_day_slots(client):
    """A breakdown over more than 120 days: 90-day slots (three 30-day ones, aligned on
    2000-01-01) in the middle, 30-day slots and days around them, raw events at the
    unaligned ends; with per-entity daily series, the series read days only (no 30- or
    90-day slot divides a day)."""
    start, end = datetime(2026, 7, 10, 12, 34, 56, tzinfo=UTC), utc(2026, 11, 13, 6)
    params = dict(scope="workspace", id="w1", start="2026-07-10T12:34:56Z",
                  end="2026-11-13T06:00:00Z")
    expected = [
        (start, utc(2026, 7, 11), None),
        (utc(2026, 7, 11), utc(2026, 7, 13), ("users", "1d")),
        (utc(2026, 7, 13), utc(2026, 8, 12), ("users", "30d")),
        (utc(2026, 8, 12), utc(2026, 11, 10), ("users", "90d")),
        (utc(2026, 11, 10), utc(2026, 11, 13), ("users", "1d")),
        (utc(2026, 11, 13), end, None)]
    for t in (utc(2026, 7, 13), utc(2026, 8, 12), utc(2026, 11, 10)):
        assert thirty_day_slot(t) == t
    assert (utc(2026, 8, 12) - utc(2000, 1, 1)).days % 90 == 0
    assert (utc(2026, 11, 10) - utc(2026, 8, 12)).days == 90
    assert breakdown_segments(client, "policies", "users", **params) == expected
    dom = domain_of(client, "policies")
    dim = dom.dimension("users")
    request = parse_breakdown(dom, dim, {k: [v] for k, v in {**params, "timeBucketSize": "1d",
                                                             "includeSeries": "true"}.items()},
                              NOW)
    metrics = [dom.metric(m) for m in request.metrics]
    per_entity = [_label(s) for s in plan_segments(dom, request, metrics, dim, True)]
    assert per_entity == [(start, utc(2026, 7, 11), None),
                          (utc(2026, 7, 11), utc(2026, 11, 13), ("users", "1d")),
                          (utc(2026, 11, 13), end, None)]


# --- the path is live: corrupted rollups show; queries that must not read them do not ---


ALL_GRAINS = ("5m", "15m", "1h", "1d", "7d", "30d")


def corrupt(db, domain, org_id: str, grains=ALL_GRAINS, sketches=True) -> None:
    """Shift every part of every rollup row of the org (the chosen grains) far off, and
    every sketch twin's rows of those grains (unless ``sketches`` is false): histogram
    counts multiplied, made-up values added to distinct sketches."""
    tables = [r.table for r in domain_rollups(domain) if r.grain in grains]
    if sketches:
        tables += [t.table for t in sketch_rollups(domain) if t.rollup.grain in grains]
    corrupt_tables(db, domain, org_id, tables)


def scenario(client, new_org, domain: str, seed: int, a=utc(2026, 10, 28), b=utc(2026, 11, 4),
             n=400):
    org = new_org()
    times = list(dict.fromkeys(random_times(f"live-{domain}-{seed}", a, b, n)))
    events = make_events(domain, seed, times)
    for i in range(0, len(events), 150):
        r = post_events(client, org.headers, domain, events[i:i + 150])
        assert r.status_code == 200, r.text
    return org, events


def test_a_corrupted_rollup_row_changes_the_answer_until_rebuilt(client, new_org, db):
    org, events = scenario(client, new_org, "private-chat", 11)
    dom = domain_of(client, "private-chat")
    params = {"scope": "org", "start": "2026-10-29T00:00:00Z", "end": "2026-11-03T00:00:00Z",
              "timeBucketSize": "1h"}
    path = "/v2/stats/private-chat"
    before = assert_same(*both_ways(client, path, org.headers, params), "clean rollups")
    check_series(before, "private-chat", "", events, utc(2026, 10, 29), utc(2026, 11, 3),
                 "1h", scope_id=org.id)
    hourly = rollup_of(dom, "org", "1h").table
    db.execute(f"UPDATE {hourly} SET requests = requests + 1000 WHERE org_id = %s", (org.id,))
    on, off = both_ways(client, path, org.headers, params)
    got, raw = loads(on.text), loads(off.text)
    assert raw == before
    # the org cube keeps one row per hour with events
    edges, groups = group_by_bucket(events, utc(2026, 10, 29), utc(2026, 11, 3), "1h")
    assert [p["requests"] - r["requests"] for p, r in zip(got["series"], raw["series"])] == \
        [1000 if g else 0 for g in groups]
    assert sum(1 for g in groups if g) > 50 and any(not g for g in groups)
    # daily buckets over whole days read the daily rollup, untouched
    daily = dict(params, timeBucketSize="1d")
    assert_same(*both_ways(client, path, org.headers, daily), "daily buckets")
    assert rebuild_rollups(db, dom, org.id) == len(rollup_table_names(dom))
    assert assert_same(*both_ways(client, path, org.headers, params), "rebuilt") == before


def test_fine_slots_serve_half_hour_zones_and_coarser_grains_are_not_read(client, new_org,
                                                                          db):
    """Kolkata and Kathmandu grids: the scope cube's 5-minute slots answer whole-org series,
    raw events answer filtered ones (the main cube keeps hours and days, which do not divide
    those grids); hours, days, weeks and 30-day slots are never read (corrupted, they
    change nothing), the fine slots are (corrupted, they do). A filtered series on UTC
    hours does read the corrupted main cube: the filtered answers above stayed exact by
    design."""
    org, events = scenario(client, new_org, "storage", 12)
    dom = domain_of(client, "storage")
    path = "/v2/stats/storage"
    corrupt(db, dom, org.id, grains=("1h", "1d", "7d", "30d"))
    cases = [("Asia/Kolkata", "1h", utc(2026, 10, 29, 18, 30), utc(2026, 11, 2, 18, 30)),
             ("Asia/Kolkata", "1d", utc(2026, 10, 28, 18, 30), utc(2026, 11, 3, 18, 30)),
             ("Asia/Kathmandu", "1h", utc(2026, 10, 29, 18, 15), utc(2026, 11, 2, 18, 15)),
             ("Asia/Kathmandu", "6h", utc(2026, 10, 29, 18, 15), utc(2026, 11, 2, 18, 15))]
    bucket = {"bucketId": "b1"}

    def params(tz, size, start, end, filters):
        return {"scope": "org", "start": str(unix(start)), "end": str(unix(end)),
                "timeBucketSize": size, "timezone": tz, **filters}

    for tz, size, start, end in cases:
        for filters in ({}, bucket):
            body = assert_same(*both_ways(client, path, org.headers,
                                          params(tz, size, start, end, filters)),
                               f"{tz} {size} {filters}")
            check_series(body, "storage", "", events, start, end, size, tz, scope_id=org.id,
                         filters=filters)

    def moved(filters) -> bool:
        """Every case answers more with rollups than without (the corruption adds)."""
        for tz, size, start, end in cases:
            on, off = both_ways(client, path, org.headers, params(tz, size, start, end, filters))
            assert on.status_code == off.status_code == 200, on.text[:500]
            if not loads(on.text)["summary"]["total"] > loads(off.text)["summary"]["total"]:
                return False
        return True

    corrupt(db, dom, org.id, grains=("5m",))  # the whole-org answers move, not the others
    assert moved({})
    for tz, size, start, end in cases:
        assert_same(*both_ways(client, path, org.headers, params(tz, size, start, end, bucket)),
                    f"{tz} {size} filtered, 5-minute slots corrupted")
    for tz, size, start, end in cases:  # every grain now corrupted: filtered still exact
        body = assert_same(*both_ways(client, path, org.headers,
                                      params(tz, size, start, end, bucket)),
                           f"{tz} {size} filtered, every grain corrupted")
        check_series(body, "storage", "", events, start, end, size, tz, scope_id=org.id,
                     filters=bucket)
    utc_hours = params("UTC", "1h", utc(2026, 10, 30), utc(2026, 11, 2), bucket)
    on, off = both_ways(client, path, org.headers, utc_hours)
    assert on.status_code == off.status_code == 200, on.text[:500]
    assert loads(on.text)["summary"]["total"] > loads(off.text)["summary"]["total"]
    rebuild_rollups(db, dom, org.id)


@pytest.mark.parametrize("domain,path,params", [
    # a high-cardinality filter with another breakdown: no cube holds both columns
    ("private-chat", "breakdown/models", {"userId": "u1"}),
    # a high-cardinality filter column no dimension groups by: no cube holds it
    ("calls", "", {"traceId": "t1"}),
    # buckets finer than every cube's finest grain; 5-minute ones with a filter
    ("call-usage", "", {"timeBucketSize": "1m", "end": "2026-10-30T00:00:00Z"}),
    ("storage", "", {"timeBucketSize": "5m", "bucketId": "b1", "end": "2026-10-31T00:00:00Z"}),
])
def test_queries_that_must_not_read_rollups_ignore_corrupted_ones(client, new_org, db, domain,
                                                                   path, params):
    org, events = scenario(client, new_org, domain, 13)
    dom = domain_of(client, domain)
    corrupt(db, dom, org.id)  # every table: metric parts and sketches
    full = {"scope": "org", "start": "2026-10-29T00:00:00Z", "end": "2026-11-03T00:00:00Z",
            "timeBucketSize": "1d", **params}
    start, end = parse_ts(full["start"]), parse_ts(full["end"])
    filters = {k: v for k, v in params.items() if k in FILTERS.get(domain, ())
               or k in ("userId", "traceId", "bucketId")}
    url = f"/v2/stats/{domain}" + (f"/{path}" if path else "")
    body = assert_same(*both_ways(client, url, org.headers, full), f"{path} {params}")
    if path:
        q = Query("", full, "breakdown", path.split("/")[1], start, end, "UTC", "1d", "org",
                  None, filters, sort=params.get("sort"), limit=int(params.get("limit", 50)))
        check_breakdown(body, domain, q, reference(domain, events))
    else:
        check_series(body, domain, "", reference(domain, events), start, end,
                     full["timeBucketSize"], scope_id=org.id, filters=filters)
    # the corruption is there to be seen by a query that does read rollups
    series = {"scope": "org", "start": "2026-10-29T00:00:00Z", "end": "2026-11-03T00:00:00Z",
              "timeBucketSize": "1d"}
    on, off = both_ways(client, f"/v2/stats/{domain}", org.headers, series)
    assert on.status_code == off.status_code == 200 and on.text != off.text
    if path:  # rebuilt, the per-entity series (which may come from rollups) agree as well
        rebuild_rollups(db, dom, org.id)
        full["includeSeries"] = "true"
        body = assert_same(*both_ways(client, url, org.headers, full), f"{path} with series")
        check_breakdown(body, domain, replace(q, include_series=True),
                        reference(domain, events))


def test_distinct_counts_read_their_sketches(client, new_org, db):
    """ai's activeConversations: from the sketch twins (exact for counts this small), so
    made-up values added to the sketches raise it and nothing else, in a breakdown sorted
    by it too."""
    org, events = scenario(client, new_org, "ai", 14)
    dom = domain_of(client, "ai")
    start, end = utc(2026, 10, 29), utc(2026, 11, 3)
    days = {"scope": "org", "start": "2026-10-29T00:00:00Z", "end": "2026-11-03T00:00:00Z",
            "timeBucketSize": "1d"}
    for size, metric in (("1h", None), ("1d", "activeConversations"), ("1d", "tokensIn")):
        params = {**days, "timeBucketSize": size, **({"metric": metric} if metric else {})}
        body = assert_same(*both_ways(client, "/v2/stats/ai", org.headers, params), size)
        check_series(body, "ai", "", events, start, end, size, metric=metric, scope_id=org.id)
    corrupt_tables(db, dom, org.id, [t.table for t in distinct_rollups(dom)])
    on, off = both_ways(client, "/v2/stats/ai", org.headers,
                        {**days, "metric": "activeConversations"})
    got, raw = loads(on.text), loads(off.text)
    assert got["summary"]["total"] > raw["summary"]["total"]
    for a, b in zip(got["series"], raw["series"], strict=True):
        assert a["activeConversations"] > b["activeConversations"]
        assert {k: v for k, v in a.items() if k != "activeConversations"} == \
            {k: v for k, v in b.items() if k != "activeConversations"}
    # sorted by the distinct count: ranked by the (corrupted) sketches' estimates, which it
    # shows, in their order
    by_count = {**days, "sort": "activeConversations", "includeSeries": "false"}
    on, off = both_ways(client, "/v2/stats/ai/breakdown/models", org.headers, by_count)
    got = {e["entityId"]: e["totals"] for e in loads(on.text)["entities"]}
    raw = {e["entityId"]: e["totals"] for e in loads(off.text)["entities"]}
    assert set(got) == set(raw)
    shown = [(-got[k]["activeConversations"], k) for k in got]
    assert shown == sorted(shown)
    assert all(got[k]["activeConversations"] > raw[k]["activeConversations"] for k in got)
    # sorted by another metric, its totals come from the sketches: they moved
    on, off = both_ways(client, "/v2/stats/ai/breakdown/models", org.headers, days)
    assert on.status_code == off.status_code == 200 and on.text != off.text
    rebuild_rollups(db, dom, org.id)
    full = {**days, "includeSeries": "true"}
    body = assert_same(*both_ways(client, "/v2/stats/ai/breakdown/models", org.headers, full),
                       "ai models")
    check_breakdown(body, "ai", Query("", full, "breakdown", "models", start, end, "UTC", "1d",
                                      "org", None, {}, include_series=True), events)
    # ranked by the estimate, the other sketched metrics (percentiles) asked for every
    # model beside the ranking: each model's values are its own, in either order; a model
    # whose events have no conversation counts 0 (first in ascending order)
    quiet = [{"eventId": f"quiet-{i}", "ts": f"2026-10-30T0{6 + i}:00:00Z", "model": "~quiet",
              "latencyMs": 40 + i} for i in range(2)]
    r = post_events(client, org.headers, "ai", quiet)
    assert r.status_code == 200, r.text
    events = [*events, *quiet]
    for order in ("desc", "asc"):
        ranked = {**by_count, "order": order}
        body = assert_same(*both_ways(client, "/v2/stats/ai/breakdown/models", org.headers,
                                      ranked), f"ai models by activeConversations {order}")
        assert any(e["totals"]["latencyMsP50"] is not None for e in body["entities"])
        assert (body["entities"][0 if order == "asc" else -1]["entityId"] == "~quiet"
                and body["entities"][0 if order == "asc" else -1]["totals"]
                ["activeConversations"] == 0)
        check_breakdown(body, "ai", Query("", ranked, "breakdown", "models", start, end, "UTC",
                                          "1d", "org", None, {}, sort="activeConversations",
                                          descending=order == "desc"), events)


def test_groups_past_the_union_limit_are_merged_register_by_register(client, new_org,
                                                                        monkeypatch):
    """A group whose sketches hold more than ``UNION_MAX_CODES`` codes in all is unnested
    and its largest rank per register taken, instead of ``hll_union_agg``: with the limit
    at 0, every group of several sketches goes that way, and every answer is the same as
    the union's, byte for byte (series buckets, totals, breakdown pages of the scope and
    main cubes, users) and as the reference (exact at these counts)."""
    from stats_gateway.core import distinct

    org, events = scenario(client, new_org, "ai", 16)
    pc_org, pc_events = scenario(client, new_org, "private-chat", 16)
    days = {"scope": "org", "start": "2026-10-28T05:00:00Z", "end": "2026-11-03T19:00:00Z"}
    asked = [(org, "/v2/stats/ai", {**days, "timeBucketSize": "1d",
                                    "metric": "activeConversations"}),
             (org, "/v2/stats/ai", {**days, "timeBucketSize": "1w",
                                    "metric": "activeConversations"}),
             (org, "/v2/stats/ai/breakdown/workspaces", days),
             (org, "/v2/stats/ai/breakdown/models", days),
             (pc_org, "/v2/stats/private-chat/breakdown/users", days)]

    def answers() -> list[str]:
        distinct._distinct_text.cache_clear()  # its text is cached per shape
        found = []
        for who, path, params in asked:
            r = client.get(path, params=params, headers=who.headers)
            assert r.status_code == 200, r.text
            found.append(r.text)
        return found

    unions = answers()
    monkeypatch.setattr(distinct, "UNION_MAX_CODES", 0)
    try:
        unnested = answers()
    finally:
        monkeypatch.undo()
        distinct._distinct_text.cache_clear()
    for (_, path, params), a, b in zip(asked, unions, unnested, strict=True):
        assert a == b, f"{path} {params}: {first_difference(loads(a), loads(b))}"
    start, end = utc(2026, 10, 28, 5), utc(2026, 11, 3, 19)
    check_breakdown(loads(unnested[2]), "ai", Query("", days, "breakdown", "workspaces", start,
                                                    end, "UTC", None, "org", None, {}), events)
    check_breakdown(loads(unnested[4]), "private-chat", Query(
        "", days, "breakdown", "users", start, end, "UTC", None, "org", None, {}),
        reference("private-chat", pc_events))


def test_a_breakdown_sorted_by_a_distinct_count_is_ranked_by_its_sketches(client, new_org,
                                                                           db):
    """Users by conversationsCount: ranked by their sketches' estimates (exact at these
    counts), so the pages agree with the raw events' exact order, whole days or unaligned
    ends (raw events there), either order, any offset; a user whose sketches alone gained
    500 made-up values then comes first, with rollups only. A user whose only events of
    the unaligned range are at its raw start, without a conversation, counts 0 (first in
    ascending order) and counts as an entity."""
    org, events = scenario(client, new_org, "private-chat", 13)
    quiet = [{"eventId": f"quiet-{i}", "ts": f"2026-10-29T0{6 + i}:00:00Z", "model": "m",
              "userId": "~quiet"} for i in range(2)]
    r = post_events(client, org.headers, "private-chat", quiet)
    assert r.status_code == 200, r.text
    events = reference("private-chat", events + quiet)
    url = "/v2/stats/private-chat/breakdown/users"
    ranges = (("2026-10-29T00:00:00Z", "2026-11-03T00:00:00Z"),
              ("2026-10-29T05:17:00Z", "2026-11-02T20:41:00Z"))
    for start, end in ranges:
        for order, offset in (("desc", 0), ("asc", 0), ("desc", 2), ("asc", 3)):
            params = {"scope": "org", "start": start, "end": end, "order": order,
                      "sort": "conversationsCount", "limit": "4", "offset": str(offset)}
            body = assert_same(*both_ways(client, url, org.headers, params), str(params))
            q = Query("", params, "breakdown", "users", parse_ts(start), parse_ts(end), "UTC",
                      None, "org", None, {}, sort="conversationsCount",
                      descending=order == "desc", limit=4, offset=offset)
            check_breakdown(body, "private-chat", q, events)
    start, end = ranges[0]
    params = {"scope": "org", "start": start, "end": end, "sort": "conversationsCount"}
    # a key limited to one workspace ranks by that workspace's events alone
    workspace = next(e["workspaceId"] for e in events if e.get("workspaceId"))
    limited = {"Authorization": f"Bearer {create_key(db, org.id, workspaces=[workspace])}"}
    body = assert_same(*both_ways(client, url, limited, params), "limited key")
    mine = [e for e in events if e.get("workspaceId") == workspace]
    q = Query("", params, "breakdown", "users", parse_ts(start), parse_ts(end), "UTC", None,
              "org", None, {}, sort="conversationsCount")
    check_breakdown(body, "private-chat", q, mine)
    assert body["meta"]["totalEntities"] < len({e["userId"] for e in events})
    on, off = both_ways(client, url, org.headers, params)
    last = loads(off.text)["entities"][-1]["entityId"]
    dom = domain_of(client, "private-chat")
    bogus = ("(SELECT hll_agg(hll_code('~made-up-' || g)) "
             "FROM generate_series(1, 500) AS g)")
    for twin in distinct_rollups(dom):
        if "user_id" in twin.rollup.columns:
            db.execute(f'UPDATE {twin.table} SET "d__conversation_id" = hll_union('
                       f'"d__conversation_id", {bogus}) WHERE org_id = %s AND user_id = %s',
                       (org.id, last))
    on, off = both_ways(client, url, org.headers, params)
    first = loads(on.text)["entities"][0]
    assert first["entityId"] == last and first["totals"]["conversationsCount"] >= 485
    assert loads(off.text)["entities"][-1]["entityId"] == last


def test_a_distinct_count_over_events_without_the_column_is_zero(client, new_org):
    """Whole days whose events carry no conversation: their sketch slots hold no value,
    and the count (series, summary, breakdown totals and series) is 0 both ways."""
    org = new_org()
    events = [{"eventId": f"nc-{i}", "ts": f"2026-09-01T{3 + 2 * i:02d}:10:00Z",
               "model": "gpt-4o" if i % 2 else "llama-3", "tokensIn": 5} for i in range(8)]
    r = post_events(client, org.headers, "ai", events)
    assert r.status_code == 200, r.text
    days = {"scope": "org", "start": "2026-09-01T00:00:00Z", "end": "2026-09-03T00:00:00Z",
            "timeBucketSize": "1d"}
    body = assert_same(*both_ways(client, "/v2/stats/ai", org.headers,
                                  {**days, "metric": "activeConversations"}), "no conversation")
    assert [p["activeConversations"] for p in body["series"]] == [0, 0]
    assert body["summary"]["total"] == 0
    assert [p["requests"] for p in body["series"]] == [8, 0]
    body = assert_same(*both_ways(client, "/v2/stats/ai/breakdown/models", org.headers,
                                  {**days, "includeSeries": "true"}), "models")
    assert {e["entityId"]: e["totals"]["activeConversations"] for e in body["entities"]} == \
        {"gpt-4o": 0, "llama-3": 0}


def test_a_list_overlap_filter_reads_raw_events(client, new_org, db):
    """``/v2`` offers no list filter; the value API does (as ``/calls/stats`` uses it)."""
    org, events = scenario(client, new_org, "call-usage", 15)
    dom = domain_of(client, "call-usage")
    eng = engine(client)
    ref = sorted({r for e in events for r in e.get("inputRefs") or ()})[0]
    start, end = utc(2026, 10, 29), utc(2026, 11, 3)
    request, _, _ = _series_plan(client, "call-usage", scope="org",
                                 start="2026-10-29T00:00:00Z", end="2026-11-03T00:00:00Z",
                                 timeBucketSize="1h")
    overlap = replace(request, filters=(Filter("inputRefs", "input_refs", [ref], "overlaps"),))
    metrics = [dom.metric("totalTokens"), dom.metric("requests")]

    def values(req, rollups: bool):
        eng.use_rollups = rollups
        try:
            return eng_call(client, eng.series_values, org.id, dom, req, metrics)
        finally:
            eng.use_rollups = True

    clean = values(request, True)
    assert clean == values(request, False)
    corrupt(db, dom, org.id)
    assert values(request, True) != values(request, False)  # unfiltered: reads rollups
    got = values(overlap, True)
    assert got == values(overlap, False)
    chosen = [e for e in with_defaults("call-usage", events) if ref in (e.get("inputRefs") or ())]
    assert 0 < len(chosen) < len(events)
    edges, groups = group_by_bucket(chosen, start, end, "1h")
    assert [ts for ts, _ in got] == edges[:-1]
    for (_, vals), group in zip(got, groups):
        assert_matches(vals, compute("call-usage", ["totalTokens", "requests"], group))
    rebuild_rollups(db, dom, org.id)
    assert values(request, True) == clean


def eng_call(client, fn, *args):
    """Run an engine coroutine on the app's own event loop (its pool lives there)."""
    return client.blocking_portal.call(fn, *args)


# --- ingest writes each event into rollups exactly once ----------------------------------


def hourly_storage(db, domain, org_id: str) -> dict:
    """The scope cube's hourly rows of the org: (hour, workspace, repo) -> (requests,
    uploaded bytes, latencies counted)."""
    table = rollup_of(domain, "scope", "1h").table
    rows = db.execute(f'SELECT slot_ts, workspace_id, repo_id, "requests", "uplBytes", '
                      f'"latencyMs__n" FROM {table} WHERE org_id = %s', (org_id,)).fetchall()
    return {(slot, ws, repo): (n, int(upl), m) for slot, ws, repo, n, upl, m in rows}


def expected_hourly_storage(events) -> dict:
    out: dict = {}
    for e in events:
        t = parse_ts(e["ts"])
        key = (t.replace(minute=0, second=0, microsecond=0), e.get("workspaceId"),
               e.get("repoId"))
        n, upl, m = out.get(key, (0, 0, 0))
        out[key] = (n + 1, upl + e.get("uplBytes", 0), m + (e.get("latencyMs") is not None))
    return out


def test_retries_and_repeated_ids_add_nothing_to_rollups(client, new_org, db):
    org = new_org()
    dom = domain_of(client, "storage")
    times = random_times("once-storage", utc(2026, 10, 29), utc(2026, 10, 30), 300)
    events = make_events("storage", 21, times)
    stored = ingest_messily(client, org, "storage", events, "once")
    assert hourly_storage(db, dom, org.id) == expected_hourly_storage(stored)
    kept = rollup_snapshot(db, dom, org.id)
    r = post_events(client, org.headers, "storage", events[::-1] + events[:5])
    assert r.status_code == 200 and r.json()["inserted"] == 0, r.text
    assert rollup_snapshot(db, dom, org.id) == kept
    assert_rollups_equal_a_rebuild(db, dom, org.id)


def test_a_rejected_batch_leaves_rollups_untouched(client, new_org, db):
    org = new_org()
    dom = domain_of(client, "storage")
    base = {"ts": "2026-10-29T10:20:00Z", "uplBytes": 5}
    first = [dict(base, eventId=f"a{i}", workspaceId="w1", repoId="r1") for i in range(5)]
    r = post_events(client, org.headers, "storage", first)
    assert r.status_code == 200, r.text
    kept = rollup_snapshot(db, dom, org.id)
    assert hourly_storage(db, dom, org.id) == {(utc(2026, 10, 29, 10), "w1", "r1"): (5, 25, 0)}
    fresh = [dict(base, eventId=f"b{i}", uplBytes=100 + i) for i in range(20)]
    moved = dict(base, eventId="b-moved", workspaceId="w2", repoId="r1")
    invalid = dict(base, eventId="b-invalid", uplBytes=-1)
    for batch in (fresh + [moved], [moved] + fresh, fresh + [invalid]):
        r = post_events(client, org.headers, "storage", batch)
        assert r.status_code == 422, r.text
        assert rollup_snapshot(db, dom, org.id) == kept
    (n,) = db.execute("SELECT count(*) FROM events_storage WHERE org_id = %s",
                      (org.id,)).fetchone()
    assert n == 5


def test_concurrent_batches_leave_rollups_equal_to_a_rebuild(client, new_org, db,
                                                              database_url):
    org = new_org()
    dom = domain_of(client, "storage")
    times = random_times("concurrent", utc(2026, 10, 29, 10), utc(2026, 10, 29, 13), 1500)
    events = make_events("storage", 22, times)
    rng = random.Random("concurrent")
    batches = []
    for _ in range(6):  # overlapping ids, different orders, the same few slots
        batch = rng.sample(events, 700)
        batches.append(batch)
    bad = [dict(e, eventId=f"bad-{e['eventId']}") for e in rng.sample(events, 200)]
    bad += [{"eventId": "bad-w1", "ts": "2026-10-29T11:00:00Z", "workspaceId": "w1",
             "repoId": "r1"},
            {"eventId": "bad-w2", "ts": "2026-10-29T11:00:00Z", "workspaceId": "w2",
             "repoId": "r1"}]
    
    with live_server(database_url) as base:
        def poster(batch):
            return lambda: HTTP.post(f"{base}/v2/ingest/storage",
                                      content=encode({"events": batch}),
                                      headers={**org.headers,
                                               "Content-Type": "application/json"},
                                      timeout=60)
        results = in_parallel([poster(b) for b in batches] + [poster(bad)])
    codes = [r.status_code for r in results]
    assert codes == [200] * 6 + [422], [r.text[:300] for r in results]
    posted = {e["eventId"]: e for b in batches for e in b}
    assert sum(r.json()["inserted"] for r in results[:6]) == len(posted)
    assert hourly_storage(db, dom, org.id) == expected_hourly_storage(posted.values())
    assert_rollups_equal_a_rebuild(db, dom, org.id)
    params = {"scope": "org", "start": "2026-10-29T10:00:00Z", "end": "2026-10-29T13:00:00Z",
              "timeBucketSize": "15m"}
    body = assert_same(*both_ways(client, "/v2/stats/storage", org.headers, params),
                       "after concurrent ingest")
    check_series(body, "storage", "", list(posted.values()), utc(2026, 10, 29, 10),
                 utc(2026, 10, 29, 13), "15m", scope_id=org.id)


# --- migration keeps rollups in step with their declarations ------------------------------


def test_migrate_rebuilds_a_changed_rollup_and_drops_undeclared_ones(client, new_org, db):
    from domains import DOMAINS as DECLARED
    from stats_gateway.db.migrate import migrate

    org, events = scenario(client, new_org, "private-chat", 31, n=200)
    dom = domain_of(client, "private-chat")
    rollup = rollup_of(dom, "scope", "1h")
    table = rollup.table
    db.execute(f"UPDATE {table} SET requests = requests + 1000, \"tokensIn\" = 0 "
               "WHERE org_id = %s", (org.id,))
    db.execute("UPDATE rollup_tables SET checksum = 'changed' WHERE name = %s", (table,))
    # a wanted table that went missing (dropped, and forgotten) is built again
    monthly = rollup_of(dom, "users", "30d")
    db.execute(f"DROP TABLE {monthly.table}")
    db.execute("DELETE FROM rollup_tables WHERE name = %s", (monthly.table,))
    db.execute("DROP TABLE IF EXISTS ru_bogus_1h_all")
    db.execute("CREATE TABLE ru_bogus_1h_all (org_id uuid, slot_ts timestamptz)")
    db.execute("INSERT INTO rollup_tables (name, checksum) VALUES ('ru_bogus_1h_all', 'x') "
               "ON CONFLICT (name) DO UPDATE SET checksum = 'x'")
    assert migrate(db, DECLARED) == []
    (exists,) = db.execute("SELECT to_regclass('ru_bogus_1h_all') IS NOT NULL").fetchone()
    assert not exists
    assert db.execute("SELECT 1 FROM rollup_tables WHERE name = 'ru_bogus_1h_all'"
                      ).fetchall() == []
    (checksum,) = db.execute("SELECT checksum FROM rollup_tables WHERE name = %s",
                             (table,)).fetchone()
    assert checksum == ddl_checksum(rollup)
    (checksum,) = db.execute("SELECT checksum FROM rollup_tables WHERE name = %s",
                             (monthly.table,)).fetchone()
    assert checksum == ddl_checksum(monthly)
    rows = db.execute(f'SELECT slot_ts, workspace_id, repo_id, requests, "tokensIn", '
                      f'"tokensOut", "lastActiveAt" FROM {table} WHERE org_id = %s',
                      (org.id,)).fetchall()
    want: dict = {}
    for e in events:
        t = parse_ts(e["ts"])
        key = (t.replace(minute=0, second=0, microsecond=0), e.get("workspaceId"),
               e.get("repoId"))
        n, tin, tout, last = want.get(key, (0, 0, 0, t))
        want[key] = (n + 1, tin + e.get("tokensIn", 0), tout + e.get("tokensOut", 0),
                     max(last, t))
    assert {(slot, ws, repo): (n, int(a), int(b), last)
            for slot, ws, repo, n, a, b, last in rows} == want
    rows = db.execute(f"SELECT slot_ts, user_id, workspace_id, repo_id, requests "
                      f"FROM {monthly.table} WHERE org_id = %s", (org.id,)).fetchall()
    per_user: dict = {}
    for e in events:
        key = (thirty_day_slot(parse_ts(e["ts"])), e["userId"], e.get("workspaceId"),
               e.get("repoId"))
        per_user[key] = per_user.get(key, 0) + 1
    assert {tuple(row[:4]): row[4] for row in rows} == per_user
    params = {"scope": "org", "start": "2026-10-28T00:00:00Z", "end": "2026-11-04T00:00:00Z",
              "timeBucketSize": "1h"}
    assert_same(*both_ways(client, "/v2/stats/private-chat", org.headers, params), "migrated")
    assert migrate(db, DECLARED) == []  # now in step: nothing more to do
    assert_rollups_equal_a_rebuild(db, dom, org.id)


def test_a_changed_declaration_is_built_beside_the_old_tables_which_are_dropped(client,
                                                                                new_org, db):
    """Cubes declared differently want other tables (named after what they hold): the new
    ones are built from the raw events, an unchanged cube keeps its table and rows, and the
    tables no longer wanted are dropped. Run in a transaction rolled back afterwards, so the
    shared database keeps the declared tables."""
    from domains import DOMAINS as DECLARED
    from stats_gateway.db.migrate import sync_rollups

    org, events = scenario(client, new_org, "private-chat", 32, n=150)
    dom = domain_of(client, "private-chat")
    assert dom.rollups is None  # private-chat takes the default cubes
    kept_cube = Cube(name="scope", columns=("workspace_id", "repo_id"), grains=("1h",))
    new_cube = Cube(name="by_model", columns=("model",), grains=("1d",))
    variant = replace(dom, rollups=(kept_cube, new_cube))
    domains = tuple(variant if d.name == dom.name else d for d in DECLARED)
    old, new = set(rollup_table_names(dom)), set(rollup_table_names(variant))  # twins too
    kept = rollup_of(dom, "scope", "1h").table
    assert rollup_of(variant, "scope", "1h").table == kept  # same cube, grain and parts
    built = rollup_of(variant, "by_model", "1d").table
    assert built not in old and {kept, built} <= new
    # the new cube's sketch twins are new too; the kept cube's are kept
    assert new - old == {built} | {t.table for t in sketch_rollups(variant)
                                   if t.rollup.table == built}
    hourly_before = db.execute(f"SELECT * FROM {kept} WHERE org_id = %s ORDER BY 2, 3, 4",
                               (org.id,)).fetchall()

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback):
        with db.transaction():
            changed = sync_rollups(db, domains)
            dropped = [f"rollup-dropped:{t}" for t in sorted(old - new)]
            assert changed[-len(dropped):] == dropped and len(dropped) > 5
            assert sorted(changed[:-len(dropped)]) == sorted(f"rollup:{t}" for t in new - old)
            assert f"rollup:{built}" in changed
            # built while ingest into the domain waits (SHARE), and only into that domain
            locks = dict(db.execute(
                "SELECT c.relname, array_agg(l.mode) FROM pg_locks l JOIN pg_class c "
                "ON c.oid = l.relation WHERE l.pid = pg_backend_pid() "
                "AND c.relname LIKE 'events\\_%%' GROUP BY c.relname").fetchall())
            assert "ShareLock" in locks.get(dom.table, []), locks
            assert not [t for t, modes in locks.items()  # (and its month partitions)
                        if t != dom.table and not t.startswith(f"{dom.table}_p")
                        and "ShareLock" in modes], locks
            present = {t for (t,) in db.execute(
                "SELECT tablename FROM pg_tables WHERE tablename = ANY(%s)",
                (sorted(old | new),))}
            assert present == new
            recorded = {name for (name,) in db.execute("SELECT name FROM rollup_tables")}
            assert new <= recorded and not (old - new) & recorded
            # each new table analysed (-1: never), so the planner does not take it for
            # one row; the rebuilt by_model table holds rows of this org at least
            tuples = dict(db.execute("SELECT relname, reltuples FROM pg_class "
                                     "WHERE relname = ANY(%s)", (sorted(new - old),)))
            assert set(tuples) == new - old and all(n >= 0 for n in tuples.values()), tuples
            assert tuples[built] > 0
            assert db.execute(f"SELECT * FROM {kept} WHERE org_id = %s ORDER BY 2, 3, 4",
                              (org.id,)).fetchall() == hourly_before
            rows = db.execute(f"SELECT slot_ts, model, requests, \"tokensIn\" FROM {built} "
                              "WHERE org_id = %s", (org.id,)).fetchall()
            want: dict = {}
            for e in events:
                key = (parse_ts(e["ts"]).replace(hour=0, minute=0, second=0, microsecond=0),
                       e["model"])
                n, tin = want.get(key, (0, 0))
                want[key] = (n + 1, tin + e.get("tokensIn", 0))
            assert {(slot, model): (n, int(tin)) for slot, model, n, tin in rows} == want
            raise Rollback
    present = {t for (t,) in db.execute(
        "SELECT tablename FROM pg_tables WHERE tablename = ANY(%s)", (sorted(old | new),))}
    assert present == old
