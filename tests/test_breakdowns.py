"""Breakdowns: per-entity totals, names, attributes, ordering, paging and per-entity series."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from expected import (
    APPROXIMATE, BREAKDOWN_METRICS, DIMENSIONS, UTC, assert_matches, auto_size, breakdown_metrics,
    expected_entities, expected_series, in_range, latest_names, order_entities, select, unix,
    utc,
)
from support import (
    assert_problem, generate, get, ingest, ok, random_times,
)

START = utc(2026, 4, 2, 8, 0)
END = utc(2026, 4, 4, 20, 30)
RANGE = {"scope": "org", "start": "2026-04-02T08:00:00Z", "end": "2026-04-04T20:30:00Z"}
PAIRS = sorted(DIMENSIONS)


def scenario(domain: str, seed: int = 1) -> list[dict]:
    times = random_times(f"bd-{domain}-{seed}", START - timedelta(hours=10),
                         END + timedelta(hours=10), 260,
                         gaps=[(utc(2026, 4, 3, 0), utc(2026, 4, 3, 12))])
    return generate(domain, seed, times)


def path(domain, by):
    return f"/v2/stats/{domain}/breakdown/{by}"


def check_breakdown(body, domain, by, events, start, end, *, org_events=None, scope="org",
                    scope_id=None, filters=None, sort=None, order="desc", limit=50, offset=0,
                    include_series=False, size=None, tz="UTC", window=None):
    """Compare a whole breakdown response with the independent computation."""
    org_events = events if org_events is None else org_events
    filters = filters or {}
    chosen = in_range(select(events, scope, scope_id if scope != "org" else None, filters),
                      start, end)
    totals = expected_entities(domain, by, chosen)
    metrics = breakdown_metrics(domain, by)
    sort = sort or BREAKDOWN_METRICS[domain][1]
    ordered = order_entities(totals, sort, order == "desc")
    page = ordered[offset:offset + limit]
    id_field, name_field = DIMENSIONS[(domain, by)]
    names = latest_names(org_events, id_field, name_field) if name_field else {}
    size = size or auto_size(start, end, tz)
    entities = []
    for key in page:
        entity = {"entityId": key, "entityName": names.get(key), "totals": totals[key],
                  "series": None}
        if (domain, by) == ("storage", "providers"):
            mine = [e for e in chosen if e.get("endpoint") == key]
            for attr in ("protocol", "provider", "endpoint"):
                values = {e.get(attr) for e in mine}
                assert len(values) == 1
                entity[attr] = values.pop()
        if include_series:
            mine = [e for e in chosen if e.get(id_field) == key]
            entity["series"] = expected_series(domain, metrics, mine, start, end, size, tz)
        entities.append(entity)
    flist = sorted(({"type": k, "id": v} for k, v in filters.items()), key=lambda f: f["type"])
    meta = dict(body["meta"])
    meta["resourceFilters"] = sorted(meta.get("resourceFilters") or [], key=lambda f: f["type"])
    assert_matches(meta, {
        "start": unix(start), "end": unix(end), "scope": scope, "scopeId": scope_id,
        "window": window, "timeBucketSize": size, "timezone": tz, "breakdownBy": by,
        "includesSeries": include_series, "limit": limit, "offset": offset,
        "totalEntities": len(totals), "sort": sort, "order": order,
        "resourceFilter": flist[0] if len(flist) == 1 else None, "resourceFilters": flist,
    }, "$.meta")
    assert set(body) == {"success", "meta", "summary", "entities"}
    assert_matches(body["summary"], {"total": len(totals)}, "$.summary")
    assert_matches(body["entities"], entities, "$.entities")
    return ordered, totals


@pytest.mark.parametrize("domain,by", PAIRS)
def test_totals_names_order_for_every_dimension(client, new_org, domain, by):
    org = new_org()
    events = scenario(domain)
    ingest(client, org, domain, events)
    id_field = DIMENSIONS[(domain, by)][0]
    inside = in_range(events, START, END)
    if by not in ("models",) and not (domain == "private-chat" and by == "users") \
            and not (domain == "policies" and by == "rules"):
        assert any(e.get(id_field) is None for e in inside)  # unlisted events exist
    body = ok(client, path(domain, by), org.headers, {**RANGE, "timeBucketSize": "6h"})
    ordered, _ = check_breakdown(body, domain, by, events, START, END, scope_id=org.id,
                                 size="6h")
    assert len(ordered) >= 2
    body = ok(client, path(domain, by), org.headers,
              {**RANGE, "timeBucketSize": "6h", "includeSeries": "true"})
    check_breakdown(body, domain, by, events, START, END, scope_id=org.id, size="6h",
                    include_series=True)


@pytest.mark.parametrize("domain,by", [("ai", "models"), ("credits", "workspaces"),
                                       ("storage", "nodes"), ("private-chat", "users"),
                                       ("policies", "users")])
def test_every_sort_metric_both_orders(client, new_org, domain, by):
    org = new_org()
    events = scenario(domain, seed=2)
    ingest(client, org, domain, events)
    for sort in breakdown_metrics(domain, by):
        if sort in APPROXIMATE:  # refused: test_percentiles
            continue
        for order in ("asc", "desc"):
            body = ok(client, path(domain, by), org.headers,
                      {**RANGE, "sort": sort, "order": order, "timeBucketSize": "1d"})
            check_breakdown(body, domain, by, events, START, END, scope_id=org.id, sort=sort,
                            order=order, size="1d")


def _bucket_event(i, bucket, t, latency=None, upl=0, name=None):
    e = {"eventId": f"e{i}", "ts": t.isoformat(), "bucketId": bucket, "uplBytes": upl}
    if latency is not None:
        e["latencyMs"] = latency
    if name is not None:
        e["bucketName"] = name
    return e


def test_ties_nulls_limit_offset(client, new_org):
    """Ties break on entityId ascending in both orders; null (no latency) sorts last."""
    org = new_org()
    t = utc(2026, 4, 3, 15)
    plan = {  # bucket -> [(latency, upl), ...]
        "b-e": [(10.0, 5), (30.0, 5), (None, 5)],
        "b-a": [(20.0, 7), (None, 1), (None, 2)],
        "b-c": [(None, 0)],
        "b-b": [(50.0, 0), (50.0, 0), (5.0, 15)],
        "b-d": [(None, 9)],
        "b-f": [(20.0, 15)],
    }
    events, i = [], 0
    for bucket, rows in plan.items():
        for latency, upl in rows:
            events.append(_bucket_event(i, bucket, t + timedelta(minutes=i), latency, upl))
            i += 1
    events.append({"eventId": "nobucket", "ts": t.isoformat(), "uplBytes": 999})
    ingest(client, org, "storage", events)
    for sort in ("requests", "latencyMs", "uplBytes", "dwlBytes"):
        for order in ("asc", "desc"):
            expected_order = None
            collected = []
            for offset in range(0, 8, 2):
                body = ok(client, path("storage", "buckets"), org.headers,
                          {**RANGE, "sort": sort, "order": order, "limit": "2",
                           "offset": str(offset), "timeBucketSize": "1d"})
                expected_order, _ = check_breakdown(
                    body, "storage", "buckets", events, START, END, scope_id=org.id, sort=sort,
                    order=order, limit=2, offset=offset, size="1d")
                assert body["meta"]["totalEntities"] == 6
                collected += [e["entityId"] for e in body["entities"]]
            assert collected == expected_order
            if sort == "latencyMs":  # nulls last whatever the order
                assert collected[-2:] == ["b-c", "b-d"]
    # hand-checked orders (ties -> entityId ascending, in both directions)
    body = ok(client, path("storage", "buckets"), org.headers, {**RANGE, "order": "asc"})
    assert [e["entityId"] for e in body["entities"]] == ["b-c", "b-d", "b-f", "b-a", "b-b", "b-e"]
    body = ok(client, path("storage", "buckets"), org.headers, RANGE)
    assert [e["entityId"] for e in body["entities"]] == ["b-a", "b-b", "b-e", "b-c", "b-d", "b-f"]
    body = ok(client, path("storage", "buckets"), org.headers, {**RANGE, "sort": "latencyMs"})
    assert [e["entityId"] for e in body["entities"]] == ["b-b", "b-a", "b-e", "b-f", "b-c", "b-d"]
    # offset past the end: no entities, totals still known
    for offset in ("6", "500", "100000"):
        body = ok(client, path("storage", "buckets"), org.headers, {**RANGE, "offset": offset})
        assert body["entities"] == []
        assert body["meta"]["totalEntities"] == 6 and body["summary"]["total"] == 6
    body = ok(client, path("storage", "buckets"), org.headers, {**RANGE, "limit": "500"})
    assert len(body["entities"]) == 6 and body["meta"]["limit"] == 500
    body = ok(client, path("storage", "buckets"), org.headers, {**RANGE, "limit": "1"})
    assert len(body["entities"]) == 1


def test_names_latest_by_ts_wins_even_out_of_order(client, new_org):
    org = new_org()
    base = utc(2026, 4, 3, 14)
    at = lambda h: base + timedelta(hours=h)  # noqa: E731
    batches = [
        [_bucket_event(1, "b1", at(3), name="Third")],
        [_bucket_event(2, "b1", at(1), name="First"), _bucket_event(3, "b1", at(2), name="Second")],
        [_bucket_event(4, "b1", at(5))],  # newest, but without a name: keeps "Third"
        [_bucket_event(5, "b2", at(4), name="Nine"), _bucket_event(6, "b2", at(-1), name="Seven")],
        [_bucket_event(7, "b3", at(1))],  # never named
    ]
    ws = [
        {"eventId": "w1", "ts": at(2).isoformat(), "workspaceId": "w", "workspaceName": "W new",
         "repoId": "r", "repoName": "R new"},
        {"eventId": "w2", "ts": at(1).isoformat(), "workspaceId": "w", "workspaceName": "W old",
         "repoId": "r", "repoName": "R old"},
    ]
    all_events = [e for b in batches for e in b]
    for batch in batches:
        ingest(client, org, "storage", batch)
    ingest(client, org, "storage", [ws[0]])
    ingest(client, org, "storage", [ws[1]])
    all_events += ws
    body = ok(client, path("storage", "buckets"), org.headers, RANGE)
    names = {e["entityId"]: e["entityName"] for e in body["entities"]}
    assert names == {"b1": "Third", "b2": "Nine", "b3": None}
    check_breakdown(body, "storage", "buckets", all_events, START, END, scope_id=org.id)
    for by, name in (("workspaces", "W new"), ("repos", "R new")):
        body = ok(client, path("storage", by), org.headers, RANGE)
        assert [(e["entityId"], e["entityName"]) for e in body["entities"]] == [
            ("r" if by == "repos" else "w", name)]
    # a newer name arrives later (in another domain even): it wins
    ingest(client, org, "credits", [{"eventId": "c1", "ts": at(6).isoformat(), "kind": "storage",
                                     "amount": "1", "bucketId": "b1", "bucketName": "Sixth"}])
    body = ok(client, path("storage", "buckets"), org.headers, RANGE)
    assert {e["entityId"]: e["entityName"] for e in body["entities"]}["b1"] == "Sixth"
    body = ok(client, path("credits", "buckets"), org.headers, RANGE)
    assert [(e["entityId"], e["entityName"]) for e in body["entities"]] == [("b1", "Sixth")]


def test_storage_providers_carry_protocol_provider_endpoint(client, new_org):
    org = new_org()
    events = scenario("storage", seed=4)
    ingest(client, org, "storage", events)
    body = ok(client, path("storage", "providers"), org.headers,
              {**RANGE, "includeSeries": "true", "timeBucketSize": "12h"})
    check_breakdown(body, "storage", "providers", events, START, END, scope_id=org.id,
                    include_series=True, size="12h")
    for e in body["entities"]:
        assert set(e) == {"entityId", "entityName", "protocol", "provider", "endpoint", "totals",
                          "series"}
        assert e["endpoint"] == e["entityId"] and e["entityName"] is None
    by_id = {e["entityId"]: e for e in body["entities"]}
    assert by_id["storage.googleapis.com"]["provider"] == "gcp"
    assert by_id["storage.googleapis.com"]["protocol"] == "GCS"
    # other breakdowns do not carry the attributes
    body = ok(client, path("storage", "buckets"), org.headers, RANGE)
    assert all(set(e) == {"entityId", "entityName", "totals", "series"} for e in body["entities"])


def test_private_chat_users_extra_metrics(client, new_org):
    org = new_org()
    t = utc(2026, 4, 2, 12)
    events = [
        {"eventId": "1", "ts": t.isoformat(), "model": "m", "userId": "ann", "conversationId": "x",
         "tokensIn": 5},
        {"eventId": "2", "ts": (t + timedelta(hours=1, seconds=7)).isoformat(), "model": "m",
         "userId": "ann", "conversationId": "x", "tokensOut": 3},
        {"eventId": "3", "ts": (t + timedelta(hours=30, milliseconds=900)).isoformat(),
         "model": "n", "userId": "ann", "conversationId": "y", "userName": "Ann"},
        {"eventId": "4", "ts": (t + timedelta(hours=2)).isoformat(), "model": "n", "userId": "bob"},
        {"eventId": "5", "ts": (END + timedelta(hours=1)).isoformat(), "model": "n",
         "userId": "bob", "conversationId": "late"},  # outside the range
    ]
    ingest(client, org, "private-chat", events)
    body = ok(client, path("private-chat", "users"), org.headers,
              {**RANGE, "includeSeries": "true", "timeBucketSize": "12h"})
    check_breakdown(body, "private-chat", "users", events, START, END, scope_id=org.id,
                    include_series=True, size="12h")
    ann = body["entities"][0]
    assert ann["entityId"] == "ann" and ann["entityName"] == "Ann"
    assert ann["totals"]["conversationsCount"] == 2
    assert ann["totals"]["lastActiveAt"] == unix(t) + 30 * 3600
    bob = body["entities"][1]
    assert bob["totals"]["conversationsCount"] == 0
    assert bob["totals"]["lastActiveAt"] == unix(t) + 2 * 3600
    assert any(p["lastActiveAt"] is None and p["requests"] == 0 for p in ann["series"])
    for sort in ("lastActiveAt", "conversationsCount"):
        body = ok(client, path("private-chat", "users"), org.headers, {**RANGE, "sort": sort})
        check_breakdown(body, "private-chat", "users", events, START, END, scope_id=org.id,
                        sort=sort)
    # the models breakdown has only the common metrics
    body = ok(client, path("private-chat", "models"), org.headers, RANGE)
    assert all(set(e["totals"]) == {"tokensIn", "tokensOut", "requests"} for e in body["entities"])
    r, _ = get(client, path("private-chat", "models"), org.headers,
               {**RANGE, "sort": "conversationsCount"})
    assert_problem(r, 400)


def test_policies_breakdown_returns_only_enforcement_metrics(client, new_org):
    org = new_org()
    events = scenario("policies", seed=6)
    ingest(client, org, "policies", events)
    enforcement = {"violations", "alerts", "blocks", "severityLow", "severityMedium",
                   "severityHigh"}
    for by in ("rules", "users"):
        body = ok(client, path("policies", by), org.headers,
                  {**RANGE, "includeSeries": "true", "timeBucketSize": "1d"})
        assert body["entities"]
        for e in body["entities"]:
            assert set(e["totals"]) == enforcement
            assert all(set(p) == enforcement | {"ts"} for p in e["series"])
        check_breakdown(body, "policies", by, events, START, END, scope_id=org.id,
                        include_series=True, size="1d")
        r, _ = get(client, path("policies", by), org.headers, {**RANGE, "sort": "policyTokensIn"})
        assert_problem(r, 400)


@pytest.mark.parametrize("domain,by", [("storage", "models"), ("ai", "buckets"),
                                       ("private-chat", "workspaces"), ("policies", "models"),
                                       ("credits", "users"), ("storage", "Workspaces"),
                                       ("ai", "nope"), ("credits", "totals")])
def test_unknown_breakdown_is_404(client, new_org, domain, by):
    org = new_org()
    r, _ = get(client, path(domain, by), org.headers, RANGE)
    assert_problem(r, 404, "not_found")


def test_breakdown_with_scope_and_filters(client, new_org):
    org = new_org()
    events = scenario("ai", seed=8)
    ingest(client, org, "ai", events)
    for scope, sid in (("workspace", "w1"), ("repo", "r2")):
        for by in ("repos", "models", "aiConfigs"):
            body = ok(client, path("ai", by), org.headers,
                      {**RANGE, "scope": scope, "id": sid, "timeBucketSize": "1d"})
            check_breakdown(body, "ai", by, events, START, END, scope=scope, scope_id=sid,
                            size="1d")
    for filters in ({"model": "gpt-4o"}, {"apiKeyId": "k2", "aiLlmId": "cfg1"}):
        body = ok(client, path("ai", "workspaces"), org.headers,
                  {**RANGE, **filters, "includeSeries": "true", "timeBucketSize": "6h"})
        check_breakdown(body, "ai", "workspaces", events, START, END, scope_id=org.id,
                        filters=filters, include_series=True, size="6h")


def test_breakdown_over_a_window(client, new_org):
    org = new_org()
    now = datetime.now(UTC).replace(microsecond=0)
    times = random_times("bd-window", now - timedelta(days=40), now - timedelta(hours=1), 150)
    events = generate("credits", 12, times)
    ingest(client, org, "credits", events)
    body = ok(client, path("credits", "models"), org.headers,
              {"scope": "org", "window": "30d", "includeSeries": "true"})
    start = datetime.fromtimestamp(body["meta"]["start"], UTC)
    end = datetime.fromtimestamp(body["meta"]["end"], UTC)
    assert end - start == timedelta(days=30)
    check_breakdown(body, "credits", "models", events, start, end, scope_id=org.id,
                    include_series=True, window="30d")
    assert body["meta"]["timeBucketSize"] == "6h"


def test_exact_decimal_totals_in_credits_breakdown(client, new_org):
    org = new_org()
    t = utc(2026, 4, 3, 16)
    amounts = ["0.1", "0.2", "0.000001", "99999999999.999999", "0.75"]
    events = [{"eventId": f"d{i}", "ts": (t + timedelta(minutes=i)).isoformat(), "kind": "ai",
               "amount": a, "model": "m1"} for i, a in enumerate(amounts)]
    ingest(client, org, "credits", events)
    body = ok(client, path("credits", "models"), org.headers, RANGE)
    from decimal import Decimal
    assert sum(map(Decimal, amounts)) == Decimal("100000000001.05")
    assert body["entities"][0]["totals"]["creditsAi"] == Decimal("100000000001.05")
    assert body["entities"][0]["totals"]["creditsTotal"] == Decimal("100000000001.05")
    check_breakdown(body, "credits", "models", events, START, END, scope_id=org.id)


def test_entity_id_tie_break_is_plain_ascending(client, new_org):
    """Equal metrics: entityId ascending by code point, whatever the database locale."""
    org = new_org()
    ids = ["a", "B", "_c", "-d", "é", "Z9", "z", "a b", "A", "10", "9"]
    t = utc(2026, 4, 3, 15)
    events = [_bucket_event(i, b, t) for i, b in enumerate(ids)]
    ingest(client, org, "storage", events)
    for order in ("asc", "desc"):
        body = ok(client, path("storage", "buckets"), org.headers, {**RANGE, "order": order})
        assert [e["entityId"] for e in body["entities"]] == sorted(ids)


def test_default_limit_is_50(client, new_org):
    org = new_org()
    t = utc(2026, 4, 3, 15)
    events = [_bucket_event(i, f"bk{i:03d}", t, upl=i) for i in range(120)]
    ingest(client, org, "storage", events)
    body = ok(client, path("storage", "buckets"), org.headers, {**RANGE, "sort": "uplBytes"})
    assert body["meta"]["limit"] == 50 and body["meta"]["totalEntities"] == 120
    assert [e["entityId"] for e in body["entities"]] == [f"bk{i:03d}" for i in range(119, 69, -1)]
    body = ok(client, path("storage", "buckets"), org.headers,
              {**RANGE, "sort": "uplBytes", "offset": "100", "order": "asc"})
    assert [e["entityId"] for e in body["entities"]] == [f"bk{i:03d}" for i in range(100, 120)]
    check_breakdown(body, "storage", "buckets", events, START, END, scope_id=org.id,
                    sort="uplBytes", order="asc", offset=100)
