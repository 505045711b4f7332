"""Test fixtures: a real PostgreSQL (embedded, or STATS_GATEWAY_DATABASE_URL) per session.

Each test session works in a database of its own, created fresh and dropped at the end,
so runs against a shared server never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from litestar.testing import TestClient
from psycopg.conninfo import conninfo_to_dict

from stats_gateway.auth import create_key, ensure_org
from stats_gateway.config import DATABASE_URL_ENV, Settings
from stats_gateway.db.embedded import EmbeddedPostgres
from stats_gateway.db.throwaway import throwaway_database  # noqa: F401 - tests import it here
from stats_gateway.http.app import create_app


TEST_DATABASE_ENV = "STATS_GATEWAY_TEST_DATABASE"  # "testcontainers": postgres:18 in Docker


def _docker_engine_problem() -> str | None:
    """Why no Docker engine can run the container, in one line (None: one answers)."""
    try:
        import docker

        docker.from_env(timeout=5).ping()
    except Exception as error:  # no socket, no permission, no daemon: all mean "skip"
        return f"{type(error).__name__}: {str(error).splitlines()[0][:160] if str(error) else ''}"
    return None


@pytest.fixture(scope="session")
def server_url(tmp_path_factory) -> Iterator[str]:
    """Maintenance URL of the server under test: STATS_GATEWAY_DATABASE_URL, or
    postgres:18 in a throwaway container (STATS_GATEWAY_TEST_DATABASE=testcontainers),
    or else an embedded PostgreSQL."""
    url = os.environ.get(DATABASE_URL_ENV)
    if url:
        yield url
        return
    if os.environ.get(TEST_DATABASE_ENV) == "testcontainers":
        problem = _docker_engine_problem()
        if problem:
            pytest.skip(f"{TEST_DATABASE_ENV}=testcontainers needs a Docker engine: {problem}")
        from testcontainers.community.postgres import PostgresContainer

        with PostgresContainer("postgres:18", username="postgres", password="postgres",
                               dbname="postgres", driver=None) as container:
            yield container.get_connection_url()
        return
    embedded = EmbeddedPostgres(tmp_path_factory.mktemp("pg"), delete=True)
    try:
        yield embedded.uri()
    finally:
        embedded.stop()


@pytest.fixture(scope="session")
def database_url(server_url) -> Iterator[str]:
    """A fresh, empty database on the server under test, dropped afterwards."""
    with throwaway_database(server_url, "sg_test") as url:
        yield url


@pytest.fixture(scope="session")
def client(database_url) -> Iterator[TestClient]:
    """The gateway over HTTP (in-process ASGI), migrated, against the test database."""
    # no default rate limit: suites send thousands of requests with one key; keys that
    # test the limiter carry their own (api_keys.rate_limit), which still applies
    app = create_app(Settings(database_url=database_url, data_dir=Path("/nonexistent"),
                              rate_limit="off"))
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def db(database_url, client) -> Iterator[psycopg.Connection]:
    """A direct autocommit connection (the app fixture has migrated the schema)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


class Org:
    """A tenant with keys; ``headers`` reads and ingests."""

    def __init__(self, conn: psycopg.Connection, name: str):
        self.id = ensure_org(conn, name)
        self.key = create_key(conn, self.id)
        self.headers = {"Authorization": f"Bearer {self.key}"}
        self.read_only = {"Authorization": f"Bearer {create_key(conn, self.id, ingest=False)}"}
        self.ingest_only = {"Authorization": f"Bearer {create_key(conn, self.id, read=False)}"}


@pytest.fixture
def new_org(db):
    """Factory: a brand-new org (unique name) with its keys."""
    return lambda: Org(db, f"org-{uuid.uuid4().hex[:10]}")


def server_dbname(url: str) -> str | None:
    return conninfo_to_dict(url).get("dbname")
