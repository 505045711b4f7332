"""Where ``load`` reads events from: NDJSON or CSV, a file or stdin, as numbered records.

A record is one event as ``POST /v2/ingest/<domain>`` would receive it (a decoded JSON
value) with the line it starts on, or the reason that line could not be read. Checking
the event is left to ingest's own validator, so a CSV cell that does not convert stays
text and gets the API's message for that field.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import BinaryIO

import msgspec

from stats_gateway.core.domain import Domain, FieldType

FORMATS = ("ndjson", "csv")

_decoder = msgspec.json.Decoder(float_hook=Decimal)  # floats exact, as ingest decodes bodies
_INTEGER = re.compile(r"^-?\d+$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")


@dataclass(frozen=True, slots=True)
class Record:
    line: int  # 1-based line the event starts on
    event: object  # the decoded event (an object, for a well-formed line)
    problem: str | None = None  # why the line could not be read as an event
    raw: bytes | None = None  # an NDJSON line not decoded yet (``event`` is then None)


def decoded(record: Record) -> Record:
    """The record with its event decoded (or the reason its line is not JSON).

    NDJSON lines are decoded late: ``load`` first decodes a whole chunk at once straight
    into typed events (``typed_batch.fast_lines``) and only decodes line by line (here)
    when that fast path does not vouch for the chunk."""
    if record.raw is None:
        return record
    try:
        return Record(record.line, _decoder.decode(record.raw))
    except (msgspec.DecodeError, RecursionError) as exc:
        return Record(record.line, None, f"not valid JSON: {exc}")


class SourceError(Exception):
    """The input as a whole cannot be read (a bad CSV header, text that is not UTF-8)."""


def guess_format(path: str) -> str:
    return "csv" if path.lower().endswith(".csv") else "ndjson"


def read_records(stream: BinaryIO, fmt: str, domain: Domain) -> Iterator[Record]:
    """The records of a binary stream in format ``fmt`` (see :data:`FORMATS`)."""
    if fmt == "csv":
        return csv_records(io.TextIOWrapper(stream, encoding="utf-8-sig", newline=""), domain)
    return ndjson_records(stream)


def count_records(stream: BinaryIO, fmt: str) -> int:
    """Non-blank lines (less the CSV header): the progress bar's total, read ahead."""
    lines = sum(1 for line in stream if not line.isspace())
    return max(lines - 1, 0) if fmt == "csv" else lines


def ndjson_records(stream: BinaryIO) -> Iterator[Record]:
    """One JSON value per line, not decoded yet (see ``decoded``); blank lines are
    skipped."""
    for number, raw in enumerate(stream, 1):
        if not raw.isspace():
            yield Record(number, None, raw=raw)


def csv_records(stream: io.TextIOBase, domain: Domain) -> Iterator[Record]:
    """Rows under a header of event field names; an empty cell leaves its field out."""
    reader = csv.reader(stream)
    try:
        header = next(reader, None)
        if header is None:
            return
        converters = _converters(domain, header)
        previous = reader.line_num
        for cells in reader:
            line, previous = previous + 1, reader.line_num
            if not cells:
                continue
            if len(cells) != len(header):
                yield Record(line, None, f"has {len(cells)} cells but the header has "
                             f"{len(header)}")
                continue
            yield Record(line, {name: convert(cell) for name, convert, cell
                                in zip(header, converters, cells) if cell != ""})
    except UnicodeDecodeError:
        raise SourceError(f"line {reader.line_num + 1}: the file is not UTF-8 text") from None
    except csv.Error as exc:
        raise SourceError(f"line {reader.line_num}: {exc}") from None


def _converters(domain: Domain, header: list[str]) -> list[Callable[[str], object]]:
    """How each column's text becomes a JSON-like value; refuses unknown or repeated
    columns once, at the header, rather than on every line."""
    by_type: dict[str, Callable[[str], object]] = {"eventId": str, "ts": _ts}
    by_type |= {f.name: _CONVERT.get(f.type, str) for f in domain.all_fields}
    unknown = [name for name in header if name not in by_type]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if unknown or repeated:
        problems = ([f"unknown column(s) {', '.join(map(repr, unknown))}"] if unknown else [])
        problems += [f"repeated column(s) {', '.join(map(repr, repeated))}"] if repeated else []
        raise SourceError(f"line 1: {'; '.join(problems)}; the {domain.name} fields are "
                          f"{', '.join(by_type)}")
    return [by_type[name] for name in header]


def _integer(cell: str) -> object:
    return int(cell) if _INTEGER.match(cell) else cell


def _number(cell: str) -> object:
    return Decimal(cell) if _NUMBER.match(cell) else cell


def _ts(cell: str) -> object:  # unix seconds as a number, RFC 3339 as text
    return (int(cell) if _INTEGER.match(cell) else Decimal(cell)) if _NUMBER.match(cell) else cell


def _boolean(cell: str) -> object:
    return {"true": True, "false": False}.get(cell.lower(), cell)


def _text_list(cell: str) -> object:
    try:
        return _decoder.decode(cell)
    except (msgspec.DecodeError, RecursionError):
        return cell


_CONVERT: dict[FieldType, Callable[[str], object]] = {
    FieldType.BIGINT: _integer, FieldType.DOUBLE: _number, FieldType.BOOL: _boolean,
    FieldType.TEXT_LIST: _text_list,
}  # TEXT, CHOICE and DECIMAL (a decimal string is valid) stay text
