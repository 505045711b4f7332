"""A person opening the gateway's address (`GET /`) finds the dashboard and the docs; the
README's one-process test command parses with the project's pytest addopts."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_root_is_a_page_linking_the_dashboard_and_the_docs(client):
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    links = set(re.findall(r'href="([^"]+)"', r.text))
    assert {"/dashboard", "/schema", "/schema/openapi.json"} <= links
    for link in links:  # every link it shows answers, without a key
        assert client.get(link).status_code == 200, link


def test_dashboard_names_its_charset_once(client):
    r = client.get("/dashboard")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"


def test_the_readme_one_process_test_command_parses():
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"`\./run test ([^`]+)` runs in one\s+process", readme)
    assert match, "the README names its one-process test command"
    args = match.group(1).split()
    done = subprocess.run([sys.executable, "-m", "pytest", *args, "--collect-only", "-q",
                           "-p", "no:cacheprovider", "tests/test_home.py"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 tests collected" in done.stdout or "test_home.py" in done.stdout
