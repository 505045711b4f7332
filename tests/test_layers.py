"""The layers (docs/architecture.md): http -> core -> db, never back.

* Imports: nothing ``stats_gateway.core`` reaches (its own imports, followed through the
  package, function-level ones included) imports Litestar or the HTTP layer, and nothing
  ``stats_gateway.db`` reaches imports the HTTP layer.
* Request traces: a ``/v2`` series request parses its parameters once, looks up its
  envelope types once, and no call stack of it holds a module twice with another layer's
  module in between (no callback from a lower layer into a higher one, nor a second visit).
"""

from __future__ import annotations

import ast
import sys
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from tests.support import ingest

PACKAGE = Path(__file__).resolve().parent.parent / "stats_gateway"


@cache
def _imports() -> dict[str, set[str]]:
    """Every module of the package -> every module name it imports (at any depth of its
    code)."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module)
                found |= {f"{node.module}.{alias.name}" for alias in node.names}
        graph[name] = found
    return graph


def _reached(roots: list[str]) -> dict[str, str]:
    """Every package module reached from ``roots`` -> the module that first imported it."""
    graph = _imports()
    seen = {root: root for root in roots}
    todo = list(roots)
    while todo:
        module = todo.pop()
        for target in graph[module]:
            if target in graph and target not in seen:
                seen[target] = module
                todo.append(target)
    return seen


def _layer(prefix: str) -> list[str]:
    return [m for m in _imports() if m == prefix or m.startswith(prefix + ".")]


def test_core_imports_no_litestar_and_no_http():
    reached = _reached(_layer("stats_gateway.core"))
    litestar = sorted(m for m in reached
                      if any(i.split(".")[0] == "litestar" for i in _imports()[m]))
    assert litestar == []
    upward = sorted(m for m in reached
                    if m.startswith(("stats_gateway.http", "stats_gateway.seeds")))
    assert upward == []
    assert "stats_gateway.core.engine" in reached  # the graph is really read


def test_db_imports_no_http():
    reached = _reached(_layer("stats_gateway.db"))
    assert sorted(m for m in reached if m.startswith("stats_gateway.http")) == []
    assert "stats_gateway.db.database" in reached
    # and the check bites: the app module does reach the HTTP layer
    assert "stats_gateway.http.common" in _reached(["stats_gateway.http.app"])


def _layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if parts[0] == "stats_gateway" and len(parts) > 2 else parts[0]


def test_a_series_request_visits_each_module_once_per_layer_crossing(client, new_org,
                                                                     monkeypatch):
    org = new_org()
    now = datetime.now(UTC).replace(microsecond=0)
    ingest(client, org, "storage", [
        {"eventId": f"t{i}", "ts": (now - timedelta(minutes=50 * i + 1)).isoformat(),
         "bucketId": "b", "uplBytes": i} for i in range(10)])
    params = {"scope": "org", "window": "24h", "compare": "previous"}
    assert client.get("/v2/stats/storage", params=params, headers=org.headers).status_code \
        == 200  # warm: caches filled, pool connections open

    calls: dict[str, int] = {}
    crossings: set[str] = set()
    # series_types is cached (its calls reach no Python frame): count them at the door
    from stats_gateway.core import engine

    def counted_series_types(*args):
        key = "stats_gateway.core.envelopes.series_types"
        calls[key] = calls.get(key, 0) + 1
        return cached_series_types(*args)

    cached_series_types = engine.series_types
    monkeypatch.setattr(engine, "series_types", counted_series_types)

    def profile(frame, event, arg):
        if event != "call":
            return
        module = frame.f_globals.get("__name__", "")
        if not module.startswith("stats_gateway"):
            return
        if module == __name__:
            return
        key = f"{module}.{frame.f_code.co_name}"
        calls[key] = calls.get(key, 0) + 1
        chain: list[str] = []  # the stack's modules, outermost first, runs collapsed
        f = frame
        while f is not None:
            m = f.f_globals.get("__name__", "")
            if m.startswith("stats_gateway") and (not chain or chain[-1] != m):
                chain.append(m)
            f = f.f_back
        chain.reverse()
        for i, m in enumerate(chain):
            for j in range(i + 1, len(chain)):
                if chain[j] == m and any(_layer_of(x) != _layer_of(m)
                                         for x in chain[i + 1:j]):
                    crossings.add(" > ".join(chain[i:j + 1]))

    # the app serves on the test client's event-loop thread: profile it there too
    client.blocking_portal.call(sys.setprofile, profile)
    sys.setprofile(profile)
    try:
        r = client.get("/v2/stats/storage", params=params, headers=org.headers)
    finally:
        sys.setprofile(None)
        client.blocking_portal.call(sys.setprofile, None)
    assert r.status_code == 200, r.text
    assert sorted(crossings) == []
    assert calls.get("stats_gateway.core.request.parse_series") == 1
    assert calls.get("stats_gateway.core.envelopes.series_types") == 1
    # both ranges (the request and its previous one) reached the database (a coroutine's
    # every resumption is a "call" to the profiler: at least, not exactly)
    assert calls.get("stats_gateway.db.tenant.tenant_fetch", 0) >= 2
