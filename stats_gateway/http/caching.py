"""Cacheable answers: a strong ``ETag`` on every 200 of the stats GETs, ``If-None-Match``
answered with 304, and gzip for any response when the client accepts it (issue 11, 6).

The rule. Late events and ``load`` may write into any past bucket, so no range is ever
closed: a time horizon would be wrong the first time a late event arrives. The ``ETag`` is
therefore the answer itself: a BLAKE2b digest of its media type and bytes, computed after
the query. Any write that changes an answer changes its tag, and one that does not change
it (an event outside the range, a duplicate) keeps it. ``Cache-Control: private,
no-cache`` makes every reuse a revalidation (``private``: the answer depends on the key,
so no shared cache may keep it). A 304 saves the transfer and the encoding, not the query.

* The tag names the representation: the gzip one is the identity one's with ``-gzip``
  appended (RFC 9110 8.8.3: codings are distinct representations). ``Vary:
  Authorization, Accept, Accept-Encoding`` (CSV is chosen by ``Accept``).
* ``If-None-Match`` uses weak comparison (``W/`` ignored) and ``*`` matches any answer
  (RFC 9110 13.1.2); it is evaluated only once the request has been answered 200, so a
  bad key or parameter still gets its error.
* Errors are never cached: 4xx/5xx of these routes carry ``Cache-Control: no-store`` and
  no ``ETag``.
* Tenancy: the tag is a digest of the body its caller receives, so two orgs share one only
  when their answers are byte-identical, which tells neither anything it does not see.

Compression: gzip for bodies of 500 bytes or more (Litestar's default minimum; smaller
ones stay as they are), with ``Accept-Encoding`` read by its q-values (Litestar's own check
is a substring test, so ``gzip;q=0`` got gzip). The stats answers are compressed here, with
``mtime`` 0 so the same answer gives the same bytes, and, from 64 KB, on a worker thread
with the digest: gzip at level 6 takes ~0.8 s for a 19 MB answer, which on the event loop
would stall every other request (bodies from 1 MB at level 1: 4x faster, 14% larger).
Every other route uses Litestar's ``CompressionMiddleware`` (streamed bodies compressed
chunk by chunk, without ``Content-Length``); a strong ``ETag`` of its own becomes weak once
coded.
"""

from __future__ import annotations

import gzip
import hashlib
import re

import anyio.to_thread
from litestar.config.compression import CompressionConfig
from litestar.enums import CompressionEncoding
from litestar.middleware.compression import CompressionMiddleware

from stats_gateway.http.negotiation import quality

CACHE_CONTROL = b"private, no-cache"
VARY = b"Authorization, Accept, Accept-Encoding"
MINIMUM_SIZE = 500  # Litestar's default: below it gzip saves little
OFF_LOOP = 64 * 1024  # bodies from this size are hashed and compressed on a worker thread
FAST_GZIP = 1024 * 1024  # bodies from this size are compressed at level 1, others at 6

# the stats GETs: /v2 series and breakdowns, and the seed endpoints' GETs
_CACHEABLE = re.compile(r"^/v2/stats/[^/]+(/.*)?$|^/v1/runs-stats$|^/v1/model-usage$"
                        r"|^/v1/organizations/[^/]+/cu/usage-by-workflow$")
_TAG = re.compile(r'\s*(?:W/)?"([^"]*)"\s*(?:,|$)')
_NOT_MODIFIED_DROPS = {b"content-type", b"content-length", b"content-encoding",
                       b"content-disposition"}


def cacheable(path: str) -> bool:
    return _CACHEABLE.match(path) is not None


def _header(scope_or_message: dict, name: bytes) -> str | None:
    for key, value in scope_or_message.get("headers") or ():
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _without(headers, names: set[bytes]) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in headers if k.lower() not in names]


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether ``Accept-Encoding`` takes gzip: listed (or ``x-gzip``) with q > 0, or ``*``
    with q > 0 when gzip is not listed."""
    listed: dict[str, float] = {}
    for part in (accept_encoding or "").split(","):
        coding, *params = (p.strip() for p in part.split(";"))
        if not coding:
            continue
        listed[coding.lower()] = quality(params)
    for name in ("gzip", "x-gzip"):
        if name in listed:
            return listed[name] > 0
    return listed.get("*", 0.0) > 0


def entity_tag(media_type: str, body: bytes, gzipped: bool) -> str:
    digest = hashlib.blake2b(media_type.encode() + b"\n" + body, digest_size=16).hexdigest()
    return f'"{digest}{"-gzip" if gzipped else ""}"'


def none_match(if_none_match: str | None, tag: str) -> bool:
    """Whether ``If-None-Match`` holds ``tag`` by weak comparison, or is ``*``. A malformed
    header matches nothing (the full answer is sent)."""
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    opaque = tag.strip('"')
    pos, text = 0, if_none_match
    while pos < len(text):
        m = _TAG.match(text, pos)
        if m is None:
            return False
        if m.group(1) == opaque:
            return True
        pos = m.end()
    return False


class Revalidation:
    """Raw ASGI layer for the cacheable GETs: buffers the answer (it is one message
    anyway), tags a 200, answers 304 when ``If-None-Match`` holds its tag, else gzips it
    when accepted; marks errors ``no-store`` (sent as they are). Other routes and methods
    pass through untouched."""

    def __init__(self, app, minimum_size: int = MINIMUM_SIZE):
        self.app = app
        self.minimum_size = minimum_size

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "GET" or not cacheable(scope["path"]):
            return await self.app(scope, receive, send)
        start: dict | None = None
        chunks: list[bytes] = []

        async def buffered(message):
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body" and start is not None:
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    await self._answer(scope, start, b"".join(chunks), send)
            else:
                await send(message)

        await self.app(scope, receive, buffered)

    async def _answer(self, scope, start: dict, body: bytes, send) -> None:
        status = start["status"]
        headers = list(start.get("headers") or ())
        if status >= 400:
            headers = _without(headers, {b"etag", b"cache-control"})
            headers.append((b"cache-control", b"no-store"))
        elif status == 200:
            gzipped = len(body) >= self.minimum_size and accepts_gzip(
                _header(scope, b"accept-encoding"))
            tag = await _off_loop(body, entity_tag, _header(start, b"content-type") or "",
                                  body, gzipped)
            headers = _without(headers, {b"etag", b"cache-control", b"vary"}) + [
                (b"etag", tag.encode()), (b"cache-control", CACHE_CONTROL), (b"vary", VARY)]
            if none_match(_header(scope, b"if-none-match"), tag):
                status, body = 304, b""
                headers = _without(headers, _NOT_MODIFIED_DROPS)
            elif gzipped:
                body = await _off_loop(body, compress, body)
                headers = _without(headers, {b"content-length", b"content-encoding"}) + [
                    (b"content-encoding", b"gzip"), (b"content-length", str(len(body)).encode())]
        await send({**start, "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


def compress(body: bytes) -> bytes:
    """gzip with no timestamp: one answer, one byte string."""
    return gzip.compress(body, 1 if len(body) >= FAST_GZIP else 6, mtime=0)


async def _off_loop(body: bytes, fn, *args):
    """``fn(*args)``, on a worker thread when ``body`` is big (hashlib and zlib release the
    GIL), so the event loop keeps serving everyone else meanwhile."""
    if len(body) < OFF_LOOP:
        return fn(*args)
    return await anyio.to_thread.run_sync(fn, *args)


def _merged_vary(headers) -> list[tuple[bytes, bytes]]:
    """One ``Vary``, each token once (Litestar appends ``Accept-Encoding`` to ours)."""
    tokens: list[str] = []
    for key, value in headers:
        if key.lower() == b"vary":
            for token in value.decode("latin-1").split(","):
                if token.strip() and token.strip().lower() not in {t.lower() for t in tokens}:
                    tokens.append(token.strip())
    if not tokens:
        return list(headers)
    return _without(headers, {b"vary"}) + [(b"vary", ", ".join(tokens).encode("latin-1"))]


class CachingCompression(CompressionMiddleware):
    """Litestar's compression around :class:`Revalidation` (which compresses the stats
    answers itself), negotiating gzip by q-value.

    Set as ``CompressionConfig.middleware_class``, so Litestar puts it in every route's
    stack, inside the exception handler: error responses pass through it too."""

    def __init__(self, app, config: CompressionConfig) -> None:
        super().__init__(app=Revalidation(app, config.minimum_size), config=config)

    async def __call__(self, scope, receive, send) -> None:
        if (scope["method"] == "GET" and cacheable(scope["path"])  # compressed in there
                or not accepts_gzip(_header(scope, b"accept-encoding"))):
            return await self.app(scope, receive, send)

        async def tidy(message):
            if message["type"] == "http.response.start":
                headers = _merged_vary(message.get("headers") or ())
                if _header({"headers": headers}, b"content-encoding") is not None:
                    headers = [(k, b"W/" + v if k.lower() == b"etag" and v.startswith(b'"')
                                and not v.endswith(b'-gzip"') else v) for k, v in headers]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, self.create_compression_send_wrapper(
            send=tidy, compression_encoding=CompressionEncoding.GZIP, scope=scope))


COMPRESSION = CompressionConfig(backend="gzip", minimum_size=MINIMUM_SIZE,
                                gzip_compress_level=6, middleware_class=CachingCompression)
