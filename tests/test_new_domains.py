"""The newer domains (runs, model-usage, workflow-cu, calls, call-usage) over ``/v2``: every
series point and metric, every breakdown, and ingest of the new field types, against
references computed here from the events (``expected``), never by the gateway's code.

What they add over the first five domains: exact decimal sums and sums of two fields
(``totalTokens``, ``totalCost``), ratios (``cuPerHour``), maxima, approximate percentiles
(``latencyMsP50`` … ``latencyMsP99``, within 4.76% of the exact ones), composite entity ids (``flow:my-slug``), names from an event field
(the newest one sent wins), attributes of an entity's newest event, percentage shares
(``pct``), boolean filters (``isStream``), and list fields (``inputRefs``) that are stored
but never offered as ``/v2`` filters.

Choices this module pins down where the declarations are silent:

* An event without a name (``targetName``, ``modelName``, ``workflowName``) keeps the
  name an older event gave: the newest name *sent* wins, as with the entity catalogue.
* Latest attributes are the newest counted event's values, nulls included: a workflow
  whose newest run sent no ``status`` shows ``status: null``.
* ``pct`` is 0 for every entity when the shared metric sums to 0.
* A boolean filter's ``meta.resourceFilters[].id`` is the text given (``"true"``), like
  every other filter id.
"""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

import pytest

from expected import (
    APPROXIMATE, BREAKDOWN_METRICS, FILTERS, PERCENTILE_ERROR, NEW_DIMENSIONS, NEW_METRICS, assert_matches, dec,
    entity_key, expected_new_entities, expected_series, in_range, order_entities,
    percentile_cont, select, unix, utc, with_defaults,
)
from support import (
    NEW_DOMAINS, assert_problem, check_series, error_fields, generate_new, get, ingest, ok,
    post_events, random_times,
)

START = utc(2026, 3, 2, 5, 20)  # not on an hour: the first 1h bucket starts at 05:00
END = utc(2026, 3, 3, 4, 0)
GAP = (utc(2026, 3, 2, 12), utc(2026, 3, 2, 14))  # two empty hours
RANGE = {"scope": "org", "start": "2026-03-02T05:20:00Z", "end": "2026-03-03T04:00:00Z"}
PAIRS = sorted(NEW_DIMENSIONS)


def scenario(domain: str, seed: int = 1, n: int = 300) -> list[dict]:
    """~300 events around [START, END) with an empty gap and events on both edges; the
    instants are distinct, so "the newest event" is never a tie."""
    times = random_times(f"new-{domain}-{seed}", START - timedelta(hours=4),
                         END + timedelta(hours=4), n, gaps=[GAP])
    times += [START, START - timedelta(milliseconds=1), END - timedelta(milliseconds=1), END]
    return generate_new(domain, seed, list(dict.fromkeys(times)))


def shuffled(events: list[dict], seed: int) -> list[dict]:
    out = list(events)
    random.Random(seed).shuffle(out)
    return out


def breakdown_path(domain: str, by: str) -> str:
    return f"/v2/stats/{domain}/breakdown/{by}"


def filter_text(value) -> str:
    """A filter value as a query parameter (booleans as true/false)."""
    return ("true" if value else "false") if isinstance(value, bool) else value


def check_new_breakdown(body, domain: str, by: str, events, *, filters=None, sort=None,
                        order: str = "desc", include_series: bool = False, size: str,
                        scope_id: str, limit: int = 50) -> dict[str, dict]:
    """Compare a whole breakdown response (meta, order, every entity) with the reference;
    ``events`` are the org's events with defaults filled in."""
    filters = filters or {}
    counted = in_range(select(events, filters=filters), START, END)
    entities = expected_new_entities(domain, by, counted, events)
    sort = sort or BREAKDOWN_METRICS[domain][1]
    totals = {k: v["totals"] for k, v in entities.items()}
    page = order_entities(totals, sort, order == "desc")[:limit]
    dim = NEW_DIMENSIONS[(domain, by)]
    expected = []
    for key in page:
        entity = {"entityId": key, **entities[key], "series": None}
        if include_series:
            mine = [e for e in counted if entity_key(e, dim.key) == key]
            entity["series"] = expected_series(domain, BREAKDOWN_METRICS[domain][0], mine,
                                               START, END, size)
        expected.append(entity)
    flist = sorted(({"type": k, "id": filter_text(v)} for k, v in filters.items()),
                   key=lambda f: f["type"])
    meta = dict(body["meta"])
    meta["resourceFilters"] = sorted(meta.get("resourceFilters") or [], key=lambda f: f["type"])
    assert_matches(meta, {
        "start": unix(START), "end": unix(END), "scope": "org", "scopeId": scope_id,
        "window": None, "timeBucketSize": size, "timezone": "UTC", "breakdownBy": by,
        "includesSeries": include_series, "limit": limit, "offset": 0,
        "totalEntities": len(entities), "sort": sort, "order": order,
        "resourceFilter": flist[0] if len(flist) == 1 else None, "resourceFilters": flist,
    }, "$.meta")
    assert_matches(body["summary"], {"total": len(entities)}, "$.summary")
    assert_matches(body["entities"], expected, "$.entities")
    return entities


# --- series ------------------------------------------------------------------------------


@pytest.mark.parametrize("domain", NEW_DOMAINS)
def test_series_every_point_every_metric(client, new_org, domain):
    org = new_org()
    events = scenario(domain)
    ingest(client, org, domain, events)
    reference = with_defaults(domain, events)
    inside = in_range(reference, START, END)
    assert 0 < len(inside) < len(reference)
    for metric in NEW_METRICS[domain]:
        body = ok(client, f"/v2/stats/{domain}", org.headers,
                  {**RANGE, "timeBucketSize": "1h", "metric": metric})
        points = check_series(body, domain, "", reference, START, END, "1h", metric=metric,
                              scope_id=org.id)
        assert len(points) == 23 and points[0]["ts"] == unix(utc(2026, 3, 2, 5))
        gap = [p for p in points if unix(GAP[0]) <= p["ts"] < unix(GAP[1])]
        assert len(gap) == 2 and all(p[metric] in (0, None) for p in gap)


@pytest.mark.parametrize("domain", NEW_DOMAINS)
def test_series_single_filters(client, new_org, domain):
    """Each filter alone, with a value the events use; booleans both ways."""
    org = new_org()
    events = scenario(domain, seed=2)
    ingest(client, org, domain, events)
    reference = with_defaults(domain, events)
    inside = in_range(reference, START, END)
    for param in FILTERS[domain]:
        values = sorted({e[param] for e in inside if e.get(param) is not None}, key=str)
        assert values, param
        for value in values if isinstance(values[0], bool) else values[-1:]:
            body = ok(client, f"/v2/stats/{domain}", org.headers,
                      {**RANGE, "timeBucketSize": "1h", param: filter_text(value)})
            chosen = select(reference, filters={param: value})
            check_series_with_text_ids(body, domain, chosen, {param: value}, org.id)
            assert 0 < len(in_range(chosen, START, END)) < len(inside), param


def check_series_with_text_ids(body, domain, chosen, filters, org_id) -> None:
    """``check_series`` on already-filtered events, then the filters' meta (text ids)."""
    meta = body["meta"]
    expected_filters = [{"type": k, "id": filter_text(v)} for k, v in filters.items()]
    assert_matches(meta["resourceFilters"], expected_filters, "$.meta.resourceFilters")
    assert_matches(meta["resourceFilter"], expected_filters[0], "$.meta.resourceFilter")
    stripped = {**body, "meta": {**meta, "resourceFilter": None, "resourceFilters": []}}
    check_series(stripped, domain, "", chosen, START, END, "1h", scope_id=org_id)


# --- breakdowns ---------------------------------------------------------------------------


@pytest.mark.parametrize("domain,by", PAIRS)
def test_breakdown_every_dimension(client, new_org, domain, by):
    org = new_org()
    events = scenario(domain, seed=3)
    ingest(client, org, domain, events)
    reference = with_defaults(domain, events)
    body = ok(client, breakdown_path(domain, by), org.headers, {**RANGE, "timeBucketSize": "6h"})
    entities = check_new_breakdown(body, domain, by, reference, size="6h", scope_id=org.id)
    assert len(entities) >= 2
    body = ok(client, breakdown_path(domain, by), org.headers,
              {**RANGE, "timeBucketSize": "6h", "includeSeries": "true", "limit": "3"})
    check_new_breakdown(body, domain, by, reference, size="6h", include_series=True,
                        scope_id=org.id, limit=3)


@pytest.mark.parametrize("domain,by", [("workflow-cu", "workflows"), ("calls", "ops"),
                                       ("model-usage", "billing")])
def test_breakdown_every_sort_both_orders(client, new_org, domain, by):
    org = new_org()
    events = scenario(domain, seed=4)
    ingest(client, org, domain, events)
    reference = with_defaults(domain, events)
    for sort in BREAKDOWN_METRICS[domain][0]:
        if sort in APPROXIMATE:  # refused: test_percentiles
            continue
        for order in ("asc", "desc"):
            body = ok(client, breakdown_path(domain, by), org.headers,
                      {**RANGE, "sort": sort, "order": order, "timeBucketSize": "1d"})
            check_new_breakdown(body, domain, by, reference, sort=sort, order=order,
                                size="1d", scope_id=org.id)


def test_targets_composite_ids_and_newest_name(client, new_org):
    """The same slug under two target types is two entities; the newest name sent wins,
    whatever order events arrive in, and a later run without a name keeps it."""
    org = new_org()
    t = START + timedelta(hours=1)
    runs = [  # (targetType, targetSlug, minutes after t, name or None)
        ("flow", "my-slug", 0, "Old flow name"), ("flow", "my-slug", 30, "New flow name"),
        ("flow", "my-slug", 90, None), ("model", "my-slug", 10, "The model"),
        ("model", "my-slug", 20, None), ("comfyui", "upscaler", 5, None),
    ]
    events = []
    for i, (kind, slug, minutes, name) in enumerate(runs):
        e = {"eventId": f"r{i}", "ts": (t + timedelta(minutes=minutes)).isoformat(),
             "targetType": kind, "targetSlug": slug, "source": "api", "spend": "0.25"}
        if name:
            e["targetName"] = name
        events.append(e)
    for e in reversed(events):  # newest first, one batch each
        ingest(client, org, "runs", [e])
    body = ok(client, breakdown_path("runs", "targets"), org.headers,
              {**RANGE, "timeBucketSize": "1d"})
    check_new_breakdown(body, "runs", "targets", with_defaults("runs", events), size="1d",
                        scope_id=org.id)
    got = {e["entityId"]: e for e in body["entities"]}
    assert set(got) == {"flow:my-slug", "model:my-slug", "comfyui:upscaler"}
    assert got["flow:my-slug"]["entityName"] == runs[1][3]
    assert got["model:my-slug"]["entityName"] == runs[3][3]
    assert got["comfyui:upscaler"]["entityName"] is None
    assert (got["flow:my-slug"]["targetType"], got["flow:my-slug"]["targetSlug"]) == \
        ("flow", "my-slug")


def test_shares_sum_to_a_hundred(client, new_org):
    """``pct``: runs per source, cost per billing mode; 0 everywhere when nothing cost."""
    org = new_org()
    runs = scenario("runs", seed=5)
    usage = scenario("model-usage", seed=5)
    ingest(client, org, "runs", runs)
    ingest(client, org, "model-usage", usage)
    for domain, by, events in (("runs", "sources", runs), ("model-usage", "billing", usage)):
        body = ok(client, breakdown_path(domain, by), org.headers,
                  {**RANGE, "timeBucketSize": "1d"})
        check_new_breakdown(body, domain, by, with_defaults(domain, events), size="1d",
                            scope_id=org.id)
        pcts = [float(e["pct"]) for e in body["entities"]]
        assert len(pcts) >= 2 and sum(pcts) == pytest.approx(100.0, abs=1e-9)
    free = new_org()
    events = [{"eventId": f"f{i}", "ts": (START + timedelta(minutes=i)).isoformat(),
               "modelId": "m", "billing": billing}
              for i, billing in enumerate(("platform", "user", "user"))]
    ingest(client, free, "model-usage", events)
    body = ok(client, breakdown_path("model-usage", "billing"), free.headers,
              {**RANGE, "timeBucketSize": "1d"})
    assert [e["pct"] for e in body["entities"]] == [0.0, 0.0]


def test_workflow_latest_attributes_and_null_cu_per_hour(client, new_org):
    """A workflow shows its newest run's isStream/status/triggerType (ingested out of
    order, in separate batches); cuPerHour is null without durations and sorts last."""
    org = new_org()
    t = START + timedelta(hours=2)
    runs = [  # workflow, minutes after t, fields
        ("wf-x", 10, {"isStream": True, "status": "succeeded", "triggerType": "api",
                      "durationMs": 60_000, "workflowName": "X one"}),
        ("wf-x", 50, {"triggerType": "webhook", "durationMs": 0}),  # the newest
        ("wf-x", 30, {"isStream": False, "status": "failed", "triggerType": "schedule",
                      "durationMs": 90_000, "workflowName": "X two"}),
        ("wf-idle", 5, {"isStream": True, "status": "succeeded"}),
        ("wf-idle", 15, {"durationMs": 0, "estimatedCost": 40}),
    ]
    events = [{"eventId": f"w{i}", "ts": (t + timedelta(minutes=m)).isoformat(),
               "workflowId": wf, "cu": f"{i + 1}.125", **fields}
              for i, (wf, m, fields) in enumerate(runs)]
    for batch in ([events[1]], [events[0], events[4]], [events[3], events[2]]):
        ingest(client, org, "workflow-cu", batch)
    reference = with_defaults("workflow-cu", events)
    for order in ("asc", "desc"):
        body = ok(client, breakdown_path("workflow-cu", "workflows"), org.headers,
                  {**RANGE, "timeBucketSize": "1d", "sort": "cuPerHour", "order": order})
        check_new_breakdown(body, "workflow-cu", "workflows", reference, sort="cuPerHour",
                            order=order, size="1d", scope_id=org.id)
        assert [e["entityId"] for e in body["entities"]] == ["wf-x", "wf-idle"]
    x, idle = body["entities"]
    newest = events[1]
    assert (x["isStream"], x["status"], x["triggerType"]) == (False, None, newest["triggerType"])
    assert x["entityName"] == events[2]["workflowName"]
    assert idle["totals"]["cuPerHour"] is None and idle["totals"]["runCount"] == 2
    cu = sum(dec(e["cu"]) for e in events if e["workflowId"] == "wf-x")
    duration = sum(e.get("durationMs", 0) for e in events if e["workflowId"] == "wf-x")
    assert float(x["totals"]["cuPerHour"]) == pytest.approx(float(cu) / duration * 3_600_000)


def test_latency_percentile_and_max(client, new_org):
    """p95 is linear interpolation between the two nearest ranks (percentile_cont), each
    estimated from a histogram, so within 4.76% of the exact value, per bucket, per entity
    and over the range; Max is exact; both null without latencies."""
    org = new_org()
    hour = utc(2026, 3, 2, 8)
    latencies = [10, 20, 35.5, 40, 1000.25, None]  # one call without a latency
    events = [{"eventId": f"c{i}", "ts": (hour + timedelta(minutes=i)).isoformat(),
               "projectId": "acme/chatbot", "callId": f"c{i}", "opName": "llm"}
              for i in range(len(latencies))]
    for e, ms in zip(events, latencies):
        if ms is not None:
            e["latencyMs"] = ms
    events.append({"eventId": "lone", "ts": (hour + timedelta(hours=2)).isoformat(),
                   "projectId": "acme/chatbot", "callId": "lone", "opName": "tool",
                   "latencyMs": 7.5})
    ingest(client, org, "calls", events)
    reference = with_defaults("calls", events)
    present = sorted(ms for ms in latencies if ms is not None)
    rank = 0.95 * (len(present) - 1)  # 3.8: 80% of the way from the 4th to the 5th value
    by_hand = present[3] + (present[4] - present[3]) * (rank - 3)
    assert percentile_cont(present, 0.95) == pytest.approx(by_hand)
    for metric in ("latencyMsP95", "latencyMsMax", "latencyMs"):
        body = ok(client, "/v2/stats/calls", org.headers,
                  {**RANGE, "timeBucketSize": "1h", "metric": metric})
        check_series(body, "calls", "", reference, START, END, "1h", metric=metric,
                     scope_id=org.id)
    point = next(p for p in body["series"] if p["ts"] == unix(hour))
    assert abs(float(point["latencyMsP95"]) - by_hand) <= PERCENTILE_ERROR * by_hand
    assert float(point["latencyMsMax"]) == max(present)
    lone = next(p for p in body["series"] if p["ts"] == unix(hour) + 7200)
    assert float(lone["latencyMsMax"]) == 7.5
    assert abs(float(lone["latencyMsP95"]) - 7.5) <= PERCENTILE_ERROR * 7.5
    empty = next(p for p in body["series"] if p["ts"] == unix(hour) + 3600)
    assert empty["latencyMsP95"] is None and empty["latencyMsMax"] is None
    body = ok(client, breakdown_path("calls", "ops"), org.headers,
              {**RANGE, "timeBucketSize": "1d"})
    check_new_breakdown(body, "calls", "ops", reference, size="1d", scope_id=org.id)


def test_boolean_filter(client, new_org):
    org = new_org()
    events = scenario("workflow-cu", seed=6)
    ingest(client, org, "workflow-cu", events)
    reference = with_defaults("workflow-cu", events)
    assert any("isStream" not in e for e in events)  # absent counts as false
    for value in (True, False):
        chosen = select(reference, filters={"isStream": value})
        body = ok(client, "/v2/stats/workflow-cu", org.headers,
                  {**RANGE, "timeBucketSize": "1h", "isStream": filter_text(value)})
        check_series_with_text_ids(body, "workflow-cu", chosen, {"isStream": value}, org.id)
        body = ok(client, breakdown_path("workflow-cu", "workflows"), org.headers,
                  {**RANGE, "timeBucketSize": "1d", "isStream": filter_text(value)})
        check_new_breakdown(body, "workflow-cu", "workflows", reference, size="1d",
                            filters={"isStream": value}, scope_id=org.id)
    for bad in ("maybe", "TRUE", "1", ""):
        r, _ = get(client, "/v2/stats/workflow-cu", org.headers,
                   {**RANGE, "timeBucketSize": "1h", "isStream": bad})
        assert error_fields(assert_problem(r, 400, "invalid_parameters")) == {"isStream"}


@pytest.mark.parametrize("domain", ["calls", "call-usage"])
def test_call_filters_compare_for_equality(client, new_org, domain):
    """Every calls filter compares for equality (repeated: any of the values, in
    test_filters.py); list fields (refs) and the error flag are not filters at all."""
    org = new_org()
    events = scenario(domain, seed=7)
    ingest(client, org, domain, events)
    reference = with_defaults(domain, events)
    trace = next(e["traceId"] for e in in_range(reference, START, END) if e.get("traceId"))
    combo = {"projectId": "acme/chatbot", "traceId": trace}
    body = ok(client, f"/v2/stats/{domain}", org.headers,
              {**RANGE, "timeBucketSize": "1h", **combo})
    check_series(body, domain, "", reference, START, END, "1h", scope_id=org.id,
                 filters=combo)
    refs = next(e["inputRefs"][0] for e in reference if e.get("inputRefs"))
    for params in ({"inputRefs": refs}, {"outputRefs": refs}, {"error": "true"},
                   {"callId": "call-1"}, {"parentId": "call-1"}):
        r, _ = get(client, f"/v2/stats/{domain}", org.headers,
                   {**RANGE, "timeBucketSize": "1h", **params})
        assert error_fields(assert_problem(r, 400, "invalid_parameters")) == set(params)
    r = client.get(f"/v2/stats/{domain}?scope=org&start=2026-03-02T05:20:00Z"
                   "&projectId=acme/chatbot&projectId!=acme/chatbot", headers=org.headers)
    assert r.status_code == 200 and r.json()["summary"]["total"] in (0, None), r.text


def test_total_tokens_and_cost_are_exact_sums_of_both_parts(client, new_org):
    org = new_org()
    t = START + timedelta(minutes=40)
    costs = [("0.000001", "0.000002"), ("123456789.123456", "0.999999"), (None, "7"),
             ("0.1", None), (None, None), ("99999999999999.999999", "0.000001")]
    events = []
    for i, (cost_in, cost_out) in enumerate(costs):
        e = {"eventId": f"u{i}", "ts": (t + timedelta(minutes=i)).isoformat(),
             "projectId": "acme/chatbot", "callId": f"c{i}", "opName": "llm", "model": "m",
             "inputTokens": 10 ** i, "outputTokens": 3 * i}
        if cost_in:
            e["inputCost"] = cost_in
        if cost_out:
            e["outputCost"] = Decimal(cost_out)  # a JSON number, not a string
        events.append(e)
    ingest(client, org, "call-usage", events)
    reference = with_defaults("call-usage", events)
    for metric in ("totalCost", "totalTokens", "inputCost"):
        body = ok(client, "/v2/stats/call-usage", org.headers,
                  {**RANGE, "timeBucketSize": "1d", "metric": metric})
        check_series(body, "call-usage", "", reference, START, END, "1d", metric=metric,
                     scope_id=org.id)
    total = sum((dec(c) for pair in costs for c in pair if c), Decimal(0))
    assert body["summary"]["total"] == sum(dec(c) for c, _ in costs if c)
    body = ok(client, "/v2/stats/call-usage", org.headers,
              {**RANGE, "timeBucketSize": "1d"})
    assert body["summary"]["total"] == sum(10 ** i + 3 * i for i in range(len(costs)))
    body = ok(client, breakdown_path("call-usage", "models"), org.headers,
              {**RANGE, "timeBucketSize": "1d"})
    assert body["entities"][0]["totals"]["totalCost"] == total
    assert Decimal(float(total)) != total  # more digits than a double holds


# --- ingest of the new field types ----------------------------------------------------------


def call(i: int, **fields) -> dict:
    return {"eventId": f"e{i}", "ts": (START + timedelta(minutes=i)).isoformat(),
            "projectId": "acme/chatbot", "callId": f"c{i}", "opName": "llm", **fields}


def test_bool_and_list_fields_are_validated_with_index_and_field(client, new_org, db):
    org = new_org()
    bad = {  # index -> (fields, the fields refused)
        1: ({"error": "true"}, {"error"}),
        2: ({"error": 1}, {"error"}),
        3: ({"error": 0, "inputRefs": "weave:///a"}, {"error", "inputRefs"}),
        4: ({"inputRefs": [""]}, {"inputRefs"}),
        5: ({"inputRefs": ["ok", 1]}, {"inputRefs"}),
        6: ({"outputRefs": [["nested"]]}, {"outputRefs"}),
        7: ({"outputRefs": [f"r{k}" for k in range(101)]}, {"outputRefs"}),
        8: ({"outputRefs": ["x" * 201]}, {"outputRefs"}),
        9: ({"inputRefs": {"a": "b"}}, {"inputRefs"}),
        10: ({"inputRefs": ["ok", None]}, {"inputRefs"}),
        11: ({"outputRefs": ["nul\x00"]}, {"outputRefs"}),
    }
    events = [call(i, **bad[i][0]) if i in bad else call(i, error=True) for i in range(13)]
    r = post_events(client, org.headers, "calls", events)
    body = assert_problem(r, 422, "invalid_events")
    got = {(p["index"], p["field"]) for p in body["errors"]}
    assert got == {(i, f) for i, (_, fields) in bad.items() for f in fields}
    assert all(p["message"] for p in body["errors"])
    wf = [{"eventId": "w0", "ts": START.isoformat(), "workflowId": "w", "cu": 1,
           "isStream": "false"},
          {"eventId": "w1", "ts": START.isoformat(), "workflowId": "w", "cu": 1, "isStream": 0},
          {"eventId": "w2", "ts": START.isoformat(), "workflowId": "w", "cu": 1, "isStream": True}]
    body = assert_problem(post_events(client, org.headers, "workflow-cu", wf), 422,
                          "invalid_events")
    assert {(p["index"], p["field"]) for p in body["errors"]} == {(0, "isStream"),
                                                                  (1, "isStream")}
    for table in ("events_calls", "events_workflow_cu"):  # all or nothing: nothing written
        assert db.execute(f"SELECT count(*) FROM {table} WHERE org_id = %s",
                          (org.id,)).fetchone() == (0,)


def test_lists_and_booleans_round_trip(client, new_org, db):
    org = new_org()
    tricky = ["a,b", 'quo"te', "{braces}", "back\\slash", "NULL", "null", " spaced ",
              "ünïcødé ✓", "tab\tnew\nline", "x" * 200, "weave:///acme/chatbot/object/P:v3"]
    lists = {
        "e0": {"inputRefs": tricky, "outputRefs": [f"ref-{k}" for k in range(100)]},
        "e1": {"inputRefs": [], "error": True},
        "e2": {"outputRefs": ["only"], "error": False},
        "e3": {},
    }
    events = [call(i, **fields) for i, fields in enumerate(lists.values())]
    ingest(client, org, "calls", events)
    usage = [{**{k: v for k, v in e.items() if k != "error"}, "eventId": f"u-{e['eventId']}",
              "model": "m"} for e in events]
    ingest(client, org, "call-usage", usage)
    for table, prefix in (("events_calls", ""), ("events_call_usage", "u-")):
        rows = db.execute(f"SELECT event_id, input_refs, output_refs FROM {table} "
                          "WHERE org_id = %s", (org.id,)).fetchall()
        assert {r[0]: (r[1], r[2]) for r in rows} == {
            prefix + k: (v.get("inputRefs"), v.get("outputRefs")) for k, v in lists.items()}
    rows = db.execute("SELECT event_id, error FROM events_calls WHERE org_id = %s",
                      (org.id,)).fetchall()
    assert dict(rows) == {k: v.get("error", False) for k, v in lists.items()}
    body = ok(client, "/v2/stats/calls", org.headers, {**RANGE, "timeBucketSize": "1d"})
    assert body["series"][0]["errorCount"] == sum(1 for v in lists.values() if v.get("error"))


def test_new_domain_events_leave_other_orgs_alone(client, new_org):
    """Tenancy holds for the new tables too: the same ids in another org stay apart."""
    a, b = new_org(), new_org()
    events = scenario("runs", seed=8, n=60)
    ingest(client, a, "runs", events)
    ingest(client, b, "runs", events[:10])
    for org, mine in ((a, events), (b, events[:10])):
        body = ok(client, breakdown_path("runs", "targets"), org.headers,
                  {**RANGE, "timeBucketSize": "1d"})
        check_new_breakdown(body, "runs", "targets", with_defaults("runs", mine), size="1d",
                            scope_id=org.id)
        body = ok(client, "/v2/stats/runs", org.headers, {**RANGE, "timeBucketSize": "1d"})
        assert body["summary"]["total"] == len(in_range(mine, START, END))
    assert len(in_range(events, START, END)) > len(in_range(events[:10], START, END)) > 0
