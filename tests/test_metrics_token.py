"""STATS_GATEWAY_METRICS_TOKEN: /metrics behind a bearer token of its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from stats_gateway.config import Settings
from stats_gateway.http.app import create_app

TOKEN = "metrics-secret-7f3a"


@pytest.fixture(scope="module")
def guarded(database_url, client):  # `client` has migrated the database
    app = create_app(Settings(database_url=database_url, data_dir=Path("/nonexistent"),
                              rate_limit="off", metrics_token=TOKEN))
    with TestClient(app) as test_client:
        yield test_client


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Bearer {TOKEN}x",
                                           TOKEN, f"Basic {TOKEN}", "Bearer "])
def test_metrics_without_the_token_is_401(guarded, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    r = guarded.get("/metrics", headers=headers)
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["error_code"] == "unauthorized"
    assert "stats_gateway_" not in r.text


def test_an_api_key_does_not_open_metrics(guarded, new_org):
    assert guarded.get("/metrics", headers=new_org().headers).status_code == 401


def test_the_token_opens_metrics_and_nothing_else_changes(guarded, new_org):
    guarded.get("/livez")
    r = guarded.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200
    names = {f.name for f in text_string_to_metric_families(r.text)}
    assert "stats_gateway_http_requests" in names and "stats_gateway_build_info" in names
    assert guarded.get("/livez").status_code == 200  # probes need no token
    org = new_org()
    assert guarded.get("/v2/stats/storage", params={"scope": "org", "window": "24h"},
                       headers=org.headers).status_code == 200
    # the token is not an API key
    assert guarded.get("/v2/stats/storage", params={"scope": "org", "window": "24h"},
                       headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 401


def test_the_setting_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("STATS_GATEWAY_METRICS_TOKEN", TOKEN)
    assert Settings.from_env().metrics_token == TOKEN
    monkeypatch.setenv("STATS_GATEWAY_METRICS_TOKEN", "")
    assert Settings.from_env().metrics_token is None  # empty: open, as when unset
