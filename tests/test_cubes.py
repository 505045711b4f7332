"""Issue 10 acceptance: every query shape on the fast path, exactly.

The rollups are declared cubes (``Domain.rollups``, or ``default_cubes``): a scope cube
(workspace, repo) at 5m/1h/1d/7d, an org cube (no column) at the same grains, a main cube of
every low-cardinality dimension and filter column at 1h/1d/7d, one cube per
high-cardinality dimension at 1d/30d/90d; sketch twins (histograms, distinct counts) at the
scope cube's 1h/1d/7d, the org cube's 1d/7d, the main cube's 1d only, an entity cube's
1d/30d. Ingest and loads merge the rows they insert into every one of them, in the
statement that inserts them.

The evidence, each piece able to fail:

* equivalence, per domain: series (every view; days, unaligned hours, 15-minute buckets on
  a half-hour zone, 5-minute buckets), breakdowns by every dimension (totals over more than
  60 days crossing 30-day slots, with an offset; per-entity daily series), filters on
  every column a cube holds (series, breakdowns, value-API totals of every declared
  metric over the long range), each for the org, a workspace and a repo: the bodies with
  rollups on and off are byte-identical (distinct counts this small are exact from their
  sketches) and match the reference computed here from the events;
* coverage: the planner's segments for those queries read every table of the domain's
  rollups (``rollup_table_names``: metric rollups, histogram and distinct-sketch twins),
  and corrupting any one of them changes the answer of a query planned to read it, so
  each comparison above went through it;
* late events: an event dated months before the newest ones changes, in every rollup,
  exactly the row of its own slot (floor to the grain from 2000-01-01 UTC) and key, by
  exactly its own contribution; nothing else moves.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from conftest import Org
from domains import DOMAINS as DECLARED
from expected import UTC, assert_matches, compute, parse_ts, select, utc, with_defaults
from stats_gateway.core.distinct import distinct_rollups, is_distinct
from stats_gateway.core.histogram_rollups import histogram_rollups
from stats_gateway.core.histograms import is_histogram
from stats_gateway.core.request import parse_breakdown, parse_series
from stats_gateway.core.rollup_sql import rebuild_sql, sketch_rollups
from stats_gateway.core.rollups import (
    domain_rollups, part_types, plan_segments, rollup_table_names,
)
from stats_gateway.core.sketches import sketched
from support import (
    NEW_GENERATORS, assert_rollups_equal_a_rebuild, check_series, corrupt_tables, ingest,
    random_times, rollup_snapshot,
)
from test_rollups import (
    Query, assert_same, both_ways, check_breakdown, domain_of, engine, eng_call, make_events,
)

DOMAIN_NAMES = tuple(d.name for d in DECLARED)
# holds the 90-day slot from 05-14 to 08-12 and the 30-day slots after it to 09-11
LONG = (utc(2026, 5, 1), utc(2026, 10, 5))
SCOPES = (("org", None), ("workspace", "w1"), ("repo", "r1"))
# query ends, each with busy minutes around it (raw ends and fine slots read events)
HOURS = ("2026-08-10T03:07:11Z", "2026-08-14T18:52:00Z")
QUARTERS = ("2026-09-01T18:32:30Z", "2026-09-03T18:22:00Z")  # Asia/Kolkata, 15m buckets
FIVES = ("2026-08-20T00:02:00Z", "2026-08-21T00:00:00Z")
DAYS = ("2026-06-23T00:00:00Z", "2026-09-30T00:00:00Z")
LONG_BREAKDOWN = ("2026-05-10T05:06:07Z", "2026-10-03T17:23:45Z")  # 146 days
SERIES_OF_ENTITIES = ("2026-07-01T00:00:00Z", "2026-08-20T00:00:00Z")
BUSY = [(parse_ts(t) - timedelta(minutes=25), parse_ts(t) + timedelta(minutes=25))
        for t in (*HOURS, *QUARTERS, *FIVES, *LONG_BREAKDOWN)]
NOW = datetime.now(UTC)


def _bool_text(value) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


@dataclass
class Case:
    """One query compared with rollups on and off, and checked against the reference."""

    path: str
    params: dict
    kind: str  # series | breakdown | totals (value API)
    name: str  # view path or breakdown by
    start: datetime
    end: datetime
    size: str
    tz: str
    scope: str
    scope_id: str | None
    filters: dict  # param -> the events' own value (bool stays bool)
    limit: int = 50
    offset: int = 0
    include_series: bool = False
    reads: set = field(default_factory=set)  # tables the planner has it read


@dataclass
class World:
    org: Org
    events: dict[str, list[dict]] = field(default_factory=dict)  # reference events


@pytest.fixture(scope="module")
def world(db) -> World:
    return World(Org(db, f"cubes-{uuid.uuid4().hex[:10]}"))


def events_of(client, world: World, name: str) -> list[dict]:
    """The domain's events, ingested into the world's org on first use."""
    if name not in world.events:
        times = random_times(f"cubes-{name}", *LONG, 700)
        for a, b in BUSY:
            times += random_times(f"cubes-{name}-{a}", a, b, 12)
        events = make_events(name, f"cubes-{name}", list(dict.fromkeys(times)))
        # small batches in shuffled order: most rows are merged into, many times over
        shuffled = list(events)
        random.Random(f"cubes-{name}").shuffle(shuffled)
        ingest(client, world.org, name, shuffled, chunk=60)
        world.events[name] = with_defaults(name, events) if name in NEW_GENERATORS else events
    return world.events[name]


def common_value(events, param):
    """The value of ``param`` most events carry (so a filter keeps many of them)."""
    counts: dict = {}
    for e in events:
        if e.get(param) is not None:
            counts[e[param]] = counts.get(e[param], 0) + 1
    return max(sorted(counts, key=str), key=counts.__getitem__)


def cube_columns(dom) -> set[str]:
    return {c for r in domain_rollups(dom) for c in r.columns}


def cases_for(dom, events) -> list[Case]:
    name = dom.name
    base = f"/v2/stats/{name}"
    out: list[Case] = []

    def series(view, scope, scope_id, ends, size, tz="UTC", filters=None):
        filters = filters or {}
        params = {"scope": scope, "start": ends[0], "end": ends[1], "timeBucketSize": size,
                  **({"id": scope_id} if scope_id else {}),
                  **({"timezone": tz} if tz != "UTC" else {}),
                  **{k: _bool_text(v) for k, v in filters.items()}}
        out.append(Case(base + (f"/{view.path}" if view.path else ""), params, "series",
                        view.path, parse_ts(ends[0]), parse_ts(ends[1]), size, tz, scope,
                        scope_id, filters))

    def breakdown(dim, scope, scope_id, ends, filters=None, include=False, offset=1):
        filters = filters or {}
        params = {"scope": scope, "start": ends[0], "end": ends[1], "timeBucketSize": "1d",
                  "limit": "3", **({"id": scope_id} if scope_id else {}),
                  **{k: _bool_text(v) for k, v in filters.items()}}
        if offset:
            params["offset"] = str(offset)
        if include:
            params["includeSeries"] = "true"
        out.append(Case(f"{base}/breakdown/{dim.by}", params, "breakdown", dim.by,
                        parse_ts(ends[0]), parse_ts(ends[1]), "1d", "UTC", scope, scope_id,
                        filters, limit=3, offset=offset, include_series=include))

    def totals(scope, scope_id, filters):
        params = {"scope": scope, "start": LONG_BREAKDOWN[0], "end": LONG_BREAKDOWN[1],
                  "timeBucketSize": "1d", **({"id": scope_id} if scope_id else {}),
                  **{k: _bool_text(v) for k, v in filters.items()}}
        out.append(Case("", params, "totals", "", parse_ts(LONG_BREAKDOWN[0]),
                        parse_ts(LONG_BREAKDOWN[1]), "1d", "UTC", scope, scope_id, filters))

    for scope, scope_id in SCOPES:
        for view in dom.series:
            series(view, scope, scope_id, DAYS, "1d")
            series(view, scope, scope_id, HOURS, "1h")
            series(view, scope, scope_id, QUARTERS, "15m", "Asia/Kolkata")
            series(view, scope, scope_id, FIVES, "5m")
        for dim in dom.dimensions:
            breakdown(dim, scope, scope_id, LONG_BREAKDOWN)
            breakdown(dim, scope, scope_id, SERIES_OF_ENTITIES, include=True, offset=0)
        totals(scope, scope_id, {})
    # every filter on a column some cube holds: in the main cube, or a high-cardinality one
    held = cube_columns(dom)
    first_view = dom.series[0]
    place = next((d for d in dom.dimensions if d.by == "workspaces"), dom.dimensions[0])
    for flt in dom.filters:
        if flt.column not in held:
            continue
        value = {flt.param: common_value(events, flt.param)}
        for scope, scope_id in SCOPES[:2]:
            series(first_view, scope, scope_id, DAYS, "1d", filters=value)
            series(first_view, scope, scope_id, HOURS, "1h", filters=value)
            breakdown(place, scope, scope_id, LONG_BREAKDOWN, filters=value)
            totals(scope, scope_id, value)
    return out


def plan_reads(dom, case: Case) -> set[str]:
    """The rollup and sketch tables the engine's planner has the case read: the same
    ``plan_segments`` calls the engine makes (metric parts in one query, each kind of
    sketch in one of its own); the corruption check below confirms them."""
    multi = {k: [v] for k, v in case.params.items()}
    reads: set[str] = set()
    twins = [(is_histogram, {h.rollup.table: h.table for h in histogram_rollups(dom)}),
             (is_distinct, {d.rollup.table: d.table for d in distinct_rollups(dom)})]

    def add(request, metrics, dim, by_bucket, in_sql=()):
        plain = [m for m in metrics if not sketched(m) or m.name in in_sql]
        if plain:
            reads.update(s.rollup.table for s in plan_segments(dom, request, plain, dim, by_bucket)
                         if s.rollup)
        for picks, twin_of in twins:
            chosen = [m for m in metrics if picks(m) and m.name not in in_sql]
            if chosen:
                reads.update(twin_of[s.rollup.table] for s in plan_segments(
                    dom, request, chosen, dim, by_bucket, sketches=True) if s.rollup)

    if case.kind in ("series", "totals"):
        view = dom.series_view(case.name)
        request = parse_series(dom, view, multi, NOW)
        metrics = ([dom.metric(m) for m in view.metrics] if case.kind == "series"
                   else list(dom.metrics))
        add(request, metrics, None, case.kind == "series")
        summary = dom.metric(request.metric)
        if case.kind == "series" and not summary.agg.additive:
            add(request, [summary], None, False)
    else:
        dim = dom.dimension(case.name)
        request = parse_breakdown(dom, dim, multi, NOW)
        metrics = [dom.metric(m) for m in request.metrics]
        # sorting by a sketched metric computes it in the totals query, exactly
        ordering = {request.sort, *request.then_by, dim.share_of}
        add(request, [*metrics, *dim.attribute_metrics], dim, False,
            in_sql={m.name for m in metrics if m.name in ordering})
        if case.include_series:
            add(request, metrics, dim, True)
    return reads


def run(client, world: World, dom, case: Case):
    """The case's answer with rollups and without: (on, off), equal or failing."""
    if case.kind != "totals":
        return assert_same(*both_ways(client, case.path, world.org.headers, case.params),
                           f"{case.path} {case.params}")
    view = dom.series_view("")
    request = parse_series(dom, view, {k: [v] for k, v in case.params.items()}, NOW)
    metrics = list(dom.metrics)  # every declared metric, as the value API may ask
    eng = engine(client)
    try:
        eng.use_rollups = True
        on = eng_call(client, eng.total_values, world.org.id, dom, request, metrics)
        eng.use_rollups = False
        off = eng_call(client, eng.total_values, world.org.id, dom, request, metrics)
    finally:
        eng.use_rollups = True
    assert on == off, f"rollups disagree with raw events for totals {case.params}"
    return on


def check(dom, case: Case, body, events, org_id: str) -> None:
    name = dom.name
    if case.kind == "series":
        # the reference selects on the value as sent (a boolean travels as text)
        sent = {k: _bool_text(v) for k, v in case.filters.items()}
        spelt = [{**e, **{k: _bool_text(e[k]) for k in sent if e.get(k) is not None}}
                 for e in events]
        check_series(body, name, case.name, spelt, case.start, case.end, case.size, case.tz,
                     scope=case.scope, scope_id=case.scope_id or org_id, filters=sent)
    elif case.kind == "breakdown":
        q = Query(case.path, case.params, "breakdown", case.name, case.start, case.end,
                  case.tz, case.size, case.scope, case.scope_id, case.filters,
                  limit=case.limit, offset=case.offset, include_series=case.include_series)
        check_breakdown(body, name, q, events)
    else:
        chosen = [e for e in select(events, case.scope, case.scope_id, case.filters)
                  if case.start <= parse_ts(e["ts"]) < case.end]
        assert_matches(body, compute(name, list(body), chosen), f"totals {case.params}")


def restore_table(db, dom, table: str, org_id: str) -> None:
    statements = [s for r in domain_rollups(dom) if r.table == table for s in rebuild_sql(r, org_id)]
    statements += [s for t in sketch_rollups(dom) if t.table == table
                   for s in t.rebuild_sql(org_id)]
    assert statements, table
    for statement in statements:
        db.execute(statement.text, statement.params)


@pytest.mark.parametrize("name", DOMAIN_NAMES)
def test_every_scope_dimension_filter_and_cube_answers_as_raw_events_do(client, db, world,
                                                                        name):
    dom = domain_of(client, name)
    events = events_of(client, world, name)
    cases = cases_for(dom, events)
    for case in cases:
        body = run(client, world, dom, case)
        check(dom, case, body, events, world.org.id)
        case.reads = plan_reads(dom, case)
    # every table of every cube (metric rollups, sketch twins) was read by a compared query
    tables = set(rollup_table_names(dom))
    read = set().union(*(c.reads for c in cases))
    assert read == tables, f"never read: {sorted(tables - read)}"
    # ... truly: corrupted alone, each changes the answer of a query the planner has read it
    for table in sorted(tables):
        readers = [c for c in cases if table in c.reads][:6]
        corrupt_tables(db, dom, world.org.id, [table])
        try:
            changed = False
            for case in readers:
                if case.kind == "totals":
                    try:
                        run(client, world, dom, case)
                    except AssertionError:
                        changed = True
                else:
                    on, off = both_ways(client, case.path, world.org.headers, case.params)
                    changed = on.status_code == off.status_code == 200 and on.text != off.text
                if changed:
                    break
            assert changed, f"{table}: corrupted, no query planned to read it changed"
        finally:
            restore_table(db, dom, table, world.org.id)
    assert_rollups_equal_a_rebuild(db, dom, world.org.id)


# --- late events ---------------------------------------------------------------------------

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
STEPS = {"5m": timedelta(minutes=5), "15m": timedelta(minutes=15), "1h": timedelta(hours=1),
         "1d": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30),
         "90d": timedelta(days=90)}


def slot_of(t: datetime, grain: str) -> datetime:
    """Slots are aligned on 2000-01-01 UTC, weeks on ISO weeks (Monday 00:00 UTC), computed
    here, not by the code under test."""
    if grain == "7d":
        day = datetime(t.year, t.month, t.day, tzinfo=UTC)
        return day - timedelta(days=t.weekday())
    step = STEPS[grain]
    return EPOCH + step * ((t - EPOCH) // step)


def _hashable(row: tuple) -> tuple:
    return tuple(tuple(v) if isinstance(v, list) else v for v in row)  # sketches: int[]


def _changed(before: list[tuple], after: list[tuple], width: int) -> set[tuple]:
    """Row keys (the first ``width`` columns) whose rows differ between two snapshots."""
    a, b = set(map(_hashable, before)), set(map(_hashable, after))
    return {row[:width] for row in (a - b) | (b - a)}


LATE = {"private-chat": {"userId": "u-late", "model": "gpt-4o", "tokensIn": 321,
                         "tokensOut": 5, "conversationId": "u-late-c1"},
        "calls": {"projectId": "acme/chatbot", "callId": "late-call", "opName": "retrieve",
                  "threadId": "th-1", "wbRunId": "acme/evals/r1", "latencyMs": 250},
        "workflow-cu": {"workflowId": "wf-a", "cu": "12.5", "status": "succeeded",
                        "durationMs": 60_000},
        "runs": {"targetType": "flow", "targetSlug": "upscaler", "source": "api",
                 "spend": "3.25"},
        "policies": {"ruleId": "rule-pii", "action": "block", "severity": "high",
                     "userId": "u2", "policyTokensIn": 40}}
# what one late event adds to its rows' additive parts, read off the event above
DELTAS = {"private-chat": {"requests": 1, "tokensIn": 321, "tokensOut": 5},
          "calls": {"callCount": 1, "errorCount": 0, "latencyMs__n": 1},
          "workflow-cu": {"runCount": 1, "totalCu": Decimal("12.5"), "avgDurationMs__n": 1,
                          "avgDurationMs__sum": 60_000},
          "runs": {"runs": 1, "spend": Decimal("3.25"), "avgDurationMs__n": 0},
          "policies": {"violations": 1, "alerts": 0, "blocks": 1, "severityHigh": 1,
                       "severityLow": 0, "policyTokensIn": 40}}


@pytest.mark.parametrize("name", sorted(LATE))
def test_a_late_event_changes_exactly_its_own_slots(client, db, new_org, name):
    """Newer events first (October 2026); then one dated months earlier (a new slot in every
    rollup), then another in the same old day and 30-day slot with the same keys (an
    existing row of the 1d, 7d, 30d and 90d rollups, new 5m/15m/1h rows): each changes, in every
    table, exactly the rows of its own slots and keys, by exactly its own count."""
    dom = domain_of(client, name)
    org = new_org()
    times = random_times(f"late-{name}", utc(2026, 10, 1), utc(2026, 11, 1), 300)
    ingest(client, org, name, make_events(name, f"late-{name}", times))
    tables = [(r.table, r, 2 + len(r.columns)) for r in domain_rollups(dom)]
    tables += [(t.table, t.rollup, 2 + len(t.rollup.columns)) for t in sketch_rollups(dom)]
    hist_tables = {h.table for h in histogram_rollups(dom)}
    distinct_tables = {d.table for d in distinct_rollups(dom)}
    assert {t for t, _, _ in tables} == set(rollup_table_names(dom))
    sent = []
    for k, ts in enumerate((datetime(2026, 5, 20, 13, 37, 11, 500000, UTC),
                            utc(2026, 5, 20, 22, 4, 9))):
        before = rollup_snapshot(db, dom, org.id)
        late = {"eventId": f"late-{k}", "ts": ts.isoformat(), **LATE[name],
                "workspaceId": "w1", "repoId": "r2"}
        if name == "calls":  # the second call is slower: the maximum moves
            late.update(callId=f"late-call-{k}", latencyMs=250 + 650 * k)
        if name == "private-chat":  # another conversation: the distinct sketch moves
            late["conversationId"] = f"u-late-c{k}"
        ingest(client, org, name, [late])
        after = rollup_snapshot(db, dom, org.id)
        stored = db.execute(f"SELECT * FROM {dom.table} WHERE org_id = %s AND event_id = %s",
                            (org.id, late["eventId"])).fetchone()
        columns = [c.name for c in db.execute(f"SELECT * FROM {dom.table} LIMIT 0").description]
        row = dict(zip(columns, stored))
        for table, rollup, width in tables:
            key = (uuid.UUID(org.id), slot_of(ts, rollup.grain),
                   *(row[c] for c in rollup.columns))
            changed = _changed(before[table], after[table], width)
            assert changed == {key}, (table, changed, key)
            old = [r for r in before[table] if r[:width] == key]
            new = [r for r in after[table] if r[:width] == key]
            if table in hist_tables:  # one more count in one bin per histogrammed value
                assert all(list(r[-2]) == sorted(set(r[-2])) for r in new), table  # in order
                assert (sum(sum(r[-1]) for r in new) - sum(sum(r[-1]) for r in old)) == 1, table
                continue
            if table in distinct_tables:  # a sketch that took in one more value
                assert len(new) == 1, table
                continue
            assert len(new) == 1 and len(old) == (
                1 if k == 1 and rollup.grain in ("1d", "7d", "30d", "90d") else 0), \
                (table, old, new)
            parts = [n for n, _ in part_types(rollup)]
            got = dict(zip(parts, new[0][width:]))
            was = dict(zip(parts, old[0][width:])) if old else {}
            for part, delta in DELTAS[name].items():
                assert (got[part] or 0) - (was.get(part) or 0) == delta, (table, part)
            if name == "private-chat":  # the newest time of the slot
                assert got["lastActiveAt"] == max(ts, was.get("lastActiveAt") or ts), table
            if name == "calls":
                assert got["latencyMs__sum"] - (was.get("latencyMs__sum") or 0) == \
                    late["latencyMs"], table
                assert got["latencyMsMax"] == max(late["latencyMs"],
                                                  was.get("latencyMsMax") or 0), table
        assert_rollups_equal_a_rebuild(db, dom, org.id)
        sent.append(late)
    # the old range answers alike from rollups and raw events, and as the events say
    events = make_events(name, f"late-{name}", times) + sent
    events = with_defaults(name, events) if name in NEW_GENERATORS else events
    params = {"scope": "org", "start": "2026-05-01T00:00:00Z", "end": "2026-11-10T00:00:00Z",
              "timeBucketSize": "1d"}
    body = assert_same(*both_ways(client, f"/v2/stats/{name}", org.headers, params), "late")
    check_series(body, name, "", events, utc(2026, 5, 1), utc(2026, 11, 10), "1d",
                 scope_id=org.id)
    for dim in dom.dimensions:
        assert_same(*both_ways(client, f"/v2/stats/{name}/breakdown/{dim.by}", org.headers,
                               {**params, "start": "2026-05-19T05:00:00Z"}), dim.by)
