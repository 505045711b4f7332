"""A typed Python client for the /v2 API, decoding into the server's own envelope Structs.

    from stats_gateway.client import StatsApiError, StatsClient

    with StatsClient("http://127.0.0.1:8000", "sgk_...") as stats:
        stats.ingest("credits", [{"eventId": "e1", "ts": "2026-03-02T10:00:00Z",
                                  "kind": "ai", "amount": "1.25"}])
        page = stats.breakdown("ai", "models", window="7d", limit=10)
        for entity in page.entities:
            print(entity.entityId, entity.totals.requests)

Responses decode with msgspec into exactly the Structs the server encodes
(``series_types(domain, view).response``, ``breakdown_types(domain, by).response``,
``IngestResponse``), so attribute names and value types are the server's: exact money is
``Decimal``, a null mean is ``None``, and re-encoding a response gives the server's bytes.

Parameters are Python keywords, written in snake_case or as on the wire:
``time_bucket_size="1h"`` is ``timeBucketSize=1h``, ``api_key_id=`` is ``apiKeyId=``.
``scope`` defaults to ``"org"``; ``id=`` is the workspace or repo id. Values may be
``datetime`` (timezone-aware, sent as RFC 3339), ``bool`` (``true``/``false``), numbers or
strings; ``None`` leaves the parameter out.

Every non-2xx answer raises :class:`StatsApiError` with the decoded problem+json envelope
(``status``, ``error_code``, ``message``, ``errors``, ``request_id``). Network failures
are httpx's own exceptions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

import httpx
import msgspec

from domains import DOMAINS
from stats_gateway.core.domain import Domain
from stats_gateway.core.envelopes import (
    ErrorDetail, ErrorResponse, IngestResponse, breakdown_types, metric_type, series_types,
)
from stats_gateway.model import Model

__all__ = ["StatsApiError", "StatsClient"]

_encoder = msgspec.json.Encoder(decimal_format="number")  # Decimal amounts stay exact


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


class _ExactNumbers(Model):
    """Summary numbers read as int or exact Decimal (the server's union reads them as float)."""

    total: int | Decimal | None
    min: int | Decimal | None
    max: int | Decimal | None


class _ExactSummary(Model):
    summary: _ExactNumbers


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _wire_value(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{name}: give a timezone-aware datetime")
        return value.isoformat()
    return str(value)


def wire_params(params: Mapping[str, Any]) -> dict[str, str]:
    """Python keywords to query parameters (``None`` values are left out)."""
    return {_camel(name): _wire_value(name, value) for name, value in params.items()
            if value is not None}


@cache
def _decoder(response_type: type) -> msgspec.json.Decoder:
    return msgspec.json.Decoder(response_type)


@cache
def _domains() -> dict[str, Domain]:
    return {domain.name: domain for domain in DOMAINS}


def _domain(name: str) -> Domain:
    try:
        return _domains()[name]
    except KeyError:
        raise ValueError(f"this client does not know the domain {name!r}") from None


def _has_decimal(annotation: Any) -> bool:
    return annotation is Decimal or Decimal in getattr(annotation, "__args__", ())


class StatsClient:
    """One API key on one gateway; a context manager that closes its connections."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 30.0,
                 http: httpx.Client | None = None):
        self._http = http or httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)
        self._headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}

    def series(self, domain: str, view: str = "", *, scope: str = "org", **params: Any):
        """``GET /v2/stats/<domain>[/<view>]`` as that view's ``...TimeSeriesResponse``."""
        path = f"/v2/stats/{domain}" + (f"/{view}" if view else "")
        raw = self._get(path, {"scope": scope, **params})
        found = _domain(domain)
        if found.series_view(view) is None:
            raise ValueError(f"this client does not know the view {domain}/{view}")
        body = _decoder(series_types(found, view).response).decode(raw)
        return self._exact_summary(found, body, raw)

    def breakdown(self, domain: str, by: str, *, scope: str = "org", **params: Any):
        """``GET /v2/stats/<domain>/breakdown/<by>`` as that ``...BreakdownResponse``."""
        raw = self._get(f"/v2/stats/{domain}/breakdown/{by}", {"scope": scope, **params})
        found = _domain(domain)
        if found.dimension(by) is None:
            raise ValueError(f"this client does not know the breakdown {domain}/{by}")
        return _decoder(breakdown_types(found, by).response).decode(raw)

    def ingest(self, domain: str, events: Iterable[Mapping[str, Any]]) -> IngestResponse:
        """``POST /v2/ingest/<domain>``: idempotent by ``eventId``, atomic per batch."""
        response = self._http.post(
            f"/v2/ingest/{domain}", content=_encoder.encode({"events": list(events)}),
            headers={**self._headers, "Content-Type": "application/json"})
        return _decoder(IngestResponse).decode(self._checked(response))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> StatsClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _get(self, path: str, params: Mapping[str, Any]) -> bytes:
        return self._checked(self._http.get(path, params=wire_params(params),
                                            headers=self._headers))

    @staticmethod
    def _checked(response: httpx.Response) -> bytes:
        if response.is_success:
            return response.content
        try:
            problem = msgspec.json.decode(response.content, type=ErrorResponse)
        except (msgspec.ValidationError, msgspec.DecodeError):
            problem = None
        raise StatsApiError(response.status_code, problem, response.text)

    @staticmethod
    def _exact_summary(domain: Domain, body, raw: bytes):
        """Exact decimals in ``summary`` when its metric is a decimal sum (credits, cost)."""
        if not _has_decimal(metric_type(domain, domain.metric(body.meta.metric))):
            return body
        exact = msgspec.json.decode(raw, type=_ExactSummary).summary
        summary = msgspec.structs.replace(body.summary, total=exact.total, min=exact.min,
                                          max=exact.max)
        return msgspec.structs.replace(body, summary=summary)
