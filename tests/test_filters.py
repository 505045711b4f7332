"""List filters and negation on every /v2 endpoint of every domain (``core/filters.py``):
``param=a&param=b`` keeps events whose field is any of the values, ``param!=a`` those
whose field is none of them or absent. Every expected value is computed here, in plain
Python over the generated events (``expected``), on the rollup path and on raw events.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from expected import (
    APPROXIMATE, DEFAULTS, DIMENSIONS, NON_ADDITIVE, FILTERS, NEW_DIMENSIONS, SERIES_VIEWS, assert_matches, entity_key,
    expected_series, expected_summary, in_range, utc, with_defaults,
)
from support import DOMAINS, NEW_DOMAINS, assert_problem, generate, generate_new, ingest, ok, \
    random_times
from test_security import Key

START, END = utc(2026, 4, 6, 0), utc(2026, 4, 9, 0)  # three whole days: hourly rollups answer
RANGE = {"scope": "org", "start": "2026-04-06T00:00:00Z", "end": "2026-04-09T00:00:00Z",
         "timeBucketSize": "1h"}
ALL = DOMAINS + NEW_DOMAINS


def events_of(domain: str) -> list[dict]:
    times = random_times(f"filters-{domain}", START - timedelta(hours=2),
                         END + timedelta(hours=2), 400)
    make = generate if domain in DOMAINS else generate_new
    return make(domain, 11, times, prefix="flt-")


def reference(domain: str, events) -> list[dict]:
    """The events as the gateway stores them: absent defaulted fields filled in."""
    return with_defaults(domain, events) if domain in DEFAULTS else events


def text(value) -> str:
    """A field's value as a filter parameter writes it."""
    return {True: "true", False: "false"}.get(value, value) if isinstance(value, bool) \
        else str(value)


def values_of(events, field: str) -> list:
    """The field's values, most frequent first (ties by text), absent ones left out."""
    counts: dict = {}
    for e in events:
        if e.get(field) is not None:
            counts[e[field]] = counts.get(e[field], 0) + 1
    return sorted(counts, key=lambda v: (-counts[v], text(v)))


@pytest.fixture(scope="module")
def loaded(client, db):
    """Per domain: an org holding its events (one org per domain keeps them apart)."""
    from conftest import Org
    found = {}
    run = uuid.uuid4().hex[:8]  # each module using the fixture gets orgs of its own
    for domain in ALL:
        org = Org(db, f"filters-{domain}-{run}")
        events = events_of(domain)
        ingest(client, org, domain, events)
        found[domain] = (org, reference(domain, events))
    return found


def both_paths(client):
    """Run the block's checks once from the rollups and once from raw events."""
    engine = client.app.state.engine
    for use_rollups in (True, False):
        engine.use_rollups = use_rollups
        try:
            yield use_rollups
        finally:
            engine.use_rollups = True


def check(client, org, domain: str, events, params: list[tuple[str, str]], keep, meta):
    """The series for ``params`` against the events ``keep`` selects, and its meta's
    resource filters against ``meta``."""
    metrics, primary = SERIES_VIEWS[(domain, "")]
    chosen = [e for e in events if keep(e)]
    body = ok(client, f"/v2/stats/{domain}", org.headers, [*RANGE.items(), *params])
    points = expected_series(domain, metrics, chosen, START, END, "1h")
    assert_matches(body["series"], points, "$.series")
    assert_matches(body["summary"], expected_summary(domain, primary, points,
                                                     in_range(chosen, START, END)), "$.summary")
    assert body["meta"]["resourceFilters"] == meta
    assert body["meta"]["resourceFilter"] == (meta[0] if len(meta) == 1 else None)
    return body


@pytest.mark.parametrize("domain", ALL)
def test_each_operator_of_each_filter_on_the_series(client, loaded, domain):
    org, events = loaded[domain]
    for param in FILTERS[domain]:
        found = values_of(events, param)
        assert len(found) >= 2, (domain, param, found)  # the generators vary every field
        a, b = found[0], found[1]
        ta, tb = text(a), text(b)
        absent = [f"nobody-{i}" for i in range(48)]
        for _ in both_paths(client):
            check(client, org, domain, events, [(param, ta)], lambda e: e.get(param) == a,
                  [{"type": param, "id": ta}])
            check(client, org, domain, events, [(param, ta), (param, tb)],
                  lambda e: e.get(param) in (a, b),
                  [{"type": param, "id": f"{ta},{tb}", "operator": "in", "ids": [ta, tb]}])
            check(client, org, domain, events, [(f"{param}!", ta)],
                  lambda e: e.get(param) != a,
                  [{"type": param, "id": ta, "operator": "nin", "ids": [ta]}])
            if isinstance(a, bool):
                continue  # a boolean has two values: longer lists say nothing new
            many = [ta, *absent, tb]  # an IN list of 50
            check(client, org, domain, events, [(param, v) for v in many],
                  lambda e: e.get(param) in (a, b),
                  [{"type": param, "id": ",".join(many), "operator": "in", "ids": many}])
            check(client, org, domain, events, [(f"{param}!", v) for v in many],
                  lambda e: e.get(param) not in (a, b),
                  [{"type": param, "id": ",".join(many), "operator": "nin", "ids": many}])


@pytest.mark.parametrize("domain", ALL)
def test_a_filter_and_its_negation_add_up_to_the_whole(client, loaded, domain):
    """``param=a`` + ``param!=a`` = no filter, bucket by bucket, for every additive metric
    (events without the field go to the negation)."""
    org, events = loaded[domain]
    metrics, _ = SERIES_VIEWS[(domain, "")]
    whole = ok(client, f"/v2/stats/{domain}", org.headers, RANGE)["series"]
    param = FILTERS[domain][-1]
    a = text(values_of(events, param)[0])
    kept = ok(client, f"/v2/stats/{domain}", org.headers, {**RANGE, param: a})["series"]
    rest = ok(client, f"/v2/stats/{domain}", org.headers, {**RANGE, f"{param}!": a})["series"]
    checked = 0
    for w, k, r in zip(whole, kept, rest, strict=True):
        for m in metrics:
            if m in NON_ADDITIVE or m in APPROXIMATE or w[m] is None:
                continue
            assert (k[m] or 0) + (r[m] or 0) == w[m], (domain, param, m, w["ts"])
            checked += 1
    assert checked > 0


def key_fields(domain: str, by: str) -> tuple[str, ...]:
    """The event fields of a breakdown's entity id."""
    if (domain, by) in DIMENSIONS:
        return (DIMENSIONS[(domain, by)][0],)
    return NEW_DIMENSIONS[(domain, by)].key


@pytest.mark.parametrize("domain", ALL)
def test_filters_on_breakdowns(client, loaded, domain):
    """Every breakdown of the domain, with a negated list filter on another field: the
    entities counted are exactly those of the events left."""
    org, events = loaded[domain]
    for (d, by) in [*DIMENSIONS, *NEW_DIMENSIONS]:
        if d != domain:
            continue
        fields = key_fields(domain, by)
        param = next(p for p in FILTERS[domain] if p not in fields)
        a, b = values_of(events, param)[:2]
        chosen = [e for e in in_range(events, START, END) if e.get(param) not in (a, b)]
        expected_ids = {entity_key(e, fields) for e in chosen} - {None}
        for _ in both_paths(client):
            body = ok(client, f"/v2/stats/{domain}/breakdown/{by}", org.headers,
                      {"scope": "org", "start": RANGE["start"], "end": RANGE["end"],
                       f"{param}!": [text(a), text(b)], "limit": 500})
            assert body["meta"]["totalEntities"] == len(expected_ids), (domain, by, param)
            assert {e["entityId"] for e in body["entities"]} == expected_ids, (domain, by)
            assert body["meta"]["resourceFilters"] == [
                {"type": param, "id": f"{text(a)},{text(b)}", "operator": "nin",
                 "ids": [text(a), text(b)]}]


def test_a_negated_filter_never_widens_a_restricted_key(client, db, loaded):
    """Filters only narrow: a key limited to one workspace, asking for everything but one
    value, still sees only its workspace's events."""
    org, events = loaded["storage"]
    workspace = values_of(events, "workspaceId")[0]
    key = Key(db, org.id, workspaces=[workspace])
    mine = [e for e in events if e.get("workspaceId") == workspace]
    a = values_of(events, "bucketId")[0]
    body = ok(client, "/v2/stats/storage", key.headers, {**RANGE, "bucketId!": a})
    points = expected_series("storage", SERIES_VIEWS[("storage", "")][0],
                             [e for e in mine if e.get("bucketId") != a], START, END, "1h")
    assert_matches(body["series"], points, "$.series")


def test_bad_filter_lists_answer_400_with_every_problem(client, loaded):
    org, _ = loaded["workflow-cu"]
    r = client.get("/v2/stats/workflow-cu", headers=org.headers,
                   params=[*RANGE.items(), ("isStream", "true"), ("isStream", "maybe"),
                           ("status!", ""), *(("workflowId", f"w{i}") for i in range(101))])
    body = assert_problem(r, 400)
    fields = sorted(e["field"] for e in body["errors"])
    assert fields == ["isStream", "status!", "workflowId"], body
    r = client.get("/v2/stats/workflow-cu", headers=org.headers,
                   params=[*RANGE.items(), ("nope!", "x")])
    assert [e["field"] for e in assert_problem(r, 400)["errors"]] == ["nope!"]


def test_a_comma_in_a_filter_value_is_one_value_and_the_answer_says_so(client, loaded):
    """``model=a,b`` matches the model named "a,b" (none here: zeros), and meta.warnings
    says how to ask for either; requests without such a value carry no warnings at all."""
    org, events = loaded["private-chat"]
    a, b = values_of(events, "model")[:2]
    body = ok(client, "/v2/stats/private-chat", org.headers, {**RANGE, "model": f"{a},{b}"})
    assert body["summary"]["total"] == 0
    assert body["meta"]["warnings"] == [{
        "code": "filter_value_with_comma",
        "message": f"model '{a},{b}' is one value, not a list; for any of several repeat "
                   f"the parameter: model={a}&model={b}"}]
    body = ok(client, "/v2/stats/private-chat", org.headers, [*RANGE.items(), ("model", a),
                                                             ("model", b)])
    assert "warnings" not in body["meta"]
    assert body["summary"]["total"] == sum(
        1 for e in in_range(events, START, END) if e.get("model") in (a, b))
