"""A mistyped setting stops every command at once with one line per problem on stderr
and exit status 2, before any database is touched; never a traceback from start-up."""

from __future__ import annotations

import pytest

from stats_gateway.cli import main
from stats_gateway.config import ConfigError, Settings

BAD = {
    "STATS_GATEWAY_POOL_MAX": "ten",
    "STATS_GATEWAY_POOL_TIMEOUT_S": "soon",
    "STATS_GATEWAY_RATE_LIMIT": "bogus",
    "STATS_GATEWAY_COST_BUDGET": "lots/min",
    "STATS_GATEWAY_WORK_MEM": "32mb",
    "STATS_GATEWAY_PARALLEL_WORKERS": "two",
    "STATS_GATEWAY_JIT": "maybe",
}


def test_every_problem_is_one_line_and_nothing_starts(monkeypatch, capsys):
    for name, value in BAD.items():
        monkeypatch.setenv(name, value)
    # a URL nothing listens on: a command that got past the check would fail on it
    monkeypatch.setenv("STATS_GATEWAY_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    assert main(["migrate"]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == len(BAD), err
    for name, value in BAD.items():
        assert sum(line.startswith(f"stats-gateway: configuration: {name}={value!r}")
                   for line in lines) == 1, (name, err)
    assert "Traceback" not in err


def test_numbers_are_checked_together(monkeypatch):
    monkeypatch.setenv("STATS_GATEWAY_POOL_MAX", "10.5")
    monkeypatch.setenv("STATS_GATEWAY_SHUTDOWN_GRACE_S", "a while")
    with pytest.raises(ConfigError) as caught:
        Settings.from_env()
    assert caught.value.problems == [
        "STATS_GATEWAY_POOL_MAX='10.5': expected a whole number",
        "STATS_GATEWAY_SHUTDOWN_GRACE_S='a while': expected a number"]


def test_good_values_pass(monkeypatch):
    monkeypatch.setenv("STATS_GATEWAY_POOL_MAX", "4")
    monkeypatch.setenv("STATS_GATEWAY_SHUTDOWN_GRACE_S", "2.5")
    settings = Settings.from_env()
    assert (settings.pool_max, settings.shutdown_grace_s) == (4, 2.5)
