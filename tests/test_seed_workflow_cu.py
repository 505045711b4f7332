"""``GET /v1/organizations/{orgId}/cu/usage-by-workflow`` (the workflow-CU seed).

Every expected value is computed here from the runs the test generates, with plain loops,
``Decimal`` and ``datetime``; nothing comes from the gateway's own helpers.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import jsonschema
import psycopg
import pytest

from expected import UTC
from support import fmt_ts, ingest, loads

DOMAIN = "workflow-cu"
PATH = "/v1/organizations/{}/cu/usage-by-workflow"
ENVELOPE = {"code", "data", "message", "requestId"}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BASE = datetime(2025, 3, 1, tzinfo=UTC)  # runs lie in the past: ingest refuses the future
SPAN = timedelta(days=10)
MS_2000, MS_2100 = 946_684_800_000, 4_102_444_800_000

# The seed's 200 body, transcribed from shared/seeds/workflow-cu-usage.md.
SEED_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "required": ["code", "data", "message", "requestId"],
    "properties": {
        "code": {"type": "integer"}, "message": {"type": "string"},
        "requestId": {"type": "string"},
        "data": {"type": "object", "additionalProperties": False, "required": ["workflows"],
                 "properties": {"workflows": {"type": "array", "items": {
                     "type": "object", "additionalProperties": False,
                     "required": ["cuPerHour", "estimatedCostPerRun", "isStream", "runCount",
                                  "status", "totalCu", "triggerType", "workflowId",
                                  "workflowName"],
                     "properties": {
                         "cuPerHour": {"type": "number"},
                         "estimatedCostPerRun": {"type": "integer"},
                         "isStream": {"type": "boolean"}, "runCount": {"type": "integer"},
                         "status": {"type": "string"}, "totalCu": {"type": "number"},
                         "triggerType": {"type": "string"}, "workflowId": {"type": "string"},
                         "workflowName": {"type": "string"}}}}}},
    },
}


def ms(t: datetime) -> int:
    return (t - EPOCH) // timedelta(milliseconds=1)


def instant(millis: int) -> datetime:
    return EPOCH + timedelta(milliseconds=millis)


@dataclass(frozen=True)
class Run:
    event_id: str
    ts: datetime
    workflow_id: str
    name: str | None = None
    is_stream: bool | None = None
    status: str | None = None
    trigger: str | None = None
    cu: Decimal = Decimal(0)
    duration: int | None = None
    cost: int | None = None

    def event(self, style: int = 0) -> dict:
        optional = {"workflowName": self.name, "isStream": self.is_stream,
                    "status": self.status, "triggerType": self.trigger,
                    "durationMs": self.duration, "estimatedCost": self.cost}
        return {"eventId": self.event_id, "ts": fmt_ts(self.ts, style),
                "workflowId": self.workflow_id,
                "cu": self.cu if style % 2 else str(self.cu),  # JSON number or decimal string
                **{k: v for k, v in optional.items() if v is not None}}


def send(client, org, runs: list[Run], rng: random.Random | None = None) -> None:
    """Ingest in shuffled order and several batches, so arrival order is not time order."""
    runs = list(runs)
    (rng or random.Random(7)).shuffle(runs)
    events = [run.event(i) for i, run in enumerate(runs)]
    for part in (events[0::3], events[1::3], events[2::3]):
        if part:
            ingest(client, org, DOMAIN, part)


def expected_workflows(runs: list[Run], start: datetime, end: datetime) -> list[dict]:
    by_workflow: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        if start <= run.ts < end:
            by_workflow[run.workflow_id].append(run)
    items = []
    for workflow_id, mine in by_workflow.items():
        newest = max(mine, key=lambda r: r.ts)
        named = [r for r in mine if r.name is not None]
        total = sum((r.cu for r in mine), Decimal(0))
        duration = sum(r.duration or 0 for r in mine)
        costs = [r.cost for r in mine if r.cost is not None]
        items.append({
            "cuPerHour": float(total) * 3_600_000 / duration if duration else 0,
            # half up, exactly: floor(sum / n + 1/2) = (2 * sum + n) // (2 * n)
            "estimatedCostPerRun":
                (2 * sum(costs) + len(costs)) // (2 * len(costs)) if costs else 0,
            "isStream": newest.is_stream is True,
            "runCount": len(mine),
            "status": newest.status or "",
            "totalCu": total,
            "triggerType": newest.trigger or "",
            "workflowId": workflow_id,
            "workflowName": max(named, key=lambda r: r.ts).name if named else workflow_id,
        })
    items.sort(key=lambda item: (-item["totalCu"], item["workflowId"]))  # str: code points
    return items


# --- calling the endpoint ------------------------------------------------------------------


def call(client, org_id: str, headers: dict, params=None, **kw):
    r = client.get(PATH.format(org_id), params=params, headers=headers, **kw)
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = loads(r.text)
    assert set(body) == ENVELOPE, body
    assert body["requestId"] == r.headers["x-request-id"]
    return r, body


def workflows(client, org, start: datetime | int, end: datetime | int) -> list[dict]:
    params = {"from": start if isinstance(start, int) else ms(start),
              "to": end if isinstance(end, int) else ms(end)}
    r, body = call(client, org.id, org.headers, params)
    assert r.status_code == 200, r.text
    assert body["code"] == 0 and body["message"] == "successfully", body
    assert set(body["data"]) == {"workflows"}
    jsonschema.validate(r.json(), SEED_SCHEMA)
    return body["data"]["workflows"]


def failure(r, body, status: int) -> str:
    assert r.status_code == status, r.text
    assert body["code"] == status and body["data"] is None, body
    assert isinstance(body["message"], str) and body["message"]
    assert "Traceback" not in r.text
    return body["message"]


def assert_matches(actual: list[dict], expected: list[dict]) -> None:
    assert [a["workflowId"] for a in actual] == [e["workflowId"] for e in expected]
    for a, e in zip(actual, expected):
        assert set(a) == set(e)
        for key in ("isStream", "status", "triggerType", "workflowId", "workflowName"):
            assert a[key] == e[key], (key, a, e)
        for key in ("runCount", "estimatedCostPerRun"):
            assert type(a[key]) is int and a[key] == e[key], (key, a, e)
        assert isinstance(a["totalCu"], (int, Decimal)) and a["totalCu"] == e["totalCu"], (a, e)
        assert not isinstance(a["cuPerHour"], (bool, str))
        assert float(a["cuPerHour"]) == pytest.approx(e["cuPerHour"], rel=1e-12, abs=0), (a, e)


# --- generated data ------------------------------------------------------------------------

WORKFLOW_IDS = ["wf-alpha", "Wf-Beta", "wf-beta", "wf-Ω", "wf_gamma", "wf 5", "no-name",
                "no-duration", "no-cost"]


def generate_runs(rng: random.Random, count: int) -> list[Run]:
    taken: set[datetime] = set()
    runs = []
    for i in range(count):
        workflow_id = rng.choice(WORKFLOW_IDS)
        ts = BASE + timedelta(microseconds=rng.randrange(int(SPAN / timedelta(microseconds=1))))
        while ts in taken:  # distinct times: "newest" is then well defined
            ts += timedelta(microseconds=1)
        taken.add(ts)
        runs.append(Run(
            event_id=f"run-{i}", ts=ts, workflow_id=workflow_id,
            name=None if workflow_id == "no-name" or rng.random() < 0.3
            else f"{workflow_id} v{rng.randrange(5)}",
            is_stream=rng.choice([True, False, None]),
            status=rng.choice(["succeeded", "failed", "cancelled", None]),
            trigger=rng.choice(["api", "schedule", "webhook", "manual", None]),
            cu=Decimal(rng.randrange(50_000_000)).scaleb(-6),
            duration=None if workflow_id == "no-duration" or rng.random() < 0.1
            else rng.randrange(1, 3_600_000),
            cost=None if workflow_id == "no-cost" or rng.random() < 0.2
            else rng.randrange(10_000)))
    middle = BASE + SPAN / 2
    runs += [Run("tie-1", middle, "tie-b", cu=Decimal("123.25"), duration=1000, cost=1),
             Run("tie-2", middle + timedelta(seconds=1), "tie-a", cu=Decimal("123.25"))]
    return runs


def test_every_field_of_every_workflow_matches_an_independent_computation(client, new_org):
    rng = random.Random(20250301)
    org = new_org()
    runs = generate_runs(rng, 420)
    send(client, org, runs, rng)
    end = BASE + SPAN
    full = workflows(client, org, BASE, end)
    assert_matches(full, expected_workflows(runs, BASE, end))
    assert len(full) == len(WORKFLOW_IDS) + 2
    by_id = {w["workflowId"]: w for w in full}
    assert by_id["no-name"]["workflowName"] == "no-name"
    assert by_id["no-duration"]["cuPerHour"] == 0
    assert by_id["no-cost"]["estimatedCostPerRun"] == 0
    assert [w["workflowId"] for w in full if w["workflowId"].startswith("tie-")] == [
        "tie-a", "tie-b"]  # equal totalCu: by workflowId
    for _ in range(6):  # ranges at millisecond precision, cutting through the data
        a, b = sorted(rng.sample(range(ms(BASE) - 3_600_000, ms(end) + 3_600_000), 2))
        assert_matches(workflows(client, org, a, b), expected_workflows(runs, instant(a),
                                                                          instant(b)))


def test_range_includes_from_and_excludes_to_to_the_microsecond(client, new_org):
    org = new_org()
    start = BASE + timedelta(days=1, milliseconds=250)
    end = start + timedelta(hours=5, milliseconds=7)
    us, one_ms = timedelta(microseconds=1), timedelta(milliseconds=1)
    edges = {"before-from-1ms": start - one_ms, "before-from-1us": start - us,
             "at-from": start, "before-to-1us": end - us, "at-to": end,
             "after-to-1ms": end + one_ms}
    runs = [Run(name, ts, name, cu=Decimal(i + 1), duration=10)
            for i, (name, ts) in enumerate(edges.items())]
    send(client, org, runs)
    got = workflows(client, org, start, end)
    assert {w["workflowId"] for w in got} == {"at-from", "before-to-1us"}
    assert_matches(got, expected_workflows(runs, start, end))
    assert [w["workflowId"] for w in workflows(client, org, ms(start), ms(start) + 1)] == [
        "at-from"]
    assert [w["workflowId"] for w in workflows(client, org, ms(end) - 1, ms(end))] == [
        "before-to-1us"]  # "at-to" lies at exactly `to`...
    assert [w["workflowId"] for w in workflows(client, org, ms(end), ms(end) + 1)] == [
        "at-to"]  # ...and so inside the next millisecond


def test_newest_run_decides_attributes_and_name_whatever_the_arrival_order(client, new_org):
    org = new_org()
    t = BASE + timedelta(days=2)
    runs = [Run("r1", t, "wf", name="First", is_stream=True, status="succeeded",
                trigger="api", cu=Decimal("1.000001"), duration=60_000, cost=10),
            Run("r2", t + timedelta(minutes=1), "wf", name="Second", is_stream=False,
                status="failed", trigger="webhook", cu=Decimal("2"), duration=30_000),
            Run("r3", t + timedelta(minutes=2), "wf", is_stream=True, trigger="schedule",
                cu=Decimal("0.5"), cost=11)]  # newest: no name, no status, no duration
    for run in reversed(runs):  # newest first, one batch each
        ingest(client, org, DOMAIN, [run.event(1)])
    (wf,) = workflows(client, org, t, t + timedelta(hours=1))
    assert_matches([wf], expected_workflows(runs, t, t + timedelta(hours=1)))
    assert {k: v for k, v in wf.items() if k != "cuPerHour"} == {
        "estimatedCostPerRun": 11, "isStream": True, "runCount": 3, "status": "",
        "totalCu": Decimal("3.500001"), "triggerType": "schedule", "workflowId": "wf",
        "workflowName": "Second"}  # newest run: no name (the newest given wins), no status
    assert float(wf["cuPerHour"]) == pytest.approx(3.500001 * 3_600_000 / 90_000, rel=1e-12)
    (older,) = workflows(client, org, t, t + timedelta(minutes=2))  # r3 out of range
    assert (older["isStream"], older["status"], older["triggerType"], older["workflowName"]) == (
        False, "failed", "webhook", "Second")
    (first,) = workflows(client, org, t, t + timedelta(minutes=1))
    assert (first["isStream"], first["status"], first["workflowName"]) == (
        True, "succeeded", "First")


def test_cost_rounds_half_up_and_cu_sums_exactly(client, new_org):
    org = new_org()
    t = BASE + timedelta(days=3)
    costs = {"c-2-3": [2, 3], "c-0-1": [0, 1], "c-1-2-2": [1, 2, 2], "c-1-1-2": [1, 1, 2],
             "c-4-none": [4, None], "c-none": [None, None], "c-7-8": [7, 8]}
    runs = [Run(f"{wid}-{i}", t + timedelta(seconds=10 * n + i), wid, cu=Decimal("0.1"),
                cost=cost)
            for n, (wid, values) in enumerate(costs.items()) for i, cost in enumerate(values)]
    huge = Decimal("99999999999999.999999")  # the largest cu an event may carry
    runs += [Run("big-1", t, "big", cu=huge, duration=1), Run("big-2", t, "big-b", cu=huge),
             Run("big-3", t + timedelta(seconds=1), "big", cu=huge, duration=2)]
    send(client, org, runs)
    got = workflows(client, org, t, t + timedelta(hours=1))
    assert_matches(got, expected_workflows(runs, t, t + timedelta(hours=1)))
    by_id = {w["workflowId"]: w for w in got}
    assert {wid: by_id[wid]["estimatedCostPerRun"] for wid in costs} == {
        "c-2-3": 3, "c-0-1": 1, "c-1-2-2": 2, "c-1-1-2": 1, "c-4-none": 4, "c-none": 0,
        "c-7-8": 8}  # banker's rounding would give 2, 0 and 8
    assert by_id["big"]["totalCu"] == Decimal("199999999999999.999998")
    assert by_id["big-b"]["cuPerHour"] == 0  # no durations at all
    assert [w["workflowId"] for w in got[:2]] == ["big", "big-b"]


def test_empty_answers(client, new_org):
    org = new_org()
    assert workflows(client, org, BASE, BASE + SPAN) == []  # an org without runs
    send(client, org, [Run("only", BASE + timedelta(days=1), "wf", cu=Decimal(1))])
    assert workflows(client, org, BASE, BASE + timedelta(days=1)) == []  # runs outside range
    assert workflows(client, org, MS_2000, MS_2000 + 1) == []
    assert len(workflows(client, org, MS_2000, MS_2100)) == 1  # the widest range allowed


def test_every_workflow_is_listed_across_pages_in_order(client, new_org):
    rng = random.Random(1234)
    org = new_org()
    runs = [Run(f"p{i}", BASE + timedelta(seconds=i), rng.choice(["wf-", "WF-", "wf_"]) + f"{i}",
                cu=Decimal(rng.randrange(40)).scaleb(-1), duration=rng.choice([None, 1000]))
            for i in range(1234)]  # few distinct totals: ties straddle page boundaries
    send(client, org, runs, rng)
    got = workflows(client, org, BASE, BASE + timedelta(hours=1))
    assert len(got) == len({w["workflowId"] for w in got}) == 1234
    assert_matches(got, expected_workflows(runs, BASE, BASE + timedelta(hours=1)))


def test_more_workflows_than_the_cap_are_refused_not_cut(client, new_org, monkeypatch):
    from stats_gateway.seeds import workflow_cu as seed

    monkeypatch.setattr(seed, "MAX_WORKFLOWS", 3)
    org = new_org()
    send(client, org, [Run(f"r{i}", BASE + timedelta(minutes=i), f"wf{i}", cu=Decimal(i))
                       for i in range(4)])
    assert len(workflows(client, org, BASE, BASE + timedelta(minutes=3))) == 3
    r, body = call(client, org.id, org.headers, {"from": ms(BASE), "to": ms(BASE) + 3_600_000})
    assert "4 workflows" in failure(r, body, 400)


def test_tenants_see_only_their_own_runs(client, new_org):
    rng = random.Random(99)
    one, two = new_org(), new_org()
    runs_one, runs_two = generate_runs(rng, 60), generate_runs(rng, 50)  # same workflow ids
    send(client, one, runs_one, rng)
    send(client, two, runs_two, rng)
    end = BASE + SPAN
    assert_matches(workflows(client, one, BASE, end), expected_workflows(runs_one, BASE, end))
    assert_matches(workflows(client, two, BASE, end), expected_workflows(runs_two, BASE, end))
    r, body = call(client, two.id, one.headers, {"from": ms(BASE), "to": ms(end)})
    failure(r, body, 404)


def test_auth_errors(client, new_org):
    org = new_org()
    params = {"from": ms(BASE), "to": ms(BASE + SPAN)}
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": org.key},
                    {"Authorization": "Bearer " + org.key[:-1] + "x"},
                    {"Authorization": "Basic " + org.key}):
        r, body = call(client, org.id, headers, params)
        failure(r, body, 401)
        assert r.headers["www-authenticate"] == "Bearer"
    r, body = call(client, org.id, org.ingest_only, params)
    assert "read" in failure(r, body, 403)
    r, body = call(client, org.id, org.read_only, params)
    assert r.status_code == 200 and body["data"] == {"workflows": []}
    r, body = call(client, str(uuid.uuid4()), {}, params)  # no key: 401 before the org check
    failure(r, body, 401)


def test_foreign_and_unknown_org_ids_answer_the_same_404(client, new_org):
    mine, other = new_org(), new_org()
    send(client, other, [Run("x", BASE + timedelta(hours=1), "secret", cu=Decimal(5))])
    answers = []
    for org_id in (other.id, str(uuid.uuid4()), "not-an-org", mine.id.upper()):
        for params in ({"from": ms(BASE), "to": ms(BASE + SPAN)}, {"from": "junk"}):
            r, body = call(client, org_id, mine.headers, params)
            failure(r, body, 404)
            answers.append({k: v for k, v in body.items() if k != "requestId"})
    assert all(answer == answers[0] for answer in answers), answers
    assert "secret" not in str(answers)


BASE_MS = ms(BASE)
BAD_PARAMETERS = [
    ({}, {"from", "to"}),
    ({"from": BASE_MS}, {"to"}),
    ({"to": BASE_MS}, {"from"}),
    ({"from": "abc", "to": BASE_MS}, {"from"}),
    ({"from": "1.5e12", "to": "1740787200000.5"}, {"from", "to"}),
    ({"from": "", "to": " 1"}, {"from", "to"}),
    ({"from": "+1740787200000", "to": "0x10"}, {"from", "to"}),
    ({"from": "١٧٤٠٧٨٧٢٠٠٠٠٠", "to": BASE_MS}, {"from"}),  # non-ASCII digits
    ({"from": -1, "to": BASE_MS}, {"from"}),
    ({"from": BASE_MS, "to": "9" * 25}, {"to"}),
    ({"from": BASE_MS, "to": "9" * 5000}, {"to"}),
    ({"from": -(2 ** 63), "to": 2 ** 64}, {"from", "to"}),
    ({"from": MS_2000 - 1, "to": BASE_MS}, {"from"}),
    ({"from": BASE_MS, "to": MS_2100 + 1}, {"to"}),
    ({"from": BASE_MS, "to": BASE_MS}, {"to"}),
    ({"from": BASE_MS + 1, "to": BASE_MS}, {"to"}),
    ({"from": [BASE_MS, BASE_MS], "to": BASE_MS + 5}, {"from"}),
    ({"from": BASE_MS, "to": BASE_MS + 5, "window": "7d"}, {"window"}),
    ({"from": BASE_MS, "to": BASE_MS + 5, "From": BASE_MS}, {"From"}),
]


@pytest.mark.parametrize("params,fields", BAD_PARAMETERS)
def test_bad_parameters_are_400_naming_every_problem(client, new_org, params, fields):
    org = new_org()
    r, body = call(client, org.id, org.headers, params)
    message = failure(r, body, 400)
    assert message.startswith("invalid query parameters: ")
    named = {part.split(" ", 1)[0] for part in message.split(": ", 1)[1].split("; ")}
    assert named == fields, message


def test_unix_seconds_get_a_hint(client, new_org):
    org = new_org()
    r, body = call(client, org.id, org.headers, {"from": BASE_MS // 1000, "to": BASE_MS})
    assert "looks like unix seconds" in failure(r, body, 400)


@pytest.mark.parametrize("error,status", [(RuntimeError("secret detail"), 500),
                                          (psycopg.OperationalError("db gone"), 503)])
def test_unexpected_failures_keep_the_seed_envelope(client, new_org, monkeypatch, error, status):
    org = new_org()

    async def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(client.app.state.engine, "breakdown_values", fail)
    r, body = call(client, org.id, org.headers, {"from": BASE_MS, "to": BASE_MS + 1})
    message = failure(r, body, status)
    assert "secret" not in r.text and "db gone" not in r.text, message


def test_request_id_and_seed_style_request(client, new_org):
    org = new_org()
    url = PATH.format(org.id) + f"?from={BASE_MS}&to={BASE_MS + 1}"
    r = client.request("GET", url, content=b"{}",  # the seed's own curl sends a JSON body
                       headers={**org.headers, "Content-Type": "application/json",
                                "X-Request-Id": "req_abc123"})
    assert r.status_code == 200, r.text
    assert r.json() == {"code": 0, "data": {"workflows": []}, "message": "successfully",
                        "requestId": "req_abc123"}
    assert r.headers["x-request-id"] == "req_abc123"


def test_openapi_documents_the_seed_parameters(client):
    spec = client.get("/schema/openapi.json").json()
    operation = spec["paths"]["/v1/organizations/{orgId}/cu/usage-by-workflow"]["get"]
    params = {(p["in"], p["name"]): p for p in operation["parameters"]}
    assert set(params) == {("path", "orgId"), ("query", "from"), ("query", "to")}
    for name in ("from", "to"):
        assert params[("query", name)]["required"] is True
        assert params[("query", name)]["schema"]["type"] == "integer"
    assert {"200", "400", "401", "403", "404", "500"} <= set(operation["responses"])
