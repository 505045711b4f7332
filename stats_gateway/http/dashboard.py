"""The built-in dashboard: ``GET /dashboard``, one static page over the gateway's own API.

Choices, so they are written down:

- The page itself needs no key and holds no tenant data. It asks for an API key, keeps it
  in ``sessionStorage`` (gone when the tab closes, never sent anywhere but this origin's
  ``/v2/stats/...`` as ``Authorization: Bearer``) and shows whatever that key may read; a
  refused request shows the error envelope's ``message``.
- What can be asked (domains, series views and their metrics, breakdown dimensions and the
  metrics they can sort by, resource filters, windows, bucket sizes) comes from the domain
  declarations, served as ``GET /dashboard/domains.json`` (declarations only, no auth), so a
  new domain shows up without touching the page.
- Plain HTML, one vanilla JS file and uPlot (MIT, vendored from npm under
  ``static/dashboard/vendor/``), served from ``/static``: no build step, no CDN. The page is
  sent with a Content-Security-Policy that allows this origin only, so the browser itself
  refuses any outside request (uPlot draws on a canvas and styles through the CSSOM, which
  the policy allows without ``'unsafe-inline'``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from litestar import Response, get

from stats_gateway.core.domain import Domain, sortable
from stats_gateway.core.timebuckets import BUCKET_SIZES
from stats_gateway.http.common import json_response

STATIC_DIR = Path(__file__).parent / "static"
PAGE = (STATIC_DIR / "dashboard" / "index.html").read_bytes()
DASHBOARD_WINDOWS = ("24h", "7d", "30d", "90d")
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _summary_line(doc: str) -> str:
    return doc.strip().split("\n", 1)[0].strip()


def declarations(domains: Sequence[Domain]) -> dict:
    """What the page may ask each domain for: names only, straight from the declarations."""
    return {
        "windows": list(DASHBOARD_WINDOWS),
        "bucketSizes": list(BUCKET_SIZES),
        "domains": [{
            "name": d.name,
            "title": d.title,
            "summary": _summary_line(d.doc),
            "views": [{"path": v.path, "metrics": list(v.metrics), "primary": v.primary}
                      for v in d.series],
            "breakdowns": [{
                "by": dim.by,
                "sortable": [m for m in d.breakdown_metrics(dim) if sortable(d.metric(m))],
                "primary": d.breakdown.primary,
                "share": dim.share_of,
            } for dim in d.dimensions],
            "filters": [f.param for f in d.filters],
        } for d in domains],
    }


def dashboard_routes(domains: Sequence[Domain]) -> list:
    """The page and its declarations endpoint (static assets come from the /static router)."""
    body = declarations(domains)

    @get("/dashboard", include_in_schema=False, name="dashboard")
    async def dashboard_page() -> Response:
        # Litestar adds "; charset=utf-8" to text types itself
        return Response(content=PAGE, media_type="text/html",
                        headers=PAGE_HEADERS)

    @get("/dashboard/domains.json", include_in_schema=False, name="dashboard-domains")
    async def dashboard_domains() -> Response:
        return json_response(body)

    return [dashboard_page, dashboard_domains]
