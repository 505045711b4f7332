"""The standalone client (clients/python, ``stats_gateway_client``) against a live server:
typed values, exact bytes, typed errors, the async variant, CSV, pagination and the name
checks made before sending."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import msgspec
import pytest

from domains import DOMAINS
from stats_gateway_client import (
    AsyncStatsClient, IngestResponse, StatsApiError, StatsClient, UnknownNameError, wire_params,
)
from support import HTTP, GENERATORS, generate, generate_new, live_server, random_times

DAY = datetime(2026, 3, 2, tzinfo=UTC)
END = DAY + timedelta(days=1)
_encoder = msgspec.json.Encoder(decimal_format="number")


@pytest.fixture(scope="module")
def base_url(database_url, client):  # `client` has migrated the database
    with live_server(database_url) as url:
        yield url


@pytest.fixture
def org_client(base_url, new_org):
    org = new_org()
    with StatsClient(base_url, org.key, timeout=30) as stats:
        yield org, stats


def raw_get(base_url, org, path, params) -> bytes:
    r = HTTP.get(base_url + path, params=params, headers=org.headers, timeout=30)
    assert r.status_code == 200, r.text
    return r.content


CREDITS = [  # hours after DAY, kind, amount
    (1, "ai", Decimal("1.25")), (2, "ai", "0.000001"), (3, "storage", 10),
    (8, "purchase", "100.5"), (9, "ai", Decimal("3.333333")), (20, "grant", "0.1"),
    (22, "storage", "2.000002"),
]


def credit_events():
    return [{"eventId": f"c{i}", "ts": DAY + timedelta(hours=h), "kind": kind, "amount": amount}
            for i, (h, kind, amount) in enumerate(CREDITS)]


def test_ingest_then_series_gives_typed_exact_values(org_client, base_url):
    org, stats = org_client
    events = credit_events()
    first = stats.ingest("credits", events[:3])
    assert first == IngestResponse(success=True, domain="credits", received=3, inserted=3,
                                   duplicates=0)
    again = stats.ingest("credits", events)
    assert (again.received, again.inserted, again.duplicates) == (7, 4, 3)

    body = stats.series("credits", start=DAY, end=END, time_bucket_size="6h")
    assert type(body).__name__ == "CreditsTimeSeriesResponse"
    assert body.meta.time_bucket_size == "6h" and body.meta.scope == "org"
    assert body.meta.start == int(DAY.timestamp()) and body.meta.metric == "creditsTotal"
    expected = defaultdict(Decimal)
    for hours, kind, amount in CREDITS:
        if kind in ("ai", "storage"):
            expected[hours // 6] += Decimal(str(amount))
    assert [p.ts for p in body.series] == [int((DAY + timedelta(hours=6 * i)).timestamp())
                                          for i in range(4)]
    for i, point in enumerate(body.series):
        assert isinstance(point.creditsTotal, Decimal)
        assert point.creditsTotal == expected[i]
    assert body.series[0].creditsAi == Decimal("1.250001")
    assert body.series[1].creditsPurchased == Decimal("100.5")
    total = sum(expected.values())
    assert body.summary.total == total and isinstance(body.summary.total, Decimal)
    raw = raw_get(base_url, org, "/v2/stats/credits",
                  {"scope": "org", "start": DAY.isoformat(), "end": END.isoformat(),
                   "timeBucketSize": "6h"})
    assert _encoder.encode(body) == raw  # exact decimals survive the round trip


def test_breakdown_typed_attributes_and_series(org_client, base_url):
    org, stats = org_client
    events = [{"eventId": f"m{i}", "ts": DAY + timedelta(hours=i), "modelId": model,
               "modelName": f"{model} r{i}", "provider": provider, "billing": billing,
               "tokens": tokens, "cost": cost}
              for i, (model, provider, billing, tokens, cost) in enumerate([
                  ("gpt-4o", "OpenAI", "platform", 100, "0.5"),
                  ("gpt-4o", "OpenAI", "user", 50, "0.25"),
                  ("claude-3", "Anthropic", "platform", 10, "1.000001")])]
    assert stats.ingest("model-usage", events).inserted == 3
    params = {"start": DAY, "end": END, "time_bucket_size": "12h", "include_series": True,
              "sort": "tokens", "order": "asc"}
    body = stats.breakdown("model-usage", "models", **params)
    assert type(body).__name__ == "ModelUsageModelsBreakdownResponse"
    assert body.meta.includes_series is True and body.meta.sort == "tokens"
    assert [e.entityId for e in body.entities] == ["claude-3", "gpt-4o"]  # tokens 10 < 150
    gpt = body.entities[1]
    assert gpt.entityName == "gpt-4o r1" and gpt.provider == "OpenAI"
    assert gpt.totals.requests == 2 and gpt.totals.tokens == 150
    assert gpt.totals.cost == Decimal("0.75") and gpt.totals.userCost == Decimal("0.25")
    assert [p.requests for p in gpt.series] == [2, 0]
    raw = raw_get(base_url, org, "/v2/stats/model-usage/breakdown/models",
                  {"scope": "org", "start": DAY.isoformat(), "end": END.isoformat(),
                   "timeBucketSize": "12h", "includeSeries": "true", "sort": "tokens",
                   "order": "asc"})
    assert _encoder.encode(body) == raw


def test_errors_raise_typed_problems(org_client, base_url):
    org, stats = org_client
    with pytest.raises(StatsApiError) as caught:
        stats.series("storage", scope="workspace", id="no-such-workspace", window="24h")
    assert caught.value.status == 404 and caught.value.error_code == "not_found"
    assert caught.value.request_id and caught.value.problem.success is False

    with pytest.raises(StatsApiError) as caught:
        stats.series("storage", window="2h")
    error = caught.value
    assert (error.status, error.error_code) == (400, "invalid_parameters")
    assert [e.field for e in error.errors] == ["window"]

    with StatsClient(base_url, "sgk_0123456789abcdef_wrong") as stranger:
        with pytest.raises(StatsApiError) as caught:
            stranger.series("storage", window="24h")
    assert (caught.value.status, caught.value.error_code) == (401, "unauthorized")

    with pytest.raises(StatsApiError) as caught:
        stats.ingest("credits", [{"eventId": "ok", "ts": DAY, "kind": "ai", "amount": "1"},
                                 {"eventId": "bad", "ts": DAY, "kind": "ai", "amount": "-1"}])
    assert (caught.value.status, caught.value.error_code) == (422, "invalid_events")
    assert [(e.index, e.field) for e in caught.value.errors] == [(1, "amount")]


def test_unknown_names_are_refused_before_anything_is_sent(base_url, new_org):
    org = new_org()
    sent = []
    http = httpx.Client(base_url=base_url, timeout=30,
                        event_hooks={"request": [sent.append]})
    with StatsClient(base_url, org.key, http=http) as stats:
        for call in (lambda: stats.series("no-such-domain", window="24h"),
                     lambda: stats.series("storage", "nope", window="24h"),
                     lambda: stats.breakdown("storage", "nonexistent", window="24h"),
                     lambda: list(stats.entities("strage", "models", window="24h")),
                     lambda: stats.series_csv("ai ", window="24h"),
                     lambda: stats.ingest("../v2/keys", [{"eventId": "e"}])):
            with pytest.raises(UnknownNameError) as caught:
                call()
            assert "unknown" in str(caught.value)
        assert sent == []
        # the server itself would have said 404: the check saves a round trip, it hides nothing
        assert stats.series("storage", window="24h").success is True
    assert len(sent) == 1
    assert HTTP.get(base_url + "/v2/stats/no-such-domain", params={"scope": "org"},
                     headers=org.headers).status_code == 404


def test_python_names_become_wire_parameters():
    when = datetime(2026, 3, 2, 12, tzinfo=UTC)
    assert wire_params({"time_bucket_size": "1h", "include_series": True, "apiKeyId": "k",
                        "api_key_id": "k2", "start": when, "limit": 5, "metric": None}) == {
        "timeBucketSize": "1h", "includeSeries": "true", "apiKeyId": "k2",
        "start": "2026-03-02T12:00:00+00:00", "limit": "5"}
    with pytest.raises(ValueError):
        wire_params({"start": datetime(2026, 3, 2)})


def _endpoints():
    for domain in DOMAINS:
        for view in domain.series:
            yield domain.name, "series", view.path
        for dim in domain.dimensions:
            yield domain.name, "breakdown", dim.by


@pytest.fixture(scope="module")
def loaded(base_url, db):
    """One org holding generated events of every domain."""
    from conftest import Org
    org = Org(db, f"client-every-endpoint-{uuid.uuid4().hex[:8]}")
    with StatsClient(base_url, org.key) as stats:
        for domain in DOMAINS:
            times = random_times(domain.name, DAY, END, 60)
            make = generate if domain.name in GENERATORS else generate_new
            result = stats.ingest(domain.name, make(domain.name, 3, times))
            assert result.inserted == 60
    return org


@pytest.mark.parametrize("domain, kind, name", list(_endpoints()))
def test_every_endpoint_decodes_and_reencodes_to_the_servers_bytes(base_url, loaded, domain,
                                                                   kind, name):
    wire = {"scope": "org", "start": DAY.isoformat(), "end": END.isoformat(),
            "timeBucketSize": "6h"}
    with StatsClient(base_url, loaded.key) as stats:
        if kind == "series":
            body = stats.series(domain, name, start=DAY, end=END, time_bucket_size="6h")
            path = f"/v2/stats/{domain}" + (f"/{name}" if name else "")
            assert len(body.series) == 4
        else:
            wire["includeSeries"] = "true"
            body = stats.breakdown(domain, name, start=DAY, end=END, time_bucket_size="6h",
                                   include_series=True)
            path = f"/v2/stats/{domain}/breakdown/{name}"
            assert body.entities and all(len(e.series) == 4 for e in body.entities)
    assert _encoder.encode(body) == raw_get(base_url, loaded, path, wire)


MODELS = [  # model, events, tokens per event: totals differ, so the order is known
    ("m-a", 1, 70), ("m-b", 2, 30), ("m-c", 3, 5), ("m-d", 1, 11), ("m-e", 4, 9),
    ("m-f", 2, 1), ("m-g", 1, 200)]


def model_events():
    events, n = [], 0
    for model, count, tokens in MODELS:
        for _ in range(count):
            events.append({"eventId": f"u{n}", "ts": DAY + timedelta(hours=n % 24),
                           "modelId": model, "provider": "p", "billing": "platform",
                           "tokens": tokens, "cost": "0.01"})
            n += 1
    return events


def expected_by_tokens():
    totals = {model: count * tokens for model, count, tokens in MODELS}
    return sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))


def test_entities_walks_every_page_in_order(org_client):
    org, stats = org_client
    assert stats.ingest("model-usage", model_events()).inserted == sum(c for _, c, _ in MODELS)
    pages = []
    stats._http.event_hooks["request"].append(lambda r: pages.append(r.url.params["offset"]))
    walked = list(stats.entities("model-usage", "models", page_size=3, start=DAY, end=END,
                                 sort="tokens"))
    assert [(e.entityId, e.totals.tokens) for e in walked] == expected_by_tokens()
    assert pages == ["0", "3", "6"]  # 7 entities, pages of 3
    with pytest.raises(ValueError):
        list(stats.entities("model-usage", "models", page_size=3, limit=5, window="24h"))


def test_csv_helpers_answer_the_servers_csv(org_client, base_url):
    org, stats = org_client
    stats.ingest("credits", credit_events())
    text = stats.series_csv("credits", start=DAY, end=END, time_bucket_size="6h")
    rows = list(csv.DictReader(io.StringIO(text)))
    expected = defaultdict(Decimal)
    for hours, kind, amount in CREDITS:
        if kind in ("ai", "storage"):
            expected[hours // 6] += Decimal(str(amount))
    assert [datetime.fromisoformat(r["ts"]) for r in rows] == [
        DAY + timedelta(hours=6 * i) for i in range(4)]
    assert [Decimal(r["creditsTotal"]) for r in rows] == [expected[i] for i in range(4)]
    wire = {"scope": "org", "start": DAY.isoformat(), "end": END.isoformat(),
            "timeBucketSize": "6h"}
    raw = HTTP.get(base_url + "/v2/stats/credits", params=wire,
                    headers={**org.headers, "Accept": "text/csv"}, timeout=30)
    assert raw.headers["content-type"].startswith("text/csv") and raw.text == text

    stats.ingest("model-usage", model_events())
    page = stats.breakdown_csv("model-usage", "models", start=DAY, end=END, sort="tokens",
                               limit=2)
    rows = list(csv.DictReader(io.StringIO(page)))
    assert [(r["entityId"], int(r["tokens"])) for r in rows] == expected_by_tokens()[:2]

    with pytest.raises(StatsApiError) as caught:  # the server refuses CSV with series
        stats.breakdown_csv("model-usage", "models", window="24h", include_series=True)
    assert caught.value.status == 400


def test_the_async_client_does_what_the_sync_one_does(base_url, new_org):
    org = new_org()

    async def scenario():
        async with AsyncStatsClient(base_url, org.key, timeout=30) as stats:
            ingested = await stats.ingest("model-usage", model_events())
            assert ingested.inserted == sum(c for _, c, _ in MODELS)
            series, page = await asyncio.gather(
                stats.series("model-usage", start=DAY, end=END, time_bucket_size="1d"),
                stats.breakdown("model-usage", "models", start=DAY, end=END, sort="tokens"))
            walked = [e async for e in stats.entities("model-usage", "models", page_size=2,
                                                      start=DAY, end=END, sort="tokens")]
            text = await stats.series_csv("model-usage", start=DAY, end=END,
                                          time_bucket_size="1d")
            with pytest.raises(UnknownNameError):
                await stats.series("model_usage", window="24h")
            with pytest.raises(StatsApiError) as caught:
                await stats.series("model-usage", window="2h")
            assert caught.value.error_code == "invalid_parameters"
            return series, page, walked, text

    series, page, walked, text = asyncio.run(scenario())
    assert type(series).__name__ == "ModelUsageTimeSeriesResponse"
    assert series.summary.total == sum(c for _, c, _ in MODELS)  # requests, the primary
    assert [p.tokens for p in series.series] == [sum(c * t for _, c, t in MODELS)]
    assert [(e.entityId, e.totals.tokens) for e in page.entities] == expected_by_tokens()
    assert [(e.entityId, e.totals.tokens) for e in walked] == expected_by_tokens()
    assert list(csv.DictReader(io.StringIO(text)))[0]["tokens"] == str(
        sum(c * t for _, c, t in MODELS))
