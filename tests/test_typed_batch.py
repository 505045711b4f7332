"""The typed fast path of ingest validation accepts exactly what ``validate_events`` accepts,
with the same rows, and hands every other batch to it (no database needed)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
import pytest
from support import GENERATORS, NEW_GENERATORS

from domains import DOMAINS
from stats_gateway.core.errors import ApiError
from stats_gateway.core.ingest import MAX_INTEGER, decode_batch, validate_events
from stats_gateway.core.typed_batch import fast_lines, fast_rows

NOW = datetime.now(UTC)
MAKERS = {**GENERATORS, **NEW_GENERATORS}
BY_NAME = {d.name: d for d in DOMAINS}


def _body(events) -> bytes:
    return msgspec.json.encode({"events": events})


def _slow(domain, body: bytes):
    try:
        return validate_events(domain, decode_batch(body), NOW)
    except ApiError as exc:
        return exc


def _events(name: str, n: int, seed: int = 1) -> list[dict]:
    rng = random.Random(f"typed-{name}-{seed}")
    start = NOW - timedelta(days=30)
    return [MAKERS[name](rng, i, start + timedelta(seconds=rng.randrange(30 * 86400)))
            for i in range(n)]


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_valid_batches_give_the_validators_rows(name):
    domain = BY_NAME[name]
    events = _events(name, 300)
    body = _body(events)
    fast = fast_rows(domain, body, NOW)
    assert fast is not None, "the fast path refused a valid batch"
    assert fast == _slow(domain, body)


ODD = [None, True, False, 0, -1, 1.5, 2**31, MAX_INTEGER, MAX_INTEGER + 1, 2**63, -2**63,
       "", "x", "x" * 200, "x" * 201, "5", "1.25", "0.1234567", "abc", "2026-08-01T10:00:00Z",
       "2026-08-01T10:00:00", "2026-08-01 10:00:00+02:00", "1785578400", 1785578400,
       1785578400.5, 946684799, [], ["a"], ["a"] * 101, [""], [1], {}, {"a": 1}, "é",
       "a\u0000b", "\ud7ff", 1e15, 1.0000001e15, -0.0, Decimal("0.000001"), Decimal("1e14")]


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_odd_values_never_change_the_answer(name):
    """Each field (and eventId, ts, an unknown one) set to odd values: the fast path either
    hands over (None) or gives exactly the validator's rows; it never accepts a batch the
    validator refuses."""
    domain = BY_NAME[name]
    rng = random.Random(name)
    keys = ["eventId", "ts", "unknownField"] + [f.name for f in domain.all_fields]
    checked = accepted = 0
    for key in keys:
        for value in ODD:
            events = _events(name, 3, seed=rng.randrange(10**6))
            events[1][key] = value
            body = _body(events)
            fast = fast_rows(domain, body, NOW)
            slow = _slow(domain, body)
            checked += 1
            if fast is not None:
                accepted += 1
                assert fast == slow, (key, value)
    assert checked > accepted > 0


def test_escapes_and_bad_shapes_go_to_the_validator():
    domain = BY_NAME["storage"]
    event = {"eventId": "a", "ts": "2026-08-01T10:00:00Z"}
    for body in (b'{"events": [{"eventId": "a\\u0000", "ts": 1785578400}]}',
                 b'{"events": []}', b'{"events": [], "x": 1}', b"[]", b"{",
                 _body([event] * 10_001), _body([dict(event, repoId="r1")])):
        assert fast_rows(domain, body, NOW) is None
    assert fast_rows(domain, _body([event]), NOW) == _slow(domain, _body([event]))


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_ndjson_lines_give_the_validators_rows(name):
    domain = BY_NAME[name]
    events = _events(name, 200, seed=7)
    lines = [msgspec.json.encode(e) + b"\n" for e in events]
    assert fast_lines(domain, lines, NOW) == _slow(domain, _body(events))


def test_ndjson_lines_that_are_not_one_event_each_go_to_the_validator():
    domain = BY_NAME["storage"]
    one = b'{"eventId": "a", "ts": 1785578400}'
    two = b'{"eventId": "b", "ts": 1785578400}'
    assert fast_lines(domain, [one, two], NOW) is not None
    for lines in ([one + b"," + two], [one + b"," + two, b"[", b"]"], [one, b"5"],
                  [one, b"{"], [one + b" " + two]):
        assert fast_lines(domain, lines, NOW) is None, lines
