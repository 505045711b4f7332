"""Every integer the API takes, at its edges, on every operation: never a 5xx (issue 12).

The integers are read from the served OpenAPI document, so a new parameter or event field
is covered without touching this file: query parameters typed integer (``limit``,
``offset``, workflow-cu's ``from``/``to``), the ``start``/``end`` instants as unix seconds,
Weave's ``granularity`` and every integer field of every domain's ingest event. Each value
(0, 2^31, 2^53, 2^63-1, and -1, 2^63, 2^64 just outside) replaces one integer of a request
that is otherwise valid; the answer must be a success or a clear 4xx in the endpoint's own
JSON shape, never a 5xx. (Sums of ingested values are the ingest tests' business; here a
4xx is as good as a 200.)
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from support import GENERATORS, NEW_GENERATORS, encode, generate, generate_new

BOUNDARIES = [0, 2**31, 2**53, 2**63 - 1, -1, 2**63, 2**64]
INSTANT_PARAMS = ("start", "end")  # unix seconds as well as RFC 3339 on /v2


@pytest.fixture(scope="module")
def document(client):
    return client.get("/schema/openapi.json").json()


def _resolve(document: dict, node: dict) -> dict:
    while "$ref" in node:
        kind, name = node["$ref"].split("/")[-2:]
        node = document["components"][kind][name]
    return node


def _is_integer(schema: dict) -> bool:
    options = schema.get("anyOf") or schema.get("oneOf") or [schema]
    return any(o.get("type") == "integer" or (isinstance(o.get("type"), list)
                                              and "integer" in o["type"]) for o in options)


def integer_parameters(document: dict, operation: dict) -> list[str]:
    names = []
    for parameter in operation.get("parameters") or ():
        parameter = _resolve(document, parameter)
        if parameter.get("in") != "query":
            continue
        if _is_integer(parameter.get("schema") or {}) or (
                parameter["name"] in INSTANT_PARAMS):
            names.append(parameter["name"])
    return names


def operations(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield method.upper(), path, operation


def baseline(method: str, path: str, org_id: str) -> tuple[str, dict, dict | None]:
    """A valid request to ``path``: (path with ids, query, JSON body or None)."""
    now = datetime.now(UTC).replace(microsecond=0)
    week_ago = now - timedelta(days=7)
    path = path.replace("{orgId}", org_id).replace("{key_id}", "0123456789abcdef")
    if path.startswith("/v2/stats/"):
        return path, {"scope": "org", "window": "7d"}, None
    if path == "/v1/runs-stats":
        return path, {"start": week_ago.isoformat(), "end": now.isoformat()}, None
    if path.endswith("/cu/usage-by-workflow"):
        return path, {"from": int(week_ago.timestamp() * 1000),
                      "to": int(now.timestamp() * 1000)}, None
    if path == "/calls/stats":
        return path, {}, {"project_id": "p", "start": week_ago.isoformat()}
    if path.startswith("/v2/ingest/"):
        domain = path.rsplit("/", 1)[1]
        make = generate if domain in GENERATORS else generate_new
        # two events: the value, and the sum of two of them (rollups add them up)
        return path, {}, {"events": make(domain, 3, [now - timedelta(hours=1)] * 2,
                                         prefix=uuid.uuid4().hex[:8])}
    return path, {}, None


def assert_clear_answer(r, label: str) -> None:
    assert r.status_code < 500, f"{label}: {r.status_code} {r.text[:500]}"
    assert r.headers["content-type"].startswith(("application/json", "application/problem+json",
                                                 "text/html", "text/csv")), label
    if r.status_code >= 400:
        assert r.json(), label  # a body in the endpoint's shape, whatever it is


def test_every_integer_query_parameter_at_its_boundaries(client, org_headers, document):
    headers, org_id = org_headers
    tried = 0
    for method, template, operation in operations(document):
        path, query, body = baseline(method, template, org_id)
        for name in integer_parameters(document, operation):
            for value in BOUNDARIES:
                params = {**query, name: str(value)}
                if name in INSTANT_PARAMS and path.startswith("/v2/stats/"):
                    params.pop("window", None)
                r = client.request(method, path, params=params, headers=headers,
                                   content=encode(body) if body is not None else None)
                assert_clear_answer(r, f"{method} {template} {name}={value}")
                tried += 1
    assert tried > 500  # limit/offset/start/end on every /v2 stats route, and the seeds


def test_every_integer_body_field_at_its_boundaries(client, org_headers, document):
    headers, org_id = org_headers
    tried = 0
    for method, template, operation in operations(document):
        content = ((operation.get("requestBody") or {}).get("content") or {}).get(
            "application/json")
        if not content:
            continue
        schema = _resolve(document, content["schema"])
        path, query, body = baseline(method, template, org_id)
        body = body if body is not None else {}
        if template.startswith("/v2/ingest/"):
            fields = _resolve(document, schema["properties"]["events"]["items"])["properties"]
            targets = [(name, lambda b, n, v: [e.__setitem__(n, v) for e in b["events"]])
                       for name, field in fields.items() if _is_integer(field)]
        else:
            targets = [(name, lambda b, n, v: b.__setitem__(n, v))
                       for name, field in (schema.get("properties") or {}).items()
                       if _is_integer(field)]
        for name, put in targets:
            for value in BOUNDARIES:
                changed = {**body, "events": [dict(e) for e in body["events"]]} \
                    if "events" in body else dict(body)
                put(changed, name, value)
                for event in changed.get("events", ()):  # new events each time, not duplicates
                    event["eventId"] = uuid.uuid4().hex
                r = client.request(method, path, params=query, headers=headers,
                                   content=encode(changed))
                assert_clear_answer(r, f"{method} {template} {name}={value}")
                tried += 1
    assert tried > 100  # every domain's integer fields, and Weave's granularity


@pytest.fixture(scope="module")
def org_headers(db):
    from stats_gateway.auth import create_key, ensure_org
    org_id = ensure_org(db, "fuzz-boundaries-org")
    return {"Authorization": f"Bearer {create_key(db, org_id, rate_limit='off')}"}, org_id
