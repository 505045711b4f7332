"""Runtype's GET /v1/model-usage over model-usage events ingested through the API.

Expected responses are computed here from the generated events with plain datetime,
zoneinfo and Decimal arithmetic, following the contract in the seed module's docstring.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import psycopg
import pytest

from conftest import Org
from support import encode, loads

UTC = timezone.utc
PATH = "/v1/model-usage"
DOMAIN = "model-usage"
DATA_SOURCE = "stats-gateway-postgres"
PRESETS = ("today", "yesterday", "last_7_days", "last_30_days", "current_month",
           "last_month", "current_year")
NOW = datetime.now(UTC).replace(microsecond=0)

# modelId, provider, names over time (first before RENAME_AT, last after; None: never named)
MODELS = [
    ("gpt-4-runtype", "OpenAI", ("GPT-4 Runtype", "GPT-4 Runtype Edition")),
    ("gpt-3.5-turbo", "OpenAI", ("GPT-3.5 Turbo",)),
    ("claude-3-haiku", "Anthropic", ("Claude 3 Haiku",)),
    ("local-llama", None, None),
    ("mistral-small", "Mistral", None),
]
CONFIGS = [None, "cfg-a", "cfg-b"]
HISTORY = (datetime(2022, 12, 20, tzinfo=UTC), datetime(2024, 1, 10, tzinfo=UTC))
MARCH = (datetime(2023, 3, 10, tzinfo=UTC), datetime(2023, 3, 15, tzinfo=UTC))


# --- events --------------------------------------------------------------------------------

def amount(rng: random.Random):
    """An exact cost with 0..6 decimals, as a decimal string or a JSON number."""
    places = rng.randint(0, 6)
    value = Decimal(rng.randint(0, 3 * 10**places)).scaleb(-places)
    return str(value) if rng.random() < 0.5 else value


def times_in(rng: random.Random, start: datetime, end: datetime, n: int) -> list[datetime]:
    """n distinct whole-second instants in [start, end)."""
    span = int((end - start).total_seconds())
    return [start + timedelta(seconds=s) for s in rng.sample(range(span), n)]


def make_events(seed: str, times: list[datetime], rename_at: datetime) -> list[dict]:
    rng = random.Random(seed)
    events = []
    for i, t in enumerate(times):
        model_id, provider, names = rng.choice(MODELS)
        e = {"eventId": f"{seed}-{i}", "ts": t.isoformat().replace("+00:00", "Z"),
             "modelId": model_id, "billing": rng.choice(["platform", "user"])}
        if provider:
            e["provider"] = provider
        if names:
            e["modelName"] = names[0] if t < rename_at else names[-1]
        config = rng.choice(CONFIGS)
        if config:
            e["modelConfigId"] = config
        if rng.random() < 0.9:
            e["tokens"] = rng.randint(0, 20_000)
        if rng.random() < 0.9:
            e["cost"] = amount(rng)
        if rng.random() < 0.3:
            e["workspaceId"] = "w1"
        events.append(e)
    return events


def generate(seed: str) -> list[dict]:
    """History (2023, dense around 2023-03-12) and recent events up to a few hours ahead."""
    rng = random.Random(seed)
    today = NOW.date()
    month_start = today.replace(day=1)
    first = min(date(today.year, 1, 1), (month_start - timedelta(days=1)).replace(day=1))
    recent_start = datetime(first.year, first.month, first.day, tzinfo=UTC) - timedelta(days=10)
    times = (times_in(rng, *HISTORY, 400) + times_in(rng, *MARCH, 200)
             + times_in(rng, recent_start, NOW, 400)
             + times_in(rng, NOW - timedelta(days=40), NOW, 300)
             + times_in(rng, NOW - timedelta(hours=50), NOW + timedelta(hours=3), 200))
    rename_at = NOW - timedelta(days=3)
    return make_events(seed, times, rename_at)


def post(client, headers, events):
    r = client.post(f"/v2/ingest/{DOMAIN}", content=encode({"events": events}),
                    headers={**headers, "Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["inserted"] == len(events), r.text


@pytest.fixture(scope="module")
def orgs(client, db):
    """Two orgs with the same model and config ids but different events."""
    a, b = (Org(db, f"mu-{uuid.uuid4().hex[:10]}") for _ in range(2))
    a.events, b.events = generate("mu-a"), generate("mu-b")
    for org in (a, b):
        for i in range(0, len(org.events), 1000):
            post(client, org.headers, org.events[i:i + 1000])
    return a, b


@pytest.fixture(scope="module")
def org(orgs):
    return orgs[0]


# --- the independent expectation ---------------------------------------------------------

def ts_of(e: dict) -> datetime:
    return datetime.fromisoformat(e["ts"].replace("Z", "+00:00"))


def cost_of(e: dict) -> Decimal:
    return Decimal(str(e.get("cost", 0)))


def midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def calendar_label(local_day: date, granularity: str) -> date:
    if granularity == "week":
        return local_day - timedelta(days=local_day.weekday())
    if granularity == "month":
        return local_day.replace(day=1)
    return local_day


def grid(first: date, last: date, granularity: str, zone: ZoneInfo) -> list[str]:
    """Every bucket label intersecting the days first..last, in order."""
    if granularity == "hour":
        start, end = midnight(first, zone), midnight(last + timedelta(days=1), zone)
        hours = int((end - start) / timedelta(hours=1))
        return [(start + timedelta(hours=k)).strftime("%Y-%m-%dT%H:%M:%SZ") for k in range(hours)]
    labels, day = [], calendar_label(first, granularity)
    while day <= last:
        labels.append(day.isoformat())
        day = next_month(day) if granularity == "month" else day + timedelta(
            days=7 if granularity == "week" else 1)
    return labels


def label_of(t: datetime, first: date, granularity: str, zone: ZoneInfo) -> str:
    if granularity == "hour":
        k = int((t - midnight(first, zone)) // timedelta(hours=1))
        return (midnight(first, zone) + timedelta(hours=k)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return calendar_label(t.astimezone(zone).date(), granularity).isoformat()


def expected(events, first: date, last: date, granularity: str = "day", tz: str = "UTC",
             period: str | None = None, config: str | None = None) -> dict:
    zone = ZoneInfo(tz)
    start, end = midnight(first, zone), midnight(last + timedelta(days=1), zone)
    chosen = [e for e in events if start <= ts_of(e) < end
              and (config is None or e.get("modelConfigId") == config)]

    points = {label: {"cost": Decimal(0), "date": label, "requests": 0, "tokens": 0}
              for label in grid(first, last, granularity, zone)}
    summary = dict.fromkeys(("totalCost", "totalRequests", "totalTokens", "platformCost",
                             "platformTokens", "userCost", "userTokens"), 0)
    per_model = defaultdict(list)
    for e in chosen:
        cost, tokens = cost_of(e), e.get("tokens", 0)
        point = points[label_of(ts_of(e), first, granularity, zone)]
        point["cost"] += cost
        point["requests"] += 1
        point["tokens"] += tokens
        summary["totalCost"] += cost
        summary["totalRequests"] += 1
        summary["totalTokens"] += tokens
        summary[f"{e['billing']}Cost"] += cost
        summary[f"{e['billing']}Tokens"] += tokens
        per_model[e["modelId"]].append(e)

    usage = {}
    for model_id, rows in per_model.items():
        newest = max(rows, key=ts_of)
        named = [e for e in rows if "modelName" in e]
        cost = sum((cost_of(e) for e in rows), Decimal(0))
        usage[model_id] = {
            "avgCostPerRequest": (cost / len(rows)).quantize(Decimal("0.000001"), ROUND_HALF_UP),
            "modelId": model_id, "provider": newest.get("provider"),
            "requestCount": len(rows), "totalCost": cost,
            "totalTokens": sum(e.get("tokens", 0) for e in rows),
            "modelName": max(named, key=ts_of)["modelName"] if named else model_id}
    ordered = dict(sorted(usage.items(), key=lambda kv: (-kv[1]["requestCount"], kv[0])))
    return {"meta": {"endDate": last.isoformat(), "startDate": first.isoformat(),
                     "dataSource": DATA_SOURCE, "granularity": granularity, "period": period},
            "summary": summary, "usageByModel": ordered, "timeSeries": list(points.values())}


def preset_days(period: str, today: date) -> tuple[date, date]:
    """The documented meaning of each preset, from today's local date."""
    first_of_month = date(today.year, today.month, 1)
    end_of_last_month = first_of_month - timedelta(days=1)
    return {
        "today": (today, today),
        "yesterday": (today - timedelta(days=1),) * 2,
        "last_7_days": (today - timedelta(days=6), today),
        "last_30_days": (today - timedelta(days=29), today),
        "current_month": (first_of_month, today),
        "last_month": (date(end_of_last_month.year, end_of_last_month.month, 1),
                       end_of_last_month),
        "current_year": (date(today.year, 1, 1), today),
    }[period]


# --- checking -----------------------------------------------------------------------------

def call(client, params=None, headers=None):
    r = client.get(PATH, params=params or {}, headers=headers or {})
    assert r.status_code != 500, f"500 for {params}: {r.text}"
    return r


def ok(client, headers, params=None) -> dict:
    r = call(client, params, headers)
    assert r.status_code == 200, f"{params} -> {r.status_code}: {r.text}"
    assert r.headers["content-type"].startswith("application/json")
    return loads(r.text)


def ok_today(client, headers, params, tz="UTC") -> tuple[dict, date]:
    """The response and the local date it was computed on (retried across midnight)."""
    for _ in range(3):
        before = datetime.now(ZoneInfo(tz)).date()
        body = ok(client, headers, params)
        if datetime.now(ZoneInfo(tz)).date() == before:
            return body, before
    pytest.fail("the date kept changing during the request")


def check_numbers(body: dict) -> None:
    """Money is a JSON number (never a string), counts are integers."""
    money = ("totalCost", "platformCost", "userCost")
    for key in money:
        assert isinstance(body["summary"][key], (int, Decimal)), body["summary"]
    for key in ("totalRequests", "totalTokens", "platformTokens", "userTokens"):
        assert type(body["summary"][key]) is int
    for m in body["usageByModel"].values():
        assert isinstance(m["totalCost"], (int, Decimal))
        assert isinstance(m["avgCostPerRequest"], (int, Decimal))
        assert type(m["requestCount"]) is int and type(m["totalTokens"]) is int
    for p in body["timeSeries"]:
        assert isinstance(p["cost"], (int, Decimal))
        assert type(p["requests"]) is int and type(p["tokens"]) is int


def check(body: dict, want: dict) -> None:
    """The whole response: shape and key order as in the seed, then every value."""
    assert list(body) == ["meta", "summary", "usageByModel", "timeSeries"]
    assert list(body["meta"]) == ["endDate", "startDate", "dataSource", "granularity", "period"]
    assert list(body["summary"]) == ["totalCost", "totalRequests", "totalTokens",
                                     "platformCost", "platformTokens", "userCost", "userTokens"]
    for m in body["usageByModel"].values():
        assert list(m) == ["avgCostPerRequest", "modelId", "provider", "requestCount",
                           "totalCost", "totalTokens", "modelName"]
    for p in body["timeSeries"]:
        assert list(p) == ["cost", "date", "requests", "tokens"]
    check_numbers(body)
    assert body["meta"] == want["meta"]
    assert body["summary"] == want["summary"]
    assert list(body["usageByModel"]) == list(want["usageByModel"])
    for model_id, usage in want["usageByModel"].items():
        assert body["usageByModel"][model_id] == usage, model_id
    assert [p["date"] for p in body["timeSeries"]] == [p["date"] for p in want["timeSeries"]]
    assert body["timeSeries"] == want["timeSeries"]


def error(r, status: int, code: str) -> dict:
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text}"
    assert r.headers["content-type"].startswith("application/json")
    body = loads(r.text)
    assert list(body) == ["error"] and list(body["error"]) == ["code", "message", "details"]
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    for d in body["error"]["details"]:
        assert list(d) == ["field", "message"] and d["message"]
    return body


def bare(org: Org) -> dict:
    return {"Authorization": org.key}


# --- presets, granularities, dates ---------------------------------------------------------

def test_nothing_given_means_the_last_7_days_by_day(client, org):
    body, today = ok_today(client, bare(org), {})
    first, last = today - timedelta(days=6), today
    assert len(body["timeSeries"]) == 7
    check(body, expected(org.events, first, last, period="last_7_days"))
    assert body["summary"]["totalRequests"] > 0 and len(body["usageByModel"]) > 1


@pytest.mark.parametrize("period", PRESETS)
def test_each_period_preset(client, org, period):
    body, today = ok_today(client, org.headers, {"period": period})
    first, last = preset_days(period, today)
    check(body, expected(org.events, first, last, period=period))


@pytest.mark.parametrize("period,granularity", [
    ("today", "hour"), ("yesterday", "hour"), ("last_7_days", "hour"), ("last_30_days", "week"),
    ("current_year", "month"), ("last_month", "week"), ("today", "month")])
def test_presets_in_other_granularities(client, org, period, granularity):
    body, today = ok_today(client, org.headers, {"period": period, "granularity": granularity})
    first, last = preset_days(period, today)
    want = expected(org.events, first, last, granularity, period=period)
    check(body, want)
    if granularity == "hour":
        assert len(body["timeSeries"]) == 24 * ((last - first).days + 1)


@pytest.mark.parametrize("first,last,granularity", [
    ("2023-03-01", "2023-03-31", "day"),
    ("2023-03-10", "2023-03-14", "hour"),
    ("2023-01-01", "2023-06-30", "week"),  # a Sunday: the first week starts 2022-12-26
    ("2022-12-15", "2023-12-31", "month"),
    ("2023-03-12", "2023-03-12", "day"),
    ("2022-12-28", "2023-01-03", "day"),
])
def test_explicit_dates(client, org, first, last, granularity):
    body = ok(client, org.headers, {"startDate": first, "endDate": last,
                                    "granularity": granularity})
    check(body, expected(org.events, date.fromisoformat(first), date.fromisoformat(last),
                         granularity))


def test_first_week_and_month_may_start_before_start_date(client, org):
    body = ok(client, org.headers, {"startDate": "2023-01-01", "endDate": "2023-01-10",
                                    "granularity": "week"})
    assert [p["date"] for p in body["timeSeries"]] == ["2022-12-26", "2023-01-02",
                                                       "2023-01-09"]
    outside = [e for e in org.events
               if datetime(2022, 12, 26, tzinfo=UTC) <= ts_of(e) < datetime(2023, 1, 1, tzinfo=UTC)]
    inside = [e for e in org.events
              if datetime(2023, 1, 1, tzinfo=UTC) <= ts_of(e) < datetime(2023, 1, 2, tzinfo=UTC)]
    assert outside, "the data should have events the first bucket must leave out"
    assert body["timeSeries"][0]["requests"] == len(inside)


def test_start_date_alone_runs_to_today(client, org):
    body, today = ok_today(client, org.headers, {"startDate": "2023-12-01",
                                                 "granularity": "month"})
    check(body, expected(org.events, date(2023, 12, 1), today, "month"))


def test_a_range_without_events_is_zero_filled(client, org):
    body = ok(client, org.headers, {"startDate": "2010-02-01", "endDate": "2010-03-01"})
    assert body["usageByModel"] == {}
    assert len(body["timeSeries"]) == 29
    check(body, expected(org.events, date(2010, 2, 1), date(2010, 3, 1)))
    assert all(v == 0 for v in body["summary"].values())


@pytest.mark.parametrize("tz,params", [
    ("Asia/Kolkata", {"period": "last_7_days"}),
    ("Asia/Kolkata", {"period": "today", "granularity": "hour"}),
    ("America/New_York", {"startDate": "2023-03-11", "endDate": "2023-03-13",
                          "granularity": "hour"}),
    ("America/New_York", {"startDate": "2023-03-11", "endDate": "2023-03-13"}),
    ("Pacific/Kiritimati", {"period": "current_month", "granularity": "week"}),
])
def test_time_zones(client, org, tz, params):
    body, today = ok_today(client, org.headers, {**params, "timezone": tz}, tz)
    period = params.get("period")
    first, last = (preset_days(period, today) if period else
                   (date.fromisoformat(params["startDate"]), date.fromisoformat(params["endDate"])))
    check(body, expected(org.events, first, last, params.get("granularity", "day"), tz,
                         period=period))
    if tz == "America/New_York" and params.get("granularity") == "hour":
        assert len(body["timeSeries"]) == 24 + 23 + 24  # 2023-03-12 lost an hour
    if tz == "Asia/Kolkata" and params.get("granularity") == "hour":
        assert all(p["date"].endswith(":30:00Z") for p in body["timeSeries"])


# --- filters, money, tenancy ---------------------------------------------------------------

@pytest.mark.parametrize("params", [
    {"period": "last_30_days"}, {"startDate": "2023-03-10", "endDate": "2023-03-14",
                                 "granularity": "hour"}])
@pytest.mark.parametrize("config", ["cfg-a", "cfg-b"])
def test_model_config_filter(client, org, params, config):
    body, today = ok_today(client, org.headers, {**params, "modelConfigId": config})
    period = params.get("period")
    first, last = (preset_days(period, today) if period else
                   (date.fromisoformat(params["startDate"]), date.fromisoformat(params["endDate"])))
    want = expected(org.events, first, last, params.get("granularity", "day"), period=period,
                    config=config)
    check(body, want)
    unfiltered = expected(org.events, first, last, params.get("granularity", "day"))
    assert 0 < want["summary"]["totalRequests"] < unfiltered["summary"]["totalRequests"]


def test_unknown_and_foreign_config_ids_match_nothing(client, orgs):
    a, b = orgs
    only_b = [{"eventId": "only-b", "ts": (NOW - timedelta(hours=1)).isoformat(),
               "modelId": "gpt-3.5-turbo", "billing": "user", "modelConfigId": "cfg-only-b",
               "cost": "1.5", "tokens": 10}]
    post(client, b.headers, only_b)
    b.events.extend(only_b)
    params = {"period": "last_7_days"}
    foreign = ok(client, a.headers, {**params, "modelConfigId": "cfg-only-b"})
    missing = ok(client, a.headers, {**params, "modelConfigId": "cfg-nowhere"})
    assert foreign == missing
    assert foreign["usageByModel"] == {} and foreign["summary"]["totalRequests"] == 0
    assert ok(client, b.headers, {**params, "modelConfigId": "cfg-only-b"})[
        "summary"]["totalRequests"] == 1


def test_two_orgs_with_the_same_ids_never_meet(client, orgs):
    a, b = orgs
    assert {e["modelId"] for e in a.events} == {e["modelId"] for e in b.events}
    for params in ({"startDate": "2023-01-01", "endDate": "2023-12-31", "granularity": "month"},
                   {"startDate": "2023-03-10", "endDate": "2023-03-14", "modelConfigId": "cfg-a"}):
        bodies = [ok(client, o.headers, params) for o in (a, b)]
        for o, body in zip((a, b), bodies):
            check(body, expected(o.events, date.fromisoformat(params["startDate"]),
                                 date.fromisoformat(params["endDate"]),
                                 params.get("granularity", "day"),
                                 config=params.get("modelConfigId")))
        assert bodies[0]["summary"] != bodies[1]["summary"]


def test_exact_money_platform_user_split_and_average(client, new_org):
    org = new_org()
    day = date(2021, 6, 15)
    at = lambda h, m=0: datetime(2021, 6, 15, h, m, tzinfo=UTC).isoformat()  # noqa: E731
    events = [  # 0.1 + 0.2 is not 0.3 in floating point; the averages need rounding half-up
        {"eventId": "1", "ts": at(1), "modelId": "m1", "billing": "platform", "cost": "0.1",
         "tokens": 100},
        {"eventId": "2", "ts": at(2), "modelId": "m1", "billing": "user", "cost": 0.2,
         "tokens": 50},
        {"eventId": "3", "ts": at(3), "modelId": "m1", "billing": "platform", "cost": "0.000001"},
        {"eventId": "4", "ts": at(4), "modelId": "m2", "billing": "user", "cost": "0.000001",
         "modelName": "Model Two", "provider": "Acme"},
        {"eventId": "5", "ts": at(5), "modelId": "m2", "billing": "user", "cost": "0",
         "tokens": 7, "provider": "Acme"},  # no modelName: the newest name sent stays
        {"eventId": "6", "ts": at(6), "modelId": "m3", "billing": "platform",
         "cost": "99999999999999.999999", "tokens": 9_000_000_000},
        {"eventId": "7", "ts": at(7), "modelId": "m3", "billing": "platform",
         "cost": "99999999999999.999999"},
    ]
    post(client, org.headers, events)
    r = call(client, {"startDate": day.isoformat(), "endDate": day.isoformat(),
                      "granularity": "hour"}, bare(org))
    assert r.status_code == 200, r.text
    body = loads(r.text)
    check(body, expected(events, day, day, "hour"))
    summary = body["summary"]
    assert summary["platformCost"] + summary["userCost"] == summary["totalCost"]
    assert summary["platformTokens"] + summary["userTokens"] == summary["totalTokens"]
    m1_cost = sum(Decimal(str(e["cost"])) for e in events if e["modelId"] == "m1")
    assert f'"totalCost":{m1_cost}' in r.text.replace(" ", "")  # 0.300001, not a float
    assert body["usageByModel"]["m2"]["avgCostPerRequest"] == Decimal("0.000001")  # 0.0000005 up
    assert body["usageByModel"]["m1"]["modelName"] == "m1"
    assert body["usageByModel"]["m1"]["provider"] is None
    assert body["usageByModel"]["m2"]["modelName"] == "Model Two"


def test_every_model_is_listed_not_only_the_top(client, new_org):
    org = new_org()
    events = [{"eventId": f"e{i}", "ts": datetime(2021, 7, 1, 0, 0, i % 60, tzinfo=UTC)
               .isoformat(), "modelId": f"model-{i:04d}", "billing": "user", "cost": "0.01"}
              for i in range(1200)]
    post(client, org.headers, events)
    body = ok(client, org.headers, {"startDate": "2021-07-01", "endDate": "2021-07-01"})
    check(body, expected(events, date(2021, 7, 1), date(2021, 7, 1)))
    assert len(body["usageByModel"]) == 1200


# --- authentication and errors -------------------------------------------------------------

def test_bare_and_bearer_keys_give_the_same_answer(client, org):
    params = {"startDate": "2023-03-01", "endDate": "2023-03-31"}
    assert ok(client, bare(org), params) == ok(client, org.headers, params)
    read_only_key = org.read_only["Authorization"].removeprefix("Bearer ")
    assert ok(client, {"Authorization": read_only_key}, params) == ok(client, org.headers,
                                                                         params)


def test_bad_keys_get_one_identical_401(client, org, db):
    from stats_gateway.auth import create_key
    revoked, expired = create_key(db, org.id), create_key(db, org.id)
    db.execute("UPDATE api_keys SET revoked_at = now() WHERE key_id = %s", (revoked[4:20],))
    db.execute("UPDATE api_keys SET expires_at = now() - interval '1 second' "
               "WHERE key_id = %s", (expired[4:20],))
    wrong_secret = org.key[:-4] + ("AAAA" if not org.key.endswith("AAAA") else "BBBB")
    variants = [None, "", "Bearer", "Bearer junk", "junk", f"Basic {org.key}", wrong_secret,
                f"Bearer {wrong_secret}", revoked, f"Bearer {expired}", f"Token {org.key}",
                "sgk_" + "0" * 16 + "_" + "x" * 43]
    bodies = set()
    for value in variants:
        headers = {} if value is None else {"Authorization": value}
        r = call(client, {"period": "bogus"}, headers)  # auth is checked first
        error(r, 401, "unauthorized")
        assert r.headers["www-authenticate"] == "Bearer"
        assert loads(r.text)["error"]["details"] == []
        bodies.add(r.text)
    assert len(bodies) == 1


def test_a_key_without_read_permission_gets_403(client, org):
    ingest_key = org.ingest_only["Authorization"]
    for headers in (org.ingest_only, {"Authorization": ingest_key.removeprefix("Bearer ")}):
        body = error(call(client, {}, headers), 403, "forbidden")
        assert body["error"]["details"] == []


def fields_of(body: dict) -> list[str]:
    return sorted(d["field"] for d in body["error"]["details"])


@pytest.mark.parametrize("params,fields", [
    ({"period": "last_week"}, ["period"]),
    ({"period": ""}, ["period"]),
    ({"startDate": "2024-13-01", "endDate": "2024-12-01"}, ["startDate"]),
    ({"startDate": "2024-02-30", "endDate": "2024-03-01"}, ["startDate"]),
    ({"startDate": "2024-1-1", "endDate": "20240102"}, ["endDate", "startDate"]),
    ({"startDate": "2024-05-01T00:00:00Z", "endDate": "2024-05-02"}, ["startDate"]),
    ({"startDate": "1999-12-31", "endDate": "2100-01-01"}, ["endDate", "startDate"]),
    ({"startDate": "2024-05-07", "endDate": "2024-05-01"}, ["endDate"]),
    ({"endDate": "2024-05-01"}, ["startDate"]),
    ({"startDate": "2099-01-01"}, ["startDate"]),
    ({"granularity": "minute"}, ["granularity"]),
    ({"granularity": "Day"}, ["granularity"]),
    ({"granularity": ""}, ["granularity"]),
    ({"startDate": ""}, ["startDate"]),
    ({"period": "today", "startDate": "2024-05-01"}, ["period"]),
    ({"period": "today", "startDate": "2024-05-01", "endDate": "2024-05-02"}, ["period"]),
    ({"period": "today", "endDate": "2024-05-02"}, ["period"]),
    ({"timezone": "Mars/Olympus"}, ["timezone"]),
    ({"timezone": "../etc/passwd"}, ["timezone"]),
    ({"modelConfigId": ""}, ["modelConfigId"]),
    ({"modelConfigId": "x" * 201}, ["modelConfigId"]),
    ({"model": "gpt-4"}, ["model"]),
    ({"startDate": "2020-01-01", "endDate": "2024-12-31", "granularity": "hour"},
     ["granularity"]),
    ({"startDate": "2000-01-01", "endDate": "2099-12-31"}, ["granularity"]),
    ({"period": "nope", "granularity": "minute", "startDate": "x", "timezone": "Nowhere/X",
      "limit": "5"}, ["granularity", "limit", "period", "period", "startDate", "timezone"]),
])
def test_bad_parameters_are_all_listed_in_one_400(client, org, params, fields):
    body = error(call(client, params, org.headers), 400, "invalid_parameters")
    assert fields_of(body) == fields, body


def test_repeated_parameters_are_refused(client, org):
    r = client.get(f"{PATH}?period=today&period=yesterday&granularity=day&granularity=day",
                   headers=org.headers)
    assert fields_of(error(r, 400, "invalid_parameters")) == ["granularity", "period"]


def test_too_many_hours_names_the_granularities_that_fit(client, org):
    body = error(call(client, {"startDate": "2020-01-01", "endDate": "2024-12-31",
                               "granularity": "hour"}, org.headers), 400, "invalid_parameters")
    message = body["error"]["details"][0]["message"]
    assert "10,000" in message and "day, week, month" in message
    body = error(call(client, {"startDate": "2000-01-01", "endDate": "2099-12-31"},
                      org.headers), 400, "invalid_parameters")
    assert "week, month" in body["error"]["details"][0]["message"]


def test_ten_thousand_buckets_is_the_limit(client, org):
    first = date(2010, 1, 1)
    fits = first + timedelta(days=10_000 // 24 - 1)  # 416 days = 9,984 hours
    body = ok(client, org.headers, {"startDate": first.isoformat(), "endDate": fits.isoformat(),
                                    "granularity": "hour"})
    assert len(body["timeSeries"]) == 416 * 24
    error(call(client, {"startDate": first.isoformat(),
                        "endDate": (fits + timedelta(days=1)).isoformat(),
                        "granularity": "hour"}, org.headers), 400, "invalid_parameters")
    days = first + timedelta(days=9_999)
    assert len(ok(client, org.headers, {"startDate": first.isoformat(),
                                        "endDate": days.isoformat()})["timeSeries"]) == 10_000
    error(call(client, {"startDate": first.isoformat(),
                        "endDate": (days + timedelta(days=1)).isoformat()}, org.headers),
          400, "invalid_parameters")


def test_database_failure_is_503_and_a_bug_is_500_in_the_same_envelope(client, org,
                                                                       monkeypatch):
    engine = client.app.state.engine

    async def broken(*args, **kwargs):
        raise RuntimeError("secret traceback text")

    monkeypatch.setattr(engine, "total_values", broken)
    r = client.get(PATH, headers=org.headers)
    body = error(r, 500, "internal_error")
    assert "secret" not in r.text and "Traceback" not in r.text and r.headers["x-request-id"]
    monkeypatch.undo()

    def down(*args, **kwargs):
        raise psycopg.OperationalError("connection refused")

    monkeypatch.setattr(engine.pool, "connection", down)
    body = error(client.get(PATH, headers=org.headers), 503, "service_unavailable")
    assert body["error"]["details"] == []


@pytest.mark.parametrize("query", [
    "period=%00", "startDate=%00&endDate=%00", "modelConfigId=%00", "timezone=%00",
    "startDate=9999-99-99&endDate=0000-00-00", "startDate=0001-01-01&endDate=9999-12-31",
    "granularity=hour&period=current_year", "timezone=" + "A" * 500, "modelConfigId=%F0%9F%98%80",
    "startDate=%EF%BF%BD", "period=today&granularity=week&timezone=Etc/GMT%2B12",
    "timezone=Etc/GMT-14&period=last_month&granularity=hour", "a=1&b=2&c=3",
])
def test_odd_input_never_yields_500(client, org, query):
    r = client.get(f"{PATH}?{query}", headers=org.headers)
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        error(r, 400, "invalid_parameters")


def test_other_methods_are_refused_without_a_500(client, org):
    for method in ("post", "put", "patch", "delete"):
        r = getattr(client, method)(PATH, headers=org.headers)
        body = error(r, 405, "method_not_allowed")
        assert r.headers["allow"] == "GET, HEAD, OPTIONS" and body["error"]["details"] == []


def test_the_endpoint_is_in_the_openapi_schema(client):
    r = client.get("/schema/openapi.json")
    assert r.status_code == 200
    assert "/v1/model-usage" in r.json()["paths"]
