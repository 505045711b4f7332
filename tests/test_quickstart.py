"""The README's five-minute quickstart, run as written: bash runs its ```bash blocks in
order (``./run`` is the project's CLI on the test database, ``GATEWAY`` a live gateway
under uvicorn), and every answer is checked against the one event the quickstart sends."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from support import live_server

README = Path(__file__).resolve().parents[1] / "README.md"
SEPARATOR = "\n=== next block ===\n"


def quickstart_blocks() -> list[str]:
    text = README.read_text()
    section = text[text.index("## Five-minute quickstart"):]
    section = section[:section.index("\n## ", 1)]
    return re.findall(r"```bash\n(.*?)```", section, re.S)


def run_blocks(blocks: list[str], url: str, database_url: str, cwd: Path) -> list[str]:
    shim = cwd / "run"  # ./run <command>: the project's CLI, as ./run execs it
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -c '
                    '"import sys; from stats_gateway.cli import main; sys.exit(main())" "$@"\n')
    shim.chmod(0o755)
    script = "set -euo pipefail\n" + f"\nprintf '{SEPARATOR}'\n".join(blocks)
    script = script.replace("http://127.0.0.1:8000", url)
    done = subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "STATS_GATEWAY_DATABASE_URL": database_url})
    assert done.returncode == 0, done.stderr
    return done.stdout.split(SEPARATOR)


def test_the_quickstart_runs_as_written(database_url, client, tmp_path):
    blocks = quickstart_blocks()
    assert len(blocks) == 4 and "create-key" in blocks[0] and "/v2/ingest/ai" in blocks[1]
    with live_server(database_url) as url:
        setup, ingested, series, by_model = run_blocks(blocks, url, database_url, tmp_path)
        again = run_blocks(blocks[:2], url, database_url, tmp_path)[1]  # a new key, same org

    assert setup == ""
    assert json.loads(ingested) == {"success": True, "domain": "ai", "received": 1,
                                    "inserted": 1, "duplicates": 0}
    assert json.loads(again)["duplicates"] == 1 and json.loads(again)["inserted"] == 0

    body = json.loads(series)
    assert body["meta"]["metric"] == "requests" and body["summary"]["total"] == 1
    nonzero = [p for p in body["series"] if p["requests"]]
    assert len(nonzero) == 1 and nonzero[0]["tokensIn"] == 1200 and nonzero[0]["tokensOut"] == 300

    page, end = json.JSONDecoder().raw_decode(by_model)
    (entity,) = page["entities"]
    assert entity["entityId"] == "gpt-4o"
    assert (entity["totals"]["requests"], entity["totals"]["tokensIn"]) == (1, 1200)
    rows = list(csv.DictReader(io.StringIO(by_model[end:])))
    assert [(r["entityId"], r["tokensIn"], r["tokensOut"]) for r in rows] == [("gpt-4o", "1200", "300")]
