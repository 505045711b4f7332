"""``Accept: text/csv`` on the /v2 series and breakdown endpoints."""

from __future__ import annotations

import csv
import io
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from conftest import Org
from domains import DOMAINS
from stats_gateway.http.csv import wants_csv
from support import (
    GENERATORS, assert_problem, generate, generate_new, ingest, loads, random_times,
)

CSV = {"Accept": "text/csv"}
DAY = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday in the past
RANGE = {"scope": "org", "start": DAY.isoformat(), "end": (DAY + timedelta(days=1)).isoformat()}
SIX = Decimal("0.000001")


def as_csv(client, path, headers, params, accept="text/csv"):
    r = client.get(path, params=params, headers={**headers, "Accept": accept})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8", r.headers
    assert r.text.endswith("\r\n") and "\r\n" in r.text
    rows = list(csv.reader(io.StringIO(r.text, newline="")))
    return r, rows[0], rows[1:]


def as_json(client, path, headers, params):
    r = client.get(path, params=params, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    return loads(r.text)


def json_cell(value) -> str:
    """How the CSV must spell a JSON value: exact decimals, shortest floats, empty null."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def same(cell: str, value) -> bool:
    """The cell spells the JSON value (floats may use an exponent: compare numerically)."""
    if cell == json_cell(value):
        return True
    return isinstance(value, Decimal) and "e" in cell.lower() and Decimal(cell) == value


def credit_events():
    """Known credit movements; amounts with up to 6 decimals, some in the same bucket."""
    spec = [  # (hours after DAY, kind, amount)
        (0.5, "ai", "1.250000"), (1, "ai", "0.000001"), (2, "storage", "10"),
        (7, "purchase", "100.5"), (7.5, "ai", "3.333333"), (13, "grant", "0.1"),
        (13.25, "storage", "2.000002"), (23.9, "ai", "999.999999"),
    ]
    return [{"eventId": f"c{i}", "ts": (DAY + timedelta(hours=h)).isoformat(), "kind": kind,
             "amount": amount} for i, (h, kind, amount) in enumerate(spec)]


def test_series_csv_cells_equal_json_and_hand_sums(client, new_org):
    org = new_org()
    events = credit_events()
    ingest(client, org, "credits", events)
    params = {**RANGE, "timeBucketSize": "6h"}
    r, header, rows = as_csv(client, "/v2/stats/credits", org.headers, params)
    assert r.headers["content-disposition"] == 'attachment; filename="credits-series.csv"'
    body = as_json(client, "/v2/stats/credits", org.headers, params)

    metrics = ["creditsAi", "creditsStorage", "creditsTotal", "creditsPurchased",
               "creditsGranted"]
    assert header == ["ts", *metrics]
    assert list(body["series"][0]) == ["ts", *metrics]
    expected = defaultdict(Decimal)  # (bucket start, metric) -> sum, by hand
    for e in events:
        bucket = DAY + timedelta(hours=6 * (
            (datetime.fromisoformat(e["ts"]) - DAY) // timedelta(hours=6)))
        metric = {"ai": "creditsAi", "storage": "creditsStorage",
                  "purchase": "creditsPurchased", "grant": "creditsGranted"}[e["kind"]]
        expected[bucket, metric] += Decimal(e["amount"])
        if e["kind"] in ("ai", "storage"):
            expected[bucket, "creditsTotal"] += Decimal(e["amount"])
    assert len(rows) == 4 == len(body["series"])
    for i, (row, point) in enumerate(zip(rows, body["series"])):
        start = DAY + timedelta(hours=6 * i)
        assert row[0] == start.isoformat()  # RFC 3339, the request's zone (UTC)
        assert datetime.fromisoformat(row[0]).timestamp() == point["ts"]
        for metric, text in zip(metrics, row[1:]):
            assert text == json_cell(point[metric]), (metric, text, point[metric])
            assert "E" not in text
            assert Decimal(text) == expected[start, metric], (start, metric)
    assert rows[3][1] == "999.999999" and rows[0][1] == "1.250001"


def test_series_csv_in_a_time_zone_and_with_nulls_and_negatives(client, new_org):
    org = new_org()
    paris = ZoneInfo("Europe/Paris")
    spec = [(DAY + timedelta(hours=2), 120, -5000, 12.5), (DAY + timedelta(hours=3), 0, 7, None),
            (DAY + timedelta(days=2, hours=5), 3, -1, 0.25)]  # nothing on the middle day
    events = []
    for i, (t, upl, change, latency) in enumerate(spec):
        e = {"eventId": f"s{i}", "ts": t.isoformat(), "uplBytes": upl, "sizeChange": change}
        if latency is not None:
            e["latencyMs"] = latency
        events.append(e)
    ingest(client, org, "storage", events)
    params = {"scope": "org", "timeBucketSize": "1d", "timezone": "Europe/Paris",
              "start": datetime(2026, 3, 2, tzinfo=paris).isoformat(),
              "end": datetime(2026, 3, 5, tzinfo=paris).isoformat()}
    _, header, rows = as_csv(client, "/v2/stats/storage", org.headers, params)
    body = as_json(client, "/v2/stats/storage", org.headers, params)
    assert header == list(body["series"][0])
    assert [row[0] for row in rows] == ["2026-03-02T00:00:00+01:00", "2026-03-03T00:00:00+01:00",
                                        "2026-03-04T00:00:00+01:00"]
    column = {name: i for i, name in enumerate(header)}
    by_day = [[e for e in spec if e[0].astimezone(paris).day == d] for d in (2, 3, 4)]
    for row, point, day in zip(rows, body["series"], by_day):
        for name in header[1:]:
            assert row[column[name]] == json_cell(point[name]), name
        assert row[column["sizeChange"]] == str(sum(e[2] for e in day))  # "-4993", unquoted
        assert row[column["requests"]] == str(len(day))
        latencies = [e[3] for e in day if e[3] is not None]
        cell = row[column["latencyMs"]]
        assert cell == ("" if not latencies else cell)
        if latencies:
            assert float(cell) == sum(latencies) / len(latencies)
    assert rows[0][column["sizeChange"]] == "-4993"
    assert rows[1][column["latencyMs"]] == ""  # null mean of an empty day


def model_events():
    spec = [  # model, provider, billing, tokens, cost
        ("gpt-4o", "OpenAI", "platform", 100, "0.5"), ("gpt-4o", "OpenAI", "user", 50, "0.25"),
        ("claude-3", "Anthropic", "platform", 10, "1.000001"),
        ("llama-3", None, "user", 0, "0"), ("claude-3", "Anthropic", "platform", 7, "2"),
    ]
    events = []
    for i, (model, provider, billing, tokens, cost) in enumerate(spec):
        e = {"eventId": f"m{i}", "ts": (DAY + timedelta(hours=i)).isoformat(), "modelId": model,
             "modelName": f"{model} (rev {i})", "billing": billing, "tokens": tokens,
             "cost": cost}
        if provider:
            e["provider"] = provider
        events.append(e)
    return events


def test_breakdown_csv_with_attribute_cells_equal_json_and_hand_totals(client, new_org):
    org = new_org()
    events = model_events()
    ingest(client, org, "model-usage", events)
    path = "/v2/stats/model-usage/breakdown/models"
    r, header, rows = as_csv(client, path, org.headers, RANGE)
    assert r.headers["content-disposition"] == \
        'attachment; filename="model-usage-breakdown-models.csv"'
    body = as_json(client, path, org.headers, RANGE)
    totals = list(body["entities"][0]["totals"])
    assert header == ["entityId", "entityName", "provider", *totals]
    assert totals[:3] == ["requests", "tokens", "cost"]
    assert [row[0] for row in rows] == [e["entityId"] for e in body["entities"]]
    for row, entity in zip(rows, body["entities"]):
        assert row[:3] == [entity["entityId"], json_cell(entity["entityName"]),
                           json_cell(entity["provider"])]
        assert row[3:] == [json_cell(entity["totals"][m]) for m in totals]
        mine = [e for e in events if e["modelId"] == row[0]]
        assert int(row[3]) == len(mine)
        assert int(row[4]) == sum(e["tokens"] for e in mine)
        assert Decimal(row[5]) == sum(Decimal(e["cost"]) for e in mine)
        assert row[1] == mine[-1]["modelName"]  # newest display name
    assert {row[0]: row[2] for row in rows}["llama-3"] == ""  # no provider: empty cell


def test_breakdown_csv_pct_column(client, new_org):
    org = new_org()
    events = model_events()
    ingest(client, org, "model-usage", events)
    path = "/v2/stats/model-usage/breakdown/billing"
    _, header, rows = as_csv(client, path, org.headers, RANGE)
    body = as_json(client, path, org.headers, RANGE)
    assert header[:3] == ["entityId", "entityName", "pct"]
    all_cost = sum(Decimal(e["cost"]) for e in events)
    for row, entity in zip(rows, body["entities"]):
        assert row[2] == json_cell(entity["pct"])
        cost = sum(Decimal(e["cost"]) for e in events if e["billing"] == row[0])
        assert float(row[2]) == pytest.approx(float(100 * cost / all_cost), rel=1e-12)
    assert sorted(row[0] for row in rows) == ["platform", "user"]


def test_text_cells_from_ingested_data_cannot_become_formulas(client, new_org):
    org = new_org()
    names = {"w1": "=HYPERLINK(\"http://x\",\"y\")", "w2": "+1", "-w3": "-2+3", "w4": "@SUM(A1)",
             "w5": "plain, with \"quotes\"\nand a newline", "w6": "\tTab"}
    events = [{"eventId": f"n{i}", "ts": (DAY + timedelta(minutes=i)).isoformat(),
               "workspaceId": ws, "workspaceName": name, "sizeChange": -7 - i}
              for i, (ws, name) in enumerate(names.items())]
    ingest(client, org, "storage", events)
    path = "/v2/stats/storage/breakdown/workspaces"
    _, header, rows = as_csv(client, path, org.headers, RANGE)
    body = as_json(client, path, org.headers, RANGE)
    cells = {row[0]: row for row in rows}
    assert set(cells) == {"w1", "w2", "'-w3", "w4", "w5", "w6"}
    size_change = header.index("sizeChange")
    for entity in body["entities"]:
        raw = entity["entityId"]
        row = cells["'" + raw if raw.startswith("-") else raw]
        name = names[raw]
        assert row[1] == ("'" + name if name[0] in "=+-@\t" else name)
        assert row[size_change] == str(entity["totals"]["sizeChange"])  # negative, no quote
        assert row[size_change].startswith("-")
    assert cells["w5"][1] == names["w5"]  # commas, quotes and newlines survive quoting


@pytest.mark.parametrize("accept, csv_wanted", [
    (None, False), ("", False), ("*/*", False), ("application/json", False),
    ("text/csv", True), ("TEXT/CSV; charset=utf-8", True), ("text/*", True),
    ("text/csv, application/json", False),  # a tie keeps JSON
    ("application/json;q=0.5, text/csv", True), ("text/csv;q=0.5, application/json", False),
    ("text/csv;q=0.9, */*;q=0.8", True), ("text/csv;q=0", False), ("text/csv;q=abc", False),
    ("application/xml", False),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", False),  # browser
    ("text/*;q=0.3, application/*;q=0.2", True), ("application/*, text/csv;q=0.99", False),
])
def test_content_negotiation(accept, csv_wanted):
    assert wants_csv(accept) is csv_wanted


@pytest.mark.parametrize("accept, media", [
    (None, "application/json"), ("*/*", "application/json"),
    ("text/csv;q=0.5, application/json", "application/json"),
    ("application/json;q=0.1, text/csv", "text/csv"),
])
def test_negotiation_over_http(client, new_org, accept, media):
    org = new_org()
    headers = {**org.headers, **({"Accept": accept} if accept is not None else {})}
    r = client.get("/v2/stats/ai", params={"scope": "org", "window": "24h"}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(media)


def test_errors_stay_problem_json(client, new_org):
    org = new_org()
    r = client.get("/v2/stats/storage", params={"scope": "org", "window": "2h"},
                   headers={**org.headers, **CSV})
    assert_problem(r, 400, "invalid_parameters")
    r = client.get("/v2/stats/storage", params={"scope": "org", "window": "24h"}, headers=CSV)
    assert_problem(r, 401, "unauthorized")
    r = client.get("/v2/stats/storage/breakdown/nope", params={"scope": "org", "window": "24h"},
                   headers={**org.headers, **CSV})
    assert_problem(r, 404, "not_found")
    r = client.get("/v2/stats/storage/breakdown/workspaces",
                   params={"scope": "org", "window": "24h", "includeSeries": "true"},
                   headers={**org.headers, **CSV})
    body = assert_problem(r, 400, "invalid_parameters")
    assert [e["field"] for e in body["errors"]] == ["includeSeries"]


def _endpoints():
    for domain in DOMAINS:
        for view in domain.series:
            yield domain.name, "/v2/stats/" + domain.name + (f"/{view.path}" if view.path else "")
        for dim in domain.dimensions:
            yield domain.name, f"/v2/stats/{domain.name}/breakdown/{dim.by}"


def _generated(domain: str) -> list[dict]:
    times = random_times(domain, DAY, DAY + timedelta(days=1), 40)
    if domain in GENERATORS:
        return generate(domain, 5, times)
    return generate_new(domain, 5, times)


@pytest.fixture(scope="module")
def loaded(client, db):
    """One org holding generated events of every domain."""
    org = Org(db, f"csv-every-endpoint-{uuid.uuid4().hex[:8]}")
    for domain in DOMAINS:
        ingest(client, org, domain.name, _generated(domain.name))
    return org


@pytest.mark.parametrize("domain, path", list(_endpoints()))
def test_every_series_and_breakdown_endpoint_answers_csv(client, loaded, domain, path):
    org = loaded
    params = {**RANGE, "timeBucketSize": "6h"}
    _, header, rows = as_csv(client, path, org.headers, params)
    body = as_json(client, path, org.headers, params)
    if "series" in body:
        assert header == list(body["series"][0]) and len(rows) == 4
        table = [list(p.values()) for p in body["series"]]
        for row, values in zip(rows, table):
            assert datetime.fromisoformat(row[0]).timestamp() == values[0]
            assert all(same(c, v) for c, v in zip(row[1:], values[1:], strict=True)), row
    else:
        assert body["entities"], "the generated events name entities"
        entity = body["entities"][0]
        leading = [k for k in entity if k not in ("totals", "series")]
        assert header == leading + list(entity["totals"])
        assert len(rows) == len(body["entities"])
        for row, e in zip(rows, body["entities"]):
            values = [e[k] for k in leading] + list(e["totals"].values())
            assert all(same(c, v) for c, v in zip(row, values, strict=True)), (row, values)
