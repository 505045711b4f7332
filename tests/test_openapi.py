"""The OpenAPI document says what the gateway does, and the docs page needs no other origin.

The document is checked against the running gateway, not against the code that writes it:
the parameters the engine accepts (it names them when refusing an unknown one), the enum
values it accepts and refuses, real events and real answers validated with jsonschema
against the documented schemas, and the docs page's assets fetched one by one.
"""

from __future__ import annotations

import json

import fnmatch
import re
import tomllib
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from support import (
    GENERATORS, NEW_GENERATORS, generate, generate_new, ingest, post_events, random_times,
)

from domains import DOMAINS
from stats_gateway.core.domain import sortable
from stats_gateway.core.timebuckets import BUCKET_SIZES, WINDOWS

ROOT = Path(__file__).resolve().parents[1]
DOCS_DIR = ROOT / "stats_gateway" / "http" / "static" / "docs"
READ_ERRORS = {"400", "401", "403", "404", "429", "503"}
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def document(client) -> dict:
    r = client.get("/schema/openapi.json")
    assert r.status_code == 200
    return r.json()


def resolve(document: dict, node: dict) -> dict:
    """A ``$ref`` to ``#/components/...`` followed, once."""
    if "$ref" not in node:
        return node
    kind, name = node["$ref"].split("/")[-2:]
    return document["components"][kind][name]


def parameters(document: dict, path: str, method: str = "get") -> dict[str, dict]:
    operation = document["paths"][path][method]
    return {p["name"]: p for p in (resolve(document, p) for p in operation["parameters"])}


def engine_allowed(client, org, path: str) -> set[str]:
    """The parameters the engine accepts, as it lists them when refusing an unknown one."""
    r = client.get(path, params={"scope": "org", "window": "7d", "zzUnknown": "1"},
                   headers=org.headers)
    assert r.status_code == 400, r.text
    (problem,) = [e for e in r.json()["errors"] if e["field"] == "zzUnknown"]
    return set(problem["message"].split("allowed: ")[1].split(", "))


def validator(document: dict, ref: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": ref, "components": document["components"]})


def stats_paths():
    for domain in DOMAINS:
        for view in domain.series:
            yield domain, f"/v2/stats/{domain.name}" + (f"/{view.path}" if view.path else "")
        for dim in domain.dimensions:
            yield domain, f"/v2/stats/{domain.name}/breakdown/{dim.by}"


# --- parameters ----------------------------------------------------------------------


def test_every_stats_operation_documents_exactly_the_parameters_the_engine_accepts(
        client, new_org, document):
    org = new_org()
    for domain, path in stats_paths():
        documented = parameters(document, path)
        assert set(documented) == engine_allowed(client, org, path), path
        assert documented["scope"]["required"] is True
        assert not any(p["required"] for name, p in documented.items() if name != "scope")


def test_documented_enums_are_accepted_and_other_values_refused(client, new_org, document):
    org = new_org()
    domain = next(d for d in DOMAINS if d.name == "storage")
    view = domain.series[0]
    series_path, dim = f"/v2/stats/{domain.name}", domain.dimensions[0]
    breakdown_path = f"/v2/stats/{domain.name}/breakdown/{dim.by}"
    series, breakdown = parameters(document, series_path), parameters(document, breakdown_path)
    # the documented sets, checked against the declarations the engine reads
    assert series["scope"]["schema"]["enum"] == ["org", "workspace", "repo"]
    assert series["window"]["schema"]["enum"] == list(WINDOWS)
    assert series["timeBucketSize"]["schema"]["enum"] == list(BUCKET_SIZES)
    assert series["metric"]["schema"]["enum"] == list(view.metrics)
    can_sort = [m for m in domain.breakdown_metrics(dim) if sortable(domain.metric(m))]
    assert breakdown["sort"]["schema"]["enum"] == can_sort
    assert len(can_sort) < len(domain.breakdown_metrics(dim))  # percentiles are left out
    assert breakdown["limit"]["schema"]["maximum"] == 500
    assert breakdown["order"]["schema"]["enum"] == ["asc", "desc"]

    base = {"scope": "org", "start": (NOW - timedelta(days=2)).isoformat(),
            "end": NOW.isoformat()}
    cases = [(series_path, "window", v, {"scope": "org"}) for v in WINDOWS]
    cases += [(series_path, "timeBucketSize", v, base) for v in ("1h", "6h", "1d", "1w", "1mo")]
    cases += [(series_path, "metric", v, base) for v in view.metrics]
    cases += [(breakdown_path, "sort", v, base) for v in can_sort]
    cases += [(breakdown_path, "order", v, base) for v in ("asc", "desc")]
    cases += [(breakdown_path, "limit", v, base) for v in ("1", "500")]
    for path, name, value, params in cases:
        r = client.get(path, params={**params, name: value}, headers=org.headers)
        assert r.status_code == 200, (path, name, value, r.text)
    percentile = next(m for m in domain.breakdown_metrics(dim) if m not in can_sort)
    refused = [(series_path, "window", "2d", {"scope": "org"}),
               (series_path, "metric", "nope", base), (breakdown_path, "sort", percentile, base),
               (breakdown_path, "limit", "501", base), (breakdown_path, "order", "up", base),
               (series_path, "scope", "team", {"window": "7d"})]
    for path, name, value, params in refused:
        r = client.get(path, params={**params, name: value}, headers=org.headers)
        assert r.status_code == 400 and name in {e["field"] for e in r.json()["errors"]}, r.text


def test_seed_endpoints_document_their_own_parameters(document):
    assert set(parameters(document, "/v1/runs-stats")) == {"start", "end", "X-Organization-Id"}
    assert set(parameters(document, "/v1/model-usage")) == {
        "period", "startDate", "endDate", "granularity", "modelConfigId", "timezone"}
    body = document["paths"]["/calls/stats"]["post"]["requestBody"]["content"]
    schema = body["application/json"]["schema"]
    assert schema["required"] == ["project_id", "start"]
    assert schema["additionalProperties"] is False


# --- bodies and answers --------------------------------------------------------------


def test_real_events_fit_the_documented_ingest_body_and_unknown_fields_do_not(
        client, new_org, document):
    org = new_org()
    times = random_times(3, NOW - timedelta(days=3), NOW - timedelta(minutes=5), 40)
    for domain in (*GENERATORS, *NEW_GENERATORS):
        events = (generate(domain, 3, times) if domain in GENERATORS
                  else generate_new(domain, 3, times))
        operation = document["paths"][f"/v2/ingest/{domain}"]["post"]
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        check = Draft202012Validator(schema)
        assert list(check.iter_errors({"events": events})) == [], domain
        ingest(client, org, domain, events)  # and the gateway takes them
        odd = {**events[0], "eventId": "odd-1", "notAField": 1}
        assert not check.is_valid({"events": [odd]})
        r = post_events(client, org.headers, domain, [odd])
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "notAField"
        assert {"400", "401", "403", "413", "422", "429", "503"} <= set(operation["responses"])


def test_real_answers_validate_against_the_documented_schemas(client, new_org, document):
    """Decimals are numbers on the wire, and an integer total fits ``int | float | Decimal``."""
    org = new_org()
    times = random_times(4, NOW - timedelta(days=3), NOW - timedelta(minutes=5), 60)
    ingest(client, org, "credits", generate("credits", 4, times))
    ingest(client, org, "storage", generate("storage", 4, times))
    checked = 0
    for domain, path in stats_paths():
        if domain.name not in ("credits", "storage"):
            continue
        r = client.get(path, params={"scope": "org", "window": "7d"}, headers=org.headers)
        assert r.status_code == 200, r.text
        content = document["paths"][path]["get"]["responses"]["200"]["content"]
        ref = content["application/json"]["schema"]["$ref"]
        assert list(validator(document, ref).iter_errors(r.json())) == [], path
        checked += 1
    assert checked > 5
    totals = document["components"]["schemas"]["CreditsWorkspacesTotals"]["properties"]
    assert totals["creditsTotal"] == {"type": "number"}
    # unions are anyOf; only the rules across parameters (x-parameter-rules) mean oneOf
    operations = [op for item in document["paths"].values() for op in item.values()
                  if isinstance(op, dict)]
    without_rules = {**document, "paths": None, "operations": [
        {k: v for k, v in op.items() if not k.startswith("x-")} for op in operations]}
    assert '"oneOf"' not in json.dumps(without_rules)


def test_errors_are_documented_as_problem_json_with_their_headers(client, document):
    problem = validator(document, "#/components/schemas/ErrorResponse")
    r = client.get("/v2/stats/storage", params={"scope": "org", "window": "7d"})
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    assert list(problem.iter_errors(r.json())) == []
    for domain, path in stats_paths():
        responses = document["paths"][path]["get"]["responses"]
        assert READ_ERRORS <= set(responses), path
        for status in READ_ERRORS:
            content = responses[status]["content"]
            assert list(content) == ["application/problem+json"], (path, status)
            assert content["application/problem+json"]["schema"]["$ref"].endswith(
                "/ErrorResponse")
        headers = responses["429"]["headers"]
        assert resolve(document, headers["Retry-After"])["required"] is True
        assert "WWW-Authenticate" in responses["401"]["headers"]
        assert "text/csv" in responses["200"]["content"]


def test_security_schemes(document):
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert schemes["basicAuth"]["scheme"] == "basic"
    assert document["security"] == [{"bearerAuth": []}]
    assert {"basicAuth": []} in document["paths"]["/calls/stats"]["post"]["security"]
    assert {"bareKey": []} in document["paths"]["/v1/model-usage"]["get"]["security"]


# --- the docs page -------------------------------------------------------------------


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.spec_urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)
            if name == "data-spec-url":
                self.spec_urls.append(value)


EXPECTED_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


@pytest.mark.parametrize("page", ["/schema", "/schema/swagger"])
def test_docs_page_loads_everything_from_this_origin(client, page):
    r = client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert not re.search(r"https?://", r.text), "an outside URL in the docs page"
    links = _Links()
    links.feed(r.text)
    assert len(links.urls) >= 3 and links.spec_urls == ["/schema/openapi.json"]
    for url in links.urls + links.spec_urls:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        suffix = Path(url).suffix
        expected = EXPECTED_TYPES.get(suffix, "application/vnd.oai.openapi+json")
        assert asset.headers["content-type"].startswith(expected), (url, asset.headers)
    init = client.get("/static/docs/init.js").text
    assert "validatorUrl: null" in init and not re.search(r"https?://", init)


def test_no_cdn_backed_ui_is_mounted(client):
    for page in ("/schema/redoc", "/schema/elements", "/schema/rapidoc", "/schema/scalar"):
        r = client.get(page)
        assert r.status_code == 404 and not re.search(r"https?://", r.text), page


def test_vendored_assets_keep_their_licence_and_ship_as_package_data():
    assert "Apache License" in (DOCS_DIR / "LICENSE").read_text()
    assert "SmartBear" in (DOCS_DIR / "NOTICE").read_text()
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["stats_gateway.http"]
    package = ROOT / "stats_gateway" / "http"
    for file in DOCS_DIR.iterdir():
        relative = file.relative_to(package).as_posix()
        assert any(fnmatch.fnmatch(relative, p) for p in patterns), relative
