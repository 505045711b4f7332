"""What a response says about a request it did not take as a caller may have meant
(``meta.warnings``: a stable code and a sentence), instead of staying silent.

/v2 requests: a filter value holding a comma (``model=gpt-4o,gpt-4o-mini``) is one value,
as ids may hold commas; it usually meant "any of these", so the answer says how to ask
for that (repeat the parameter). Partial edge buckets are not warned about: they are the
documented rule (whole grid buckets, only events in ``[start, end)`` counted). Seed
endpoints keep their documented shapes and carry their warnings in the
``Stats-Warnings`` response header instead (a /calls/stats granularity widened to stay
within 10,000 buckets).
"""

from __future__ import annotations

from stats_gateway.core.envelopes import MetaWarning
from stats_gateway.core.request import StatsRequest


def _values(value: object) -> list[object]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def request_warnings(request: StatsRequest) -> list[MetaWarning]:
    """The warnings of a /v2 series or breakdown request (empty: none)."""
    found = []
    if request.raw_from is not None and request.plan.start < request.raw_from:
        found.append(MetaWarning(
            code="raw_events_expired",
            message=f"raw events before {request.raw_from.isoformat()} are past retention: "
                    "before then this answer counts what the rollups hold (their whole "
                    "time slots in range, for the metrics and filters they keep), not "
                    "single events (docs/retention.md)"))
    for flt in request.filters:
        commas = [v for v in _values(flt.value) if isinstance(v, str) and "," in v]
        if commas:
            parts = commas[0].split(",")
            found.append(MetaWarning(
                code="filter_value_with_comma",
                message=f"{flt.param} {commas[0]!r} is one value, not a list; for any of "
                        f"several repeat the parameter: "
                        + "&".join(f"{flt.param}={p}" for p in parts[:3])))
    return found
