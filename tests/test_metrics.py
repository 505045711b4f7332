"""GET /metrics: Prometheus text that parses, counts exactly, and stays bounded."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from support import generate, post_events

SERIES = "/v2/stats/storage"
REQUESTS = "stats_gateway_http_requests_total"
LATENCY = "stats_gateway_http_request_duration_seconds"
INGESTED = "stats_gateway_ingest_events_total"


def scrape(client) -> tuple[str, dict]:
    """The raw text and every sample as {(name, sorted label pairs): value}."""
    r = client.get("/metrics")  # no API key: the output holds no tenant data
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8", r.headers
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in samples, f"duplicate sample {key}"
            samples[key] = s.value
    return r.text, samples


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(before: dict, after: dict, name: str, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(?:,|$)')


def check_exposition(text: str) -> None:
    """What the 0.0.4 format asks and the parser forgives: HELP then TYPE before a
    family's samples, and cumulative buckets ending in +Inf that equal _count."""
    declared: dict[str, str] = {}
    helped: set[str] = set()
    buckets: dict[tuple, list[tuple[float, float]]] = {}
    counts: dict[tuple, float] = {}
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split(" ")[2])
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name in helped and name not in declared, line
            declared[name] = kind
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, label_text, number = match.groups()
        labels = dict(LABEL.findall(label_text or ""))
        assert ",".join(f'{k}="{v}"' for k, v in labels.items()) == (label_text or ""), line
        float(number)
        if name in declared:
            assert declared[name] != "histogram", line
            continue
        family, _, suffix = name.rpartition("_")
        assert declared.get(family) == "histogram", f"sample before its TYPE: {line}"
        rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        if suffix == "bucket":
            buckets.setdefault((family, rest), []).append((float(labels["le"]), float(number)))
        elif suffix == "count":
            counts[(family, rest)] = float(number)
        else:
            assert suffix == "sum", line
    assert buckets, "no histogram samples"
    for key, series in buckets.items():
        bounds = [b for b, _ in series]
        assert bounds == sorted(bounds) and bounds[-1] == float("inf"), key
        numbers = [n for _, n in series]
        assert numbers == sorted(numbers), f"buckets not cumulative: {key}"
        assert numbers[-1] == counts[key], key


def test_known_requests_count_exactly_and_unknown_paths_collapse(client, new_org):
    org = new_org()
    client.get(SERIES, params={"scope": "org", "window": "24h"}, headers=org.headers)  # warm
    text, before = scrape(client)
    check_exposition(text)
    for _ in range(3):
        r = client.get(SERIES, params={"scope": "org", "window": "24h"}, headers=org.headers)
        assert r.status_code == 200, r.text
    tokens = [uuid.uuid4().hex, uuid.uuid4().hex]
    probes = [f"/{tokens[0]}", f"/v2/stats/{tokens[1]}/x"]
    for path in probes:
        assert client.get(path, headers=org.headers).status_code == 404
    assert client.get(SERIES, params={"scope": "org", "window": "24h"}).status_code == 401
    text, after = scrape(client)
    check_exposition(text)

    assert delta(before, after, REQUESTS, method="GET", route=SERIES, status="200") == 3
    assert delta(before, after, REQUESTS, method="GET", route=SERIES, status="401") == 1
    assert delta(before, after, REQUESTS, method="GET", route="unmatched", status="404") == 2
    assert delta(before, after, REQUESTS, method="GET", route="/metrics", status="200") == 1
    ok = {"method": "GET", "route": SERIES, "status_class": "2xx"}
    assert delta(before, after, LATENCY + "_count", **ok) == 3
    assert delta(before, after, LATENCY + "_bucket", **ok, le="+Inf") == 3
    assert delta(before, after, LATENCY + "_sum", **ok) > 0
    assert delta(before, after, LATENCY + "_count", method="GET", route=SERIES,
                 status_class="4xx") == 1
    # the only samples that changed are the ones these requests explain
    changed = {k for k in after if after[k] != before.get(k, 0.0)}
    routes = {dict(labels).get("route") for name, labels in changed if name.startswith(
        "stats_gateway_http")}
    assert routes == {SERIES, "unmatched", "/metrics"}, routes
    assert not any(token in text for token in tokens)
    assert org.id not in text


def test_random_paths_and_methods_add_no_series(client):
    client.get(f"/{uuid.uuid4().hex}")
    client.request("BREW", f"/{uuid.uuid4().hex}")
    scrape(client)  # so /metrics' own series exist too
    _, before = scrape(client)
    for _ in range(5):
        assert client.get(f"/{uuid.uuid4().hex}/{uuid.uuid4().hex}").status_code == 404
        client.request("BREW", f"/v2/stats/{uuid.uuid4().hex}")
    _, after = scrape(client)
    assert set(after) == set(before), set(after) ^ set(before)
    assert delta(before, after, REQUESTS, method="GET", route="unmatched", status="404") == 5
    other = sum(delta(before, after, REQUESTS, method="OTHER", route="unmatched", status=s)
                for s in ("404", "405"))
    assert other == 5


def test_route_labels_are_templates_of_registered_routes(client, new_org):
    org = new_org()
    foreign = uuid.uuid4().hex
    r = client.get(f"/v1/organizations/{foreign}/cu/usage-by-workflow", headers=org.headers)
    assert r.status_code in (400, 404), r.text
    text, samples = scrape(client)
    templates = {route.path_format for route in client.app.routes} | {"unmatched"}
    routes = {dict(labels)["route"] for name, labels in samples
              if name == REQUESTS or name.startswith(LATENCY)}
    assert routes <= templates, routes - templates
    assert foreign not in text and org.id not in text
    assert any("{" in route for route in routes), routes  # the seed route's template


def test_ingest_counters_by_domain_and_outcome(client, new_org):
    org = new_org()
    now = datetime.now(UTC).replace(microsecond=0)
    events = generate("storage", 11, [now - timedelta(minutes=i) for i in range(6)],
                      prefix=uuid.uuid4().hex[:8])
    _, before = scrape(client)
    r = post_events(client, org.headers, "storage", events[:4])
    assert r.status_code == 200 and r.json()["inserted"] == 4, r.text
    r = post_events(client, org.headers, "storage", events)  # 4 repeats, 2 new
    assert r.status_code == 200 and r.json()["duplicates"] == 4, r.text
    bad = post_events(client, org.headers, "storage", [{"eventId": "x"}])  # rejected batch
    assert bad.status_code == 422, bad.text
    _, after = scrape(client)
    assert delta(before, after, INGESTED, domain="storage", outcome="inserted") == 6
    assert delta(before, after, INGESTED, domain="storage", outcome="duplicate") == 4
    assert delta(before, after, INGESTED, domain="ai", outcome="inserted") == 0
    # every served domain has both outcomes from the start
    for domain in ("ai", "credits", "call-usage"):
        for outcome in ("inserted", "duplicate"):
            assert (INGESTED, tuple(sorted({"domain": domain, "outcome": outcome}.items()))) \
                in after


def test_pool_and_in_flight_gauges(client, new_org):
    org = new_org()
    _, before = scrape(client)
    client.get(SERIES, params={"scope": "org", "window": "24h"}, headers=org.headers)
    _, after = scrape(client)
    assert value(after, "stats_gateway_db_pool_max") == 10  # Settings.pool_max default
    size = value(after, "stats_gateway_db_pool_size")
    available = value(after, "stats_gateway_db_pool_available")
    assert 1 <= size <= 10 and 0 <= available <= size
    assert value(after, "stats_gateway_db_pool_waiting") == 0  # the test client is serial
    # the key lookup and the query each borrow a connection
    assert delta(before, after, "stats_gateway_db_pool_requests_total") >= 2
    assert delta(before, after, "stats_gateway_db_pool_timeouts_total") == 0
    # only the scrape itself is being served while it renders
    assert value(after, "stats_gateway_http_requests_in_flight") == 1
    assert value(after, "stats_gateway_build_info", version=__import__(
        "stats_gateway").__version__) == 1
