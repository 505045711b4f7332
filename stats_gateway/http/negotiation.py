"""Content negotiation shared by the CSV choice (``Accept``) and gzip (``Accept-Encoding``):
one reading of a list element's ``q`` parameter (RFC 9110 §12.4.2)."""

from __future__ import annotations

from collections.abc import Iterable


def quality(params: Iterable[str]) -> float:
    """The ``q`` of an element's parameters (``q=0.5``): 1 when absent, 0 when unreadable,
    clamped to [0, 1]."""
    q = 1.0
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                q = min(max(float(value), 0.0), 1.0)
            except ValueError:
                q = 0.0
    return q
