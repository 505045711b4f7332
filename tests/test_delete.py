"""``stats-gateway delete``: an org's data erased, rollups included, in one transaction,
with a count per table; other orgs untouched; a query afterwards answers zeros."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domains import DOMAINS
from domains.private_chat import DOMAIN as CHAT
from domains.storage import DOMAIN as STORAGE
from expected import parse_ts
from retention_support import DAY, day_points, midnight, new_org, own_database, per_day
from stats_gateway.cli import main
from stats_gateway.config import DATABASE_URL_ENV
from stats_gateway.core.rollups import rollup_table_names
from stats_gateway.db.schema import ledger_table
from support import generate, ingest, ok, random_times

NOW = datetime.now(UTC)
SPAN = (NOW - timedelta(days=70), NOW - timedelta(hours=1))
RANGE = {"scope": "org", "start": midnight(NOW - timedelta(days=75)).isoformat(),
         "end": (midnight(NOW) + DAY).isoformat(), "timeBucketSize": "1d"}


def org_tables() -> list[str]:
    tables = ["entities"]
    for domain in DOMAINS:
        tables += [domain.table, ledger_table(domain), *rollup_table_names(domain)]
    return tables


def counts(db, org_id: str) -> dict[str, int]:
    return {t: db.execute(f"SELECT count(*) FROM {t} WHERE org_id = %s", (org_id,)).fetchone()[0]
            for t in org_tables()}


@pytest.fixture(scope="module")
def own(server_url):
    yield from own_database(server_url, "sg_del")


def loaded(own, name: str, seed: int):
    org = new_org(own, name)
    chat = generate("private-chat", seed, random_times(seed, *SPAN, 600), prefix=f"{name}-")
    storage = generate("storage", seed, random_times(seed + 1, *SPAN, 400), prefix=f"{name}-")
    ingest(own.client, org, "private-chat", chat, chunk=1000)
    ingest(own.client, org, "storage", storage, chunk=1000)
    return org, chat, storage


def run_delete(own, monkeypatch, capsys, *args) -> tuple[int, dict[str, int], str]:
    monkeypatch.setenv(DATABASE_URL_ENV, own.url)
    code = main(["delete", *args])
    out = capsys.readouterr().out
    reported = {table: int(rows.replace(",", "")) for table, rows in
                (line.split("\t") for line in out.splitlines() if "\t" in line)}
    return code, reported, out


def test_delete_erases_every_table_of_the_org_and_nothing_else(own, monkeypatch, capsys):
    gone, chat, storage = loaded(own, "del-gone", 1)
    kept, kept_chat, _ = loaded(own, "del-kept", 2)
    before, kept_before = counts(own.db, gone.id), counts(own.db, kept.id)
    assert before[CHAT.table] == len(chat) and before[STORAGE.table] == len(storage)
    assert before[ledger_table(CHAT)] == len(chat)
    assert all(before[t] for t in rollup_table_names(CHAT))  # rollups had rows
    code, reported, out = run_delete(own, monkeypatch, capsys, "--org", "del-gone")
    assert code == 0
    assert reported == {t: n for t, n in before.items() if n}, out
    assert f"deleted {sum(before.values()):,} rows of org {gone.id}" in out
    assert not any(counts(own.db, gone.id).values())
    assert counts(own.db, kept.id) == kept_before
    body = ok(own.client, "/v2/stats/private-chat", gone.headers, RANGE)
    assert day_points(body, "requests") == {} and body["summary"]["total"] == 0
    body = ok(own.client, "/v2/stats/private-chat", kept.headers, RANGE)
    start, end = parse_ts(RANGE["start"]), parse_ts(RANGE["end"])
    assert day_points(body, "requests") == per_day(kept_chat, start, end)
    # its events can be sent again: erased ids are new ids
    ingest(own.client, gone, "private-chat", chat[:10])


def test_delete_of_one_domain_before_an_instant_keeps_exact_rollups_after_it(
        own, monkeypatch, capsys):
    org, chat, storage = loaded(own, "del-before", 3)
    cut = NOW - timedelta(days=20, hours=10, minutes=43, seconds=5)  # on no rollup grain
    storage_before = counts(own.db, org.id)[STORAGE.table]
    code, reported, out = run_delete(own, monkeypatch, capsys, "--org", org.id,
                                     "--domain", "private-chat", "--before", cut.isoformat())
    assert code == 0, out
    older = sum(parse_ts(e["ts"]) < cut for e in chat)
    assert reported[CHAT.table] == older and reported[ledger_table(CHAT)] == older
    assert counts(own.db, org.id)[STORAGE.table] == storage_before
    left = [e for e in chat if parse_ts(e["ts"]) >= cut]
    start, end = parse_ts(RANGE["start"]), parse_ts(RANGE["end"])
    body = ok(own.client, "/v2/stats/private-chat", org.headers, RANGE)
    assert day_points(body, "requests") == per_day(left, start, end)
    assert day_points(body, "tokensIn") == per_day(left, start, end, "tokensIn")
    # a whole-range breakdown reads the 30-day rollups: the slot cut by the instant
    # holds exactly the events after it again
    body = ok(own.client, "/v2/stats/private-chat/breakdown/users", org.headers,
              {"scope": "org", "start": RANGE["start"], "end": RANGE["end"]})
    users = {}
    for e in left:
        users[e["userId"]] = users.get(e["userId"], 0) + 1
    assert {x["entityId"]: x["totals"]["requests"] for x in body["entities"]} == users


def test_delete_names_an_unknown_org_and_removes_nothing(own, monkeypatch, capsys):
    monkeypatch.setenv(DATABASE_URL_ENV, own.url)
    assert main(["delete", "--org", "no-such-org"]) == 2
    assert "no org has the id or name 'no-such-org'" in capsys.readouterr().err
