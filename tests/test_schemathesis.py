"""Schemathesis over the gateway's own OpenAPI document: every operation, generated requests.

The gateway runs under uvicorn against a migrated database holding ingested events of
every domain; the document is fetched from it (``/schema/openapi.json``). Each operation
gets a bounded number of generated requests (``SCHEMATHESIS_EXAMPLES``, default 6), valid
and invalid ones, sent with a valid API key, and every answer must pass: no 5xx, a
documented status, the documented content type, headers and body schema, and
(``ignored_auth``) the same request without the key is refused.

Each operation is one pytest item running its own Hypothesis test over
``operation.as_strategy()``: schemathesis's own pytest plugin (``schema.parametrize``)
does not run under pytest 9 (it sets ``Function._nodeid``, which pytest 9 no longer has).
What longer runs found stays below as plain regression requests.

``test_the_cli_finds_no_server_error_and_no_unsupported_method`` runs the schemathesis
CLI itself over its coverage phase, which also sends each path the methods it does not
document (``unsupported_method``: 405 with ``Allow``), and a short fuzzing phase, with the
two checks it asserts: no 5xx, no unsupported method answered otherwise. The coverage phase
runs on one breakdown and one ``/v2/query`` operation in all (each kind is one handler whose
parameters differ between domains only by the names in their enums; each domain's filters
get their boundary values on its series). The other checks (schema, status, content type,
headers, auth) run on every operation in ``test_operation_conforms_to_the_document``; the
CLI ran them too until issue 10's thirteenth pass, which only printed what they found and
took 6 s of its 41 s.

A longer run outside the suite::

    SCHEMATHESIS_EXAMPLES=200 .venv/bin/python -m pytest -q -p no:cacheprovider \\
        tests/test_schemathesis.py
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance, ignored_auth, response_headers_conformance,
    response_schema_conformance, status_code_conformance,
)

from stats_gateway.auth import create_key, ensure_org
from stats_gateway.config import Settings
from stats_gateway.http.app import create_app
from support import (
    HTTP, GENERATORS, NEW_GENERATORS, encode, generate, generate_new, live_server, random_times,
)

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "6"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance, ignored_auth]
EVENTS_PER_DOMAIN = 60


class Tenant:
    """The org the generated requests read: its id and an unthrottled read/ingest key."""

    def __init__(self, org_id: str, key: str):
        self.id = org_id
        self.headers = {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def gateway(database_url, db):
    """(base URL, tenant) with events of every domain in the last 30 days."""
    org_id = ensure_org(db, "schemathesis-org")
    tenant = Tenant(org_id, create_key(db, org_id, rate_limit="off"))
    now = datetime.now(UTC).replace(microsecond=0)
    times = random_times(7, now - timedelta(days=30), now - timedelta(minutes=1),
                         EVENTS_PER_DOMAIN)
    with live_server(database_url) as url:
        for domain in (*GENERATORS, *NEW_GENERATORS):
            events = (generate(domain, 1, times) if domain in GENERATORS
                      else generate_new(domain, 1, times))
            r = HTTP.post(f"{url}/v2/ingest/{domain}", content=encode({"events": events}),
                           headers={**tenant.headers, "Content-Type": "application/json"})
            assert r.status_code == 200 and r.json()["inserted"] == len(events), r.text
        yield url, tenant


def _operation_labels() -> list[str]:
    """Every documented operation, from the document an app without a database builds (the
    test itself loads the one the live server serves)."""
    app = create_app(Settings(database_url="postgresql://unused", data_dir=Path("/nonexistent")))
    document = app.openapi_schema.to_schema()
    return [f"{method.upper()} {path}" for path, item in document["paths"].items()
            for method in item if method in ("get", "post", "put", "patch", "delete")]


@pytest.fixture(scope="module")
def served_schema(gateway):
    url, _ = gateway
    return schemathesis.openapi.from_url(f"{url}/schema/openapi.json")


def _iso(instant: datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")


def aim_at_the_data(case, tenant: Tenant) -> None:
    """Turn a generated request into one likely to succeed, keeping its other values: ids
    that exist (the tenant's org, workspace w1, repo r1) and a range over the ingested
    events. Random ids and instants mostly get 404/400/422, so without this few 200s
    would be checked."""
    now = datetime.now(UTC).replace(microsecond=0)
    week_ago = now - timedelta(days=7)
    path = case.path_parameters or {}
    query = case.query if isinstance(case.query, dict) else {}
    body = case.body if isinstance(case.body, dict) else {}
    if "orgId" in path:
        path["orgId"] = tenant.id
        query.update({"from": int(week_ago.timestamp() * 1000), "to": int(now.timestamp() * 1000)})
    if query.get("scope") in ("org", "workspace", "repo"):  # /v2/stats: a window, no start/end
        query["id"] = {"org": tenant.id, "workspace": "w1", "repo": "r1"}[query["scope"]]
        query.pop("start", None)
        query.pop("end", None)
        query.setdefault("window", "7d")
    if case.operation.path == "/v1/runs-stats":
        query.update({"start": _iso(week_ago), "end": _iso(now)})
    if case.operation.path == "/v1/model-usage":
        query.pop("startDate", None)
        query.pop("endDate", None)
    if case.operation.path == "/calls/stats":
        body.update({"start": _iso(week_ago), "end": _iso(now)})
    for event in body.get("events") or ():
        if isinstance(event, dict):
            event["ts"] = _iso(now - timedelta(hours=1))


@pytest.mark.parametrize("label", _operation_labels())
def test_operation_conforms_to_the_document(label, served_schema, gateway):
    """Valid requests (positive) and invalid ones (negative), half of them aimed at the
    ingested data, each checked against the document; a failure is shrunk to a minimal
    request and reported."""
    url, tenant = gateway
    operation = served_schema.find_operation_by_label(label)
    assert operation is not None, f"{label} is not in the served document"
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                      operation.as_strategy(GenerationMode.NEGATIVE))

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink])
    @given(case=cases, aim=st.booleans())
    def check(case, aim):
        if aim:
            aim_at_the_data(case, tenant)
        case.call_and_validate(base_url=url, headers=tenant.headers, checks=CHECKS, timeout=30)

    check()


FOUND = [  # what longer runs found, kept as plain regression requests
    # an offset moving an instant before year 1 (UTC) raised OverflowError: 500
    ("GET", "/v1/runs-stats", {"start": "0001-01-01T00:10:37+01:36",
                               "end": "2026-01-01T00:00:00Z"}, None, 422),
    ("POST", "/calls/stats", None, {"project_id": "p", "start": "0001-01-01T00:00:00+01:00"}, 422),
    ("POST", "/calls/stats", None, {"project_id": "p", "start": "2026-01-01T00:00:00Z",
                                    "end": "9999-12-31T23:30:00-05:00"}, 422),
    ("GET", "/v2/stats/storage", {"scope": "org", "start": "0001-01-01T00:00:00+01:00"}, None,
     400),
]


@pytest.mark.parametrize(("method", "path", "params", "body", "status"), FOUND)
def test_what_schemathesis_found_is_refused_not_a_500(client, new_org, method, path, params,
                                                      body, status):
    org = new_org()
    r = client.request(method, path, params=params, json=body, headers=org.headers)
    assert r.status_code == status, r.text
    field = "start" if "0001" in str(params or body) else "end"
    assert field in r.text


MUST_PASS = ("not_a_server_error", "unsupported_method")


def _without_coverage(paths: list[str]) -> list[str]:
    """The paths whose coverage phase is skipped: the breakdowns and the ``/v2/query``
    operations past the first of each."""
    breakdowns = [path for path in paths if "/breakdown/" in path]
    queries = [path for path in paths if path.startswith("/v2/query/")]
    assert breakdowns[1:] and queries[1:], "no breakdown or query operations in the document"
    return breakdowns[1:] + queries[1:]


def _coverage_on_one_per_shared_handler(skipped: list[str]) -> str:
    """A config that skips the coverage phase on every breakdown and every ``/v2/query``
    operation but the first of each.

    Breakdowns are one handler, and so are the domains' ``/v2/query`` operations: their
    parameters or bodies are one shape in every domain but for the names in their enums
    (sort metrics; metrics, dimensions and filter fields). A domain's filters are the
    parameters of its series too, whose coverage phase sends their boundary values. So the
    coverage phase's boundary values repeated themselves across domains: 28k of the run's
    38k requests with every breakdown, 17k with one per domain (issue 12), took 180 s of a
    460 s suite on a slow day; the ``/v2/query`` operations were 2.3k of the 11.4k left.
    Every skipped operation still gets the fuzzing phase here and its own generated
    requests in ``test_operation_conforms_to_the_document``."""
    pattern = "^(" + "|".join(re.escape(path) for path in skipped) + ")$"
    return ("[[operations]]\n"
            f"include-path-regex = {json.dumps(pattern)}\n"
            "phases.coverage.enabled = false\n")


def test_the_cli_finds_no_server_error_and_no_unsupported_method(gateway, tmp_path):
    """The schemathesis CLI's coverage and fuzzing phases: no 5xx, and every undocumented
    method a 405 with ``Allow``, on every operation (the coverage phase on one breakdown and
    one ``/v2/query`` operation: ``_coverage_on_one_per_shared_handler``)."""
    url, tenant = gateway
    report = tmp_path / "events.ndjson"
    config = tmp_path / "schemathesis.toml"
    paths = list(HTTP.get(f"{url}/schema/openapi.json").json()["paths"])
    skipped = _without_coverage(paths)
    config.write_text(_coverage_on_one_per_shared_handler(skipped))
    command = [str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(config),
               "run",
               f"{url}/schema/openapi.json", "--checks", ",".join(MUST_PASS),
               "--phases", "coverage,fuzzing",
               "-n", str(EXAMPLES), "--generation-deterministic", "--workers", "2",
               "--continue-on-failure", "--report", "ndjson",
               "--report-ndjson-path", str(report),
               "-H", f"Authorization: {tenant.headers['Authorization']}"]
    # in tmp_path: the CLI keeps a cache of failing cases (.schemathesis/) where it runs
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    outcomes: Counter = Counter()
    undocumented: Counter = Counter()  # per path: requests with a method it does not list
    for line in report.read_text().splitlines():
        recorder = json.loads(line).get("ScenarioFinished", {}).get("recorder", {})
        for checks in recorder.get("checks", {}).values():
            outcomes.update((check["name"], check["status"]) for check in checks)
        documented, _, path = recorder.get("label", "").partition(" ")
        for interaction in (recorder.get("interactions") or {}).values():
            if interaction["request"]["method"].upper() != documented:
                undocumented[path] += 1
    print(done.stdout[-3000:])
    print(sorted(outcomes.items()), len(undocumented), sum(undocumented.values()))
    for name in MUST_PASS:
        assert outcomes[(name, "success")] > 1_000, (name, outcomes)
        assert outcomes[(name, "failure")] == 0, done.stdout[-6000:]
    # the unsupported-method check had cases to judge: every path of the coverage phase
    # got the methods it does not document
    covered = set(paths) - set(skipped)
    assert set(undocumented) == covered, covered ^ set(undocumented)
