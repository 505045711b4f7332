"""Every curl example of docs/queries.md runs against a live gateway and answers what the
text says it does (values checked against the events posted here)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from support import ingest, live_server

DOC = Path(__file__).resolve().parents[1] / "docs" / "queries.md"
EXAMPLES = re.findall(r"```bash\n(.*?)```", DOC.read_text(), re.S)


def events() -> list[dict]:
    """Requests of four users on three models on 2026-05-02."""
    rows = [("u1", "gpt-4o", 10), ("u1", "gpt-4o-mini", 20), ("u2", "gpt-4o", 30),
            ("u2", "claude", 40), ("u3", "claude", 50), ("u4", "gpt-4o", 60)]
    out = []
    for i, (user, model, tokens) in enumerate(rows):
        for hour in (6, 15):  # one before noon, one after: compare=previous has both halves
            out.append({"eventId": f"doc-{i}-{hour}", "ts": f"2026-05-02T{hour:02d}:00:00Z",
                        "userId": user, "model": model, "tokensIn": tokens,
                        "tokensOut": tokens * 2})
    return out


@pytest.fixture(scope="module")
def gateway(database_url, client, db):
    from conftest import Org
    org = Org(db, "docs-queries")
    ingest(client, org, "private-chat", events())
    with live_server(database_url) as url:
        yield url, org.key


def run(example: str, url: str, key: str) -> dict:
    done = subprocess.run(["bash", "-c", example], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "GATEWAY": url, "KEY": key})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_doc_has_its_examples():
    assert len(EXAMPLES) == 7


def test_each_example_answers_as_documented(gateway):
    url, key = gateway
    answers = [run(example, url, key) for example in EXAMPLES]
    in_list, negated, other, compared, compared_breakdown, warned, query = answers
    # model=gpt-4o&model=gpt-4o-mini: 3 events of gpt-4o and 1 of gpt-4o-mini, twice
    assert in_list["summary"]["total"] == 8
    assert in_list["meta"]["resourceFilters"] == [
        {"type": "model", "id": "gpt-4o,gpt-4o-mini", "operator": "in",
         "ids": ["gpt-4o", "gpt-4o-mini"]}]
    # model!=gpt-4o: users of gpt-4o-mini and claude
    assert {e["entityId"]: e["totals"]["requests"] for e in negated["entities"]} == {
        "u1": 2, "u2": 2, "u3": 2}
    # limit=2, by requests then id: u1 and u2 (4 each) on the page; u3 and u4 in other;
    # every private-chat request has a user: nothing unattributed
    assert [e["entityId"] for e in other["entities"]] == ["u1", "u2"]
    assert other["other"]["entities"] == 2
    assert other["other"]["totals"]["tokensIn"] == 2 * (50 + 60)
    assert other["other"]["totals"]["requests"] == 4
    assert other["unattributed"]["totals"]["requests"] == 0
    # compare=previous: [12:00, 24:00) holds the 15:00 events, [00:00, 12:00) the 06:00 ones
    assert compared["summary"]["total"] == 6 and compared["previous"]["summary"]["total"] == 6
    assert len(compared["previous"]["series"]) == len(compared["series"]) == 12
    by_model = {e["entityId"]: (e["totals"]["requests"], e["previousTotals"]["requests"])
                for e in compared_breakdown["entities"]}
    assert by_model == {"gpt-4o": (3, 3), "gpt-4o-mini": (1, 1), "claude": (2, 2)}
    assert warned["summary"]["total"] == 0
    assert [w["code"] for w in warned["meta"]["warnings"]] == ["filter_value_with_comma"]
    # the query: (model, user) groups of gpt-4o and claude, by requests then model, user
    assert query["meta"]["totalRows"] == 5
    assert [(r["models"], r["users"], r["requests"], r["tokensIn"]) for r in query["rows"]] == [
        ("claude", "u2", 2, 80), ("claude", "u3", 2, 100), ("gpt-4o", "u1", 2, 20)]
    assert query["nextCursor"]
