"""The built-in dashboard in a real headless Chromium (Playwright, Debian's /usr/bin/chromium)
against a live gateway: what it plots, sums and ranks equals what we ingested, errors show
the envelope's message, and the browser never makes a request outside the gateway's origin.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest

from support import HTTP, ingest, live_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
TIMEZONE = "Asia/Kolkata"  # +05:30: day buckets start at 18:30 UTC, not at midnight UTC
MODELS = ("gpt-4o", "claude-3", "llama-3")
WRONG_KEY = "sgk_0123456789abcdef_not-a-real-secret"
STROKE = (31, 78, 121)  # the series colour dashboard.js draws with (#1f4e79)

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="needs Debian's chromium (./run test installs it)")


def ai_events(prefix: str, seed: int, now: datetime, n: int) -> list[dict]:
    """Events well inside the last 7 days (the window is anchored at request time)."""
    rng = random.Random(seed)
    events = []
    for i in range(n):
        t = now - timedelta(hours=2) - timedelta(seconds=rng.randrange(6 * 86400))
        event = {"eventId": f"{prefix}-{i}", "ts": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "model": MODELS[i % 3]}
        if rng.random() < 0.85:  # absent tokensIn counts as 0
            event["tokensIn"] = rng.randint(1, 50_000)
        events.append(event)
    return events


def event_time(event: dict) -> datetime:
    return datetime.strptime(event["ts"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def day_sums(events, zone: str) -> dict[int, int]:
    """tokensIn per local calendar day of ``zone``, keyed by the day's first instant (unix)."""
    sums: dict[int, int] = defaultdict(int)
    for e in events:
        local = event_time(e).astimezone(ZoneInfo(zone))
        day = local.replace(hour=0, minute=0, second=0, microsecond=0)
        sums[int(day.timestamp())] += e.get("tokensIn", 0)
    return dict(sums)


@pytest.fixture(scope="module")
def gateway(database_url, client):
    with live_server(database_url) as url:
        yield url


@pytest.fixture(scope="module")
def browser_context():
    from playwright.sync_api import sync_playwright
    profile = tempfile.mkdtemp(prefix="sg-chromium-")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
                viewport={"width": 1200, "height": 900})
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


class Traffic:
    """Every request the browser makes; anything not to the gateway's origin is aborted."""

    def __init__(self, context, origin: str):
        self.origin = origin
        self.urls: list[str] = []
        self.aborted: list[str] = []
        self.stats_auth: list[str | None] = []
        context.route("**/*", self._route)
        context.on("request", self._seen)

    def _same_origin(self, url: str) -> bool:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}" == self.origin

    def _route(self, route):
        if self._same_origin(route.request.url):
            route.continue_()
        else:
            self.aborted.append(route.request.url)
            route.abort()

    def _seen(self, request):
        self.urls.append(request.url)
        if urlsplit(request.url).path.startswith("/v2/stats/"):
            self.stats_auth.append(request.headers.get("authorization"))

    def outside(self) -> list[str]:
        return [u for u in self.urls if not self._same_origin(u)]


class Console:
    def __init__(self, page):
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def take(self) -> list[str]:
        taken, self.errors[:] = list(self.errors), []
        return taken


def wait_for_answer(page) -> str:
    page.wait_for_function("() => ['ready', 'error'].includes(document.body.dataset.state)",
                           timeout=15_000)
    return page.evaluate("document.body.dataset.state")


def stroke_pixels(page) -> int:
    """Pixels of the chart canvas in the series colour: the line was actually drawn."""
    return page.evaluate("""([r, g, b]) => {
        const canvas = document.querySelector('#chart canvas');
        const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let n = 0;
        for (let i = 0; i < data.length; i += 4) {
            if (Math.abs(data[i] - r) < 6 && Math.abs(data[i + 1] - g) < 6
                && Math.abs(data[i + 2] - b) < 6 && data[i + 3] > 200) n++;
        }
        return n;
    }""", list(STROKE))


def test_dashboard_shows_ingested_data_without_outside_requests(
        gateway, browser_context, client, new_org):
    org, other = new_org(), new_org()
    now = datetime.now(UTC)
    events = ai_events("dash", 1, now, 90)
    ingest(client, org, "ai", events)
    ingest(client, other, "ai", ai_events("dash", 2, now, 30))  # never shown to org

    expected_days = day_sums(events, TIMEZONE)
    expected_total = sum(e.get("tokensIn", 0) for e in events)
    per_model: dict[str, int] = defaultdict(int)
    for e in events:
        per_model[e["model"]] += e.get("tokensIn", 0)
    assert len(set(per_model.values())) == 3  # a strict ranking to compare with
    expected_rows = sorted(per_model.items(), key=lambda kv: -kv[1])

    traffic = Traffic(browser_context, gateway)
    page = browser_context.new_page()
    console = Console(page)

    response = page.goto(f"{gateway}/dashboard")
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "http" not in policy and "*" not in policy
    page.wait_for_function("() => document.body.dataset.state === 'idle'")
    listed = page.eval_on_selector_all("#domain option", "os => os.map(o => o.value)")
    assert listed == [d["name"] for d in HTTP.get(f"{gateway}/dashboard/domains.json")
                      .json()["domains"]]
    assert "ai" in listed and "credits" in listed

    page.select_option("#domain", "ai")
    page.select_option("#view", "")
    page.select_option("#metric", "tokensIn")
    page.select_option("#window", "7d")
    page.select_option("#bucket", "1d")
    page.fill("#timezone", TIMEZONE)
    page.select_option("#breakdown-by", "models")
    page.fill("#api-key", org.key)
    page.click("#use-key")  # stores the key and shows the chart
    assert wait_for_answer(page) == "ready", page.inner_text("#error")

    # (a) the chart drew, and plotted exactly our day sums (every other day: 0)
    box = page.locator("#chart canvas").first.bounding_box()
    assert box and box["width"] > 100 and box["height"] > 100
    assert stroke_pixels(page) > 50
    plotted = page.evaluate("window.__dashboardLastSeries")
    assert (plotted["domain"], plotted["metric"], plotted["timeBucketSize"],
            plotted["timezone"]) == ("ai", "tokensIn", "1d", TIMEZONE)
    points = {p["ts"]: p["value"] for p in plotted["points"]}
    assert len(points) == len(plotted["points"]) in (7, 8)
    assert set(expected_days) <= set(points)
    assert points == {ts: expected_days.get(ts, 0) for ts in points}
    assert page.locator("#series-table tbody tr").count() == len(points)

    # (b) the summary total
    assert int(page.get_attribute("#summary-total", "data-value")) == expected_total
    assert page.inner_text("#summary-total") == f"{expected_total:,}"

    # (c) the breakdown table, ranked by the chosen metric
    rows = page.eval_on_selector_all(
        "#breakdown tbody tr",
        "trs => trs.map(tr => [tr.dataset.entityId, Number(tr.cells[2].dataset.value)])")
    assert [tuple(r) for r in rows] == expected_rows
    assert page.inner_text("#breakdown-metric") == "tokensIn"

    # the key stays in this tab's sessionStorage and goes only to /v2/stats as a bearer token
    assert page.evaluate("sessionStorage.getItem('statsGatewayKey')") == org.key
    assert page.evaluate("localStorage.length") == 0 and org.key not in page.url
    assert traffic.stats_auth and set(traffic.stats_auth) == {f"Bearer {org.key}"}
    assert console.take() == []

    # (d) a wrong key shows the 401 envelope's message; a missing workspace the 404's
    wrong = HTTP.get(f"{gateway}/v2/stats/ai", params={"scope": "org", "window": "7d"},
                      headers={"Authorization": f"Bearer {WRONG_KEY}"})
    assert wrong.status_code == 401
    page.fill("#api-key", WRONG_KEY)
    page.click("#use-key")
    assert wait_for_answer(page) == "error"
    assert page.inner_text("#error-message") == wrong.json()["message"]
    assert page.get_attribute("#error", "data-status") == "401"
    assert page.locator("#results").is_hidden()

    missing = HTTP.get(f"{gateway}/v2/stats/ai",
                        params={"scope": "workspace", "id": "no-such-ws", "window": "7d"},
                        headers=org.headers)
    assert missing.status_code == 404
    page.fill("#api-key", org.key)
    page.click("#use-key")
    assert wait_for_answer(page) == "ready"
    page.select_option("#scope", "workspace")
    page.fill("#scope-id", "no-such-ws")
    page.click("#load")
    assert wait_for_answer(page) == "error"
    assert page.inner_text("#error-message") == missing.json()["message"]
    assert page.get_attribute("#error", "data-status") == "404"
    # Chromium logs each refused fetch; nothing else may reach the console
    for message in console.take():
        assert "status of 401" in message or "status of 404" in message, message

    # (e) nothing left the gateway's origin, and nothing had to be stopped
    assert traffic.urls and traffic.outside() == []
    assert traffic.aborted == []
    assert any(u.endswith("/static/dashboard/vendor/uPlot.iife.min.js") for u in traffic.urls)

    # the policy is live: the browser itself refuses an outside image (the gateway's own
    # pages make no such request; this checks the header protects against one)
    violated = page.evaluate("""() => new Promise(resolve => {
        document.addEventListener('securitypolicyviolation',
                                  e => resolve(e.violatedDirective), {once: true});
        const img = document.createElement('img');
        img.src = 'http://192.0.2.1/beacon.png';
        document.body.append(img);
    })""")
    assert violated.startswith("img-src")
    console.take()  # the violation report itself

    # the request was refused by the policy, before any network: the route never saw it
    assert traffic.outside() == ["http://192.0.2.1/beacon.png"] and traffic.aborted == []
    page.close()


def test_static_assets_are_served_with_the_vendored_licence(gateway):
    script = HTTP.get(f"{gateway}/static/dashboard/vendor/uPlot.iife.min.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    licence = HTTP.get(f"{gateway}/static/dashboard/vendor/uPlot.LICENSE")
    assert licence.status_code == 200 and "MIT License" in licence.text
    for path in ("/static/dashboard/..%2F..%2Fdashboard.py", "/static/..%2Fapp.py"):
        outside = HTTP.get(f"{gateway}{path}")
        assert outside.status_code == 404 and "create_app" not in outside.text, path


def test_docs_ui_renders_every_operation_from_this_origin_only(gateway, browser_context):
    """The OpenAPI docs page (vendored Swagger UI) draws every documented operation."""
    spec = HTTP.get(f"{gateway}/schema/openapi.json").json()
    methods = {"get", "post", "put", "patch", "delete"}
    operations = sum(1 for item in spec["paths"].values() for m in item if m in methods)
    assert operations > 20
    traffic = Traffic(browser_context, gateway)
    page = browser_context.new_page()
    console = Console(page)
    response = page.goto(f"{gateway}/schema/swagger")
    assert response.status == 200
    try:
        page.wait_for_function(
            "() => document.querySelectorAll('.swagger-ui .opblock').length > 0", timeout=60_000)
    except Exception as exc:
        raise AssertionError(f"docs UI drew no operation: {console.errors} {traffic.urls} "
                             f"{page.inner_text('body')[:500]!r}") from exc
    assert page.locator(".swagger-ui .opblock").count() == operations
    assert spec["info"]["title"] in page.inner_text(".swagger-ui .info .title")
    assert console.take() == []
    assert traffic.urls and traffic.outside() == [] and traffic.aborted == []
    assert any(u.endswith("/schema/openapi.json") for u in traffic.urls)
    page.close()
