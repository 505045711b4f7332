"""Integer fields have a documented per-event bound, and sums never overflow into a 500.

Every integer field of every domain takes 0, 2^31 and ``MAX_INTEGER`` (2^53 - 1) and
refuses 2^53, 2^63 - 1 and 2^63 (and their negatives) with a 422 naming the field and
nothing stored; accepted values sum exactly, compared with totals computed here from the
events. Should a value past the bound ever reach the database (the bound lifted here), the
bigint overflow is a 422 for the whole batch, or a refused load, with nothing stored.
"""

from __future__ import annotations

import random
from datetime import timedelta

import psycopg
import pytest
from expected import unix, utc
from support import (
    GENERATORS, NEW_GENERATORS, assert_problem, assert_rollups_equal_a_rebuild, ingest, ok,
    post_events,
)

from domains import DOMAINS
from stats_gateway.bulk.load import LoadRejected, load_events
from stats_gateway.bulk.sources import Record
from stats_gateway.core import ingest as ingest_module
from stats_gateway.core.aggregations import Sum
from stats_gateway.core.domain import FieldType
from stats_gateway.core.ingest import MAX_INTEGER

T = utc(2026, 8, 1, 10)
ACCEPTED = (0, 2**31, MAX_INTEGER, MAX_INTEGER)  # twice the bound: the sum passes 2^53
REFUSED = (2**53, 2**63 - 1, 2**63, -(2**53), -(2**63 - 1))
BY_NAME = {d.name: d for d in DOMAINS}
INTEGER_FIELDS = [(d.name, f) for d in DOMAINS for f in d.all_fields
                  if f.type is FieldType.BIGINT]


def _base_events(domain: str, n: int) -> list[dict]:
    make = {**GENERATORS, **NEW_GENERATORS}[domain]
    rng = random.Random(f"bounds-{domain}")
    return [make(rng, i, T + timedelta(minutes=i)) for i in range(n)]


def _stored(db, domain, org) -> int:
    return db.execute(f"SELECT count(*) FROM {BY_NAME[domain].table} WHERE org_id = %s",
                      (org.id,)).fetchone()[0]


def _expected_sum(domain, agg: Sum, events: list[dict]) -> int:
    """The metric's total, from the events as sent (absent fields take their default)."""
    by_column = {f.column: f for f in domain.all_fields}

    def value(event, column):
        f = by_column[column]
        return event.get(f.name, f.default) or 0

    total = 0
    for e in events:
        if agg.where_column and e.get(by_column[agg.where_column].name) not in agg.values:
            continue
        total += sum(value(e, c) for c in (agg.column, *agg.plus))
    return total


def test_every_domain_has_integer_fields_covered():
    assert len(INTEGER_FIELDS) >= 10
    assert {"call-usage", "storage", "ai", "private-chat"} <= {d for d, _ in INTEGER_FIELDS}


@pytest.mark.parametrize("domain_name,field", INTEGER_FIELDS,
                         ids=[f"{d}-{f.name}" for d, f in INTEGER_FIELDS])
def test_integer_field_boundaries(client, new_org, db, domain_name, field):
    domain = BY_NAME[domain_name]
    org = new_org()
    for value in REFUSED:
        batch = _base_events(domain_name, 2)
        batch[1][field.name] = value
        body = assert_problem(post_events(client, org.headers, domain_name, batch), 422,
                              "invalid_events")
        assert {(e["index"], e["field"]) for e in body["errors"]} == {(1, field.name)}, (
            value, body["errors"])
    assert _stored(db, domain_name, org) == 0

    events = _base_events(domain_name, len(ACCEPTED))
    for event, value in zip(events, ACCEPTED):
        event[field.name] = value
    ingest(client, org, domain_name, events)
    assert _stored(db, domain_name, org) == len(ACCEPTED)

    sums = [m for m in domain.metrics
            if isinstance(m.agg, Sum) and field.column in m.agg.columns()]
    params = {"scope": "org", "start": str(unix(T - timedelta(hours=1))),
              "end": str(unix(T + timedelta(days=1))), "timeBucketSize": "1d"}
    checked = set()
    viewed = {m.name for m in sums for v in domain.series if m.name in v.metrics}
    for view in domain.series:
        path = f"/v2/stats/{domain_name}" + (f"/{view.path}" if view.path else "")
        body = ok(client, path, org.headers, params)
        for m in sums:
            if m.name in view.metrics:
                got = sum(point.get(m.name, 0) for point in body["series"])
                assert got == _expected_sum(domain, m.agg, events), (m.name, got)
                checked.add(m.name)
    assert checked == viewed
    assert_rollups_equal_a_rebuild(db, domain, org.id)


def test_call_usage_tokens_at_the_bigint_limit_are_refused_not_a_500(client, new_org, db):
    """Issue 12's probe: inputTokens 9223372036854775807 was a 500 (bigint out of range)."""
    org = new_org()
    event = dict(_base_events("call-usage", 1)[0], inputTokens=9223372036854775807,
                 outputTokens=5)
    body = assert_problem(post_events(client, org.headers, "call-usage", [event]), 422,
                          "invalid_events")
    assert [e["field"] for e in body["errors"]] == ["inputTokens"]
    assert str(MAX_INTEGER) in body["errors"][0]["message"]
    assert _stored(db, "call-usage", org) == 0


@pytest.fixture
def unbounded(monkeypatch):
    """The per-event bound lifted to the bigint limit, so a row's sum can overflow."""
    monkeypatch.setattr(ingest_module, "MAX_INTEGER", 2**63 - 1)


def _overflowing(n: int = 3) -> list[dict]:
    events = _base_events("call-usage", n)
    events[1].update(inputTokens=2**63 - 1, outputTokens=1)  # totalTokens: past bigint
    return events


def test_an_overflow_in_the_database_is_a_422_for_the_whole_batch(client, new_org, db,
                                                                   unbounded):
    org = new_org()
    r = post_events(client, org.headers, "call-usage", _overflowing())
    body = assert_problem(r, 422, "value_out_of_range")
    assert "nothing was written" in body["message"]
    assert _stored(db, "call-usage", org) == 0
    ingest(client, org, "call-usage", _base_events("call-usage", 3))  # the org still works
    assert _stored(db, "call-usage", org) == 3


def test_an_overflow_in_the_database_refuses_the_whole_load(database_url, new_org, db,
                                                             unbounded):
    org = new_org()
    records = [Record(i + 1, e) for i, e in enumerate(_overflowing(5))]
    with psycopg.connect(database_url, autocommit=True) as conn, \
            pytest.raises(LoadRejected) as refused:
        load_events(conn, BY_NAME["call-usage"], org.id, records, chunk_rows=2)
    (problem,) = refused.value.report.problems
    assert "out of range" in problem.message and "lines 1-2" in problem.message
    assert _stored(db, "call-usage", org) == 0


def test_a_page_series_past_bigint_is_exact_and_its_zero_buckets_stay_zero(client, new_org):
    """includeSeries reads bigint points from the database, and parts where a sum passes
    2^63: 1,100 events of the bound in one hour of one workspace, and one small event."""
    org = new_org()
    big = [{"eventId": f"big{i}", "ts": (T + timedelta(seconds=i)).isoformat(),
            "workspaceId": "w-big", "uplBytes": MAX_INTEGER} for i in range(1_100)]
    small = [{"eventId": "small", "ts": (T + timedelta(hours=2)).isoformat(),
              "workspaceId": "w-small", "uplBytes": 7}]
    ingest(client, org, "storage", big + small, chunk=1_000)
    params = {"scope": "org", "start": str(unix(T)), "end": str(unix(T + timedelta(hours=3))),
              "timeBucketSize": "1h", "includeSeries": "true", "sort": "uplBytes"}
    body = ok(client, "/v2/stats/storage/breakdown/workspaces", org.headers, params)
    hours = [unix(T + timedelta(hours=h)) for h in range(3)]
    series = {e["entityId"]: [(p["ts"], p["uplBytes"], p["requests"]) for p in e["series"]]
              for e in body["entities"]}
    assert 1_100 * MAX_INTEGER > 2**63
    # the page's totals too: its statement adds the hourly rollup's parts as bigints
    # first, the cast of the 1,100-event part fails, and it is asked again as numerics
    totals = {e["entityId"]: (e["totals"]["uplBytes"], e["totals"]["requests"])
              for e in body["entities"]}
    assert totals == {"w-big": (1_100 * MAX_INTEGER, 1_100), "w-small": (7, 1)}
    assert series == {
        "w-big": [(hours[0], 1_100 * MAX_INTEGER, 1_100), (hours[1], 0, 0), (hours[2], 0, 0)],
        "w-small": [(hours[0], 0, 0), (hours[1], 0, 0), (hours[2], 7, 1)]}
    # a page of ordinary sums takes the narrow path: the same points, as integers
    small_only = ok(client, "/v2/stats/storage/breakdown/workspaces", org.headers,
                    {**params, "scope": "workspace", "id": "w-small"})
    assert [(p["ts"], p["uplBytes"], p["requests"])
            for p in small_only["entities"][0]["series"]] == series["w-small"]
