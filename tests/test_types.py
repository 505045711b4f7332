"""The type check CI runs: mypy over stats_gateway/ and domains/ (its settings are in
pyproject.toml, [tool.mypy]) finds no error. Skipped, saying so, only where mypy is not
installed (it is in the ``test`` extra)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None,
                    reason="mypy is not installed (pip install -e '.[test]')")
def test_mypy_finds_no_errors():
    done = subprocess.run([sys.executable, "-m", "mypy", "stats_gateway", "domains"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success: no issues found" in done.stdout
