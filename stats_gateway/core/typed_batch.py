"""The fast path of ingest validation: a batch decoded straight into per-domain Structs.

Why: checking every field in Python (``ingest.validate_events``) cost about 9 us an event,
9 ms of a 1,000-event batch's 60. msgspec checks types, bounds, choices, lengths and
unknown fields in C while it decodes, so a valid batch costs a fraction of that.

It only ever accepts what ``validate_events`` accepts, with the same stored values: the
Struct of a domain is that validator's rules as types, and what a type cannot say (the
time's range, the repo rule, a domain's ``check_event``, decimals' places) is checked here
with the validator's own functions. A batch it cannot vouch for (any JSON ``\\u`` escape,
which could hide a NUL or a lone surrogate; any refusal at all) returns None, and the
caller runs ``validate_events``, which names every problem: errors are unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Any, Literal, cast

import msgspec
from msgspec import Meta

from stats_gateway.core import ingest
from stats_gateway.core.domain import Domain, EventField, FieldType
from stats_gateway.core.ingest import EARLIEST, FUTURE_SLACK, MAX_EVENTS, MAX_LIST, MAX_TEXT
from stats_gateway.core.ingest import EventRow

_Text = Annotated[str, Meta(min_length=1, max_length=MAX_TEXT)]
# RFC 3339 as clients usually send it: what parse_instant accepts, read the same way
_PLAIN_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)")
_SAME_AS_SENT = (FieldType.TEXT, FieldType.CHOICE, FieldType.BOOL, FieldType.BIGINT,
                 FieldType.DOUBLE, FieldType.TEXT_LIST)


def _type(f: EventField, max_integer: int) -> Any:  # a type form for msgspec
    """The field's values as a msgspec type: the validator's rules, or Raw (checked after)."""
    low = None if f.min_value is None else f.min_value
    if f.type is FieldType.TEXT:
        return _Text
    if f.type is FieldType.CHOICE:
        return Literal[tuple(f.choices)]
    if f.type is FieldType.BOOL:
        return bool
    if f.type is FieldType.BIGINT:
        return Annotated[int, Meta(ge=max(low, -max_integer) if low is not None
                                   else -max_integer, le=max_integer)]
    if f.type is FieldType.DOUBLE:
        return Annotated[float, Meta(le=1e15)] if low is None else \
            Annotated[float, Meta(ge=low, le=1e15)]
    if f.type is FieldType.TEXT_LIST:
        return Annotated[list[_Text], Meta(max_length=MAX_LIST)]
    return msgspec.Raw  # DECIMAL: the validator decides, from the exact JSON text


def _optional(kind: Any, required: bool) -> Any:
    """Absent or null is the same to the validator; Raw keeps a null as text (checked)."""
    return kind if required or kind is msgspec.Raw else kind | None


@lru_cache(maxsize=64)
def _decoder(domain: Domain, max_integer: int) -> msgspec.json.Decoder:
    """A decoder of ``{"events": [...]}`` for the domain (and the current integer bound)."""
    stored = {f.name for f in domain.stored_fields}
    ordered = [*domain.stored_fields, *(f for f in domain.all_fields if f.name not in stored)]
    fields: list[tuple[Any, ...]] = [("eventId", _Text), ("ts", str | int | float)]
    fields += [(f.name, _optional(_type(f, max_integer), f.required),
                msgspec.NODEFAULT if f.required else None) for f in ordered]
    event = msgspec.defstruct(f"{domain.title}Event", fields, kw_only=True,
                              forbid_unknown_fields=True)
    batch = msgspec.defstruct(f"{domain.title}Batch", [("events", list[event])],  # type: ignore[valid-type]
                              forbid_unknown_fields=True)
    return msgspec.json.Decoder(batch)


def _ts(value: object, now: datetime) -> datetime | None:
    ts: datetime | None
    if type(value) is str and _PLAIN_TS.fullmatch(value):
        try:
            ts = datetime.fromisoformat(value).astimezone(UTC)
        except ValueError:
            return None
    elif type(value) is float:
        try:
            ts = datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    else:
        ts, problem = ingest._check_ts(value, now)
        return None if problem else ts
    return ts if ts is not None and EARLIEST <= ts <= now + FUTURE_SLACK else None


_exact = msgspec.json.Decoder(float_hook=Decimal)  # as ingest decodes bodies
_ABSENT: tuple[Any, ...] = ()  # a Raw field sent as null: absent, as the validator reads it


@dataclass(frozen=True)
class _Plan:
    """How a domain's Struct becomes rows: the Struct's fields are eventId, ts, the stored
    fields (in column order), then the name fields."""

    columns: tuple[str, ...]  # stored columns, in the Struct's order
    names: tuple[str, ...]  # fields that carry display names (not stored)
    defaults: tuple[tuple[str, object], ...]  # (column, stored value when absent)
    checks: tuple[tuple[str, str, object, Callable], ...]  # Raw fields: (name, column, ...)


@lru_cache(maxsize=64)
def _plan(domain: Domain) -> _Plan:
    plans = {p.name: p for p in ingest._field_plans(domain)[0]}
    stored = [plans[f.name] for f in domain.stored_fields]

    def check(raw, f):
        value = _exact.decode(raw)
        if value is None:
            return None if f.required else _ABSENT
        value, problem = ingest._check_value(f, value)
        return None if problem else (value,)

    return _Plan(
        columns=tuple(p.field.column for p in stored),
        names=tuple(f.name for f in domain.all_fields if f.name not in
                    {p.name for p in stored}),
        defaults=tuple((p.field.column, p.default) for p in stored if p.default is not None
                       and p.field.type in _SAME_AS_SENT),
        checks=tuple((p.name, p.field.column, p.default, lambda raw, f=p.field: check(raw, f))
                     for p in stored if p.field.type not in _SAME_AS_SENT))


def fast_rows(domain: Domain, body: bytes, now: datetime) -> list[EventRow] | None:
    """The batch's rows if the fast path vouches for every event; None to ask
    ``validate_events`` (which then finds the same rows, or names the problems)."""
    if b"\\u" in body:
        return None
    try:
        events = _decoder(domain, ingest.MAX_INTEGER).decode(body).events
    except (msgspec.DecodeError, RecursionError):
        return None
    if not 1 <= len(events) <= MAX_EVENTS:
        return None
    return rows_of(domain, events, now)


@lru_cache(maxsize=64)
def _list_decoder(domain: Domain, max_integer: int) -> msgspec.json.Decoder:
    """A decoder of a JSON array of the domain's events (``load``'s NDJSON chunks)."""
    (events,) = msgspec.structs.fields(cast(type[msgspec.Struct],
                                            _decoder(domain, max_integer).type))
    return msgspec.json.Decoder(events.type)


def fast_lines(domain: Domain, lines: list[bytes], now: datetime) -> list[EventRow] | None:
    """The rows of NDJSON lines (one event each), decoded together as one JSON array; None
    when the fast path does not vouch for every line (then decode them one by one).

    Joined with commas, a line holding more (or less) than one JSON value would shift
    the others, so the count must match too."""
    data = b"[" + b",".join(lines) + b"]"
    if b"\\u" in data:
        return None
    try:
        events = _list_decoder(domain, ingest.MAX_INTEGER).decode(data)
    except (msgspec.DecodeError, RecursionError):
        return None
    if len(events) != len(lines):
        return None
    return rows_of(domain, events, now)


def rows_of(domain: Domain, events: list, now: datetime) -> list[EventRow] | None:
    """Rows of decoded events (Structs of ``_decoder``), or None if one needs the slow path."""
    plan = _plan(domain)
    columns, names, defaults, checks = plan.columns, plan.names, plan.defaults, plan.checks
    n = len(columns)
    check_event = domain.check_event
    astuple = msgspec.structs.astuple
    rows = []
    for e in events:
        ts = _ts(e.ts, now)
        if ts is None or (e.repoId is not None and e.workspaceId is None):
            return None
        fields = astuple(e)
        values = dict(zip(columns, fields[2:2 + n]))
        for column, default in defaults:
            if values[column] is None:
                values[column] = default
        for name, column, default, check in checks:
            raw = values[column]
            checked = _ABSENT if raw is None else check(raw)
            if checked is None:
                return None
            values[column] = default if checked is _ABSENT else checked[0]
        sent = {name: v for name, v in zip(names, fields[2 + n:]) if v is not None}
        if check_event is not None:
            decoded = {**{f.name: getattr(e, f.name) for f in domain.stored_fields
                          if getattr(e, f.name) is not None}, **sent}
            for name, column, _, _ in checks:
                if name in decoded:
                    decoded[name] = values[column]
            if any(True for _ in check_event(decoded)):
                return None
        rows.append(EventRow(e.eventId, ts, values, sent))
    return rows


def parse_batch(domain: Domain, body: bytes, now: datetime) -> list[EventRow]:
    """A request body's valid rows, or the 400/422 ``decode_batch``/``validate_events``
    give (which also decide every batch the fast path does not vouch for)."""
    rows = fast_rows(domain, body, now)
    if rows is None:
        rows = ingest.validate_events(domain, ingest.decode_batch(body), now)
    return rows
