"""Every tenant table is keyed by org_id and every query the gateway writes pins org_id.

That is what sharding by org needs (README "Scale-out with Citus"): Citus wants the
distribution column in every unique key and in every foreign key between distributed
tables, and it routes a query to one shard only when every distributed table it reads is
filtered on ``org_id = <constant>``.

(a) Schema: the migrated database is introspected (pg_class, pg_index, pg_constraint).
(b) Queries: every statement the gateway runs for a broad set of requests (each domain's
    ingest with its rollup refresh, every series view and every breakdown with scopes,
    filters and includeSeries, the four seed endpoints) is captured in Python around
    psycopg's cursors, then EXPLAINed with its real parameters on a connection of our own.
    Every scan of a tenant table must carry ``org_id = '<the caller's org>'::uuid`` in its
    own Filter / Index Cond / Recheck Cond, and every INSERT into one must set org_id from
    a parameter holding that org (or copy it from such pinned rows). Ingest and ``load``
    write events and rollups in one statement, ``WITH inserted AS (INSERT INTO events_…
    SELECT %(org)s … RETURNING *), r0 AS (INSERT INTO ru_… SELECT org_id, … FROM inserted
    …), …``: each rollup INSERT may copy org_id only from a WITH query that inserted its
    rows with the org parameter and returned them, reading nothing else. The pin must be
    the literal org id the gateway passed: a row-level-security policy's qual (which reads
    a setting, not a parameter) never satisfies it.
(c) ``load``: every statement a bulk load runs (on its own synchronous connection) is
    checked the same way.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import re
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from domains import DOMAINS
from stats_gateway.auth import create_key, ensure_org
from stats_gateway.core.histogram_rollups import histogram_rollups
from stats_gateway.core.rollup_sql import rebuild_sql
from stats_gateway.core.rollups import domain_rollups
from stats_gateway.db import citus
from stats_gateway.db.schema import ledger_table
from support import (
    GENERATORS, NEW_GENERATORS, encode, generate, generate_new, post_events, random_times,
)

# Tables that are not sharded by org, each with the reason; everything else is a tenant
# table. Kept here by hand (not imported) so the test states the decision independently.
NOT_TENANT_TABLES = {
    "orgs": "reference table: the tenants themselves, keyed by id",
    "api_keys": "reference table: a key is looked up by its id before its org is known",
    "schema_migrations": "coordinator-only migration bookkeeping",
    "rollup_tables": "coordinator-only rollup-definition checksums",
    "rate_limit_buckets": "coordinator-only per-key rate-limit state (keyed by key id)",
}
SCAN_CONDITIONS = ("Filter", "Index Cond", "Recheck Cond")


def test_the_allow_list_matches_the_citus_module():
    assert set(NOT_TENANT_TABLES) == set(citus.REFERENCE_TABLES) | set(citus.LOCAL_TABLES)
    assert not set(citus.REFERENCE_TABLES) & set(citus.LOCAL_TABLES)


# --- (a) schema ----------------------------------------------------------------------------

def public_tables(db) -> set[str]:
    rows = db.execute("SELECT c.relname FROM pg_class c JOIN pg_namespace n "
                      "ON n.oid = c.relnamespace WHERE n.nspname = 'public' "
                      "AND c.relkind IN ('r', 'p')").fetchall()
    return {name for (name,) in rows}


def tenant_tables_in(db) -> set[str]:
    return public_tables(db) - set(NOT_TENANT_TABLES)


def partitions_in(db) -> set[str]:
    """Month partitions of the event tables (db/partitions.py): they follow their table."""
    return {name for (name,) in db.execute(
        "SELECT c.relname FROM pg_class c WHERE c.relispartition").fetchall()}


def test_every_tenant_table_has_a_not_null_org_id(db):
    tenants = tenant_tables_in(db)
    assert len(tenants) > len(DOMAINS) * 3  # events, entities and many rollups
    rows = db.execute("SELECT table_name, data_type, is_nullable FROM information_schema.columns "
                      "WHERE table_schema = 'public' AND column_name = 'org_id'").fetchall()
    org_columns = {table: (kind, nullable) for table, kind, nullable in rows}
    missing = sorted(tenants - set(org_columns))
    assert not missing, f"tables without org_id (shard them or allow-list them): {missing}"
    wrong = {t: org_columns[t] for t in tenants if org_columns[t] != ("uuid", "NO")}
    assert not wrong, f"org_id must be uuid NOT NULL: {wrong}"


def test_every_unique_key_of_a_tenant_table_includes_org_id(db):
    tenants = tenant_tables_in(db)
    rows = db.execute("""
        SELECT t.relname, ix.relname, i.indisprimary,
               array(SELECT a.attname FROM unnest(i.indkey) AS k(attnum)
                     JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum)
        FROM pg_index i
        JOIN pg_class t ON t.oid = i.indrelid
        JOIN pg_class ix ON ix.oid = i.indexrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname = 'public' AND (i.indisunique OR i.indisexclusion)""").fetchall()
    keyed = {table for table, *_ in rows if table in tenants}
    bad = [(table, index, columns) for table, index, _, columns in rows
           if table in tenants and "org_id" not in columns]
    assert not bad, f"unique keys without org_id (Citus refuses them): {bad}"
    # every tenant table has some unique key (the primary key, or a rollup's slot key),
    # but a partitioned event table: its ids are unique in its ledger (db/schema.py)
    partitioned = {d.table for d in DOMAINS} | partitions_in(db)
    assert keyed == tenants - partitioned, (
        f"tenant tables without a unique key: {sorted(tenants - partitioned - keyed)}")
    pkeys = {table: columns for table, _, primary, columns in rows if primary}
    assert pkeys["entities"][0] == "org_id"
    for domain in DOMAINS:
        assert pkeys[ledger_table(domain)] == ["org_id", "event_id"], domain.table


def test_foreign_keys_fit_the_distribution(db):
    """tenant -> tenant must match org_id with org_id; tenant -> reference is fine; a
    reference or local table may not point at a tenant table."""
    tenants = tenant_tables_in(db)
    reference = set(citus.REFERENCE_TABLES)
    rows = db.execute("""
        SELECT c.conname, src.relname, dst.relname,
               array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY AS k(n, i)
                     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n
                     ORDER BY k.i),
               array(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY AS k(n, i)
                     JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n
                     ORDER BY k.i)
        FROM pg_constraint c
        JOIN pg_class src ON src.oid = c.conrelid
        JOIN pg_class dst ON dst.oid = c.confrelid
        JOIN pg_namespace n ON n.oid = src.relnamespace
        WHERE c.contype = 'f' AND n.nspname = 'public'""").fetchall()
    assert rows, "expected at least entities -> orgs"
    problems = []
    for name, src, dst, columns, referenced in rows:
        if src in tenants and dst in tenants:
            if ("org_id", "org_id") not in zip(columns, referenced):
                problems.append(f"{name}: {src}{columns} -> {dst}{referenced} lacks org_id")
        elif not (dst in reference and (src in tenants or src in reference)):
            problems.append(f"{name}: {src} -> {dst} cannot be kept by Citus")
    assert not problems, problems


def test_the_distribution_sql_lists_every_tenant_table_exactly_once(db):
    sql = citus.distribution_sql(DOMAINS)
    distributed = Counter(re.findall(r"create_distributed_table\('(\w+)', 'org_id'", sql))
    referenced = Counter(re.findall(r"create_reference_table\('(\w+)'\)", sql))
    assert set(distributed) == tenant_tables_in(db) - partitions_in(db)
    assert set(distributed.values()) == {1}
    assert referenced == Counter(list(citus.REFERENCE_TABLES))
    # the colocation anchor is distributed first; every other table joins its group
    calls = re.findall(r"create_distributed_table\('(\w+)', 'org_id'(.*?)\)\n", sql)
    assert calls[0] == ("entities", "")
    assert {extra for _, extra in calls[1:]} == {", colocate_with => 'entities'"}
    for table in citus.LOCAL_TABLES:
        assert f"'{table}'" not in sql


# --- (b) queries ---------------------------------------------------------------------------

@dataclass
class Statement:
    text: str
    params: object


@contextlib.contextmanager
def capture_statements(synchronous: bool = False):
    """Record every statement run through psycopg's async cursors (the gateway's only
    way to the database), or its synchronous ones (the CLI's: ``load``), while the block
    runs."""
    seen: list[Statement] = []
    classes = ([psycopg.Cursor, psycopg.ServerCursor] if synchronous
               else [psycopg.AsyncCursor, psycopg.AsyncServerCursor])
    with pytest.MonkeyPatch.context() as mp:
        for cls in classes:
            for method in ("execute", "executemany", "stream"):
                original = cls.__dict__.get(method)
                if original is None:
                    continue
                mp.setattr(cls, method, _recording(original, seen, method))
        yield seen


def _recording(original, seen: list[Statement], method: str):
    def text_of(cursor, query) -> str:
        if isinstance(query, bytes):
            return query.decode()
        return query if isinstance(query, str) else query.as_string(cursor.connection)

    if method == "stream":
        def stream(self, query, params=None, *args, **kw):
            seen.append(Statement(text_of(self, query), params))
            return original(self, query, params, *args, **kw)
        return stream

    if not inspect.iscoroutinefunction(original):
        def run_sync(self, query, params=None, *args, **kw):
            if method == "executemany":
                params = list(params)
                for each in params:
                    seen.append(Statement(text_of(self, query), each))
            else:
                seen.append(Statement(text_of(self, query), params))
            return original(self, query, params, *args, **kw)
        return run_sync

    async def run(self, query, params=None, *args, **kw):
        if method == "executemany":
            for each in params:
                seen.append(Statement(text_of(self, query), each))
        else:
            seen.append(Statement(text_of(self, query), params))
        return await original(self, query, params, *args, **kw)
    return run


def _event_values(events: list[dict]) -> dict[str, str]:
    """A value the events really carry for each field (filters then match some rows)."""
    values: dict[str, str] = {}
    for event in events:
        for key, value in event.items():
            if isinstance(value, bool):
                values.setdefault(key, "true" if value else "false")
            elif isinstance(value, str):
                values.setdefault(key, value)
    return values


def _requests(org, events: dict[str, list[dict]], now: datetime):
    """(method, path, params or body, expected status) for every series view, breakdown
    and seed endpoint."""
    start = (now - timedelta(days=9, hours=5, minutes=7)).isoformat()
    end = (now - timedelta(hours=3, minutes=11)).isoformat()
    for domain in DOMAINS:
        seen = _event_values(events[domain.name])
        all_filters = {f.param: seen.get(f.param, "x") for f in domain.filters}
        first_filter = dict(list(all_filters.items())[:1])
        variants = [
            {"scope": "org", "window": "30d", "timeBucketSize": "1d"},
            {"scope": "workspace", "id": "w1", "window": "7d", **first_filter},
            {"scope": "repo", "id": "r1", "start": start, "end": end, "timeBucketSize": "1h",
             "timezone": "Asia/Kolkata", **all_filters},
            {"scope": "org", "window": "90d", "timeBucketSize": "1mo",
             "timezone": "America/New_York"},
        ]
        for view in domain.series:
            path = f"/v2/stats/{domain.name}" + (f"/{view.path}" if view.path else "")
            for params in variants:
                yield "GET", path, params, 200
        for dimension in domain.dimensions:  # calendar buckets: covered by the series
            path = f"/v2/stats/{domain.name}/breakdown/{dimension.by}"
            for params in variants[:3]:
                yield "GET", path, {**params, "includeSeries": "true", "limit": "3"}, 200
        yield "GET", f"/v2/stats/{domain.name}", {"scope": "workspace", "id": "nowhere",
                                                   "window": "7d"}, 404  # the scope lookup
    day = timedelta(days=1)
    yield "GET", "/v1/runs-stats", {"start": (now - 20 * day).isoformat(),
                                    "end": now.isoformat()}, 200
    yield "GET", "/v1/model-usage", {"period": "last_30_days"}, 200
    yield "GET", "/v1/model-usage", {"period": "last_7_days", "granularity": "hour",
                                     "modelConfigId": "mc-1"}, 200
    millis = int((now - 25 * day).timestamp() * 1000), int(now.timestamp() * 1000)
    yield ("GET", f"/v1/organizations/{org}/cu/usage-by-workflow",
           {"from": str(millis[0]), "to": str(millis[1])}, 200)
    specs = lambda names: [{"metric": m, "aggregations": ["sum", "avg", "min", "max", "count"],
                            "percentiles": [50, 95]} for m in names]
    calls = events["calls"]
    yield "POST", "/calls/stats", {
        "project_id": calls[0]["projectId"], "start": (now - 20 * day).isoformat(),
        "end": now.isoformat(), "granularity": 86_400,
        "usage_metrics": specs(["input_tokens", "output_tokens", "total_tokens",
                                "input_cost", "output_cost", "total_cost"]),
        "call_metrics": specs(["latency_ms", "call_count", "error_count"])}, 200
    yield "POST", "/calls/stats", {
        "project_id": calls[0]["projectId"], "start": (now - 5 * day).isoformat(),
        "granularity": 3600, "call_metrics": specs(["latency_ms"]),
        "filter": {"op_names": [calls[0]["opName"]], "trace_roots_only": True,
                   "wb_user_ids": ["wbu-1"], "thread_ids": ["th-1"]}}, 200


@pytest.fixture(scope="module")
def gateway_statements(client, db):
    """(org id, every statement the gateway ran for the requests) of a fresh org."""
    org = ensure_org(db, f"org-id-everywhere-{uuid.uuid4().hex[:8]}")
    headers = {"Authorization": f"Bearer {create_key(db, org)}"}
    now = datetime.now(UTC).replace(microsecond=0)
    times = random_times(7, now - timedelta(days=29), now - timedelta(minutes=5), 80)
    generators = {**{d: generate for d in GENERATORS}, **{d: generate_new for d in NEW_GENERATORS}}
    missing = sorted({d.name for d in DOMAINS} - set(generators))
    assert not missing, f"tests/support.py has no event generator for {missing}"
    events = {d.name: generators[d.name](d.name, 7, times) for d in DOMAINS}
    with capture_statements() as seen:
        for domain in DOMAINS:
            for batch in (events[domain.name][:50], events[domain.name]):  # dups + new
                r = post_events(client, headers, domain.name, batch)
                assert r.status_code == 200, r.text
        answered = Counter()
        for method, path, params, status in _requests(org, events, now):
            if method == "GET":
                r = client.get(path, params=params, headers=headers)
            else:
                r = client.post(path, content=encode(params),
                                headers={**headers, "Content-Type": "application/json"})
            assert r.status_code == status, f"{path} {params}: {r.status_code} {r.text}"
            answered[path] += 1
    views = sum(4 * len(d.series) + 3 * len(d.dimensions) for d in DOMAINS)
    assert sum(answered.values()) == views + len(DOMAINS) + 6
    return org, seen


def _plan_nodes(node: dict):
    yield node
    for child in node.get("Plans", ()):
        yield from _plan_nodes(child)


def _split_top_level(text: str) -> list[str]:
    """Comma-separated items at nesting depth 0 of ``text`` (up to a top-level FROM)."""
    items, depth, quote, current, i = [], 0, None, [], 0
    while i < len(text):
        ch = text[i]
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
            if depth < 0:
                break
        elif depth == 0 and ch == ",":
            items.append("".join(current).strip())
            current = []
            i += 1
            continue
        elif depth == 0 and re.match(r"\sFROM\s", text[i:i + 6], re.I):
            break
        current.append(ch)
        i += 1
    items.append("".join(current).strip())
    return items


_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+\"?(\w+)\"?(?:\s+AS\s+\w+)?\s*\(([^)]*)\)\s*"
                     r"(SELECT|VALUES\s*\()(.*)$", re.I | re.S)
_CTE_HEAD = re.compile(r"\s*\"?(\w+)\"?\s+AS\s+(?:(?:NOT\s+)?MATERIALIZED\s+)?\(", re.I)
_CLAUSE_END = re.compile(r"\s(WHERE|GROUP\s+BY|ORDER\s+BY|HAVING|LIMIT|ON\s+CONFLICT|RETURNING|"
                         r"UNION|WINDOW)\b", re.I)


def _closing(text: str, i: int) -> int:
    """The index just past the parenthesis closing the one opened before ``i``."""
    depth, quote = 1, None
    while depth:
        ch = text[i]
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        i += 1
    return i


def split_ctes(text: str) -> tuple[dict[str, str], str]:
    """``WITH a AS (…), b AS (…) rest`` -> ({"a": "…", "b": "…"}, "rest"); a statement
    without WITH -> ({}, text)."""
    head = re.match(r"\s*WITH\s+", text, re.I)
    if not head:
        return {}, text
    ctes, i = {}, head.end()
    while True:
        m = _CTE_HEAD.match(text, i)
        assert m, f"a WITH this test cannot read at {text[i:i + 80]!r}"
        end = _closing(text, m.end())
        ctes[m.group(1)] = text[m.end():end - 1]
        comma = re.compile(r"\s*,").match(text, end)
        if not comma:
            return ctes, text[end:].strip()
        i = comma.end()


def _flatten(text: str) -> tuple[str, list[str]]:
    """``text`` with every top-level parenthesised group replaced by ``(#k)``, and the groups'
    contents (quotes respected)."""
    out, groups, i = [], [], 0
    while i < len(text):
        ch = text[i]
        if ch == "(":
            end = _closing(text, i + 1)
            out.append(f"(#{len(groups)})")
            groups.append(text[i + 1:end - 1])
            i = end
            continue
        if ch in "'\"":
            j = text.index(ch, i + 1) + 1
            out.append(text[i:j])
            i = j
            continue
        out.append(ch)
        i += 1
    return "".join(out), groups


def from_sources(select_tail: str, subqueries: dict[str, str] | None = None,
                 ) -> list[str] | None:
    """The relations an INSERT's SELECT reads (names as written, ``VALUES`` for a VALUES
    list or a ``LATERAL unnest(…)`` of the row's own arrays, ``SUBQUERY`` for any other
    parenthesised source, or with ``subqueries`` a name of its own under which its text is
    put there, to be followed like a WITH query); None without a FROM."""
    flat, groups = _flatten(select_tail)
    m = re.search(r"\sFROM\s", flat, re.I)
    if not m:
        return None
    end = _CLAUSE_END.search(flat, m.end())
    clause = flat[m.start():end.start() if end else len(flat)]
    sources = []
    for lateral, ref in re.findall(
            r"(?:\bFROM|\bJOIN|,)\s+(LATERAL\s+)?(\(#\d+\)|\"?\w+\"?(?:\s*\(#\d+\))?)", clause,
            re.I):
        if lateral and re.fullmatch(r"unnest\s*\(#\d+\)", ref, re.I):
            sources.append("VALUES")  # the joined row's own arrays: no other rows read
        elif ref.startswith("(#"):
            inner = groups[int(ref[2:-1])]
            if re.match(r"\s*VALUES\b", inner, re.I):
                sources.append("VALUES")
            elif subqueries is not None:
                name = f"(subquery {len(subqueries)})"
                subqueries[name] = inner
                sources.append(name)
            else:
                sources.append("SUBQUERY")
        else:
            sources.append(re.sub(r"\s*\(#\d+\)$", "", ref).strip('"'))
    return sources


def _org_value(insert: str) -> tuple[str, str] | None:
    """(the expression an INSERT gives org_id, the text after SELECT/VALUES)."""
    match = _INSERT.match(insert)
    if not match:
        return None
    columns = [c.strip().strip('"') for c in match.group(2).split(",")]
    if "org_id" not in columns:
        return "", match.group(4)
    values = _split_top_level(match.group(4))
    value = re.sub(r"\s+AS\s+\w+$", "", values[columns.index("org_id")], flags=re.I).strip()
    return value, match.group(4)


def _insert_org_problem(statement: Statement, table: str, org: str,
                        tenants: set[str]) -> str | None:
    """Why the statement's INSERT into ``table`` (the statement itself, or one of its WITH
    queries) does not set org_id to the caller's org, or None when it does.

    org_id may come from a parameter holding the org; or be copied from rows of a WITH
    query that inserted them with org_id from such a parameter and returned them (ingest's
    ``WITH inserted AS (INSERT … RETURNING *), r0 AS (INSERT INTO ru_… SELECT … FROM
    inserted …)``); or be copied from tenant tables, whose scans are checked to be pinned.
    The copying SELECT may read nothing else (VALUES lists aside)."""
    ctes, main = split_ctes(statement.text)
    inserts = [q for q in [*ctes.values(), main] if re.match(
        r"\s*INSERT\s+INTO\s+\"?" + re.escape(table) + r"\b", q, re.I)]
    if len(inserts) != 1:
        return f"{len(inserts)} INSERTs into it where this test expects one"
    return _org_source_problem(inserts[0], statement.params or {}, org, ctes, tenants)


def _org_source_problem(insert: str, params: dict, org: str, ctes: dict[str, str],
                        tenants: set[str], depth: int = 0) -> str | None:
    found = _org_value(insert)
    if found is None:
        return "an INSERT whose column list this test cannot read"
    value, tail = found
    if not value:
        return "INSERT without an org_id column"
    param = re.fullmatch(r"%\((\w+)\)s(?:::uuid)?", value)
    if param:
        given = params.get(param.group(1))
        return None if str(given) == org else f"org_id set from {given!r}, not the caller's org"
    if not re.fullmatch(r'(?:"?\w+"?\.)?org_id', value):
        return f"org_id set from {value!r}"
    return _sources_problem(value, tail, params, org, ctes, tenants, depth)


def _sources_problem(value: str, tail: str, params: dict, org: str, ctes: dict[str, str],
                     tenants: set[str], depth: int) -> str | None:
    """Why the rows a SELECT copies org_id from (``tail``: after SELECT) may hold another
    org's id, or None. A WITH query may be an INSERT … RETURNING (checked as above) or a
    SELECT passing org_id through from such rows (ingest's per-cube aggregate ``a<i>``)."""
    derived: dict[str, str] = {}  # FROM (SELECT …) AS g: followed like a WITH query
    sources = from_sources(tail, derived)
    ctes = {**ctes, **derived}
    if not sources:
        return f"org_id copied from {value!r} without a FROM"
    for source in sources:
        if source == "VALUES":
            continue
        if source in tenants and source not in ctes:
            continue  # its scan is checked to be pinned
        if source not in ctes or depth > 3:
            return f"org_id copied from {source!r}, not from rows inserted for the caller's org"
        body = ctes[source]
        query = re.match(r"\s*SELECT\s+(.*)$", body, re.I | re.S)
        if query:
            items = [item.strip() for item in _split_top_level(query.group(1))]
            if not any(re.fullmatch(r'(?:"?\w+"?\.)?org_id(?:\s+AS\s+"?org_id"?)?', item,
                                    re.I) for item in items):
                return f"org_id copied from {source!r}, which does not pass org_id through"
            inner = _sources_problem("org_id", query.group(1), params, org, ctes, tenants,
                                     depth + 1)
        elif not re.search(r"\bRETURNING\s+(\*|.*\borg_id\b)", body, re.I | re.S):
            return f"org_id copied from {source!r}, which returns no inserted org_id"
        else:
            inner = _org_source_problem(body, params, org, ctes, tenants, depth + 1)
        if inner:
            return f"org_id copied from {source!r}, whose {inner}"
    return None


def _statement_problems(db, statement: Statement, org: str, tenants: set[str],
                        mentions: re.Pattern) -> list[str]:
    """Why one statement would not route to the org's shard (empty: it would)."""
    try:
        with db.transaction():
            (plan,) = db.execute("EXPLAIN (FORMAT JSON) " + statement.text,
                                 statement.params).fetchone()[0]
    except psycopg.Error as exc:
        if mentions.search(statement.text):
            return [f"cannot be EXPLAINed ({type(exc).__name__}) yet names a tenant table"]
        return []  # SET, SHOW, set_config, ...: no tenant table
    nodes = list(_plan_nodes(plan["Plan"]))
    pinned = re.compile(r"\borg_id = '" + re.escape(org) + r"'::uuid")
    problems = []
    for node in nodes:
        table = node.get("Relation Name")
        if table not in tenants:
            continue
        if node["Node Type"] == "ModifyTable":
            if node.get("Operation") == "Insert":
                problem = _insert_org_problem(statement, table, org, tenants)
                if problem:
                    problems.append(f"insert into {table}: {problem}")
            continue  # UPDATE/DELETE: the target's own scan below is checked
        conditions = [node.get(key, "") for key in SCAN_CONDITIONS]
        conditions += [child.get("Index Cond", "") for child in _plan_nodes(node)
                       if child["Node Type"] == "Bitmap Index Scan"]
        if not any(pinned.search(c) for c in conditions):
            problems.append(f"{node['Node Type']} on {table} without org_id = <org>: "
                            f"{[c for c in conditions if c]}")
    touches_tenants = any(n.get("Relation Name") in tenants for n in nodes)
    if touches_tenants and not any(str(v) == org for v in _param_values(statement.params)):
        problems.append("no parameter carries the org id")
    return problems


def _param_values(params) -> list:
    if params is None:
        return []
    return list(params.values()) if isinstance(params, dict) else list(params)


def _check(db, statements: list[Statement], org: str) -> tuple[int, dict[str, list[str]]]:
    tenants = tenant_tables_in(db)
    mentions = re.compile(r"\b(" + "|".join(sorted(tenants, key=len, reverse=True)) + r")\b")
    unique = {s.text: s for s in statements}  # one plan per text: same shape, same routing
    failures = {}
    checked = 0
    for text, statement in unique.items():
        problems = _statement_problems(db, statement, org, tenants, mentions)
        checked += bool(mentions.search(text))
        if problems:
            failures[text[:300]] = problems
    return checked, failures


def test_every_statement_the_gateway_runs_pins_the_org(db, gateway_statements):
    org, statements = gateway_statements
    checked, failures = _check(db, statements, org)
    assert not failures, "\n".join(f"{text}\n  -> {problems}"
                                   for text, problems in failures.items())
    # broad enough to mean something: event inserts, entity upserts, refreshes of every
    # rollup and histogram rollup table, and raw, rollup and entity-name reads
    texts = " ".join(s.text for s in statements)
    for domain in DOMAINS:
        assert f"INSERT INTO {domain.table} " in texts, domain.name
        for rollup in domain_rollups(domain):
            assert f"INSERT INTO {rollup.table} " in texts, rollup.table
        for histogram in histogram_rollups(domain):
            assert f"INSERT INTO {histogram.table} " in texts, histogram.table
    assert "INSERT INTO entities " in texts and "FROM entities" in texts
    assert re.search(r'FROM "ru_\w+"', texts) and re.search(r"FROM \"?events_\w+", texts)
    assert checked > 200, checked


def test_per_org_rebuild_statements_pin_the_org(db, gateway_statements):
    """``rebuild --org``'s statements (DELETE the org's rollup rows, recompute them) route
    to the org's shard too; the all-orgs rebuild is maintenance and fans out."""
    org, _ = gateway_statements
    statements = []
    for domain in DOMAINS:
        for rollup in domain_rollups(domain):
            statements += rebuild_sql(rollup, org)
        for histogram in histogram_rollups(domain):
            statements += histogram.rebuild_sql(org)
    checked, failures = _check(db, [Statement(s.text, s.params) for s in statements], org)
    assert not failures, failures
    assert checked == len({s.text for s in statements})


def test_the_checker_catches_an_unpinned_query(db, gateway_statements):
    """The check itself can fail: a query over another org, or over all of them, is named."""
    org, _ = gateway_statements
    other = str(uuid.uuid4())
    table = DOMAINS[0].table
    bad = [
        Statement(f"SELECT count(*) FROM {table} WHERE ts > now() - interval '1 day'", None),
        Statement(f"SELECT count(*) FROM {table} WHERE org_id = %(org)s", {"org": other}),
        Statement("SELECT e.name FROM entities e JOIN " + table + " v ON v.api_key_id = e.id "
                  "WHERE v.org_id = %(org)s", {"org": org}),
        Statement(f"INSERT INTO entities (org_id, kind, id) SELECT org_id, 'x', 'y' "
                  f"FROM {table} WHERE ts > now()", None),
        Statement(f"DELETE FROM {table} WHERE event_id = %(id)s", {"id": "e1"}),
        Statement("INSERT INTO entities (org_id, kind, id) VALUES (%(o)s, 'repo', %(org)s)",
                  {"o": other, "org": org}),
    ]
    _, failures = _check(db, bad, org)
    assert len(failures) == len(bad), failures
    good = Statement(f"SELECT count(*) FROM {table} WHERE org_id = %(org)s", {"org": org})
    assert _check(db, [good], org) == (1, {})


def test_the_checker_reads_inserts_that_copy_rows_a_with_query_inserted(db, gateway_statements):
    """Rows copied from ``WITH inserted AS (INSERT … RETURNING *)`` are the caller's only
    if that INSERT set org_id from the org parameter and the copy reads nothing else."""
    org, _ = gateway_statements
    other = str(uuid.uuid4())
    table = ledger_table(DOMAINS[0])  # (org_id, event_id) unique, as events were
    events = (f"INSERT INTO {table} (org_id, event_id, ts) VALUES (%(o)s, 'x', now()) "
              "ON CONFLICT (org_id, event_id) DO NOTHING RETURNING *")
    copy = ("INSERT INTO entities AS e (org_id, kind, id) SELECT org_id, 'x', event_id "
            "FROM inserted AS \"v\" WHERE TRUE ON CONFLICT (org_id, kind, id) DO NOTHING")
    good = Statement(f"WITH inserted AS ({events}), r0 AS ({copy}) "
                     "SELECT event_id FROM inserted", {"o": org, "org": org})
    assert _check(db, [good], org) == (1, {})
    bad = [
        # the events are another org's, so are the copies
        Statement(good.text, {"o": other, "org": org}),
        # the copied rows come from a plain (unpinned) SELECT, not from an INSERT
        Statement(f"WITH inserted AS (SELECT org_id, event_id FROM {table}), r0 AS ({copy}) "
                  "SELECT 1", {"org": org}),
        # the copy also reads a tenant table, unpinned
        Statement(f"WITH inserted AS ({events}), r0 AS (INSERT INTO entities (org_id, kind, id) "
                  f"SELECT v.org_id, 'x', v.event_id FROM inserted JOIN {table} v "
                  "ON v.event_id = inserted.event_id) SELECT 1", {"o": org, "org": org}),
        # the inserted rows do not come back (no RETURNING): nothing to copy from
        Statement(f"WITH inserted AS ({events.replace(' RETURNING *', '')}), "
                  "r0 AS (INSERT INTO entities (org_id, kind, id) SELECT org_id, 'x', 'y' "
                  f"FROM {table} WHERE org_id = %(org)s) SELECT 1", {"o": org, "org": org}),
    ]
    _, failures = _check(db, bad, org)
    assert len(failures) == len(bad) - 1, failures
    # the last one is fine after all: its copy reads pinned rows of the event table
    assert bad[-1].text[:300] not in failures
    assert [p for p in failures[bad[0].text[:300]] if p.startswith("insert into entities")], \
        failures
    # (read as a query passing org_id through, its unpinned scan is what gives it away)
    assert any("returns no inserted org_id" in p or "without org_id = <org>" in p
               for p in failures[bad[1].text[:300]]), failures[bad[1].text[:300]]
    # a SELECT between the inserted rows and the copy (ingest's per-cube aggregate a<i>)
    # passes org_id through; one that makes up its own org_id does not
    entity = ("r0 AS (INSERT INTO entities AS e (org_id, kind, id) SELECT org_id, 'x', 'y' "
              "FROM a0 ON CONFLICT (org_id, kind, id) DO NOTHING)")
    through = Statement(f"WITH inserted AS ({events}), a0 AS MATERIALIZED (SELECT org_id, "
                        f"count(*) AS n FROM inserted GROUP BY org_id), {entity} SELECT 1",
                        {"o": org, "org": org})
    assert _check(db, [through], org) == (1, {})
    made_up = Statement(f"WITH inserted AS ({events}), a0 AS MATERIALIZED (SELECT "
                        f"%(other)s::uuid AS org_id FROM inserted), {entity} SELECT 1",
                        {"o": org, "org": org, "other": other})
    _, failures = _check(db, [made_up], org)
    assert any("does not pass org_id through" in p
               for p in failures.get(made_up.text[:300], [])), failures


def test_a_load_pins_the_org_in_every_statement(db, database_url, gateway_statements):
    """A bulk load's statements (stage, event and rollup inserts in one statement, entity
    upserts, repo checks), captured on its own connection and checked like the gateway's;
    the TEMP stage is recreated here (inside a transaction) so they can be EXPLAINed."""
    from stats_gateway.bulk import load_events, read_records

    org, _ = gateway_statements
    now = datetime.now(UTC).replace(microsecond=0)
    times = random_times(8, now - timedelta(days=70), now - timedelta(minutes=5), 60)
    generators = {**{d: generate for d in GENERATORS}, **{d: generate_new for d in NEW_GENERATORS}}
    loaded = [d for d in DOMAINS if d.name in ("storage", "calls", "private-chat", "runs")]
    seen: dict[str, list[Statement]] = {}
    for domain in loaded:
        events = generators[domain.name](domain.name, 8, times, prefix="load-")
        text = b"\n".join(encode(e) for e in events)
        with psycopg.connect(database_url, autocommit=True) as conn:
            with capture_statements(synchronous=True) as captured:
                report = load_events(conn, domain, org, read_records(io.BytesIO(text), "ndjson",
                                                                     domain), chunk_rows=25)
        assert report.inserted == len(events), report
        seen[domain.name] = list(captured)

    class Rollback(Exception):
        pass

    for domain in loaded:
        statements = seen[domain.name]
        stage = [s for s in statements if re.match(r"\s*(CREATE TEMP|DROP TABLE IF EXISTS pg_temp)",
                                                   s.text)]
        assert stage, "the load created no stage"
        with pytest.raises(Rollback):
            with db.transaction():
                for s in stage:
                    db.execute(s.text, s.params)
                checked, failures = _check(db, statements, org)
                raise Rollback
        assert not failures, "\n".join(f"{text}\n  -> {problems}"
                                       for text, problems in failures.items())
        texts = " ".join(s.text for s in statements)
        assert f"INSERT INTO {domain.table} " in texts.replace('"', ""), domain.name
        for rollup in domain_rollups(domain):
            assert f"INSERT INTO {rollup.table} " in texts, rollup.table
        for histogram in histogram_rollups(domain):
            assert f"INSERT INTO {histogram.table} " in texts, histogram.table
        assert checked >= 3, (domain.name, checked)
