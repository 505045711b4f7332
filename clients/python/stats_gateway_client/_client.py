"""StatsClient and AsyncStatsClient: one request builder and one decoder, two transports.

Each call is first made into a :class:`_Call` (method, path, query, body, how to decode the
answer), which checks every name against the catalogue, so an unknown domain, view or
breakdown raises :class:`UnknownNameError` before anything is sent. The sync and async
clients only differ in how they send a call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import httpx
import msgspec

from stats_gateway_client import catalogue
from stats_gateway_client._wire import ErrorDetail, ErrorResponse, ExactSummary, IngestResponse, wire_params

_encoder = msgspec.json.Encoder(decimal_format="number")  # Decimal amounts stay exact
_CSV = "text/csv"
PAGE_LIMIT = 500  # the gateway's largest breakdown page


class StatsApiError(Exception):
    """A non-2xx answer; ``problem`` is the server's envelope (None if the body was not one)."""

    def __init__(self, status: int, problem: ErrorResponse | None, text: str = ""):
        self.status = status
        self.problem = problem
        self.error_code = problem.error_code if problem else "unexpected_response"
        self.message = problem.message if problem else (text[:200] or f"HTTP {status}")
        self.errors: list[ErrorDetail] = list(problem.errors) if problem else []
        self.request_id = problem.request_id if problem else None
        super().__init__(f"{status} {self.error_code}: {self.message}")


@cache
def _decoder(response_type: type) -> msgspec.json.Decoder:
    return msgspec.json.Decoder(response_type)


def _exact_summary(domain: str, body, raw: bytes):
    """Exact decimals in ``summary`` when its metric is a decimal sum (credits, cost)."""
    if body.meta.metric not in catalogue.domain(domain).decimal_metrics:
        return body
    exact = msgspec.json.decode(raw, type=ExactSummary).summary
    summary = msgspec.structs.replace(body.summary, total=exact.total, min=exact.min,
                                      max=exact.max)
    return msgspec.structs.replace(body, summary=summary)


@dataclass(frozen=True)
class _Call:
    method: str
    path: str
    params: dict[str, str]
    decode: Callable[[bytes], Any]
    body: bytes | None = None
    accept: str = "application/json"


def _series_call(domain: str, view: str, scope: str, params: Mapping[str, Any]) -> _Call:
    response = catalogue.series_response(domain, view)
    return _Call("GET", f"/v2/stats/{domain}" + (f"/{view}" if view else ""),
                 wire_params({"scope": scope, **params}),
                 lambda raw: _exact_summary(domain, _decoder(response).decode(raw), raw))


def _breakdown_call(domain: str, by: str, scope: str, params: Mapping[str, Any]) -> _Call:
    response = catalogue.breakdown_response(domain, by)
    return _Call("GET", f"/v2/stats/{domain}/breakdown/{by}",
                 wire_params({"scope": scope, **params}), _decoder(response).decode)


def _ingest_call(domain: str, events: Iterable[Mapping[str, Any]]) -> _Call:
    catalogue.domain(domain)
    return _Call("POST", f"/v2/ingest/{domain}", {}, _decoder(IngestResponse).decode,
                 body=_encoder.encode({"events": list(events)}))


def _as_csv(call: _Call) -> _Call:
    return _Call(call.method, call.path, call.params, lambda raw: raw.decode("utf-8"),
                 accept=_CSV)


def _checked(response: httpx.Response) -> bytes:
    if response.is_success:
        return response.content
    try:
        problem = msgspec.json.decode(response.content, type=ErrorResponse)
    except (msgspec.ValidationError, msgspec.DecodeError):
        problem = None
    raise StatsApiError(response.status_code, problem, response.text)


def _page_params(params: dict[str, Any], page_size: int) -> dict[str, Any]:
    if not 1 <= page_size <= PAGE_LIMIT:
        raise ValueError(f"page_size must be 1-{PAGE_LIMIT}")
    if "limit" in params or "offset" in params:
        raise ValueError("entities() pages by itself: give page_size, not limit/offset")
    return params


class _Base:
    def __init__(self, api_key: str):
        self._headers = {"Authorization": f"Bearer {api_key}"}

    def _request(self, call: _Call) -> dict[str, Any]:
        headers = {**self._headers, "Accept": call.accept}
        if call.body is not None:
            headers["Content-Type"] = "application/json"
        return {"method": call.method, "url": call.path, "params": call.params,
                "content": call.body, "headers": headers}


class StatsClient(_Base):
    """One API key on one gateway; a context manager that closes its connections."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 30.0,
                 http: httpx.Client | None = None):
        super().__init__(api_key)
        self._http = http or httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)

    def _send(self, call: _Call):
        return call.decode(_checked(self._http.request(**self._request(call))))

    def series(self, domain: str, view: str = "", *, scope: str = "org", **params: Any):
        """``GET /v2/stats/<domain>[/<view>]`` as that view's ``...TimeSeriesResponse``."""
        return self._send(_series_call(domain, view, scope, params))

    def breakdown(self, domain: str, by: str, *, scope: str = "org", **params: Any):
        """``GET /v2/stats/<domain>/breakdown/<by>`` as that ``...BreakdownResponse``."""
        return self._send(_breakdown_call(domain, by, scope, params))

    def entities(self, domain: str, by: str, *, page_size: int = 100, scope: str = "org",
                 **params: Any) -> Iterator[Any]:
        """Every entity of a breakdown, page after page (``limit``/``offset``), in order."""
        params = _page_params(params, page_size)
        offset = 0
        while True:
            page = self.breakdown(domain, by, scope=scope, limit=page_size, offset=offset,
                                  **params)
            yield from page.entities
            offset += page_size
            if not page.entities or offset >= page.meta.total_entities:
                return

    def series_csv(self, domain: str, view: str = "", *, scope: str = "org",
                   **params: Any) -> str:
        """The same series as CSV text (``Accept: text/csv``): ``ts,<metric>,...``."""
        return self._send(_as_csv(_series_call(domain, view, scope, params)))

    def breakdown_csv(self, domain: str, by: str, *, scope: str = "org", **params: Any) -> str:
        """One breakdown page as CSV text: ``entityId,entityName,...,<metric totals>``."""
        return self._send(_as_csv(_breakdown_call(domain, by, scope, params)))

    def ingest(self, domain: str, events: Iterable[Mapping[str, Any]]) -> IngestResponse:
        """``POST /v2/ingest/<domain>``: idempotent by ``eventId``, atomic per batch."""
        return self._send(_ingest_call(domain, events))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> StatsClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class AsyncStatsClient(_Base):
    """:class:`StatsClient` for asyncio: the same methods, awaited (``entities`` is an
    async iterator); ``async with`` closes its connections."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 30.0,
                 http: httpx.AsyncClient | None = None):
        super().__init__(api_key)
        self._http = http or httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout)

    async def _send(self, call: _Call):
        return call.decode(_checked(await self._http.request(**self._request(call))))

    async def series(self, domain: str, view: str = "", *, scope: str = "org", **params: Any):
        return await self._send(_series_call(domain, view, scope, params))

    async def breakdown(self, domain: str, by: str, *, scope: str = "org", **params: Any):
        return await self._send(_breakdown_call(domain, by, scope, params))

    async def entities(self, domain: str, by: str, *, page_size: int = 100,
                       scope: str = "org", **params: Any) -> AsyncIterator[Any]:
        params = _page_params(params, page_size)
        offset = 0
        while True:
            page = await self.breakdown(domain, by, scope=scope, limit=page_size,
                                        offset=offset, **params)
            for entity in page.entities:
                yield entity
            offset += page_size
            if not page.entities or offset >= page.meta.total_entities:
                return

    async def series_csv(self, domain: str, view: str = "", *, scope: str = "org",
                         **params: Any) -> str:
        return await self._send(_as_csv(_series_call(domain, view, scope, params)))

    async def breakdown_csv(self, domain: str, by: str, *, scope: str = "org",
                            **params: Any) -> str:
        return await self._send(_as_csv(_breakdown_call(domain, by, scope, params)))

    async def ingest(self, domain: str, events: Iterable[Mapping[str, Any]]) -> IngestResponse:
        return await self._send(_ingest_call(domain, events))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncStatsClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()
