"""/v2 breakdowns named from an event column (runs targets, model-usage models,
workflow-cu workflows) give the newest name ever sent with the id, as the catalogue does
for every other dimension: not the newest within the range, and not null when no event in
range carried one. A key limited to workspaces learns only the names sent within them."""

from __future__ import annotations

from support import ingest, ok
from test_security import Key

RANGE = {"scope": "org", "start": "2026-05-02T00:00:00Z", "end": "2026-05-03T00:00:00Z"}


def model(event_id: str, ts: str, name: str | None, workspace: str = "w1") -> dict:
    e = {"eventId": event_id, "ts": ts, "workspaceId": workspace, "modelId": "m1",
         "billing": "platform", "tokens": 1, "cost": "0.5"}
    return {**e, "modelName": name} if name is not None else e


def test_the_newest_name_ever_sent_names_the_entity(client, db, new_org):
    org = new_org()
    ingest(client, org, "model-usage", [
        model("a", "2026-05-01T10:00:00Z", "Old name"),      # before the range
        model("b", "2026-05-02T10:00:00Z", None),            # in range, no name
        model("c", "2026-05-04T10:00:00Z", "Newest name"),   # after the range
        model("d", "2026-05-05T10:00:00Z", "Elsewhere", workspace="w2"),  # newest, w2
    ])
    body = ok(client, "/v2/stats/model-usage/breakdown/models", org.headers, RANGE)
    assert [(e["entityId"], e["entityName"]) for e in body["entities"]] == [("m1", "Elsewhere")]
    assert body["entities"][0]["totals"]["requests"] == 1
    # a key limited to w1 sees the newest name sent in w1, never the one from w2
    key = Key(db, org.id, workspaces=["w1"])
    body = ok(client, "/v2/stats/model-usage/breakdown/models", key.headers, RANGE)
    assert [(e["entityId"], e["entityName"]) for e in body["entities"]] == [("m1", "Newest name")]


def test_an_entity_never_named_stays_null(client, new_org):
    org = new_org()
    ingest(client, org, "model-usage", [model("a", "2026-05-02T10:00:00Z", None)])
    body = ok(client, "/v2/stats/model-usage/breakdown/models", org.headers, RANGE)
    assert [(e["entityId"], e["entityName"]) for e in body["entities"]] == [("m1", None)]
