"""Runflow's ``GET /v1/runs-stats``: every field against a plain-Python computation from the
generated runs, every response against the seed's own OpenAPI component schemas."""

from __future__ import annotations

import json
import random
import re
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from support import encode

from stats_gateway.auth import create_key
from stats_gateway.core.engine import StatsEngine

PATH = "/v1/runs-stats"
SEED = Path(__file__).resolve().parents[2] / "shared" / "seeds" / "runflow-runs-stats.md"
SCHEMA_COPY = Path(__file__).parent / "seed_schemas" / "runflow.yaml"
COMPONENTS = yaml.safe_load(SCHEMA_COPY.read_text())["components"]
SOURCES = ("api", "playground", "other")
TYPES = ("model", "flow", "comfyui")
ALL_TYPES = frozenset(TYPES)
TOP = 10
US = timedelta(microseconds=1)
# 11 models, 6 flows, 4 ComfyUI workflows; "sdxl" and "upscale" are slugs of two types each
TARGETS = ([("model", s) for s in ("sdxl", "flux", "kling", "veo", "wan", "hunyuan", "ltx",
                                   "upscale", "seedream", "imagen", "recraft")]
           + [("flow", s) for s in ("sdxl", "portrait", "product", "avatar", "banner", "logo")]
           + [("comfyui", s) for s in ("upscale", "inpaint", "outpaint", "lineart")])
# the top of the ranking is mostly flows and ComfyUI workflows, so restricting to models
# changes which rows make the top 10
WEIGHTS = [3, 3, 2, 2, 2, 1, 1, 1, 1, 1, 1] + [9, 8, 8, 7, 7, 6] + [7, 6, 5, 5]


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def z(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- the seed's schemas -----------------------------------------------------------------

def validate(body, name: str) -> None:
    schema = {"$ref": f"#/components/schemas/{name}", "components": COMPONENTS}
    Draft202012Validator(schema, format_checker=FormatChecker()).validate(body)


def test_schema_copy_matches_the_seed():
    if not SEED.exists():
        pytest.skip("the shared seed directory is not here")
    block = re.search(r"````yaml[^\n]*\n(.*?)````", SEED.read_text(), re.DOTALL).group(1)
    assert yaml.safe_load(block)["components"] == COMPONENTS


def test_the_validator_refuses_wrong_shapes():
    """The schema check used everywhere below can fail."""
    good = {"timeline": [{"date": "2025-06-03", "runs": 1, "spend": "0.1"}], "by_flow": [],
            "by_source": [{"source": "api", "runs": 1, "pct": 100.0}]}
    validate(good, "RunStatsResponse")
    for bad in ({**good, "by_flow": None},
                {**good, "timeline": [{"date": "2025-06-03", "runs": 1, "spend": 0.1}]},
                {**good, "timeline": [{"date": "03/06/2025", "runs": 1, "spend": "1"}]},
                {**good, "by_source": [{"source": "web", "runs": 1, "pct": 1}]}):
        with pytest.raises(ValidationError):
            validate(bad, "RunStatsResponse")


# --- runs and the reference computation --------------------------------------------------

def run(event_id: str, t: datetime, kind: str, slug: str, source: str = "api", **extra) -> dict:
    return {"eventId": event_id, "ts": z(t), "targetType": kind, "targetSlug": slug,
            "source": source, **extra}


def generate(seed: str, first: datetime, last: datetime, n: int) -> list[dict]:
    """n runs at distinct instants in [first, last], with optional names, spends, durations."""
    rng = random.Random(seed)
    span = int((last - first).total_seconds())
    times: set[datetime] = set()
    while len(times) < n:
        times.add(first + timedelta(seconds=rng.randrange(span),
                                    microseconds=rng.choice([0, rng.randrange(1_000_000)])))
    events = []
    for i, t in enumerate(sorted(times)):
        kind, slug = rng.choices(TARGETS, WEIGHTS)[0]
        source = rng.choices(SOURCES, [5, 3, 1])[0]
        e = run(f"{seed}-{i}", t, kind, slug, source)
        if i % 3 == 1:  # other spellings of the same instant
            e["ts"] = t.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()
        if rng.random() < 0.6:
            e["targetName"] = f"{slug.title()} #{rng.randint(1, 99)}"
        if rng.random() < 0.85:
            places = rng.randint(0, 6)
            amount = Decimal(rng.randint(0, 50 * 10**places)).scaleb(-places)
            e["spend"] = str(amount) if rng.random() < 0.5 else amount
        if rng.random() < 0.7:
            e["durationMs"] = rng.randint(0, 600_000) + rng.choice([0, 0.5, 0.25])
        events.append(e)
    return events


def ingest(client, org, events) -> None:
    r = client.post("/v2/ingest/runs", content=encode({"events": events}),
                    headers={**org.headers, "Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["inserted"] == len(events), r.text


def when(e: dict) -> datetime:
    return datetime.fromisoformat(e["ts"]).astimezone(UTC)


def plain(amount: Decimal) -> str:
    """An exact decimal without exponent or trailing zeros."""
    text = f"{amount:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def spend_of(e: dict) -> Decimal:
    return Decimal(str(e.get("spend", 0)))


def half_up_pct(part: int, whole: int) -> float:
    if whole == 0:
        return 0.0
    hundredths = (part * 10_000 * 2 + whole) // (2 * whole)  # round half up, integers only
    return hundredths / 100


def expected(events, start: datetime, end: datetime, readable=ALL_TYPES) -> dict:
    start, end = start.astimezone(UTC), end.astimezone(UTC)  # days are UTC days
    chosen = [e for e in events if start <= when(e) <= end]
    timeline = []
    day = start.date()
    while day <= end.date():
        todays = [e for e in chosen if when(e).date() == day]
        timeline.append({"date": day.isoformat(), "runs": len(todays),
                         "spend": plain(sum((spend_of(e) for e in todays), Decimal(0)))})
        day += timedelta(days=1)

    groups = defaultdict(list)
    for e in chosen:
        groups[(e["targetType"], e["targetSlug"])].append(e)
    rows = []
    for (kind, slug), mine in groups.items():
        durations = [e["durationMs"] for e in mine if "durationMs" in e]
        named = [e for e in mine if "targetName" in e]
        rows.append({
            "flow_slug": slug,
            "flow_name": max(named, key=when)["targetName"] if named else slug,
            "runs": len(mine),
            "spend": sum((spend_of(e) for e in mine), Decimal(0)),
            "avg_duration_ms": round(sum(durations) / len(durations), 2) if durations else 0.0,
            "target_type": kind})
    rows.sort(key=lambda r: (-r["runs"], -r["spend"], f"{r['target_type']}:{r['flow_slug']}"))
    by_flow = [{**r, "spend": plain(r["spend"])} for r in rows if r["target_type"] in readable]

    by_source = [{"source": s, "runs": sum(e["source"] == s for e in chosen),
                  "pct": half_up_pct(sum(e["source"] == s for e in chosen), len(chosen))}
                 for s in SOURCES]
    return {"timeline": timeline, "by_flow": by_flow[:TOP], "by_source": by_source}


# --- HTTP ---------------------------------------------------------------------------------

def fetch(client, headers, start, end, extra_headers=None, **more):
    params = {"start": start, "end": end, **more}
    return client.get(PATH, params=params, headers={**headers, **(extra_headers or {})})


def stats(client, headers, start, end, **kw) -> dict:
    r = fetch(client, headers, start, end, **kw)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = json.loads(r.text)
    validate(body, "RunStatsResponse")
    assert list(body) == ["timeline", "by_flow", "by_source"]
    for name, rows in (("UsageDataPoint", body["timeline"]), ("UsageByFlow", body["by_flow"]),
                       ("UsageBySource", body["by_source"])):
        for row in rows:
            assert list(row) == list(COMPONENTS["schemas"][name]["properties"]), row
    return body


def error(r, status: int, code: str, fields: set[str] | None = None) -> dict:
    """The seed's ErrorResponse (not problem+json), with ``errors`` naming ``fields``."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = json.loads(r.text)
    validate(body, "ErrorResponse")
    assert set(body) == {"code", "message", "errors"}
    assert body["code"] == code and body["message"], body
    if fields is None:
        assert body["errors"] is None, body
    else:
        assert {e["field"] for e in body["errors"]} == fields, body
        assert all(isinstance(e["message"], str) and e["message"] for e in body["errors"])
    assert "Traceback" not in r.text
    return body


def scoped_key(db, org, scopes) -> dict:
    return {"Authorization": f"Bearer {create_key(db, org.id, resource_scopes=scopes)}"}


START = utc(2025, 6, 3, 9, 30)
END = utc(2025, 6, 7, 17, 45, 10, 250_000)


@pytest.fixture
def busy_org(client, new_org):
    """An org with 450 runs around [START, END], plus runs exactly on and just off its ends."""
    org = new_org()
    # a fixed seed: the same runs every time (event ids are per org, so no clash)
    events = generate("busy", utc(2025, 6, 1), utc(2025, 6, 9, 23), 450)
    events += [run("at-start", START, "flow", "edge", "api", spend="1.5", durationMs=10),
               run("at-end", END, "model", "edge", "other", spend="2.25", durationMs=20),
               run("before-start", START - US, "flow", "edge", "api", spend="100"),
               run("after-end", END + US, "model", "edge", "api", spend="100")]
    ingest(client, org, events)
    return org, events


# --- tests ----------------------------------------------------------------------------------

def test_every_field_matches_the_runs(client, busy_org):
    org, events = busy_org
    body = stats(client, org.headers, z(START), z(END))
    want = expected(events, START, END)
    assert body == want
    assert len(body["timeline"]) == 5 and len(body["by_flow"]) == TOP
    assert sum(p["runs"] for p in body["timeline"]) == sum(s["runs"] for s in body["by_source"])


def test_spellings_of_the_range_mean_the_same_instants(client, busy_org):
    org, events = busy_org
    want = expected(events, START, END)
    naive = (START.replace(tzinfo=None).isoformat(), END.replace(tzinfo=None).isoformat())
    plus2 = timezone(timedelta(hours=2))
    offset = (START.astimezone(plus2).isoformat(), END.astimezone(plus2).isoformat())
    compact = (START.strftime("%Y-%m-%dT%H:%M:%S+0000"), END.strftime("%Y-%m-%d %H:%M:%S.%fZ"))
    for start, end in (naive, offset, compact):
        assert stats(client, org.headers, start, end) == want, (start, end)
    # an offset moves the instant, and the timeline still counts UTC days
    late = datetime.fromisoformat("2025-06-04T01:00:00+05:00")
    body = stats(client, org.headers, late.isoformat(), z(END))
    assert body == expected(events, late, END)
    assert body["timeline"][0]["date"] == late.astimezone(UTC).date().isoformat() == "2025-06-03"


def test_restricted_keys_only_drop_unreadable_targets(client, db, busy_org):
    org, events = busy_org
    full = stats(client, org.headers, z(START), z(END))
    assert sum(r["target_type"] == "model" for r in full["by_flow"]) < TOP  # else no test
    cases = [(["models:read"], {"model"}),
             (["flows:read", "comfyui-workflows:read"], {"flow", "comfyui"}),
             (["comfyui-workflows:read", "media:read"], {"comfyui"}),
             (["models:read", "flows:read", "comfyui-workflows:read"], ALL_TYPES),
             (["media:read"], set()),
             ([], set())]
    for scopes, readable in cases:
        body = stats(client, scoped_key(db, org, scopes), z(START), z(END))
        assert body["timeline"] == full["timeline"] and body["by_source"] == full["by_source"]
        assert body["by_flow"] == expected(events, START, END, readable)["by_flow"], scopes
    models = stats(client, scoped_key(db, org, ["models:read"]), z(START), z(END))["by_flow"]
    assert len(models) == TOP and {r["target_type"] for r in models} == {"model"}


def test_both_ends_are_inclusive_and_days_are_utc(client, new_org):
    org = new_org()
    start, end = utc(2025, 6, 3, 10), utc(2025, 6, 5)
    events = [run("s-1us", start - US, "flow", "a", spend="1"),
              run("s", start, "flow", "a", spend="2"),
              run("d1-last", utc(2025, 6, 3, 23, 59, 59, 999_999), "flow", "a", spend="4"),
              run("d2-first", utc(2025, 6, 4), "flow", "b", "playground", spend="8"),
              run("e-1us", end - US, "model", "b", "other", spend="16"),
              run("e", end, "model", "b", "other", spend="32"),
              run("e+1us", end + US, "model", "b", spend="64")]
    ingest(client, org, events)
    body = stats(client, org.headers, z(start), z(end))
    assert body == expected(events, start, end)
    assert [p["date"] for p in body["timeline"]] == ["2025-06-03", "2025-06-04", "2025-06-05"]
    assert body["timeline"][-1] == {"date": "2025-06-05", "runs": 1, "spend": "32"}  # run at end
    assert body["timeline"][0]["spend"] == plain(Decimal(2) + Decimal(4))  # run at start
    # one instant: a one-day timeline with the one run there
    body = stats(client, org.headers, z(end), z(end))
    assert body == expected(events, end, end) and len(body["timeline"]) == 1
    assert body["timeline"][0]["runs"] == 1
    # a range with no runs at all is zero-filled
    empty = stats(client, org.headers, "2025-07-01T00:00:00Z", "2025-07-03T12:00:00Z")
    assert empty == expected(events, utc(2025, 7, 1), utc(2025, 7, 3, 12))
    assert [p["spend"] for p in empty["timeline"]] == ["0", "0", "0"]
    assert empty["by_flow"] == [] and all(s["pct"] == 0 for s in empty["by_source"])


def test_spend_is_an_exact_decimal_string(client, new_org):
    org = new_org()
    day = utc(2025, 5, 10)
    tenths = [run(f"t{i}", day + timedelta(seconds=i), "flow", "tenths", spend="0.1")
              for i in range(1000)]
    tiny = [run(f"u{i}", day + timedelta(hours=2, seconds=i), "model", "tiny",
                spend=Decimal("0.000001")) for i in range(3)]
    huge = [run(f"h{i}", day + timedelta(hours=3, seconds=i), "comfyui", "huge",
                spend="99999999999999.999999") for i in range(3)]
    free = [run("free", day + timedelta(days=1), "flow", "free")]
    events = tenths + tiny + huge + free
    ingest(client, org, events)
    body = stats(client, org.headers, z(day), z(day + timedelta(days=1, hours=1)))
    assert body == expected(events, day, day + timedelta(days=1, hours=1))
    spends = {r["flow_slug"]: r["spend"] for r in body["by_flow"]}
    assert spends["tenths"] == plain(sum((Decimal("0.1") for _ in tenths), Decimal(0))) == "100"
    assert sum(0.1 for _ in tenths) != 100  # floats would not be exact
    assert spends["tiny"] == "0.000003" and spends["free"] == "0"
    assert spends["huge"] == plain(Decimal("99999999999999.999999") * 3)
    assert body["timeline"][1]["spend"] == "0"


def test_ranking_ties_names_and_durations(client, new_org):
    org = new_org()
    t0 = utc(2025, 4, 1, 12)
    at = lambda minutes: t0 + timedelta(minutes=minutes)
    events = [
        # 2 runs each: cheaper after dearer; equal runs and spend (zeta, alpha): by type:slug
        run("a1", at(1), "model", "alpha", spend="1", durationMs=1),
        run("a2", at(2), "model", "alpha", spend="1", durationMs=2),
        run("z1", at(3), "flow", "zeta", spend="1"),
        run("z2", at(4), "flow", "zeta", spend="1"),
        run("c1", at(5), "comfyui", "cheap", spend="0.5", durationMs=2),
        run("c2", at(6), "comfyui", "cheap", spend="1.4"),
        run("r1", at(7), "model", "rich", spend="3"),
        run("r2", at(8), "model", "rich", spend="0.000001"),
        # names: the newest given name wins, a newer run without one keeps it
        run("n1", at(9), "flow", "named", targetName="First", durationMs=100.5),
        run("n2", at(11), "flow", "named", targetName="Second", durationMs=200),
        run("n3", at(12), "flow", "named", durationMs=300.25),
        run("n0", at(10), "flow", "named", targetName="Older than Second"),
        run("n-late", at(60 * 24), "flow", "named", targetName="After the range"),
    ]
    ingest(client, org, events)
    end = at(60)
    body = stats(client, org.headers, z(t0), z(end))
    assert body == expected(events, t0, end)
    rows = {(r["target_type"], r["flow_slug"]): r for r in body["by_flow"]}
    assert [(r["target_type"], r["flow_slug"]) for r in body["by_flow"]] == [
        ("flow", "named"), ("model", "rich"), ("flow", "zeta"), ("model", "alpha"),
        ("comfyui", "cheap")]
    assert rows[("flow", "named")]["flow_name"] == "Second"
    assert rows[("model", "alpha")]["flow_name"] == "alpha"  # no name: the slug
    assert rows[("model", "alpha")]["avg_duration_ms"] == 1.5
    assert rows[("flow", "zeta")]["avg_duration_ms"] == 0  # no durations
    assert rows[("comfyui", "cheap")]["avg_duration_ms"] == 2  # mean over runs that have one
    assert rows[("flow", "named")]["avg_duration_ms"] == round((100.5 + 200 + 300.25) / 3, 2)


def test_tenants_never_see_each_other(client, new_org):
    a, b, nobody = new_org(), new_org(), new_org()
    first, last = utc(2025, 6, 2), utc(2025, 6, 6)
    runs_a = generate("tenant-a", first, last, 120)
    runs_b = generate("tenant-b", first, last, 150)  # the same slugs and event ids' style
    ingest(client, a, runs_a)
    ingest(client, b, runs_b)
    assert stats(client, a.headers, z(first), z(last)) == expected(runs_a, first, last)
    assert stats(client, b.headers, z(first), z(last)) == expected(runs_b, first, last)
    assert stats(client, nobody.headers, z(first), z(last)) == expected([], first, last)


def test_organization_header(client, new_org, busy_org):
    org, _ = busy_org
    other = new_org()
    plain_body = stats(client, org.headers, z(START), z(END))
    for own in (org.id, org.id.upper(), f" {org.id} "):
        assert stats(client, org.headers, z(START), z(END),
                     extra_headers={"X-Organization-Id": own}) == plain_body
    answers = []
    for foreign in (other.id, str(uuid.uuid4()), "not-a-uuid", ""):
        r = fetch(client, org.headers, z(START), z(END), {"X-Organization-Id": foreign})
        answers.append(error(r, 403, "ORGANIZATION_MEMBERSHIP_REQUIRED"))
    assert all(a == answers[0] for a in answers)
    # the org check comes before parameter validation, after authentication
    r = fetch(client, org.headers, "bad", "", {"X-Organization-Id": other.id})
    error(r, 403, "ORGANIZATION_MEMBERSHIP_REQUIRED")
    r = client.get(PATH, params={"start": z(START), "end": z(END)},
                   headers={"X-Organization-Id": org.id})
    error(r, 401, "UNAUTHORIZED")


def test_authentication_and_permission(client, new_org):
    org = new_org()
    range_ = {"start": z(START), "end": z(END)}
    for headers in ({}, {"Authorization": "Bearer nope"},
                    {"Authorization": "Bearer sgk_0123456789abcdef_" + "A" * 43},
                    {"Authorization": org.headers["Authorization"].replace("Bearer", "Token")}):
        r = client.get(PATH, params=range_, headers=headers)
        error(r, 401, "UNAUTHORIZED")
        assert r.headers["www-authenticate"] == "Bearer"
    error(client.get(PATH, headers={}), 401, "UNAUTHORIZED")  # before validation
    error(client.get(PATH, params=range_, headers=org.ingest_only), 403, "PERMISSION_DENIED")
    error(client.get(PATH, headers=org.ingest_only), 403, "PERMISSION_DENIED")
    assert client.get(PATH, params=range_, headers=org.read_only).status_code == 200
    # the gateway's own endpoints keep their problem+json
    r = client.get("/v2/stats/runs", params={"scope": "org", "window": "7d"})
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("params, fields", [
    ({}, {"start", "end"}),
    ({"start": "2025-06-03T00:00:00Z"}, {"end"}),
    ({"end": "2025-06-03T00:00:00Z"}, {"start"}),
    ({"start": "yesterday", "end": "2025-13-01T00:00:00Z"}, {"start", "end"}),
    ({"start": "2025-06-03", "end": "2025-06-04"}, {"start", "end"}),
    ({"start": "2025-06-03T00:00:00 02:00", "end": "2025-06-04T00:00:00Z"}, {"start"}),
    # any fraction length is RFC 3339 (issue 12); an empty one is not
    ({"start": "2025-06-03T00:00:00.Z", "end": "2025-06-04T00:00:00Z"}, {"start"}),
    ({"start": "", "end": "2025-06-04T00:00:00Z"}, {"start"}),
    ({"start": "2025-06-04T00:00:00Z", "end": "2025-06-03T23:59:59.999999Z"}, {"end"}),
    ({"start": ["2025-06-03T00:00:00Z", "2025-06-03T01:00:00Z"],
      "end": "2025-06-04T00:00:00Z"}, {"start"}),
    ({"start": "1999-12-31T23:59:59Z", "end": "2100-01-01T00:00:00Z"}, {"start", "end"}),
    ({"start": "2000-01-01T00:00:00Z", "end": "2099-12-31T00:00:00Z"}, {"end"}),  # > 10k days
    ({"start": "9999-12-31T23:59:59.999999Z", "end": "9999-12-31T23:59:59.999999Z"},
     {"start", "end"}),
])
def test_bad_parameters_are_422_naming_each_field(client, new_org, params, fields):
    org = new_org()
    r = client.get(PATH, params=params, headers=org.headers)
    error(r, 422, "VALIDATION_ERROR", fields)


def test_longest_allowed_range(client, new_org):
    org = new_org()
    first = utc(2000, 1, 1)
    last = first + timedelta(days=9_999, hours=23)
    body = stats(client, org.headers, z(first), z(last))
    assert len(body["timeline"]) == 10_000
    assert body["timeline"][-1]["date"] == last.date().isoformat()


def test_unexpected_failures_keep_the_seed_envelope(client, new_org, monkeypatch):
    org = new_org()

    async def broken(*args, **kwargs):
        raise RuntimeError("boom: secret detail")

    monkeypatch.setattr(StatsEngine, "series_values", broken)
    r = fetch(client, org.headers, z(START), z(END))
    body = error(r, 500, "INTERNAL_ERROR")
    assert "boom" not in r.text and r.headers["x-request-id"] in body["message"]

    from psycopg_pool import PoolTimeout

    async def unavailable(*args, **kwargs):
        raise PoolTimeout("no connection")

    monkeypatch.setattr(StatsEngine, "series_values", unavailable)
    error(fetch(client, org.headers, z(START), z(END)), 503, "SERVICE_UNAVAILABLE")


def test_listed_in_openapi(client):
    r = client.get("/schema/openapi.json")
    assert r.status_code == 200
    operation = r.json()["paths"][PATH]["get"]
    assert operation["operationId"] == "listRunsStats"
    assert {"200", "401", "403", "422"} <= set(operation["responses"])
