"""ETag and 304 on every domain's series and first breakdown (``http/caching.py``): a past
range's answer is revalidated by its tag, and a late event written into that range changes
the tag (the old one then gets 200 with the new answer, the new one 304)."""

from __future__ import annotations

import pytest

from expected import DIMENSIONS, NEW_DIMENSIONS, entity_key
from support import ingest
from test_filters import ALL, END, START, key_fields, loaded  # noqa: F401 - the fixture

PARAMS = {"scope": "org", "start": "2026-04-06T00:00:00Z", "end": "2026-04-09T00:00:00Z"}


def paths(domain: str) -> list[str]:
    by = next(b for (d, b) in [*DIMENSIONS, *NEW_DIMENSIONS] if d == domain)
    return [f"/v2/stats/{domain}", f"/v2/stats/{domain}/breakdown/{by}"]


@pytest.mark.parametrize("domain", ALL)
def test_a_late_event_changes_the_tag_of_every_domain(client, loaded, domain):
    org, events = loaded[domain]
    before = {}
    for path in paths(domain):
        r = client.get(path, headers=org.headers, params=PARAMS)
        assert r.status_code == 200 and r.headers["etag"], (path, r.text[:200])
        before[path] = (r.headers["etag"], r.content)
        again = client.get(path, headers={**org.headers, "If-None-Match": r.headers["etag"]},
                           params=PARAMS)
        assert again.status_code == 304 and again.content == b"", path
    by = paths(domain)[1].rsplit("/", 1)[1]
    late = next(e for e in events if START <= _ts(e) < END
                and entity_key(e, key_fields(domain, by)) is not None)
    ingest(client, org, domain, [{**late, "eventId": f"late-{domain}"}])
    for path, (tag, body) in before.items():
        r = client.get(path, headers={**org.headers, "If-None-Match": tag}, params=PARAMS)
        assert r.status_code == 200 and r.headers["etag"] != tag and r.content != body, path
        again = client.get(path, headers={**org.headers, "If-None-Match": r.headers["etag"]},
                           params=PARAMS)
        assert again.status_code == 304, path


def _ts(event: dict):
    from expected import parse_ts
    return parse_ts(event["ts"])
