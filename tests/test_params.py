"""Query parameters: every problem reported at once, the 10,000-bucket limit, and no 500s.

Every request in this module goes through ``call``, which fails the test on any 5xx.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from expected import SIZES, UTC, count_fast, sizes_that_fit, unix, utc
from support import PROBLEM_KEYS, assert_problem, error_fields, loads

RANGE = {"scope": "org", "start": "2026-06-01T00:00:00Z", "end": "2026-06-02T00:00:00Z"}
SERIES = ["/v2/stats/storage", "/v2/stats/ai", "/v2/stats/private-chat", "/v2/stats/policies",
          "/v2/stats/policies/tokens", "/v2/stats/credits"]
BREAKDOWNS = ["/v2/stats/storage/breakdown/providers", "/v2/stats/ai/breakdown/aiConfigs",
              "/v2/stats/private-chat/breakdown/users", "/v2/stats/policies/breakdown/rules",
              "/v2/stats/credits/breakdown/buckets"]


@pytest.fixture
def org(new_org):
    return new_org()


def call(client, path, headers, params):
    """GET that must never be a 5xx; every error is a problem+json envelope."""
    r = client.get(path, params=params, headers=headers)
    assert r.status_code < 500, f"{r.status_code} for {path} {params!r}: {r.text}"
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith("application/problem+json"), r.text
        body = loads(r.text)
        assert set(body) == PROBLEM_KEYS and body["success"] is False
        assert body["status"] == r.status_code
    return r


class Sweep:
    """Makes many odd requests, then fails once listing every 5xx (so one bug does not hide
    the next)."""

    def __init__(self, client, headers):
        self.client, self.headers, self.failures = client, headers, []

    def __call__(self, path, params):
        r = self.client.get(path, params=params, headers=self.headers)
        if r.status_code >= 500:
            self.failures.append(f"{r.status_code} {path} {params!r}")
            return r
        if r.status_code >= 400:
            assert r.headers["content-type"].startswith("application/problem+json"), r.text
            body = loads(r.text)
            assert set(body) == PROBLEM_KEYS and body["success"] is False
        return r

    def check(self):
        assert not self.failures, f"{len(self.failures)} request(s) answered 5xx:\n" + \
            "\n".join(self.failures)


def bad(client, path, headers, params, status=400):
    r = call(client, path, headers, params)
    return assert_problem(r, status)


# --- everything wrong at once ---------------------------------------------------------------


def test_series_reports_every_bad_parameter_at_once(client, org):
    params = {"scope": "galaxy", "window": "2d", "timeBucketSize": "3m",
              "timezone": "Mars/Olympus_Mons", "metric": "nope", "foo": "1", "bar": "",
              "model": "gpt"}  # storage has no model filter
    body = bad(client, "/v2/stats/storage", org.headers, params)
    fields = error_fields(body)
    assert {"scope", "window", "timeBucketSize", "timezone", "metric", "foo", "bar",
            "model"} <= fields, fields
    assert fields <= set(params), fields


def test_breakdown_reports_every_bad_parameter_at_once(client, org):
    params = {**RANGE, "limit": "0", "offset": "-1", "sort": "nope", "order": "up",
              "includeSeries": "yes", "timeBucketSize": "2h", "ruleId": "x", "colour": "red"}
    body = bad(client, "/v2/stats/storage/breakdown/buckets", org.headers, params)
    fields = error_fields(body)
    assert {"limit", "offset", "sort", "order", "includeSeries", "timeBucketSize", "ruleId",
            "colour"} <= fields, fields
    assert fields <= set(params)


@pytest.mark.parametrize("path", SERIES + BREAKDOWNS)
def test_unknown_parameters_are_listed(client, org, path):
    body = bad(client, path, org.headers, {**RANGE, "windw": "24h", "scopeId": "x",
                                           "bucketID": "b"})
    assert {"windw", "scopeId", "bucketID"} <= error_fields(body)


def test_breakdown_only_parameters_are_unknown_on_series(client, org):
    body = bad(client, "/v2/stats/ai", org.headers, {**RANGE, "limit": "5", "sort": "requests"})
    assert {"limit", "sort"} <= error_fields(body)
    body = bad(client, "/v2/stats/ai/breakdown/models", org.headers, {**RANGE, "metric": "requests"})
    assert "metric" in error_fields(body)


# --- the 10,000 bucket limit ------------------------------------------------------------------

SIZE_TOKEN = re.compile(r"(?<![\w])(1mo|1m|5m|10m|15m|30m|1h|6h|12h|1d|1w)(?![\w])")


def _mentioned_sizes(body) -> set[str]:
    text = " ".join([body["message"]] + [e["message"] for e in body["errors"]])
    return set(SIZE_TOKEN.findall(text))


def _check_refusal(client, org, start, end, size, tz="UTC", extra=None):
    params = {"scope": "org", "start": start.isoformat(), "end": end.isoformat(),
              "timeBucketSize": size, "timezone": tz, **(extra or {})}
    fit = sizes_that_fit(start, end, tz)
    assert size not in fit
    body = bad(client, "/v2/stats/storage", org.headers, params)
    assert "timeBucketSize" in error_fields(body)
    mentioned = _mentioned_sizes(body)
    assert set(fit) <= mentioned, (fit, mentioned)
    assert mentioned <= set(fit) | {size}, (fit, mentioned)
    return fit


def test_exactly_ten_thousand_buckets_is_allowed_one_more_is_not(client, org):
    start = utc(2026, 1, 1)
    end = start + timedelta(minutes=5 * 10_000)
    assert count_fast(start, end, "5m") == 10_000
    fit = _check_refusal(client, org, start, end, "1m")
    assert fit == ["5m", "10m", "15m", "30m", "1h", "6h", "12h", "1d", "1w", "1mo"]
    r = call(client, "/v2/stats/storage", org.headers,
             {"scope": "org", "start": start.isoformat(), "end": end.isoformat(),
              "timeBucketSize": "5m"})
    assert r.status_code == 200
    assert len(r.json()["series"]) == 10_000
    end2 = end + timedelta(seconds=1)
    fit = _check_refusal(client, org, start, end2, "5m")
    assert "5m" not in fit and "10m" in fit
    # the same on a breakdown with series
    r = call(client, "/v2/stats/storage/breakdown/buckets", org.headers,
             {"scope": "org", "start": start.isoformat(), "end": end2.isoformat(),
              "timeBucketSize": "5m", "includeSeries": "true"})
    assert_problem(r, 400)


def test_bucket_limit_depends_on_time_zone_alignment(client, org):
    """10,000 hours from 00:00Z: exactly 10,000 1h buckets in UTC; in Kolkata the first
    bucket starts at 23:30Z (aligned on local midnight) so there are 10,001."""
    start = utc(2025, 1, 1)
    end = start + timedelta(hours=10_000)
    assert count_fast(start, end, "1h", "UTC") == 10_000
    assert count_fast(start, end, "1h", "Asia/Kolkata") == 10_001
    assert "1h" in _check_refusal(client, org, start, end, "30m", "UTC")
    assert "1h" not in _check_refusal(client, org, start, end, "30m", "Asia/Kolkata")
    r = call(client, "/v2/stats/storage", org.headers,
             {"scope": "org", "start": start.isoformat(), "end": end.isoformat(),
              "timeBucketSize": "1h", "timezone": "Asia/Kolkata"})
    assert_problem(r, 400)


def test_bucket_limit_long_ranges(client, org):
    fit = _check_refusal(client, org, utc(2000, 1, 1), utc(2026, 11, 1), "1m")
    assert fit == ["1d", "1w", "1mo"]
    now = datetime.now(UTC).replace(microsecond=0)
    fit = sizes_that_fit(now - timedelta(days=365), now)
    assert fit == ["1h", "6h", "12h", "1d", "1w", "1mo"]
    body = bad(client, "/v2/stats/ai", org.headers,
               {"scope": "org", "window": "365d", "timeBucketSize": "15m"})
    mentioned = _mentioned_sizes(body)
    assert set(fit) <= mentioned <= set(fit) | {"15m"}
    for window, size in (("24h", "1m"), ("7d", "1m"), ("30d", "5m"), ("90d", "10m"),
                         ("180d", "15m"), ("365d", "30m")):
        r = call(client, "/v2/stats/ai", org.headers,
                 {"scope": "org", "window": window, "timeBucketSize": size})
        n = count_fast(now - timedelta(days=int(window[:-1])) if window.endswith("d")
                       else now - timedelta(hours=24), now, size)
        assert (r.status_code == 200) == (n <= 10_000), (window, size, n, r.status_code)


# --- single rules --------------------------------------------------------------------------


def test_window_and_start_conflict(client, org):
    for extra in ({"start": "2026-06-01T00:00:00Z"}, {"end": "2026-06-01T00:00:00Z"},
                  {"start": "2026-06-01T00:00:00Z", "end": "2026-06-02T00:00:00Z"}):
        body = bad(client, "/v2/stats/storage", org.headers,
                   {"scope": "org", "window": "24h", **extra})
        assert error_fields(body) & {"window", "start", "end"}


@pytest.mark.parametrize("start,end", [("2026-06-02T00:00:00Z", "2026-06-02T00:00:00Z"),
                                       ("2026-06-02T00:00:00Z", "2026-06-01T23:59:59Z"),
                                       ("1780000000", "1780000000"),
                                       ("2026-06-02T02:00:00+02:00", "2026-06-02T00:00:00Z")])
def test_end_must_be_after_start(client, org, start, end):
    body = bad(client, "/v2/stats/credits", org.headers,
               {"scope": "org", "start": start, "end": end})
    assert error_fields(body) & {"start", "end"}


def test_one_second_range_is_fine(client, org):
    r = call(client, "/v2/stats/credits", org.headers,
             {"scope": "org", "start": "2026-06-02T00:00:00Z", "end": "2026-06-02T00:00:01Z"})
    assert r.status_code == 200
    body = r.json()
    assert body["meta"]["timeBucketSize"] == "1m" and len(body["series"]) == 1


@pytest.mark.parametrize("tz", ["Mars/Base", "America/Nowhere", "UTC+2", "Europe/", "/UTC",
                                "../../etc/passwd", "", "America/New York", "A" * 300,
                                "Europe/Berlin\u0000", "東京"])
def test_unknown_timezone(client, org, tz):
    body = bad(client, "/v2/stats/storage", org.headers, {**RANGE, "timezone": tz})
    assert "timezone" in error_fields(body)


def test_required_parameters(client, org):
    body = bad(client, "/v2/stats/storage", org.headers, {"window": "24h"})
    assert "scope" in error_fields(body)
    body = bad(client, "/v2/stats/storage", org.headers, {"scope": "workspace", "window": "24h"})
    assert "id" in error_fields(body)
    body = bad(client, "/v2/stats/storage", org.headers, {"scope": "repo", "window": "24h"})
    assert "id" in error_fields(body)
    body = bad(client, "/v2/stats/storage", org.headers, {"scope": "org"})
    assert error_fields(body) & {"window", "start"}
    body = bad(client, "/v2/stats/storage", org.headers,
               {"scope": "org", "end": "2026-06-01T00:00:00Z"})
    assert error_fields(body) & {"window", "start"}
    body = bad(client, "/v2/stats/storage", org.headers,
               {"scope": "org", "start": "1999-12-31T23:59:59Z", "end": "2000-01-02T00:00:00Z"})
    assert "start" in error_fields(body)
    body = bad(client, "/v2/stats/storage", org.headers, {"scope": "org", "window": "25h"})
    assert "window" in error_fields(body)


@pytest.mark.parametrize("limit,good", [("500", True), ("1", True), ("501", False),
                                        ("0", False), ("-1", False), ("1000000", False),
                                        ("abc", False), ("5.0", False), ("", False),
                                        ("99999999999999999999999", False)])
def test_limit(client, org, limit, good):
    r = call(client, "/v2/stats/ai/breakdown/models", org.headers, {**RANGE, "limit": limit})
    if good:
        assert r.status_code == 200 and r.json()["meta"]["limit"] == int(limit)
    else:
        assert "limit" in error_fields(assert_problem(r, 400))


@pytest.mark.parametrize("offset,good", [("0", True), ("999", True), ("-1", False),
                                         ("x", False), ("1e3", False)])
def test_offset(client, org, offset, good):
    r = call(client, "/v2/stats/ai/breakdown/models", org.headers, {**RANGE, "offset": offset})
    if good:
        assert r.status_code == 200 and r.json()["meta"]["offset"] == int(offset)
    else:
        assert "offset" in error_fields(assert_problem(r, 400))


def test_metric_must_belong_to_the_view(client, org):
    for path, metric in (("/v2/stats/storage", "tokensIn"), ("/v2/stats/policies/tokens", "alerts"),
                         ("/v2/stats/private-chat", "conversationsCount"),
                         ("/v2/stats/private-chat", "lastActiveAt"),
                         ("/v2/stats/credits", "amount")):
        body = bad(client, path, org.headers, {**RANGE, "metric": metric})
        assert "metric" in error_fields(body)


def test_unknown_endpoints_are_404_problems(client, org):
    for path in ("/v2/stats/unknown", "/v2/stats/storage/tokens", "/v2/stats",
                 "/v2/stats/storage/breakdown", "/v2/ingest/unknown"):
        r = call(client, path, org.headers, RANGE)
        assert_problem(r, 404)
    r = client.post("/v2/stats/storage", headers=org.headers, content=b"{}")
    assert r.status_code in (404, 405) and r.status_code < 500
    r = client.get("/v2/ingest/storage", headers=org.headers)
    assert r.status_code in (404, 405)


# --- odd inputs: never a 500 --------------------------------------------------------------

ODD_INSTANTS = ["99999999999999999999", "-99999999999", "999999999999", "1e10", "0", "-1",
                "9999-12-31T23:59:59Z", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00",
                "0001-01-01T00:00:00Z", "2026-13-01T00:00:00Z", "2026-01-01T24:00:00Z",
                "2026-02-29T00:00:00Z", "2026-01-01T00:00:00+24:00", "2026-01-01T00:00:00+99:99",
                "２０２６-01-01T00:00:00Z", "NaN", "inf", "", " ", "null",
                "2026-01-01T00:00:00.1234567Z", "2026-01-01", "1780000000.5", "\u0000"]
ODD_IDS = ["", " ", "工作区", "😀", "a" * 201, "a" * 5000, "x\u0000y", "' OR 1=1 --", "%",
           "_", "\\", "null", "undefined", "../w1"]


@pytest.mark.parametrize("path", ["/v2/stats/storage", "/v2/stats/storage/breakdown/buckets"])
def test_odd_instants_never_500(client, org, path):
    sweep = Sweep(client, org.headers)
    for value in ODD_INSTANTS:
        sweep(path, {"scope": "org", "start": value})
        sweep(path, {"scope": "org", "start": "2026-01-01T00:00:00Z", "end": value})
        sweep(path, {"scope": "org", "start": value, "end": value,
                     "timezone": "Pacific/Kiritimati"})
    # far-future ends in extreme zones
    for tz in ("Pacific/Kiritimati", "Etc/GMT+12", "Pacific/Pago_Pago", "UTC"):
        for size in ("1mo", "1w", "1d", None):
            params = {"scope": "org", "start": "2026-01-01T00:00:00Z",
                      "end": "9999-12-31T23:59:59Z", "timezone": tz}
            if size:
                params["timeBucketSize"] = size
            sweep(path, params)
            params = {"scope": "org", "start": "2000-01-01T00:00:00Z",
                      "end": "2000-01-02T00:00:00Z", "timezone": tz}
            if size:
                params["timeBucketSize"] = size
            r = sweep(path, params)
            assert r.status_code in (200, 500), r.text
    sweep.check()


@pytest.mark.parametrize("path", ["/v2/stats/private-chat", "/v2/stats/private-chat/breakdown/users"])
def test_odd_ids_and_filter_values_never_500(client, org, path):
    sweep = Sweep(client, org.headers)
    for value in ODD_IDS:
        for scope in ("workspace", "repo", "org"):
            sweep(path, {**RANGE, "scope": scope, "id": value})
        for f in ("model", "userId", "apiKeyId", "aiLlmId"):
            r = sweep(path, {**RANGE, f: value})
            assert r.status_code in (200, 400, 500)
    sweep.check()


def test_odd_values_for_every_parameter_never_500(client, org):
    odd = ["", " ", "😀", "\u0000", "a" * 3000, "null", "[]", "{}", "-0", "+5", "٥", "1.5",
           "TRUE", "1mo ", "ORG", "%00", "\\", "\n"]
    names = ["scope", "window", "timeBucketSize", "timezone", "metric", "includeSeries",
             "limit", "offset", "sort", "order", "id", "start", "end", "ruleId", "apiKeyId"]
    sweep = Sweep(client, org.headers)
    for name in names:
        for value in odd:
            params = {**RANGE, name: value}
            sweep("/v2/stats/policies", params)
            sweep("/v2/stats/policies/breakdown/users", params)
    sweep.check()


def test_repeated_parameters_never_500(client, org):
    for name, values in (("scope", ["org", "org"]), ("scope", ["org", "repo"]),
                         ("start", ["2026-06-01T00:00:00Z", "2026-06-01T01:00:00Z"]),
                         ("timeBucketSize", ["1h", "1h"]), ("bucketId", ["a", "b"]),
                         ("limit", ["5", "6"]), ("timezone", ["UTC", "Europe/Berlin"])):
        params = [(k, v) for k, v in RANGE.items() if k != name] + [(name, v) for v in values]
        for path in ("/v2/stats/storage", "/v2/stats/storage/breakdown/buckets"):
            r = call(client, path, org.headers, params)
            if name == "bucketId":  # a filter may repeat: any of the values
                assert r.status_code == 200, (name, values, path, r.status_code)
            elif len(set(values)) > 1 and (name != "limit" or "breakdown" in path):
                assert r.status_code == 400, (name, values, path, r.status_code)


@pytest.mark.parametrize("size", SIZES)
def test_every_bucket_size_on_every_view_never_500(client, org, size):
    for path in SERIES + BREAKDOWNS:
        params = {"scope": "org", "start": "2026-05-30T22:15:00+02:00",
                  "end": "2026-06-02T03:00:00Z", "timeBucketSize": size,
                  "timezone": "America/St_Johns"}
        if "breakdown" in path:
            # 20 entities x up to ~3,200 one-minute buckets stays under the 100,000-point cap
            params.update(includeSeries="true", limit="20")
        r = call(client, path, org.headers, params)
        assert r.status_code == 200


def test_scope_org_with_odd_id_never_500(client, org):
    for value in ("", "not-a-uuid", org.id.upper(), " " + org.id, org.id + "\u0000",
                  "00000000-0000-0000-0000-000000000000"):
        r = call(client, "/v2/stats/storage", org.headers, {**RANGE, "id": value})
        if value == org.id.upper():
            assert r.status_code in (200, 404)
        elif value:
            assert r.status_code in (400, 404)


def test_reference_sanity():
    assert unix(utc(2026, 1, 1)) == 1767225600
