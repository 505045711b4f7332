"""A domain added by another package is one module and an entry point: nothing in this
repository is edited, and the whole gateway serves it.

The toy package is written to a temporary directory with a ``.dist-info`` declaring its
entry point (what installing it would leave on ``sys.path``); the registry finds it the way
it finds any installed plug-in. Its events come from the toy module's own sample generator,
the reference values from what its declaration means (``expected.declared_oracle``).
The second half adds one metric to a copy of a built-in domain: a one-line change.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import sys
import textwrap
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from jsonschema import Draft202012Validator
from litestar.testing import TestClient

import domains
import expected
from conftest import Org, throwaway_database
from expected import assert_matches, compute, expected_new_entities, in_range, order_entities
from support import check_series, ingest, ok, random_times, sample_events
from stats_gateway.config import Settings
from stats_gateway.core.domain import DomainDeclarationError, Max, Metric
from stats_gateway.demo.generate import allocate, generate
from stats_gateway.http.app import create_app

UTC = timezone.utc
START = datetime(2026, 2, 2, tzinfo=UTC)
END = START + timedelta(days=4)

TOY_MODULE = '''
"""Toy: widgets made in a workshop, one event per batch (a domain from another package)."""

import random
from datetime import datetime

from stats_gateway.core.domain import (
    BreakdownView, Count, Dimension, Domain, EventField, FieldType, Mean, Metric,
    ResourceFilter, Samples, SeriesView, Sum,
)

COLOURS = ("red", "green", "blue")
SHAPES = ("cube", "ball", "cone")


def toy_event(rng: random.Random, i: int, t: datetime) -> dict:
    e = {"eventId": f"toy-{i}", "ts": t.isoformat(), "colour": rng.choice(COLOURS)}
    if rng.random() < 0.8:
        e["shape"] = rng.choice(SHAPES)
    if rng.random() < 0.9:
        e["widgets"] = rng.randint(0, 1_000)
    e["gadgets"] = rng.randint(0, 50)
    if rng.random() < 0.7:
        e["weightG"] = round(rng.uniform(1, 500), 2)
    if rng.random() < 0.5:
        e["workspaceId"] = rng.choice(("w1", "w2"))
    return e


def toy_columns(org, rng: random.Random, times: list[float], now: datetime) -> dict:
    n = len(times)
    return {"colour": [rng.choice(COLOURS) for _ in range(n)],
            "shape": [rng.choice(SHAPES) for _ in range(n)],
            "widgets": [rng.randint(0, 1_000) for _ in range(n)],
            "gadgets": [rng.randint(0, 50) for _ in range(n)],
            "weight_g": [round(rng.uniform(1, 500), 2) for _ in range(n)]}


T = FieldType
DOMAIN = Domain(
    name="toy",
    table="events_toy",
    title="Toy",
    doc=__doc__,
    fields=(
        EventField(name="colour", column="colour", type=T.TEXT, required=True, doc="its colour"),
        EventField(name="shape", column="shape", type=T.TEXT, doc="its shape"),
        EventField(name="widgets", column="widgets", type=T.BIGINT, default=0, min_value=0),
        EventField(name="gadgets", column="gadgets", type=T.BIGINT, default=0, min_value=0),
        EventField(name="weightG", column="weight_g", type=T.DOUBLE, min_value=0),
    ),
    metrics=(
        Metric(name="widgets", agg=Sum("widgets")),
        Metric(name="gadgets", agg=Sum("gadgets")),
        Metric(name="meanWeightG", agg=Mean("weight_g")),
        Metric(name="batches", agg=Count()),
    ),
    series=(SeriesView(primary="batches"),),
    breakdown=BreakdownView(primary="widgets"),
    dimensions=(
        Dimension(by="colours", column="colour"),
        Dimension(by="shapes", column="shape"),
    ),
    filters=(ResourceFilter(param="colour", column="colour"),),
    samples=Samples(prefix="toy", event=toy_event, columns=toy_columns, demo_share=0.02),
)
'''


def install_plugin(root: Path, module: str, source: str, entry_point: str) -> None:
    """What ``pip install`` of a one-module package leaves: the module and its metadata."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{module.replace('_', '-')}_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {module}-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[stats_gateway.domains]\n{entry_point}\n")


@pytest.fixture
def plugin_path(tmp_path):
    """A directory on ``sys.path`` for plug-ins; removed (with their modules) afterwards."""
    sys.path.insert(0, str(tmp_path))
    before = set(sys.modules)
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        for name in set(sys.modules) - before:
            if getattr(sys.modules[name], "__file__", "") and \
                    str(tmp_path) in sys.modules[name].__file__:
                del sys.modules[name]


@pytest.fixture
def oracle():
    """Lets a test enrol a domain in the reference computations; restores them after."""
    tables = [expected.METRICS, expected.SERIES_VIEWS, expected.BREAKDOWN_METRICS,
              expected.DEFAULTS, expected.FILTERS, expected.EXTRA_METRICS,
              expected.NEW_DIMENSIONS]
    sets = [expected.NON_ADDITIVE, expected.APPROXIMATE]
    saved = [dict(t) for t in tables] + [set(s) for s in sets]
    yield expected.declared_oracle
    for live, kept in zip(tables + sets, saved):
        live.clear()
        live.update(kept)


@contextmanager
def serve(server_url: str, served: tuple):
    """A gateway over a database of its own, serving ``served``, and a new org's keys."""
    with throwaway_database(server_url, "sg_toy") as url:
        app = create_app(Settings(database_url=url, data_dir=Path("/nonexistent"),
                                  rate_limit="off"), served)
        with TestClient(app) as client, psycopg.connect(url, autocommit=True) as conn:
            yield client, Org(conn, "toy-org")


@pytest.fixture
def toy(plugin_path):
    install_plugin(plugin_path, "toy_domain", TOY_MODULE, "toy = toy_domain:DOMAIN")
    registered = domains.registered_domains()
    assert [d.name for d in registered] == [d.name for d in domains.BUILT_IN] + ["toy"]
    return registered


def toy_events(domain, n: int = 300) -> list[dict]:
    return sample_events(domain, 5, random_times(5, START, END, n))


def csv_rows(client, path: str, headers, params) -> list[dict]:
    r = client.get(path, params=params, headers={**headers, "Accept": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    return list(csv.DictReader(io.StringIO(r.text, newline="")))


def check_breakdown(client, org, domain, by: str, events) -> dict[str, dict]:
    """A breakdown's meta and every entity against the reference, events defaulted."""
    body = ok(client, f"/v2/stats/{domain.name}/breakdown/{by}", org.headers,
              {"scope": "org", "start": START.isoformat(), "end": END.isoformat(),
               "timeBucketSize": "1d"})
    counted = in_range(events, START, END)
    entities = expected_new_entities(domain.name, by, counted, events)
    sort = domain.breakdown.primary
    page = order_entities({k: v["totals"] for k, v in entities.items()}, sort, True)
    assert body["meta"]["breakdownBy"] == by and body["meta"]["sort"] == sort
    assert body["meta"]["totalEntities"] == len(entities) > 1
    assert_matches(body["entities"], [{"entityId": k, **entities[k], "series": None}
                                      for k in page], "$.entities")
    return entities


def test_a_plugged_in_domain_is_served_everywhere(toy, server_url, oracle):
    toy_domain = toy[-1]
    oracle(toy_domain)
    events = toy_events(toy_domain)
    defaulted = expected.with_defaults("toy", events)
    with serve(server_url, toy) as (client, org):
        # ingest, through its generated validator
        ingest(client, org, "toy", events)
        bad = client.post("/v2/ingest/toy", json={"events": [{"eventId": "x", "ts": 0}]},
                          headers=org.headers)
        assert bad.status_code == 422 and "colour" in bad.text

        # series: every point and the summary, from the declaration's meaning
        params = {"scope": "org", "start": START.isoformat(), "end": END.isoformat(),
                  "timeBucketSize": "6h"}
        body = ok(client, "/v2/stats/toy", org.headers, params)
        points = check_series(body, "toy", "", defaulted, START, END, "6h", scope_id=org.id)
        assert sum(p["batches"] for p in points) == len(events)
        assert sum(p["widgets"] for p in points) == sum(e.get("widgets", 0) for e in events)
        red = ok(client, "/v2/stats/toy", org.headers, {**params, "colour": "red"})
        check_series(red, "toy", "", defaulted, START, END, "6h", filters={"colour": "red"},
                     scope_id=org.id)

        # breakdowns: both dimensions, every entity
        colours = check_breakdown(client, org, toy_domain, "colours", defaulted)
        assert set(colours) == {"red", "green", "blue"}
        assert check_breakdown(client, org, toy_domain, "shapes", defaulted)

        # CSV: the series' cells are the JSON values
        rows = csv_rows(client, "/v2/stats/toy", org.headers, params)
        assert [int(r["batches"]) for r in rows] == [p["batches"] for p in body["series"]]
        assert [Decimal(r["widgets"]) for r in rows] == [p["widgets"] for p in body["series"]]
        rows = csv_rows(client, "/v2/stats/toy/breakdown/colours", org.headers, params)
        assert list(rows[0]) == ["entityId", "entityName", "widgets", "gadgets", "meanWeightG",
                                 "batches"]
        assert {r["entityId"]: int(r["widgets"]) for r in rows} == \
            {k: v["totals"]["widgets"] for k, v in colours.items()}

        # OpenAPI: its operations, parameters and answers are documented
        document = client.get("/schema/openapi.json").json()
        for path in ("/v2/stats/toy", "/v2/stats/toy/breakdown/colours",
                     "/v2/stats/toy/breakdown/shapes"):
            operation = document["paths"][path]["get"]
            names = {(document["components"]["parameters"][p["$ref"].split("/")[-1]]
                      if "$ref" in p else p)["name"] for p in operation["parameters"]}
            assert {"colour", "scope", "timeBucketSize"} <= names, path
            ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
            answer = client.get(path, params=params, headers=org.headers).json()
            schema = Draft202012Validator({"$ref": ref, "components": document["components"]})
            assert list(schema.iter_errors(answer)) == [], path
        ingest_body = document["paths"]["/v2/ingest/toy"]["post"]["requestBody"]
        schema = Draft202012Validator(ingest_body["content"]["application/json"]["schema"])
        assert list(schema.iter_errors({"events": events})) == []

        # the dashboard lists it, with its views, breakdowns and filters
        listed = client.get("/dashboard/domains.json").json()["domains"]
        (entry,) = [d for d in listed if d["name"] == "toy"]
        assert entry["views"] == [{"path": "", "primary": "batches",
                                   "metrics": ["widgets", "gadgets", "meanWeightG", "batches"]}]
        assert [b["by"] for b in entry["breakdowns"]] == ["colours", "shapes"]
        assert entry["filters"] == ["colour"]


def test_a_plugged_in_domain_joins_the_demo(toy):
    """The demo generates it with its own generator and declared share (nothing edited in
    the demo's world); the built-in domains keep their rows."""
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    counts = allocate(20_000, toy)
    toy_total = sum(n for (_, name), n in counts.items() if name == "toy")
    assert 0 < toy_total < 20_000 * 0.05
    chunks = [c for c in generate(20_000, now, domains=toy) if c.domain.name == "toy"]
    assert sum(len(c) for c in chunks) == toy_total
    assert all(e.startswith("toy-") for c in chunks for e in c.columns["event_id"])
    assert {c.org.key for c in chunks} == {k for (k, name), n in counts.items()
                                           if name == "toy" and n}


def test_plugged_in_problems_are_reported_with_every_other(plugin_path):
    """A broken plug-in, a bad declaration and a clash with a built-in: one error, all listed."""
    install_plugin(plugin_path, "broken_domain", "raise RuntimeError('no luck')\n",
                   "broken = broken_domain:DOMAIN")
    clash = TOY_MODULE.replace('name="toy"', 'name="storage"').replace(
        'Metric(name="batches", agg=Count())', 'Metric(name="batches", agg=Sum("nope"))')
    install_plugin(plugin_path, "clash_domain", clash, "clash = clash_domain:DOMAIN")
    install_plugin(plugin_path, "other_thing", "DOMAIN = 42\n", "other = other_thing:DOMAIN")
    with pytest.raises(DomainDeclarationError) as caught:
        domains.registered_domains()
    problems = caught.value.problems
    assert any(p.startswith("entry point 'broken'") and "RuntimeError: no luck" in p
               for p in problems), problems
    assert any(p.startswith("entry point 'other'") and "not a Domain" in p for p in problems)
    assert "domain 'storage' is listed twice" in problems
    assert "domain 'storage': metric 'batches' reads unknown column 'nope'" in problems


# --- a metric is declared once ----------------------------------------------------------


def test_a_metric_added_to_a_domain_is_served_with_its_value(server_url, oracle):
    """One line: a ``Metric`` added to a copy of ``ai``. Every view serves it (views list
    no metrics), the oracle reads what it means, and series and breakdowns answer it."""
    ai = next(d for d in domains.BUILT_IN if d.name == "ai")
    ai_plus = dataclasses.replace(ai, metrics=ai.metrics + (
        Metric(name="tokensInMax", agg=Max("tokens_in")),))  # the one line
    assert ai_plus.series[0].metrics[-1] == "tokensInMax"
    assert ai_plus.breakdown.metrics[-1] == "tokensInMax"
    oracle(ai_plus)
    served = tuple(ai_plus if d is ai else d for d in domains.BUILT_IN)
    events = sample_events(ai_plus, 9, random_times(9, START, END, 250))
    with serve(server_url, served) as (client, org):
        ingest(client, org, "ai", events)
        params = {"scope": "org", "start": START.isoformat(), "end": END.isoformat(),
                  "timeBucketSize": "1d"}
        body = ok(client, "/v2/stats/ai", org.headers, {**params, "metric": "tokensInMax"})
        points = check_series(body, "ai", "", events, START, END, "1d", metric="tokensInMax",
                              scope_id=org.id)
        by_hand = max(e["tokensIn"] for e in events if "tokensIn" in e)
        assert max(p["tokensInMax"] for p in points) == by_hand
        assert body["summary"]["total"] == by_hand
        assert isinstance(body["summary"]["total"], int)
        # a breakdown's totals, by hand per model
        body = ok(client, "/v2/stats/ai/breakdown/models", org.headers,
                  {**params, "sort": "tokensInMax"})
        want = {}
        for e in in_range(events, START, END):
            if "tokensIn" in e:
                want[e["model"]] = max(want.get(e["model"], 0), e["tokensIn"])
        got = {x["entityId"]: x["totals"]["tokensInMax"] for x in body["entities"]}
        assert got == want
        assert [x["entityId"] for x in body["entities"]] == \
            sorted(want, key=lambda m: (-want[m], m))
        totals = compute("ai", ("tokensInMax",), in_range(events, START, END))
        assert totals["tokensInMax"] == by_hand  # the oracle's reading agrees with the hand
