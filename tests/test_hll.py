"""HyperLogLog sketches in plain SQL (``sql/0005_hll.sql``, ``stats_gateway/core/hll.py``).

Expected counts come from the data, not from the sketch: ``generate_series`` makes the
distinct texts ``'1'..'n'``, so a set of ``n`` of them has exactly ``n`` distinct values.
The session plans like the gateway's connections (``plan_cache_mode = force_custom_plan``).
"""

from __future__ import annotations

import random

import psycopg
import pytest

from stats_gateway.core import hll

SKETCH_OF_RANGE = ("SELECT hll_agg(hll_code(i::text)) FROM generate_series(%(lo)s::int, "
                   "%(hi)s::int) AS i")


@pytest.fixture(scope="module")
def conn(db, database_url):
    """A connection of this module's own (its temp tables go with it); ``db`` migrated."""
    with psycopg.connect(database_url, autocommit=True) as own:
        own.execute("SET plan_cache_mode = force_custom_plan")
        yield own


def one(conn, sql: str, params: dict | None = None):
    return conn.execute(sql, params or {}).fetchone()[0]


def sketch_of_range(conn, lo: int, hi: int) -> list[int]:
    return one(conn, SKETCH_OF_RANGE, {"lo": lo, "hi": hi})


def assert_sketch(codes: list[int]) -> None:
    """Sorted, one code per register, valid ranks."""
    registers = [c >> hll.RANK_BITS for c in codes]
    assert registers == sorted(set(registers))
    assert all(1 <= c & hll.RANK_MASK <= hll.MAX_RANK and 0 <= c >> hll.RANK_BITS < hll.M
               for c in codes)


# --- codes ------------------------------------------------------------------------------


def test_code_of_hash_register_and_rank_bits(conn):
    hashes = [0, -1, 1, 16383, 16384, -(2**63), 2**63 - 1, -16384, 3 << 14, 1 << 62]
    hashes += [1 << (hll.P + k) for k in range(64 - hll.P - 1)]  # the 0..48 zeros ranks
    got = conn.execute("SELECT h, hll_code_of_hash(h) FROM unnest(%(h)s::bigint[]) AS h",
                       {"h": hashes}).fetchall()
    assert [c for _, c in got] == [hll.code_of_hash(h) for h in hashes]
    by_hash = dict(got)
    assert by_hash[0] == hll.MAX_RANK  # register 0, 50 zero bits: capped rank 51
    assert by_hash[-1] == (hll.M - 1) << hll.RANK_BITS | 1
    assert by_hash[-(2**63)] & hll.RANK_MASK == 50  # only the sign bit above the register
    assert by_hash[1 << 62] & hll.RANK_MASK == 49
    ranks = [by_hash[1 << (hll.P + k)] & hll.RANK_MASK for k in range(64 - hll.P - 1)]
    assert ranks == list(range(1, 64 - hll.P))
    assert one(conn, "SELECT hll_code(NULL)") is None


def test_python_hash_and_code_match_postgres(conn):
    rng = random.Random(5)
    alphabet = "abcXYZ019 -_/.éßœ€中文😀"
    values = ["", "a", "é", "😀", "user-1"] + [str(i) for i in range(2000)]
    values += ["".join(rng.choice(alphabet) for _ in range(n))
               for n in range(64) for _ in range(8)]
    rows = conn.execute("SELECT v, hashtextextended(v, 0), hll_code(v) "
                        "FROM unnest(%(v)s::text[]) AS v", {"v": values}).fetchall()
    assert [(v, hll.hash_bytes_extended(v.encode()), hll.code(v)) for v in values] == rows


# --- estimates --------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 2, 10, 100, 1000, 10_000, 100_000, 1_000_000])
def test_cardinality_of_distinct_texts(conn, n):
    sketch = sketch_of_range(conn, 1, n)
    assert_sketch(sketch)
    assert len(sketch) <= min(n, hll.M)
    got = one(conn, "SELECT hll_cardinality(%(s)s::int[])", {"s": sketch})
    if n <= 100:
        assert got == n  # exact: see test_exact_while_no_register_is_shared
    else:
        assert abs(got - n) <= hll.error_bound(n), (n, got)


def test_exact_while_no_register_is_shared(conn):
    """hll.py's measured fact: '1'..'n' is counted exactly for every n <= 127, and not at
    128 (no two of them share a register yet; linear counting then answers 128.5)."""
    rows = conn.execute(
        "SELECT n, hll_cardinality((SELECT hll_agg(hll_code(i::text)) "
        "                           FROM generate_series(1, n) AS i)) "
        "FROM generate_series(0, 130) AS n ORDER BY n").fetchall()
    assert [got for n, got in rows if n <= 127] == list(range(128))
    assert dict(rows)[128] == 129


def test_python_estimate_matches_sql(conn):
    rng = random.Random(9)
    cases = [(0, 0.0), (1, 0.5), (2, 0.75), (10356, 3000.0), (10357, 3000.0), (16383, 6000.0),
             (16384, 8192.0), (16384, 1e-3), (16384, 2.0**-20 * 16384), (20000, 1.0)]
    for _ in range(3000):
        nonzero = rng.randint(1, hll.M)
        # each non-empty register adds 2^-rank: between 2^-51 and 1/2
        cases.append((nonzero, nonzero * rng.uniform(2.0**-30, 0.5)))
    got = conn.execute("SELECT hll_estimate(n, h) FROM unnest(%(n)s::bigint[], "
                       "%(h)s::float8[]) AS c(n, h)",
                       {"n": [n for n, _ in cases], "h": [h for _, h in cases]}).fetchall()
    assert [g for (g,) in got] == [hll.estimate(n, h) for n, h in cases]


def test_linear_counting_boundary():
    m = hll.M
    lc = hll.LINEAR_COUNTING_MAX_NONZERO
    assert hll.estimate(lc, 0.0) <= m < hll.estimate(lc + 1, 0.0)
    assert hll.estimate(0, 0.0) == 0 and hll.estimate(1, 0.5) == 1


# --- merging ----------------------------------------------------------------------------


def test_union_of_overlapping_sets_is_the_sketch_of_the_union(conn):
    a, b = sketch_of_range(conn, 1, 60_000), sketch_of_range(conn, 40_001, 100_000)
    both = sketch_of_range(conn, 1, 100_000)
    assert one(conn, "SELECT hll_union(%(a)s::int[], %(b)s::int[])", {"a": a, "b": b}) == both
    assert one(conn, "SELECT hll_union(%(b)s::int[], %(a)s::int[])", {"a": a, "b": b}) == both
    assert one(conn, "SELECT hll_union(%(a)s::int[], %(a)s::int[])", {"a": a}) == a
    small = sketch_of_range(conn, 1, 30)
    assert one(conn, "SELECT hll_union(%(s)s::int[], %(s)s::int[])", {"s": small}) == small


def test_union_agg_of_overlapping_sets(conn):
    """2,000 sketches of 100 values, each overlapping the next by half: the state is
    compacted several times on the way (past 32768 codes)."""
    conn.execute("CREATE TEMP TABLE hll_parts AS SELECT part, hll_agg(hll_code(i::text)) AS s "
                 "FROM generate_series(0, 1999) AS part, "
                 "generate_series(part * 50 + 1, part * 50 + 100) AS i GROUP BY part")
    try:
        merged = one(conn, "SELECT hll_union_agg(s) FROM hll_parts")
        assert merged == sketch_of_range(conn, 1, 1999 * 50 + 100)
        assert_sketch(merged)
        # in any order, with every sketch repeated, with NULL rows: the same
        assert one(conn, "SELECT hll_union_agg(s ORDER BY part DESC) FROM "
                   "(SELECT part, s FROM hll_parts UNION ALL SELECT part, s FROM hll_parts "
                   " UNION ALL SELECT -1, NULL) AS t") == merged
        assert one(conn, "SELECT hll_union_agg(s) FROM hll_parts WHERE part = 7") == one(
            conn, "SELECT s FROM hll_parts WHERE part = 7")
    finally:
        conn.execute("DROP TABLE hll_parts")


def test_empty_and_null(conn):
    a = sketch_of_range(conn, 1, 1000)
    row = conn.execute(
        "SELECT hll_union(NULL, NULL), hll_union('{}', NULL), hll_union(NULL, %(a)s::int[]), "
        "hll_union(%(a)s::int[], NULL), hll_union(%(a)s::int[], '{}'), "
        "hll_cardinality(NULL), hll_cardinality('{}'), hll_estimate(0, NULL)",
        {"a": a}).fetchone()
    assert row == ([], [], a, a, a, 0, 0, 0)
    assert one(conn, "SELECT hll_agg(c) FROM unnest('{}'::int[]) AS c") == []
    assert one(conn, "SELECT hll_agg(c) FROM unnest('{NULL,NULL}'::int[]) AS c") == []
    with_nulls = "SELECT hll_agg(hll_code(v)) FROM unnest(ARRAY['x', NULL, 'x']) AS v"
    assert one(conn, with_nulls) == [hll.code("x")]
    for rows in ("VALUES (NULL::int[]), (NULL)", "SELECT NULL::int[] WHERE false"):
        assert one(conn, f"SELECT hll_union_agg(s) FROM ({rows}) AS t(s)") == []


def test_normalize_and_cardinality_take_unnormalised_codes(conn):
    codes = [hll.code(str(i)) for i in range(500)]
    messy = codes[::-1] + codes[:100] + [None]
    normal = one(conn, "SELECT hll_normalize(%(c)s::int[])", {"c": messy})
    assert normal == one(conn, "SELECT hll_agg(c) FROM unnest(%(c)s::int[]) AS c",
                         {"c": codes})
    assert_sketch(normal)
    assert one(conn, "SELECT hll_cardinality(%(c)s::int[])", {"c": messy}) == one(
        conn, "SELECT hll_cardinality(%(c)s::int[])", {"c": normal}) == 500


# --- many groups at once ----------------------------------------------------------------


def test_grouped_pattern_equals_cardinality_per_group(conn):
    """Rollup-like rows: per group several overlapping sketches; the two-level SQL gives
    each group what hll_cardinality of its merged sketch gives."""
    conn.execute(
        "CREATE TEMP TABLE hll_rollup AS "
        "SELECT g, part, hll_agg(hll_code(g || ':' || i)) AS users "
        "FROM (VALUES (1, 5), (2, 120), (3, 3000), (4, 40000), (5, 250000)) AS sizes(g, n), "
        "generate_series(0, 3) AS part, "
        "generate_series(1 + part * n / 4, least(n, (part + 2) * n / 4)) AS i "
        "GROUP BY g, part")
    try:
        conn.execute("INSERT INTO hll_rollup VALUES (6, 0, '{}'), (6, 1, NULL)")
        sql = hll.grouped_estimate_sql("hll_rollup AS r", "r.users", {"grp": "r.g"},
                                       where="r.g <> %(skip)s", estimate="users")
        rows = conn.execute(f"SELECT grp, users FROM ({sql}) AS e ORDER BY grp",
                            {"skip": 0}).fetchall()
        expected = conn.execute(
            "SELECT g, hll_cardinality(hll_union_agg(users)) FROM hll_rollup "
            "GROUP BY g HAVING g <> 6 ORDER BY g").fetchall()
        assert rows == expected  # group 6 has no codes: absent, as from any GROUP BY
        for (g, users), n in zip(rows, [5, 120, 3000, 40000, 250000]):
            assert abs(users - n) <= hll.error_bound(n), (g, users)
        total = hll.grouped_estimate_sql("hll_rollup", "hll_rollup.users")
        assert one(conn, total) == one(conn, "SELECT hll_cardinality(hll_union_agg(users)) "
                                             "FROM hll_rollup")
        nothing = hll.grouped_estimate_sql("hll_rollup", "hll_rollup.users", where="false")
        assert one(conn, nothing) == 0
    finally:
        conn.execute("DROP TABLE hll_rollup")


def test_grouped_pattern_refuses_odd_names():
    with pytest.raises(ValueError):
        hll.grouped_estimate_sql("t", "t.s", {'x"; DROP': "t.x"})
    with pytest.raises(ValueError):
        hll.grouped_estimate_sql("t", "t.s", estimate="hll_rank")


def test_stored_sketches_are_hll_agg_of_their_events(client, db, new_org):
    """Ingest builds each sketch by register (``DistinctRollup._by_register``) and merges
    with an inlined union: every stored sketch equals ``hll_agg`` (the reference) over the
    raw events of its slot and cube row, after two batches that hit the same rows and a
    third that repeats the first's conversations under new ids (it brings no new code,
    so the merge leaves those rows alone)."""
    from domains import DOMAINS
    from stats_gateway.core.distinct import distinct_rollups, sketch_column
    from support import ingest

    org = new_org()
    rng = random.Random(7)
    batches = [[{"eventId": f"sk-{b}-{i}", "ts": f"2026-07-0{1 + i % 3}T{i % 24:02d}:10:00Z",
                 "userId": f"u{i % 5}", "model": "m",
                 **({"conversationId": f"c{rng.randrange(400)}"} if i % 7 else {})}
                for i in range(600)] for b in range(2)]
    batches.append([{**event, "eventId": f"again-{event['eventId']}"} for event in batches[0]])
    for batch in batches:
        ingest(client, org, "private-chat", batch)
    domain = next(d for d in DOMAINS if d.name == "private-chat")
    twins = distinct_rollups(domain)
    assert twins
    for twin in twins:
        (column,) = twin.columns
        cube = ", ".join(twin.rollup.columns)
        slot = f"date_bin(%(grain)s, ts, '2000-01-01T00:00:00Z'::timestamptz)"
        want = db.execute(
            f"SELECT {slot}, {cube}, hll_agg(hll_code({column})) FILTER "
            f"(WHERE {column} IS NOT NULL) FROM {domain.table} WHERE org_id = %(org)s "
            f"GROUP BY {slot}, {cube}", {"grain": twin.rollup.step, "org": org.id}).fetchall()
        got = db.execute(
            f'SELECT slot_ts, {cube}, "{sketch_column(column)}" FROM {twin.table} '
            f"WHERE org_id = %(org)s", {"org": org.id}).fetchall()
        assert sorted(map(tuple, got), key=repr) == sorted(map(tuple, want), key=repr), \
            twin.table


def test_both_ways_of_reading_sketches_give_the_estimate_of_the_bucket(client, new_org):
    """Weekly and daily buckets merge whole sketches (``_union_of_sketches``), hourly ones
    take the largest rank per register from every code (``_largest_ranks``): either way a
    bucket's ``activeConversations`` is the HyperLogLog estimate of exactly its events'
    conversation ids, computed here in Python from the events sent (``hll.code``,
    ``hll.estimate``), thousands of them, so registers are shared (and each way fails this
    test when its register count is off by one). One hour holds 20,000 more distinct ids
    in three workspaces (three sketches a slot, merged per bucket): past linear counting
    (10,356 registers), where the estimate reads every register's rank, so taking any but
    the largest rank per register fails it too."""
    from datetime import UTC, datetime, timedelta

    from support import ingest

    org = new_org()
    rng = random.Random(11)
    start = datetime(2026, 6, 1, tzinfo=UTC)  # a Monday: weeks are ISO weeks
    events = []
    for i in range(6000):
        t = start + timedelta(seconds=rng.randrange(21 * 86_400))
        events.append({"eventId": f"hx-{i}", "ts": t.isoformat().replace("+00:00", "Z"),
                       "model": "m", "conversationId": f"conv-{rng.randrange(5000)}"})
    busy = start + timedelta(days=3, hours=10)
    events += [{"eventId": f"hx-busy-{i}",
                "ts": (busy + timedelta(seconds=i % 3600)).isoformat().replace("+00:00", "Z"),
                "model": "m", "conversationId": f"busy-{i}", "workspaceId": f"w{i % 3}"}
               for i in range(20_000)]  # three cube rows a slot: registers meet in merges
    ingest(client, org, "ai", events)
    assert len({e["conversationId"] for e in events}) > 20_000
    sent = [(datetime.fromisoformat(e["ts"]), e["conversationId"]) for e in events]

    def estimate_of(ids: set[str]) -> int:
        registers: dict[int, int] = {}
        for value in ids:
            code = hll.code(value)
            registers[code >> hll.RANK_BITS] = max(registers.get(code >> hll.RANK_BITS, 0),
                                                   code & hll.RANK_MASK)
        return hll.estimate(len(registers), sum(2.0 ** -r for r in registers.values()))

    for size, step, first, last in (("1w", timedelta(days=7), start, start + timedelta(days=21)),
                                    ("1d", timedelta(days=1), start, start + timedelta(days=21)),
                                    ("1h", timedelta(hours=1), start + timedelta(days=3),
                                     start + timedelta(days=5))):
        params = {"scope": "org", "start": first.isoformat().replace("+00:00", "Z"),
                  "end": last.isoformat().replace("+00:00", "Z"), "timeBucketSize": size}
        r = client.get("/v2/stats/ai", params=params, headers=org.headers)
        assert r.status_code == 200, r.text
        points = r.json()["series"]
        assert len(points) == (last - first) // step
        for point in points:
            bucket = datetime.fromtimestamp(point["ts"], UTC)
            ids = {c for t, c in sent if bucket <= t < bucket + step}
            assert point["activeConversations"] == estimate_of(ids), (size, bucket)
        if size == "1w":  # thousands of ids: the estimate is not simply the count
            assert any(p["activeConversations"] != len(
                {c for t, c in sent if datetime.fromtimestamp(p["ts"], UTC) <= t
                 < datetime.fromtimestamp(p["ts"], UTC) + step}) for p in points)
        # every way has a bucket past linear counting (the busy hour, its day, its week)
        assert max(p["activeConversations"] for p in points) > 16_384, size


def test_a_total_read_from_one_sketch_is_that_sketch(client, new_org):
    """A whole day of ai events is one row of the org cube's daily sketches: the day's
    point and the series' total (an ungrouped distinct count) both read that lone sketch,
    and both count its 7 conversations (exact at this size); 30 events name them."""
    from support import ingest, ok

    org = new_org()
    ingest(client, org, "ai", [
        {"eventId": f"one-{i}", "ts": f"2026-04-08T{i % 24:02d}:{(7 * i) % 60:02d}:00Z",
         "model": "m", "conversationId": f"conv-{i % 7}"} for i in range(30)])
    body = ok(client, "/v2/stats/ai", org.headers,
              {"scope": "org", "start": "2026-04-08T00:00:00Z", "end": "2026-04-09T00:00:00Z",
               "timeBucketSize": "1d", "metric": "activeConversations"})
    assert [p["activeConversations"] for p in body["series"]] == [7]
    assert body["summary"]["total"] == 7


def test_exact_counts_of_buckets_without_a_value_are_zero(client, new_org):
    """Five-minute buckets have no sketch rollup, so their distinct counts are exact, from
    raw events: two conversations in the first bucket, none in the second (its events
    carry no conversationId), nothing in the third; over the range, two."""
    from support import ingest, ok

    org = new_org()
    ingest(client, org, "ai", [
        {"eventId": "x-1", "ts": "2026-04-08T10:01:00Z", "model": "m", "conversationId": "a"},
        {"eventId": "x-2", "ts": "2026-04-08T10:02:00Z", "model": "m", "conversationId": "a"},
        {"eventId": "x-3", "ts": "2026-04-08T10:03:00Z", "model": "m", "conversationId": "b"},
        {"eventId": "x-4", "ts": "2026-04-08T10:06:00Z", "model": "m"},
        {"eventId": "x-5", "ts": "2026-04-08T10:07:00Z", "model": "m"}])
    body = ok(client, "/v2/stats/ai", org.headers,
              {"scope": "org", "start": "2026-04-08T10:00:00Z", "end": "2026-04-08T10:15:00Z",
               "timeBucketSize": "5m", "metric": "activeConversations"})
    assert [(p["requests"], p["activeConversations"]) for p in body["series"]] == [
        (3, 2), (2, 0), (0, 0)]
    assert body["summary"]["total"] == 2


def _registers(ids) -> dict[int, int]:
    """The largest rank per register of ``ids``' codes, as the sketches keep them."""
    registers: dict[int, int] = {}
    for value in ids:
        code = hll.code(value)
        register = code >> hll.RANK_BITS
        registers[register] = max(registers.get(register, 0), code & hll.RANK_MASK)
    return registers


def _estimate(registers: dict[int, int]) -> int:
    return hll.estimate(len(registers), sum(2.0 ** -r for r in registers.values()))


@pytest.mark.parametrize(("domain", "by", "key", "metric"), [
    ("ai", "models", "model", "activeConversations"),
    # a high-cardinality dimension: its first page is found from its likely entities, and
    # an entity past linear counting makes every entity one
    ("private-chat", "users", "userId", "conversationsCount"),
])
def test_a_breakdown_sorted_by_a_distinct_count_ranks_by_the_estimate_past_linear_counting(
        client, new_org, domain, by, key, metric):
    """Two entities past linear counting (over 10,356 registers), ranked by their sketches'
    estimates (``estimate_ranking_sql``). The sets are chosen so that the one with fewer
    ids and fewer non-empty registers has the larger estimate (its registers' ranks are
    higher): ranking by the exact count, or by the register count alone, or with any
    harmonic sum but the right one, puts them the other way round. Each entity's events are
    spread over two days and two workspaces, so its sketches are merged."""
    from datetime import UTC, datetime, timedelta

    from support import ingest

    a_ids = [f"a-{i}" for i in range(18_000)]
    b_ids = [f"b48-{i}" for i in range(17_911)]
    a, b = _registers(a_ids), _registers(b_ids)
    assert hll.LINEAR_COUNTING_MAX_NONZERO < len(b) < len(a) and len(b_ids) < len(a_ids)
    assert _estimate(b) > _estimate(a)  # the premise: the estimate alone puts b first
    org = new_org()
    start = datetime(2026, 6, 1, tzinfo=UTC)
    events = [{"eventId": f"{name}-{i}",
               "ts": (start + timedelta(seconds=(i * 7919) % 172_800)).isoformat()
               .replace("+00:00", "Z"),
               "model": "m", key: name, "conversationId": cid, "workspaceId": f"w{i % 2}"}
              for name, ids in (("ma", a_ids), ("mb", b_ids)) for i, cid in enumerate(ids)]
    events.append({"eventId": "mc-0", "ts": "2026-06-01T05:00:00Z", "model": "m",
                   key: "mc"})  # no conversation
    ingest(client, org, domain, events)
    range_ = {"scope": "org", "start": "2026-06-01T00:00:00Z", "end": "2026-06-03T00:00:00Z"}
    path = f"/v2/stats/{domain}/breakdown/{by}"
    want = {"ma": _estimate(a), "mb": _estimate(b), "mc": 0}
    for order, ids in (("desc", ["mb", "ma", "mc"]), ("asc", ["mc", "ma", "mb"])):
        r = client.get(path, headers=org.headers,
                       params={**range_, "sort": metric, "order": order})
        assert r.status_code == 200, r.text
        body = r.json()
        assert [e["entityId"] for e in body["entities"]] == ids, order
        assert {e["entityId"]: e["totals"][metric] for e in body["entities"]} == want
        assert body["meta"]["totalEntities"] == 3
    for order, ids in (("desc", ["ma"]), ("asc", ["ma"])):
        r = client.get(path, headers=org.headers, params={
            **range_, "sort": metric, "order": order, "offset": "1", "limit": "1"})
        assert r.status_code == 200, r.text
        assert [e["entityId"] for e in r.json()["entities"]] == ids, order


# each user's conversations by day (1 May, 2 May, 3 May 2026): the users cube keeps one
# sketch a user and day, so a user's sketch rows bound its count of registers from below
# (the longest row) and from above (the sum of the rows' lengths)
CONVERSATIONS_BY_DAY = {
    "u1": (["x"], ["x"], ["x"]),  # 1 conversation; bounds 1..3
    "u2": (["a", "b"], ["a", "b"], []),  # 2; bounds 2..4: the second largest upper bound
    "u3": (["c"], ["d"], ["e"]),  # 3: the most; bounds 1..3, its longest row is short
    "u4": (["f", "g"], ["g"], []),  # 2; bounds 2..3
    "u5": (["i"], [], []),  # 1; bounds 1..1
    "u6": ([], [], []),  # 0: events without a conversation
    "u7": (["j", "k", "l", "m", "n"], [], []),  # 5; bounds 5..5
}


def test_a_users_page_ranked_by_conversations_counts_every_user_that_may_be_on_it(
        client, new_org):
    """Pages of users ranked by ``conversationsCount`` are found by counting the registers
    of the users that may be on the page only (``distinct._pruned_ranking``): the first
    by their upper bound, then every user whose bound could still reach the last of them.
    The users' bounds mislead on purpose (the user with the most conversations has short
    rows, the one with the largest upper bound has two), so a wrong cut or a wrong bound
    leaves a user out of a page it belongs on. Every page, either order, every depth,
    against the exact counts of the events (no two conversations share a register)."""
    from support import ingest

    conversations = {c for days in CONVERSATIONS_BY_DAY.values() for day in days
                     for c in day}
    assert len(_registers(conversations)) == len(conversations)  # the estimates are exact
    org = new_org()
    events = []
    for user, days in CONVERSATIONS_BY_DAY.items():
        for day, ids in enumerate(days, start=1):
            for i, cid in enumerate(ids or [None]):
                if ids or day == 1:  # a user without conversations still has an event
                    events.append({"eventId": f"{user}-{day}-{i}",
                                   "ts": f"2026-05-0{day}T1{i}:00:00Z", "model": "m",
                                   "userId": user, "conversationId": cid})
    ingest(client, org, "private-chat", [{k: v for k, v in e.items() if v is not None}
                                         for e in events])
    counts = {user: len({c for day in days for c in day})
              for user, days in CONVERSATIONS_BY_DAY.items()}
    assert counts == {"u1": 1, "u2": 2, "u3": 3, "u4": 2, "u5": 1, "u6": 0, "u7": 5}
    for order in ("desc", "asc"):
        ranked = sorted(counts, key=lambda u: (-counts[u] if order == "desc" else counts[u], u))
        for limit in (1, 2, 3):
            for offset in range(len(counts) + 1):
                r = client.get("/v2/stats/private-chat/breakdown/users", headers=org.headers,
                               params={"scope": "org", "start": "2026-05-01T00:00:00Z",
                                       "end": "2026-05-04T00:00:00Z", "order": order,
                                       "sort": "conversationsCount", "limit": str(limit),
                                       "offset": str(offset)})
                assert r.status_code == 200, r.text
                body = r.json()
                page = ranked[offset:offset + limit]
                assert [(e["entityId"], e["totals"]["conversationsCount"])
                        for e in body["entities"]] == [(u, counts[u]) for u in page], \
                    (order, limit, offset)
                assert body["meta"]["totalEntities"] == len(counts)
