"""``compare=previous`` on series and breakdowns of every domain: the range of equal
length just before, bucket by bucket and per entity, against values computed here in
plain Python over the generated events (``expected``)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from expected import (
    SERIES_VIEWS, assert_matches, compute, entity_key, expected_series, expected_summary,
    in_range, unix,
)
from support import assert_problem, ok
from test_filters import ALL, DIMENSIONS, NEW_DIMENSIONS, START, both_paths, key_fields, \
    loaded  # noqa: F401 - the module fixture

MIDDLE = START + timedelta(hours=36)
NOW_END = MIDDLE + timedelta(hours=36)  # current: [MIDDLE, NOW_END); previous: [START, MIDDLE)
PARAMS = {"scope": "org", "start": "2026-04-07T12:00:00Z", "end": "2026-04-09T00:00:00Z"}


@pytest.mark.parametrize("domain", ALL)
def test_series_compare_previous(client, loaded, domain):
    org, events = loaded[domain]
    metrics, primary = SERIES_VIEWS[(domain, "")]
    for _ in both_paths(client):
        body = ok(client, f"/v2/stats/{domain}", org.headers,
                  {**PARAMS, "timeBucketSize": "1h", "compare": "previous"})
        now_points = expected_series(domain, metrics, events, MIDDLE, NOW_END, "1h")
        assert_matches(body["series"], now_points, "$.series")
        before = body["previous"]
        assert (before["start"], before["end"]) == (unix(START), unix(MIDDLE))
        points = expected_series(domain, metrics, events, START, MIDDLE, "1h")
        assert_matches(before["series"], points, "$.previous.series")
        assert_matches(before["summary"], expected_summary(
            domain, primary, points, in_range(events, START, MIDDLE)), "$.previous.summary")
        assert len(before["series"]) == len(body["series"])


@pytest.mark.parametrize("domain", ALL)
def test_breakdown_compare_previous(client, loaded, domain):
    org, events = loaded[domain]
    now_events, before_events = in_range(events, MIDDLE, NOW_END), in_range(events, START,
                                                                                MIDDLE)
    for (d, by) in [*DIMENSIONS, *NEW_DIMENSIONS]:
        if d != domain:
            continue
        fields = key_fields(domain, by)
        for _ in both_paths(client):
            body = ok(client, f"/v2/stats/{domain}/breakdown/{by}", org.headers,
                      {**PARAMS, "compare": "previous", "limit": 500})
            assert body["previous"] == {"start": unix(START), "end": unix(MIDDLE)}
            ids = {entity_key(e, fields) for e in now_events} - {None}
            assert {e["entityId"] for e in body["entities"]} == ids, (domain, by)
            for entity in body["entities"]:
                mine = [e for e in before_events if entity_key(e, fields) == entity["entityId"]]
                assert_matches(entity["previousTotals"],
                               compute(domain, list(entity["totals"]), mine),
                               f"{domain}/{by}/{entity['entityId']}.previousTotals")


def test_without_compare_nothing_changes_and_bad_values_are_refused(client, loaded):
    org, _ = loaded["storage"]
    body = ok(client, "/v2/stats/storage", org.headers, PARAMS)
    assert "previous" not in body
    body = ok(client, "/v2/stats/storage/breakdown/buckets", org.headers, PARAMS)
    assert "previous" not in body and all("previousTotals" not in e for e in body["entities"])
    r = client.get("/v2/stats/storage", headers=org.headers, params={**PARAMS, "compare": "x"})
    assert [e["field"] for e in assert_problem(r, 400)["errors"]] == ["compare"]
    r = client.get("/v2/stats/storage", headers=org.headers,
                   params={"scope": "org", "start": "2000-01-02T00:00:00Z",
                           "end": "2000-01-04T00:00:00Z", "compare": "previous"})
    assert [e["field"] for e in assert_problem(r, 400)["errors"]] == ["compare"]
