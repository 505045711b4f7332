"""STATS_GATEWAY_TEST_DATABASE=testcontainers: the suite on postgres:18 in Docker, or a
one-line skip when no Docker engine answers (this machine has a docker client, no engine).

A child pytest runs tests/test_smoke.py with the variable set: with an engine it runs
against the container, without one every test skips with the reason.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TEST_DATABASE_ENV, _docker_engine_problem

ROOT = Path(__file__).resolve().parents[1]


def test_the_docker_backed_path_runs_or_skips_with_a_reason(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "STATS_GATEWAY_DATABASE_URL"}
    env[TEST_DATABASE_ENV] = "testcontainers"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", "-rs",
         f"--basetemp={tmp_path / 'bt'}", "tests/test_smoke.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    out = done.stdout + done.stderr
    problem = _docker_engine_problem()
    assert done.returncode == 0, out
    if problem:
        assert re.search(r"\b\d+ skipped", out) and " passed" not in out, out
        reasons = [line for line in out.splitlines() if line.startswith("SKIPPED")]
        assert reasons and all(f"{TEST_DATABASE_ENV}=testcontainers needs a Docker engine"
                                in line for line in reasons), out
    else:
        assert re.search(r"\b\d+ passed", out) and " skipped" not in out, out
