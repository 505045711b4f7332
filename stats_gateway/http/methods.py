"""HTTP methods: ``HEAD`` on every GET endpoint, and ``Allow`` on every 405 (RFC 9110).

``HEAD`` is answered as the ``GET`` it stands for, without the body: the same status and
headers, so a client can probe an endpoint cheaply. A path without ``GET`` answers ``HEAD``
with that path's 405, whose ``Allow`` lists what it does take. ``OPTIONS`` lists the same
methods as the 405 (Litestar's own answer names only the methods of one route handler:
``GET`` without the ``DELETE`` of the same path).

Litestar's router puts the methods a path takes into its 405 exception's headers; the error
handlers (``http/errors.py`` and each seed's) copy them with :func:`allow_headers`, adding
``HEAD`` wherever ``GET`` is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping

from litestar.exceptions import HTTPException, MethodNotAllowedException


def allow_headers(exc: Exception) -> dict[str, str]:
    """The ``Allow`` header a 405 exception carries (with HEAD beside GET), else nothing."""
    headers: Mapping[str, str] = getattr(exc, "headers", None) or {}
    allow = next((value for name, value in headers.items() if name.lower() == "allow"), None)
    if allow is None:
        return {}
    methods = [m.strip() for m in allow.split(",") if m.strip()]
    if "GET" in methods and "HEAD" not in methods:
        methods.insert(methods.index("GET") + 1, "HEAD")
    return {"Allow": ", ".join(methods)}


def allowed_methods(app, path: str) -> dict[str, str]:
    """``{"Allow": ...}`` for ``path`` as its 405 would say, or nothing (no such path)."""
    try:
        app.asgi_router.handle_routing(path, "PROBE")  # a method no route takes
    except MethodNotAllowedException as exc:
        return allow_headers(exc)
    except HTTPException:  # no such path
        return {}
    return {}  # a mounted app (static files) answers any method itself


class HeadAsGet:
    """Raw ASGI middleware: a ``HEAD`` request runs as ``GET`` and its body is dropped;
    an ``OPTIONS`` answer's ``Allow`` is the path's (see the module doc).

    The scope is copied, not changed in place: the server still sees ``HEAD`` (uvicorn
    then sends no body of its own accord), the application sees ``GET``."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            return await self._options(scope, receive, send)
        if scope["type"] != "http" or scope["method"] != "HEAD":
            return await self.app(scope, receive, send)

        async def without_body(message):
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # nothing until the last part, which goes out empty
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, without_body)

    async def _options(self, scope, receive, send):
        allow = allowed_methods(scope["app"], scope["path"]).get("Allow")

        async def with_allow(message):
            if allow and message["type"] == "http.response.start":
                message["headers"] = [(k, v) for k, v in message.get("headers", [])
                                      if k.lower() != b"allow"] + [(b"allow", allow.encode())]
            await send(message)

        await self.app(scope, receive, with_allow)
