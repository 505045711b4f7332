"""Cacheable answers (issue 11, point 6): ETag/304 on the stats GETs, a write into a past
range changes the tag, errors are never cached, gzip when accepted (http/caching.py)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from expected import unix, utc
from support import generate, ingest, live_server
from stats_gateway.http.caching import accepts_gzip, none_match

START, END = utc(2026, 3, 2), utc(2026, 3, 9)  # a range that ended long ago
IDENTITY = {"Accept-Encoding": "identity"}


def series_params(**extra) -> dict:
    return {"scope": "org", "start": str(unix(START)), "end": str(unix(END)),
            "timeBucketSize": "1d", **extra}


def get(client, org, path, params, **headers):
    return client.get(path, params=params, headers={**org.headers, **headers})


def digest(media_type: str, body: bytes) -> str:
    """The tag computed here from the identity body: BLAKE2b of media type and bytes."""
    return hashlib.blake2b(media_type.encode() + b"\n" + body, digest_size=16).hexdigest()


def vary_tokens(r) -> list[str]:
    return [t.strip().lower() for t in r.headers["vary"].split(",")]


def assert_cacheable(r) -> str:
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "private, no-cache"
    assert sorted(vary_tokens(r)) == ["accept", "accept-encoding", "authorization"]
    tag = r.headers["etag"]
    assert tag.startswith('"') and tag.endswith('"') and not tag.startswith("W/")
    return tag


def assert_not_modified(r, tag: str) -> None:
    assert r.status_code == 304, r.text
    assert r.content == b""
    assert r.headers["etag"] == tag
    assert r.headers["cache-control"] == "private, no-cache"
    assert "content-type" not in r.headers and "content-encoding" not in r.headers


@pytest.fixture
def past_org(client, new_org):
    org = new_org()
    times = [START + timedelta(minutes=97 * i) for i in range(100)]  # all inside the range
    events = generate("storage", 21, times, prefix="cache-")
    ingest(client, org, "storage", events)
    return org, events


@pytest.mark.parametrize("path", ["/v2/stats/storage", "/v2/stats/storage/breakdown/workspaces"])
def test_a_late_event_into_a_past_range_changes_the_etag(client, past_org, path):
    org, events = past_org
    r1 = get(client, org, path, series_params(), **IDENTITY)
    tag1 = assert_cacheable(r1)
    assert tag1 == f'"{digest(r1.headers["content-type"], r1.content)}"'
    assert get(client, org, path, series_params(), **IDENTITY).headers["etag"] == tag1  # stable
    assert_not_modified(get(client, org, path, series_params(), **IDENTITY,
                            **{"If-None-Match": tag1}), tag1)
    if path.endswith("storage"):
        assert r1.json()["summary"]["total"] == len(events)

    late = generate("storage", 22, [END - timedelta(hours=5)], prefix="late-")
    ingest(client, org, "storage", late)
    r2 = get(client, org, path, series_params(), **IDENTITY)
    tag2 = assert_cacheable(r2)
    assert tag2 != tag1 and r2.content != r1.content
    assert tag2 == f'"{digest(r2.headers["content-type"], r2.content)}"'
    if path.endswith("storage"):
        assert r2.json()["summary"]["total"] == len(events) + 1
    stale = get(client, org, path, series_params(), **IDENTITY, **{"If-None-Match": tag1})
    assert stale.status_code == 200 and stale.content == r2.content
    assert stale.headers["etag"] == tag2
    for header in (tag2, f"W/{tag2}", "*", f'"nope", {tag1}, {tag2}'):
        assert_not_modified(get(client, org, path, series_params(), **IDENTITY,
                                **{"If-None-Match": header}), tag2)

    # an event outside the range changes nothing: the tag stays
    ingest(client, org, "storage", generate("storage", 23, [END + timedelta(days=2)],
                                            prefix="after-"))
    assert_not_modified(get(client, org, path, series_params(), **IDENTITY,
                            **{"If-None-Match": tag2}), tag2)


def test_seed_get_is_tagged_and_changes_with_a_late_run(client, new_org):
    org = new_org()
    run = {"eventId": "r1", "ts": "2026-03-03T10:00:00Z", "targetType": "flow",
           "targetSlug": "alpha", "source": "api"}
    ingest(client, org, "runs", [run])
    params = {"start": "2026-03-01T00:00:00Z", "end": "2026-03-07T23:59:59Z"}
    r1 = get(client, org, "/v1/runs-stats", params, **IDENTITY)
    tag1 = assert_cacheable(r1)
    assert sum(p["runs"] for p in r1.json()["timeline"]) == 1
    assert_not_modified(get(client, org, "/v1/runs-stats", params,
                            **{"If-None-Match": tag1, **IDENTITY}), tag1)
    ingest(client, org, "runs", [{**run, "eventId": "r2", "ts": "2026-03-05T10:00:00Z"}])
    r2 = get(client, org, "/v1/runs-stats", params, **{"If-None-Match": tag1, **IDENTITY})
    assert r2.status_code == 200 and assert_cacheable(r2) != tag1
    assert sum(p["runs"] for p in r2.json()["timeline"]) == 2


def test_errors_are_never_cached(client, past_org):
    org, _ = past_org
    bad = get(client, org, "/v2/stats/storage", series_params(timeBucketSize="7s"),
              **{"If-None-Match": "*"})
    unauthorized = client.get("/v2/stats/storage", params=series_params(),
                              headers={"Authorization": "Bearer sg_nope.nope",
                                       "If-None-Match": "*"})
    seed_bad = get(client, org, "/v1/runs-stats", {"start": "yesterday"}, **{"If-None-Match": "*"})
    for r, status in ((bad, 400), (unauthorized, 401), (seed_bad, 422)):
        assert r.status_code == status, r.text
        assert r.headers["cache-control"] == "no-store"
        assert "etag" not in r.headers


def test_tags_reveal_nothing_across_orgs(client, new_org):
    """A tag is the digest of the body its caller gets (which names the org), so orgs with
    the same events have different tags, and another org's tag never gets a 304."""
    a, b = new_org(), new_org()
    events = generate("storage", 31, [START + timedelta(hours=5 * i) for i in range(20)],
                      prefix="t-")
    for org in (a, b):
        ingest(client, org, "storage", events)
    ra, rb = (get(client, o, "/v2/stats/storage", series_params(), **IDENTITY) for o in (a, b))
    assert ra.json()["series"] == rb.json()["series"]
    assert assert_cacheable(ra) != assert_cacheable(rb)
    r = get(client, b, "/v2/stats/storage", series_params(),
            **{"If-None-Match": ra.headers["etag"], **IDENTITY})
    assert r.status_code == 200 and r.content == rb.content


def test_gzip_when_accepted_and_its_own_tag(client, past_org):
    org, _ = past_org
    params = series_params(timeBucketSize="1h")  # 168 points: well over 500 bytes
    plain = get(client, org, "/v2/stats/storage", params, **IDENTITY)
    tag = assert_cacheable(plain)
    assert "content-encoding" not in plain.headers
    assert int(plain.headers["content-length"]) == len(plain.content) > 500

    zipped = get(client, org, "/v2/stats/storage", params, **{"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.content == plain.content  # httpx decoded it
    assert int(zipped.headers["content-length"]) < len(plain.content) / 3
    assert zipped.headers["etag"] == tag[:-1] + '-gzip"'
    assert vary_tokens(zipped).count("accept-encoding") == 1
    assert_not_modified(get(client, org, "/v2/stats/storage", params,
                            **{"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["etag"]}),
                        zipped.headers["etag"])
    # the identity tag names another representation: no 304 for the gzip one
    assert get(client, org, "/v2/stats/storage", params, **{"Accept-Encoding": "gzip",
                                                          "If-None-Match": tag}).status_code == 200

    # the same answer gives the same gzip bytes (no timestamp), decoding to the identity ones
    raws = []
    for _ in range(2):
        with client.stream("GET", "/v2/stats/storage", params=params,
                           headers={**org.headers, "Accept-Encoding": "gzip"}) as r:
            raws.append(b"".join(r.iter_raw()))
    assert raws[0] == raws[1] and gzip.decompress(raws[0]) == plain.content

    # a big answer (2,016 five-minute buckets) is hashed and compressed off the event loop
    big_params = series_params(timeBucketSize="5m")
    big = get(client, org, "/v2/stats/storage", big_params, **IDENTITY)
    big_gz = get(client, org, "/v2/stats/storage", big_params, **{"Accept-Encoding": "gzip"})
    assert len(big.content) > 64 * 1024 and big_gz.content == big.content
    assert big_gz.headers["etag"] == assert_cacheable(big)[:-1] + '-gzip"'
    assert int(big_gz.headers["content-length"]) < len(big.content) / 5
    assert len(big.json()["series"]) == 7 * 24 * 12
    assert_not_modified(get(client, org, "/v2/stats/storage", big_params,
                            **{"Accept-Encoding": "gzip", "If-None-Match": big_gz.headers["etag"]}),
                        big_gz.headers["etag"])

    for refused in ("gzip;q=0", "br", "identity, *;q=0"):
        r = get(client, org, "/v2/stats/storage", params, **{"Accept-Encoding": refused})
        assert "content-encoding" not in r.headers and r.headers["etag"] == tag, refused

    # small answers stay as they are (Litestar's minimum size, 500 bytes)
    small = get(client, org, "/v1/runs-stats", {"start": "2026-03-01T00:00:00Z",
                                                 "end": "2026-03-01T23:59:59Z"},
                **{"Accept-Encoding": "gzip"})
    assert len(small.content) < 500 and "content-encoding" not in small.headers
    assert not small.headers["etag"].endswith('-gzip"')


def test_csv_and_head(client, past_org):
    org, _ = past_org
    params = series_params(timeBucketSize="1h")
    csv = get(client, org, "/v2/stats/storage", params, Accept="text/csv",
              **{"Accept-Encoding": "gzip"})
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.headers["content-encoding"] == "gzip"
    assert csv.text.startswith("ts,") and csv.text.count("\r\n") == 169
    json_tag = get(client, org, "/v2/stats/storage", params,
                   **{"Accept-Encoding": "gzip"}).headers["etag"]
    assert assert_cacheable(csv) != json_tag
    assert_not_modified(get(client, org, "/v2/stats/storage", params, Accept="text/csv",
                            **{"Accept-Encoding": "gzip", "If-None-Match": csv.headers["etag"]}),
                        csv.headers["etag"])

    head = client.head("/v2/stats/storage", params=params,
                       headers={**org.headers, "Accept-Encoding": "gzip"})
    got = get(client, org, "/v2/stats/storage", params, **{"Accept-Encoding": "gzip"})
    assert head.status_code == 200 and head.content == b""
    for name in ("etag", "cache-control", "content-encoding", "content-length", "vary"):
        assert head.headers[name] == got.headers[name], name
    head304 = client.head("/v2/stats/storage", params=params,
                          headers={**org.headers, "Accept-Encoding": "gzip",
                                   "If-None-Match": got.headers["etag"]})
    assert_not_modified(head304, got.headers["etag"])


def test_streamed_and_other_responses_still_compress(client):
    """Static files stream in chunks: compressed chunk by chunk, decoded whole."""
    from stats_gateway.http.dashboard import STATIC_DIR
    path = max((p for p in STATIC_DIR.rglob("*.js")), key=lambda p: p.stat().st_size)
    r = client.get(f"/static/{path.relative_to(STATIC_DIR)}", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    assert r.content == path.read_bytes()
    assert not r.headers.get("etag", "W/").startswith('"')  # a file's tag is weak once coded
    spec = client.get("/schema/openapi.json", headers={"Accept-Encoding": "gzip"})
    assert spec.headers["content-encoding"] == "gzip" and spec.json()["openapi"]


def test_negotiation_and_matching_rules():
    assert accepts_gzip("gzip") and accepts_gzip("deflate, gzip;q=0.5") and accepts_gzip("*")
    assert not accepts_gzip(None) and not accepts_gzip("gzip;q=0")
    assert not accepts_gzip("*, gzip;q=0") and not accepts_gzip("br") and accepts_gzip("x-gzip")
    assert none_match('"a", W/"b"', '"b"') and none_match(" * ", '"x"')
    assert not none_match('"a"', '"b"') and not none_match("garbage", '"b"')
    assert not none_match(None, '"b"') and not none_match('"b', '"b"')
    assert gzip.decompress(gzip.compress(b"x")) == b"x"


def _readme_example() -> str:
    text = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text()
    section = text[text.index("## Caching: `ETag`"):]
    return section[section.index("```sh\n") + 6: section.index("```\n", section.index("```sh"))]


def test_the_readme_curl_example(database_url, client, past_org):
    """The README's commands, run by bash and curl against the gateway under uvicorn."""
    org, _ = past_org
    script = _readme_example()
    key = org.headers["Authorization"].removeprefix("Bearer ")

    def run(etag: str) -> list[tuple[int, str | None, str | None, bytes]]:
        out = subprocess.run(["bash", "-c", script], capture_output=True, check=True,
                             env={**os.environ, "GATEWAY": base, "KEY": key, "ETAG": etag},
                             timeout=60).stdout
        answers = []
        for part in re.split(rb"(?=HTTP/1\.1 \d{3} )", out)[1:]:
            head, _, body = part.partition(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            fields = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
            answers.append((int(lines[0].split()[1]), fields.get("etag"),
                            fields.get("content-encoding"), body))
        return answers

    with live_server(database_url) as base:
        first, again = run("")
        assert first[0] == again[0] == 200 and first[2] == "gzip"
        tag = first[1]
        assert tag.endswith('-gzip"') and json.loads(first[3])["success"] is True
        first, revalidated = run(tag)
        assert first[:2] == (200, tag) and revalidated[:2] == (304, tag)
        assert revalidated[3] == b""
        ingest(client, org, "storage", generate("storage", 41, [START + timedelta(hours=1)],
                                                prefix="readme-"))
        first, revalidated = run(tag)
        assert first[0] == revalidated[0] == 200 and first[1] == revalidated[1] != tag


def test_a_load_into_a_past_range_changes_the_etag(client, database_url, past_org, tmp_path):
    """``stats-gateway load`` writes rows and rollups directly: the tag follows the answer."""
    import psycopg

    from domains import DOMAINS
    from stats_gateway.bulk import load_events, read_records

    org, events = past_org
    path = "/v2/stats/storage"
    before = get(client, org, path, series_params(), **IDENTITY)
    tag = assert_cacheable(before)
    late = generate("storage", 51, [START + timedelta(days=3, minutes=7)], prefix="load-")
    file = tmp_path / "late.ndjson"
    file.write_text("".join(json.dumps(e, default=str) + "\n" for e in late))
    storage = next(d for d in DOMAINS if d.name == "storage")
    with psycopg.connect(database_url, autocommit=True) as conn, open(file, "rb") as f:
        load_events(conn, storage, org.id, read_records(f, "ndjson", storage))
    after = get(client, org, path, series_params(), **{"If-None-Match": tag, **IDENTITY})
    assert after.status_code == 200 and assert_cacheable(after) != tag
    assert after.json()["summary"]["total"] == len(events) + 1
    assert_not_modified(get(client, org, path, series_params(),
                            **{"If-None-Match": after.headers["etag"], **IDENTITY}),
                        after.headers["etag"])
