"""A range ending now reads its tail from one open rollup slot, which runs past the range's
end, only while no event lies in that slot after the end; otherwise from the finer slots
and raw events that stand in for it (``rollups.plan_segments``, ``TailGuard``). Either
way the answer is the raw events' answer, byte for byte: here with no event after now,
and with events sent with future times (up to a day ahead is accepted) in every open
slot, for series, breakdowns of every dimension (ranked by a sum and by a distinct
count), distinct counts, percentiles, a page's series and /v2/query.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from support import ingest, loads, random_times
from test_rollups import assert_same, both_ways, domain_of, engine, make_events

from stats_gateway.core.domain import sortable
from stats_gateway.core.request import parse_breakdown, parse_series
from stats_gateway.core.rollups import plan_segments

DOMAINS = ("private-chat", "ai", "calls")


def _with_new_values(client, domain: str, events: list[dict]) -> list[dict]:
    """``events`` with values never seen before in every distinct-counted column, and
    latencies past every other: counted, they would change the distinct counts and the
    percentiles of any range they are in."""
    dom = domain_of(client, domain)
    name_of = {f.column: f.name for f in dom.stored_fields}
    counted = {name_of[m.agg.column] for m in dom.metrics if m.agg.sketch == "distinct"}
    out = []
    for i, event in enumerate(events):
        event = {**event, **{name: f"future-{name}-{i}" for name in counted}}
        if "latencyMs" in name_of.values():
            event["latencyMs"] = 9_000_000 + i
        out.append(event)
    return out


def _future_times(now: datetime) -> list[datetime]:
    """Instants after now inside every open slot a window can have: today's (before the
    next UTC midnight), this week's, this 30- and 90-day slot's (a few minutes ahead)."""
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
    return [now + timedelta(minutes=3), now + (midnight - now) / 2,
            now + timedelta(hours=20)]


def _queries(client, domain: str, events: list[dict]) -> list[tuple[str, dict]]:
    dom = domain_of(client, domain)
    path = f"/v2/stats/{domain}"
    queries = [(path, {"scope": "org", "window": "90d", "timeBucketSize": "1d"}),
               (path, {"scope": "org", "window": "365d", "timeBucketSize": "1w"}),
               (path, {"scope": "workspace", "id": "w1", "window": "30d",
                       "timeBucketSize": "1d"})]
    # a resource filter moves the query to the cube holding its column (the main cube)
    name_of = {f.column: f.name for f in dom.stored_fields}
    for flt in dom.filters:
        value = next((e[name_of[flt.column]] for e in events
                      if e.get(name_of[flt.column]) is not None), None)
        if value is not None:
            queries.append((path, {"scope": "org", "window": "90d", "timeBucketSize": "1d",
                                   flt.param: str(value)}))
            queries += [(f"{path}/breakdown/{dom.dimensions[0].by}",
                         {"scope": "org", "window": window, flt.param: str(value)})
                        for window in ("30d", "365d")]
            break
    for dim in dom.dimensions:
        for window in ("30d", "365d"):
            queries.append((f"{path}/breakdown/{dim.by}", {"scope": "org", "window": window}))
        queries.append((f"{path}/breakdown/{dim.by}",
                        {"scope": "org", "window": "30d", "timeBucketSize": "1d",
                         "includeSeries": "true", "limit": "3"}))
        for name in dom.breakdown_metrics(dim):  # ranked by a distinct count
            if dom.metric(name).agg.sketch is not None and sortable(dom.metric(name)):
                queries.append((f"{path}/breakdown/{dim.by}",
                                {"scope": "org", "window": "365d", "sort": name}))
    return queries


def _open_slots(client, domain: str, path: str, params: dict) -> int:
    """How many open slots the planner gives the request's metrics (read as it would
    now), over its metric rollups and, for its sketched metrics, their sketches."""
    dom = domain_of(client, domain)
    wanted = {k: [v] for k, v in params.items()}
    now = datetime.now(UTC)
    if "/breakdown/" in path:
        dim = dom.dimension(path.rsplit("/", 1)[1])
        request = parse_breakdown(dom, dim, wanted, now)
        metrics, by_bucket = [dom.metric(m) for m in request.metrics], False
    else:
        request = parse_series(dom, dom.series_view(""), wanted, now)
        metrics, by_bucket = [dom.metric(m) for m in request.view.metrics], True
        dim = None
    plain = [m for m in metrics if m.agg.sketch is None]
    sketched = [m for m in metrics if m.agg.sketch is not None]
    segments = plan_segments(dom, request, plain, dim, by_bucket)
    if sketched:
        segments += plan_segments(dom, request, sketched, dim, by_bucket, sketches=True)
    return sum(seg.open for seg in segments)


@pytest.mark.parametrize("future", [False, True], ids=["nothing-after-now", "future-events"])
@pytest.mark.parametrize("domain", DOMAINS)
def test_a_window_s_open_slot_answers_as_raw_events_do(client, new_org, domain, future):
    org = new_org()
    now = datetime.now(UTC).replace(microsecond=0)
    times = random_times(f"open-{domain}", now - timedelta(days=400), now - timedelta(
        minutes=2), 300)
    times += random_times(f"open-{domain}-today", now - timedelta(hours=30),
                          now - timedelta(minutes=2), 60)
    past = make_events(domain, 4, times)
    ingest(client, org, domain, past)
    if future:
        ingest(client, org, domain, _with_new_values(client, domain, make_events(
            domain, 6, _future_times(now))))
    opened = 0
    for path, params in _queries(client, domain, past):
        on, off = both_ways(client, path, org.headers, params)
        body = assert_same(on, off, f"{path} {params}")
        assert body.get("series") or body.get("entities"), body
        opened += _open_slots(client, domain, path, params)
    assert opened >= 10, opened  # the comparisons did go through open slots

    query = {"scope": "org", "window": "365d", "timeBucketSize": "1w",
             "groupBy": [domain_of(client, domain).dimensions[0].by],
             "metrics": list(domain_of(client, domain).breakdown.metrics[:2])}
    eng = engine(client)
    try:
        answers = []
        for rollups in (True, False):
            eng.use_rollups = rollups
            answers.append(client.post(f"/v2/query/{domain}", json=query, headers=org.headers))
    finally:
        eng.use_rollups = True
    assert answers[0].status_code == 200, answers[0].text
    rows = loads(answers[0].text)["rows"]
    assert rows and rows == loads(answers[1].text)["rows"]


def test_only_a_range_ending_now_gets_an_open_slot(client):
    """A year's users page: its tail is one open 90-day slot and the 30-day, daily and raw
    pieces standing in for it, each tagged; the same year ending a week ago is cut as
    before (events after its end are likely: the guard would fail)."""
    dom = domain_of(client, "private-chat")
    users = dom.dimension("users")
    metrics = [dom.metric("tokensOut")]
    now = datetime.now(UTC).replace(microsecond=0)
    request = parse_breakdown(dom, users, {"scope": ["org"], "window": ["365d"]}, now)
    segments = plan_segments(dom, request, metrics, users, False)
    opened = [s for s in segments if s.open]
    assert len(opened) == 1 and opened[0].end == request.plan.end
    slot = opened[0]
    assert slot.rollup.grain == "90d" and slot.guard.until == slot.start + timedelta(days=90)
    assert slot.start <= request.plan.end < slot.guard.until
    stand_ins = [s for s in segments if s.guard is not None and s.guard.when_events]
    assert stand_ins and stand_ins[0].start == slot.start and stand_ins[-1].end == slot.end
    assert all(a.end == b.start for a, b in zip(stand_ins, stand_ins[1:]))
    assert stand_ins[-1].rollup is None  # today's events after the last daily slot
    unguarded = [s for s in segments if s.guard is None]
    assert unguarded[0].start == request.plan.start and unguarded[-1].end == slot.start

    week_ago = now - timedelta(days=7)
    older = parse_breakdown(dom, users, {"scope": ["org"], "start": [week_ago.isoformat()
                                         .replace("+00:00", "Z")], "end": [
        (week_ago + timedelta(hours=5)).isoformat().replace("+00:00", "Z")]}, now)
    assert all(s.guard is None for s in plan_segments(dom, older, metrics, users, False))
