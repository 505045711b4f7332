"""``POST /v2/query/<domain>`` (core/query.py): any metrics grouped by two and three
dimensions and the time bucket, list filters, ordering and cursor pages, for every domain,
against values computed here in plain Python over the generated events (``expected``)."""

from __future__ import annotations

import bisect
import uuid
from collections import defaultdict
from datetime import timedelta

import pytest

from expected import SERIES_VIEWS, assert_matches, bucket_edges, compute, entity_key, \
    in_range, parse_ts, unix
from support import assert_problem, ingest, loads
from test_filters import (  # noqa: F401 - the module fixture
    ALL, DIMENSIONS, END, NEW_DIMENSIONS, START, both_paths, key_fields, loaded, text,
    values_of,
)

RANGE = {"start": "2026-04-06T00:00:00Z", "end": "2026-04-09T00:00:00Z"}


def dims_of(domain: str) -> list[str]:
    return [by for (d, by) in [*DIMENSIONS, *NEW_DIMENSIONS] if d == domain]


def post(client, org_headers, domain: str, body: dict, status: int = 200) -> dict:
    r = client.post(f"/v2/query/{domain}", headers=org_headers, json=body)
    assert r.status_code == status, r.text
    return loads(r.text)  # exact decimals


def expected_rows(domain: str, events, metrics, group_by, bucket: str | None) -> dict:
    """(time?, *group values) -> metric values, over the events in range."""
    edges = bucket_edges(START, END, bucket) if bucket else None
    groups = defaultdict(list)
    for e in in_range(events, START, END):
        key = tuple(entity_key(e, key_fields(domain, by)) for by in group_by)
        if edges:
            key = (unix(edges[bisect.bisect_right(edges, parse_ts(e["ts"])) - 1]), *key)
        groups[key].append(e)
    return {k: compute(domain, metrics, g) for k, g in groups.items()}


def answered(body, group_by, bucket: bool) -> dict:
    out = {}
    for row in body["rows"]:
        key = tuple(row[by] for by in group_by)
        if bucket:
            key = (row["time"], *key)
        assert key not in out, key
        out[key] = {k: v for k, v in row.items() if k not in (*group_by, "time")}
    return out


@pytest.mark.parametrize("domain", ALL)
def test_group_by_two_and_three_dimensions_and_time(client, loaded, domain):
    org, events = loaded[domain]
    metrics = list(SERIES_VIEWS[(domain, "")][0])
    dims = dims_of(domain)
    shapes = [(dims[:2], "1h"), (dims[:3], None), ([], None), (dims[-1:], "1d")]
    for _ in both_paths(client):
        for group_by, bucket in shapes:
            body = {"metrics": metrics, "groupBy": group_by, **RANGE, "limit": 1000}
            if bucket:
                body["timeBucketSize"] = bucket
            got = post(client, org.headers, domain, body)
            want = expected_rows(domain, events, metrics, group_by, bucket)
            if not group_by and not bucket and not want:
                want = {(): compute(domain, metrics, [])}
            assert got["meta"]["totalRows"] == len(want), (domain, group_by, bucket)
            assert_matches(answered(got, group_by, bool(bucket)), want,
                           f"{domain} {group_by} {bucket}")
            assert got["nextCursor"] is None


def _sketched_metric(domain: str) -> str | None:
    """A metric of the domain's default view that cannot order rows (a percentile or a
    distinct count), if it has one."""
    from domains import DOMAINS as DECLARED
    from stats_gateway.core.sketches import sketched
    declared = next(d for d in DECLARED if d.name == domain)
    return next((name for name in SERIES_VIEWS[(domain, "")][0]
                 if sketched(declared.metric(name))), None)


@pytest.mark.parametrize("domain", [d for d in ALL if _sketched_metric(d)])
def test_a_query_led_by_a_sketched_metric_orders_by_the_first_that_can(client, loaded,
                                                                       domain):
    """Without ``orderBy`` rows go by the first metric that can order them, descending: a
    list led by a percentile or a distinct count (which cannot) answered 500 (a KeyError
    in ``query_sql``), found by the schemathesis CLI's fuzzing phase, as was the same
    list alone with nothing grouped."""
    org, events = loaded[domain]
    sketch = _sketched_metric(domain)
    metric = SERIES_VIEWS[(domain, "")][1]  # the primary: additive, sortable
    group_by = dims_of(domain)[:1]
    body = {"metrics": [sketch, metric, sketch], "groupBy": group_by, **RANGE, "limit": 1000}
    got = post(client, org.headers, domain, body)
    want = expected_rows(domain, events, [sketch, metric], group_by, None)
    assert_matches(answered(got, group_by, False), want, domain)
    assert got["meta"]["orderBy"] == [{"by": metric, "direction": "desc"}], got["meta"]
    key = group_by[0]
    order = [(-want[(r[key],)][metric], r[key] is None, r[key] or "") for r in got["rows"]]
    assert len(order) > 1 and order == sorted(order), domain
    only = post(client, org.headers, domain, {"metrics": [sketch], "groupBy": group_by,
                                                 **RANGE, "limit": 1000})
    assert only["meta"]["orderBy"] == []  # the grouped dimension alone orders the rows
    assert [r[key] for r in only["rows"]] == sorted(
        (r[key] for r in only["rows"]), key=lambda v: (v is None, v or ""))
    # nothing grouped and nothing but sketched metrics: one row, the whole range (no
    # column to select and no order answered 500 too: a syntax error, then ORDER BY NULL)
    whole = post(client, org.headers, domain, {"metrics": [sketch], **RANGE})
    assert whole["meta"]["totalRows"] == 1 and whole["meta"]["orderBy"] == []
    assert_matches(whole["rows"], [compute(domain, [sketch], in_range(events, START, END))],
                   domain)
    past = post(client, org.headers, domain, {"metrics": [sketch], **RANGE, "limit": 1})
    assert past["nextCursor"] is None and len(past["rows"]) == 1


@pytest.mark.parametrize("domain", ALL)
def test_list_filters_and_order(client, loaded, domain):
    org, events = loaded[domain]
    dims = dims_of(domain)
    group_by = dims[:1]
    fields = key_fields(domain, group_by[0])
    param = next(p for p in __import__("expected").FILTERS[domain] if p not in fields)
    a, b = values_of(events, param)[:2]
    metric = SERIES_VIEWS[(domain, "")][1]  # the primary: additive, sortable
    body = {"metrics": [metric], "groupBy": group_by, **RANGE,
            "filters": [{"field": param, "op": "nin", "values": [text(a)]}],
            "orderBy": [{"by": metric, "direction": "asc"}]}
    got = post(client, org.headers, domain, body)
    kept = [e for e in events if e.get(param) != a]
    want = expected_rows(domain, kept, [metric], group_by, None)
    assert_matches(answered(got, group_by, False), want, domain)
    order = [(want[(r[group_by[0]],)][metric], r[group_by[0]] is None, r[group_by[0]] or "")
             for r in got["rows"]]
    assert order == sorted(order), domain  # ascending by the metric, then the key
    body["filters"] = [{"field": param, "op": "in", "values": [text(a), text(b)]}]
    got = post(client, org.headers, domain, body)
    want = expected_rows(domain, [e for e in events if e.get(param) in (a, b)], [metric],
                         group_by, None)
    assert_matches(answered(got, group_by, False), want, domain)


def test_cursor_pages_over_ten_thousand_groups(client, db):
    from conftest import Org
    org = Org(db, f"query-pages-{uuid.uuid4().hex[:8]}")
    n = 10_500
    events = [{"eventId": f"qp-{i}", "ts": (START + timedelta(seconds=i * 7)).isoformat(),
               "userId": f"user-{i:05d}", "model": "m", "tokensIn": i % 97}
              for i in range(n)]
    ingest(client, org, "private-chat", events)
    body = {"metrics": ["tokensIn", "requests"], "groupBy": ["users"], **RANGE, "limit": 1000}
    seen, pages, cursor = [], 0, None
    while True:
        got = post(client, org.headers, "private-chat", {**body, "cursor": cursor} if cursor
                   else body)
        pages += 1
        assert got["meta"]["totalRows"] == n
        seen += [(r["users"], r["tokensIn"], r["requests"]) for r in got["rows"]]
        cursor = got["nextCursor"]
        if cursor is None:
            break
    assert pages == 11
    assert len(seen) == n and len({u for u, _, _ in seen}) == n  # none lost, none repeated
    assert sorted(seen) == sorted((f"user-{i:05d}", i % 97, 1) for i in range(n))
    # ordered by tokensIn descending, then user ascending, across pages
    assert [(-t, u) for u, t, _ in seen] == sorted((-t, u) for u, t, _ in seen)


def test_cursors_are_refused_elsewhere(client, db, loaded):
    from conftest import Org
    org, _ = loaded["storage"]
    body = {"metrics": ["requests"], "groupBy": ["buckets"], **RANGE, "limit": 1}
    first = post(client, org.headers, "storage", body)
    cursor = first["nextCursor"]
    assert cursor is not None
    post(client, org.headers, "storage", {**body, "cursor": cursor})  # the same query: fine
    other = Org(db, f"query-other-{uuid.uuid4().hex[:8]}")
    for headers, changed in ((other.headers, body), (org.read_only, body),
                             (org.headers, {**body, "groupBy": ["nodes"]}),
                             (org.headers, {**body, "cursor": cursor[:-2] + "AA"})):
        r = client.post("/v2/query/storage", headers=headers,
                        json={**changed, "cursor": changed.get("cursor", cursor)})
        assert assert_problem(r, 400, "invalid_cursor")


def test_bad_queries_answer_400_with_every_problem(client, loaded):
    org, _ = loaded["storage"]
    r = client.post("/v2/query/storage", headers=org.headers,
                    json={"metrics": ["nope"], "groupBy": ["buckets", "buckets", "planets"],
                          "start": "2026-04-06T00:00:00Z", "limit": 0,
                          "filters": [{"field": "x", "values": ["a"]},
                                      {"field": "bucketId", "op": "eq", "values": ["a", "b"]}],
                          "orderBy": [{"by": "nodes"}]})
    fields = sorted(e["field"] for e in assert_problem(r, 400)["errors"])
    assert fields == ["filters[0].field", "filters[1].values", "groupBy", "groupBy", "limit",
                      "metrics", "orderBy[0].by"], fields
    r = client.post("/v2/query/storage", headers=org.headers,
                    json={"metrics": ["requests"], "start": "2026-04-06T00:00:00Z",
                          "grupBy": ["buckets"]})
    assert_problem(r, 400, "invalid_parameters")
    r = client.post("/v2/query/storage", headers=org.headers, content=b"{not json")
    assert_problem(r, 400, "invalid_parameters")
    r = client.post("/v2/query/planets", headers=org.headers, json={"metrics": ["x"]})
    assert r.status_code in (404, 405)
