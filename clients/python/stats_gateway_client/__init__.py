"""A typed Python client for the stats-gateway /v2 API, sync and async.

    from stats_gateway_client import StatsClient

    with StatsClient("http://127.0.0.1:8000", "sgk_...") as stats:
        stats.ingest("credits", [{"eventId": "e1", "ts": "2026-03-02T10:00:00Z",
                                  "kind": "ai", "amount": "1.25"}])
        for entity in stats.entities("ai", "models", window="7d"):
            print(entity.entityId, entity.totals.requests)

It needs httpx and msgspec only. Responses decode into Structs shaped and named as the
server's (money is ``Decimal``, a null mean ``None``; re-encoding gives the server's
bytes). Keywords may be snake_case or as on the wire (``time_bucket_size=`` is
``timeBucketSize``); ``None`` leaves a parameter out. Unknown domain, view or breakdown
names raise :class:`UnknownNameError` before a request is sent; non-2xx answers raise
:class:`StatsApiError` with the decoded problem+json.
"""

from stats_gateway_client._client import AsyncStatsClient, StatsApiError, StatsClient
from stats_gateway_client._wire import ErrorDetail, ErrorResponse, IngestResponse, wire_params
from stats_gateway_client.catalogue import UnknownNameError

__all__ = ["AsyncStatsClient", "ErrorDetail", "ErrorResponse", "IngestResponse",
           "StatsApiError", "StatsClient", "UnknownNameError", "wire_params"]
