"""``GET /``: a person who opens the gateway's address finds the dashboard and the API docs
(a small page, no key, no tenant data) rather than a JSON 404."""

from __future__ import annotations

from litestar import Response, get

from stats_gateway import __version__

PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>stats-gateway</title></head>
<body>
<h1>stats-gateway {__version__}</h1>
<p>A usage-statistics gateway. Every API call needs an API key
(<code>Authorization: Bearer sgk_…</code>; <code>stats-gateway create-key</code> makes one).</p>
<ul>
<li><a href="/dashboard">Dashboard</a>: charts over the API, with your key</li>
<li><a href="/schema">API docs</a> (Swagger UI) and the
<a href="/schema/openapi.json">OpenAPI document</a></li>
<li><a href="/readyz">/readyz</a> and <a href="/livez">/livez</a>: health</li>
</ul>
</body>
</html>
""".encode()
HEADERS = {"Content-Security-Policy": "default-src 'none'; base-uri 'none'; "
                                      "frame-ancestors 'none'",
           "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}


@get("/", include_in_schema=False, name="home")
async def home() -> Response:
    return Response(content=PAGE, media_type="text/html", headers=HEADERS)
