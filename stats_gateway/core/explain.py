"""What a request would read and run, without running it (``StatsEngine.explain``).

The engine answers the request as it always does, through the same methods, planner and
SQL builders, but on a *recording* engine whose one door to the data (``_fetch``) keeps
each statement (``Sql``: the planner's segments, the rendered text, its parameters) and
returns no rows. So the explanation is the planner's real decision, never a second
implementation of it, and no data query runs. Rules (written down here because the issue
leaves them open):

* The scope check still runs (a workspace or repo id is looked up in the caller's own
  org, as for the real request): explaining a foreign or unknown id answers the same 404.
* Queries that follow from rows are listed as the engine would send them for a page it
  had found: a breakdown's page series and sketched metrics carry the placeholder
  ``PAGE_IDS`` for the page's entity ids. A breakdown's name lookup (the newest names of
  the page's entities) needs real ids and is not listed.
* A sum past bigint makes the engine ask a series again with numeric parts: only the
  first (bigint) form is listed.
* Parameters are the caller's own values (its org id, its filters); table names are the
  shared schema's. Nothing of another org is read or shown.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from stats_gateway.core.rollups import Segment
from stats_gateway.core.sqlterms import Sql
from stats_gateway.model import Model

PAGE_IDS = "<page entity ids>"  # stands for the ids a breakdown's page query returns

NOTES = (
    "No data query ran: every statement below is what the engine would send, built by "
    "the same planner and SQL builders. The scope id (workspace, repo) was checked.",
    f"Statements that depend on a breakdown's page show {PAGE_IDS!r} for its entity ids.",
)


class ExplainedSegment(Model):
    """One planned read: ``[start, end)`` from one rollup table or from raw events."""

    source: str  # rollup | raw
    table: str
    grain: str | None  # the rollup's slot size; None for raw events
    start: str  # ISO 8601, UTC
    end: str
    # a range's tail (core/rollups.py, TailGuard): read only if the org has no event
    # ("none") or some ("some") in [readIfEventsAfter, readIfEventsUntil); null: always
    read_if_events: str | None = None
    read_if_events_after: str | None = None
    read_if_events_until: str | None = None


class ExplainedQuery(Model):
    purpose: str
    segments: list[ExplainedSegment]
    sql: str  # the text sent, named placeholders %(name)s
    params: dict[str, Any]  # each placeholder's value (times ISO 8601, steps in seconds)


class Explanation(Model):
    queries: list[ExplainedQuery]
    notes: list[str]


class ExplainResponse(Model):
    success: bool
    explain: Explanation


def _iso(instant: datetime) -> str:
    return instant.isoformat()


def param_value(value: object) -> object:
    """A parameter as JSON: instants ISO 8601, steps (intervals) in seconds, lists item
    by item; anything else not JSON as its text."""
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (list, tuple)):
        return [param_value(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def explained_segment(segment: Segment, table: str) -> ExplainedSegment:
    rollup, guard = segment.rollup, segment.guard
    return ExplainedSegment(
        source="raw" if rollup is None else "rollup",
        table=table if rollup is None else rollup.table,
        grain=None if rollup is None else rollup.grain,
        start=_iso(segment.start), end=_iso(segment.end),
        read_if_events=None if guard is None else "some" if guard.when_events else "none",
        read_if_events_after=None if guard is None else _iso(guard.after),
        read_if_events_until=None if guard is None else _iso(guard.until))


def explained_query(sql: Sql, events_table: str) -> ExplainedQuery:
    return ExplainedQuery(
        purpose=sql.purpose or "query",
        segments=[explained_segment(s, events_table) for s in sql.segments],
        sql=sql.text, params={k: param_value(v) for k, v in sorted(sql.params.items())})


def explanation(recorded: Sequence[tuple[Sql, str]]) -> Explanation:
    """The recorded statements, in the order the engine sent them, each with the events
    table of its domain (the raw segments' table)."""
    return Explanation(queries=[explained_query(sql, table) for sql, table in recorded],
                       notes=list(NOTES))


_BREAKS = re.compile(r" (?=UNION ALL |FROM |WHERE |GROUP BY |ORDER BY |LIMIT |"
                     r"LEFT JOIN |CROSS JOIN |SELECT )")


def readable_sql(text: str) -> str:
    """The statement with a line break before each clause: a reviewable diff. Only
    layout changes (no break inside a quoted name or literal: our texts have none)."""
    return _BREAKS.sub("\n", text)


def explain_text(found: Explanation) -> str:
    """For people (the CLI): each statement's purpose, reads, SQL and parameters."""
    out = []
    for i, query in enumerate(found.queries, 1):
        out.append(f"-- {i}. {query.purpose}")
        for seg in query.segments:
            where = f"{seg.table} ({seg.grain})" if seg.grain else f"{seg.table} (raw)"
            if seg.read_if_events is not None:
                where += (f", only if {seg.read_if_events} of the org's events lie in "
                          f"{seg.read_if_events_after} .. {seg.read_if_events_until}")
            out.append(f"--    {seg.start} .. {seg.end}: {where}")
        out.append(readable_sql(query.sql) + ";")
        out.append("-- params: " + json.dumps(query.params, sort_keys=True))
        out.append("")
    out += [f"-- note: {note}" for note in found.notes]
    return "\n".join(out) + "\n"


def placeholder_org(found: Explanation, org_id: str, placeholder: str) -> Explanation:
    """``found`` with the org id replaced (deterministic snapshots, shareable output)."""
    def swap(value: object) -> object:
        if value == org_id:
            return placeholder
        if isinstance(value, list):
            return [swap(v) for v in value]
        return value

    return Explanation(
        queries=[ExplainedQuery(purpose=q.purpose, segments=q.segments, sql=q.sql,
                                params={k: swap(v) for k, v in q.params.items()})
                 for q in found.queries],
        notes=found.notes)
