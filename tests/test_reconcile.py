"""Breakdowns that reconcile (``includeOther=true``): the page's entities, ``other`` (every
entity not on the page) and ``unattributed`` (events without the dimension) add up to
the range's totals, for every domain and dimension; and each part's every metric is the
one computed here, in plain Python, over that part's own events (``expected``).
"""

from __future__ import annotations

import pytest

from expected import APPROXIMATE, NON_ADDITIVE, assert_matches, compute, entity_key, in_range
from support import ok
from test_filters import ALL, DIMENSIONS, NEW_DIMENSIONS, RANGE, START, END, both_paths, \
    key_fields, loaded  # noqa: F401 - the module fixture

PAIRS = [(d, by) for (d, by) in [*DIMENSIONS, *NEW_DIMENSIONS]]


@pytest.mark.parametrize("domain", ALL)
def test_page_other_and_unattributed_add_up_to_the_whole(client, loaded, domain):
    org, events = loaded[domain]
    chosen = in_range(events, START, END)
    params = {"scope": "org", "start": RANGE["start"], "end": RANGE["end"]}
    for (d, by) in PAIRS:
        if d != domain:
            continue
        fields = key_fields(domain, by)
        for _ in both_paths(client):
            body = ok(client, f"/v2/stats/{domain}/breakdown/{by}", org.headers,
                      {**params, "limit": 2, "offset": 1, "includeOther": "true"})
            page = [e["entityId"] for e in body["entities"]]
            metrics = list(body["other"]["totals"])
            other = [e for e in chosen if entity_key(e, fields) not in (None, *page)]
            missing = [e for e in chosen if entity_key(e, fields) is None]
            everyone = {entity_key(e, fields) for e in chosen} - {None}
            assert body["other"]["entities"] == len(everyone) - len(page), (domain, by)
            assert body["unattributed"]["entities"] == 0
            assert_matches(body["other"]["totals"], compute(domain, metrics, other),
                           f"{domain}/{by}.other")
            assert_matches(body["unattributed"]["totals"], compute(domain, metrics, missing),
                           f"{domain}/{by}.unattributed")
            # the identity, for every additive metric: the parts add up to the whole
            checked = 0
            for m in metrics:
                if m in NON_ADDITIVE or m in APPROXIMATE:
                    continue
                checked += 1
                parts = [e["totals"][m] for e in body["entities"]]
                parts += [body["other"]["totals"][m], body["unattributed"]["totals"][m]]
                assert sum(p or 0 for p in parts) == compute(domain, [m], chosen)[m], (
                    domain, by, m)
            assert checked > 0


def test_without_include_other_the_envelope_is_unchanged(client, loaded):
    org, _ = loaded["storage"]
    body = ok(client, "/v2/stats/storage/breakdown/buckets", org.headers,
              {"scope": "org", "start": RANGE["start"], "end": RANGE["end"]})
    assert set(body) == {"success", "meta", "summary", "entities"}
