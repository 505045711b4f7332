"""compose.yaml (its default pair and its ``citus`` profile), the SQL it mounts and the
Dockerfile's install (Docker is not run here).

Default pair: no password is written in the file (each is ``${POSTGRES_PASSWORD:-stats}``,
interpolated here as compose does), the gateway's healthcheck asks ``/readyz`` and is run
against a live gateway, and the Dockerfile installs a built wheel (not editable) whose
migrations are found where ``stats_gateway.db.migrate`` looks for them once installed.

The file is parsed and its wiring checked: the profile's gateway and migrate step point at
the coordinator, the setup step mounts ``sql/citus`` and runs files that exist, the workers
it registers are the compose workers. The distribution script is the ``citus-sql`` output,
and it is run against stand-ins for Citus's two functions and its metadata table in the
migrated test database (rolled back), which checks its syntax, that every table it names
exists, the order Citus needs (references before the tables that point at them, the
colocation anchor first) and that a second run does nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from psycopg.conninfo import conninfo_to_dict

from domains import DOMAINS
from stats_gateway.cli import main
from stats_gateway.db.citus import REFERENCE_TABLES, distribution_sql, tenant_tables
from stats_gateway.db.migrate import planned_migrations

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
CITUS = {name: s for name, s in SERVICES.items() if "citus" in s.get("profiles", ())}


def interpolate(text: str, environ: dict[str, str]) -> str:
    """Compose's ``${VAR}`` and ``${VAR:-default}`` (default when unset or empty)."""
    def one(match):
        value = environ.get(match.group(1))
        return value if value else (match.group(3) or "")
    return re.sub(r"\$\{(\w+)(:-([^}]*))?\}", one, text)


def env(service: dict, environ: dict[str, str] | None = None) -> dict:
    value = service.get("environment", {})
    pairs = value if isinstance(value, dict) else dict(v.split("=", 1) for v in value)
    return {k: interpolate(str(v), environ or {}) for k, v in pairs.items()}


def command(service: dict) -> list[str]:
    value = service.get("command", [])
    return value.split() if isinstance(value, str) else value


def database_host(service: dict, environ: dict[str, str] | None = None) -> dict:
    return conninfo_to_dict(env(service, environ)["STATS_GATEWAY_DATABASE_URL"])


def citus_nodes() -> dict[str, dict]:
    """Services running the Citus server (the image's default command)."""
    return {name: s for name, s in CITUS.items()
            if s.get("image", "").startswith("citusdata/citus:") and "command" not in s}


def coordinator_name() -> str:
    published = [name for name, s in citus_nodes().items() if s.get("ports")]
    assert len(published) == 1, published  # only the coordinator is reachable from outside
    return published[0]


def test_the_default_services_stay_outside_any_profile():
    assert {"postgres", "gateway"} <= set(SERVICES)
    for name in ("postgres", "gateway"):
        assert "profiles" not in SERVICES[name]


def test_the_profile_has_a_pinned_citus_coordinator_and_two_workers():
    nodes = citus_nodes()
    assert len(nodes) == 3, sorted(nodes)
    for name, service in CITUS.items():
        if "image" in service and "citus" in service["image"]:
            tag = service["image"].split(":", 1)[1]
            major = re.fullmatch(r"(\d+)\.\d+\.\d+(?:-pg(\d+))?", tag)
            assert major, f"{name}: pin an exact Citus version, not {tag!r}"
            # NULLS NOT DISTINCT rollup keys need PostgreSQL 15+: Citus 12+
            assert int(major.group(1)) >= 12, tag
    images = {s["image"] for s in nodes.values()}
    assert len(images) == 1, images  # one version across the cluster
    db_names = {env(s)["POSTGRES_DB"] for s in nodes.values()}
    assert len(db_names) == 1  # Citus reaches the workers' database by the same name


def test_the_profile_gateway_and_migrate_step_point_at_the_coordinator():
    coordinator = coordinator_name()
    node_env = env(CITUS[coordinator])
    gateways = [name for name, s in CITUS.items() if "serve" in command(s)]
    assert gateways == ["gateway-citus"]
    migrate = [name for name, s in CITUS.items() if command(s)[-1:] == ["migrate"]]
    assert migrate == ["citus-migrate"]
    for name in gateways + migrate:
        target = database_host(CITUS[name])
        assert target["host"] == coordinator, name
        assert target["port"] == "5432"
        assert (target["user"], target["password"], target["dbname"]) == (
            node_env["POSTGRES_USER"], node_env["POSTGRES_PASSWORD"], node_env["POSTGRES_DB"])
    assert CITUS["gateway-citus"]["depends_on"]["citus-setup"]["condition"] == \
        "service_completed_successfully"
    assert CITUS["citus-migrate"]["depends_on"][coordinator]["condition"] == "service_healthy"


def test_the_setup_step_runs_the_mounted_sql_files_after_migrate():
    setup = CITUS["citus-setup"]
    (volume,) = setup["volumes"]
    source, target = volume.split(":")[:2]
    assert (ROOT / source).resolve() == ROOT / "sql" / "citus"
    args = command(setup)
    assert args[0] == "psql" and "ON_ERROR_STOP=1" in args
    assert args[args.index("-h") + 1] == coordinator_name()
    files = [args[i + 1] for i, a in enumerate(args) if a == "-f"]
    assert files == [f"{target}/workers.sql", f"{target}/distribute.sql"]
    for path in files:
        assert (ROOT / source / Path(path).name).is_file(), path
    depends = setup["depends_on"]
    assert depends["citus-migrate"]["condition"] == "service_completed_successfully"
    workers = set(citus_nodes()) - {coordinator_name()}
    for worker in workers:
        assert depends[worker]["condition"] == "service_healthy"


def test_workers_sql_registers_exactly_the_compose_workers():
    text = (ROOT / "sql" / "citus" / "workers.sql").read_text()
    added = re.findall(r"citus_add_node\('([\w-]+)', 5432\)", text)
    assert sorted(added) == sorted(set(citus_nodes()) - {coordinator_name()})
    assert re.findall(r"citus_set_coordinator_host\('([\w-]+)', 5432\)", text) == [
        coordinator_name()]


def test_every_dependency_exists_and_host_ports_do_not_clash():
    ports = []
    for name, service in SERVICES.items():
        for target in service.get("depends_on", {}):
            assert target in SERVICES, f"{name} depends on unknown {target}"
            if "citus" not in service.get("profiles", ()):
                assert "profiles" not in SERVICES[target], f"{name} needs a profile's {target}"
        ports += [p.split(":")[0] for p in service.get("ports", [])]
    assert len(ports) == len(set(ports)), ports
    named = set(COMPOSE.get("volumes", {}))
    for service in SERVICES.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith(".") or source in named, volume


def test_the_mounted_distribution_sql_is_the_cli_output(capsys):
    assert main(["citus-sql"]) == 0
    printed = capsys.readouterr().out
    assert printed == distribution_sql(DOMAINS)
    mounted = (ROOT / "sql" / "citus" / "distribute.sql").read_text()
    assert mounted == printed, "run: stats-gateway citus-sql > sql/citus/distribute.sql"


def test_migrations_ignore_the_citus_folder():
    names = [m.name for m in planned_migrations(DOMAINS)]
    assert names and not any("citus" in n or "workers" in n or "distribute" in n
                             for n in names)
    assert sorted(n for n in names if n.endswith(".sql")) == sorted(
        p.name for p in (ROOT / "sql").glob("*.sql"))


# Stand-ins for Citus: the metadata table and the two functions, refusing what Citus does.
CITUS_STUB = """
CREATE SCHEMA citus_stub;
CREATE TABLE citus_stub.pg_dist_partition (
    logicalrelid regclass PRIMARY KEY, kind text NOT NULL, colocated_with regclass);
CREATE TABLE citus_stub.calls (n serial, relid regclass);
CREATE FUNCTION citus_stub.create_reference_table(t regclass) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO citus_stub.calls (relid) VALUES (t);
    IF EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conrelid = t AND c.contype = 'f'
               AND NOT EXISTS (SELECT 1 FROM citus_stub.pg_dist_partition p
                               WHERE p.logicalrelid = c.confrelid AND p.kind = 'reference'))
    THEN RAISE EXCEPTION '% references a table that is not a reference table yet', t;
    END IF;
    INSERT INTO citus_stub.pg_dist_partition VALUES (t, 'reference', NULL);
END $$;
CREATE FUNCTION citus_stub.create_distributed_table(
    t regclass, col text, colocate_with text DEFAULT 'default') RETURNS void
LANGUAGE plpgsql AS $$
DECLARE anchor regclass;
BEGIN
    INSERT INTO citus_stub.calls (relid) VALUES (t);
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = t AND attname = col) THEN
        RAISE EXCEPTION '% has no column %', t, col;
    END IF;
    IF colocate_with <> 'default' THEN
        anchor := colocate_with::regclass;
        IF NOT EXISTS (SELECT 1 FROM citus_stub.pg_dist_partition
                       WHERE logicalrelid = anchor AND kind = 'distributed') THEN
            RAISE EXCEPTION '% colocates with %, not distributed yet', t, anchor;
        END IF;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conrelid = t AND c.contype = 'f'
               AND NOT EXISTS (SELECT 1 FROM citus_stub.pg_dist_partition p
                               WHERE p.logicalrelid = c.confrelid)) THEN
        RAISE EXCEPTION '% references a table Citus does not know yet', t;
    END IF;
    INSERT INTO citus_stub.pg_dist_partition VALUES (t, 'distributed', anchor);
END $$;
"""


def test_the_distribution_sql_runs_in_order_and_twice_changes_nothing(db):
    script = (ROOT / "sql" / "citus" / "distribute.sql").read_text()
    tenants = tenant_tables(DOMAINS)

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback):
        with db.transaction():
            db.execute(CITUS_STUB)
            db.execute("SET LOCAL search_path = citus_stub, public")
            db.execute(script)
            rows = db.execute("SELECT logicalrelid::text, kind, colocated_with::text "
                              "FROM pg_dist_partition").fetchall()
            (calls,) = db.execute("SELECT count(*) FROM citus_stub.calls").fetchone()
            db.execute(script)  # again: every statement finds its table already done
            (again,) = db.execute("SELECT count(*) FROM citus_stub.calls").fetchone()
            raise Rollback
    kinds = {table: (kind, anchor) for table, kind, anchor in rows}
    assert {t for t, (k, _) in kinds.items() if k == "reference"} == set(REFERENCE_TABLES)
    assert {t for t, (k, _) in kinds.items() if k == "distributed"} == set(tenants)
    assert kinds["entities"] == ("distributed", None)
    assert {kinds[t][1] for t in tenants[1:]} == {"entities"}
    assert calls == len(rows) == len(tenants) + len(REFERENCE_TABLES)
    assert again == calls
    (left,) = db.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'citus_stub'"
                         ).fetchone()
    assert left == 0


# --- the default pair, passwords, healthcheck, the Dockerfile's install ---------------------

PASSWORD_KEYS = ("POSTGRES_PASSWORD", "PGPASSWORD")


def test_no_password_is_written_in_the_file():
    """Every password is ``${POSTGRES_PASSWORD:-…}``: one variable sets them all."""
    mine = {"POSTGRES_PASSWORD": "not-the-default-9c1"}
    for name, service in SERVICES.items():
        raw = service.get("environment", {})
        for key in PASSWORD_KEYS:
            if key in raw:
                assert re.fullmatch(r"\$\{POSTGRES_PASSWORD(:-\w+)?\}", raw[key]), (name, key)
                assert env(service, mine)[key] == mine["POSTGRES_PASSWORD"]
        if "STATS_GATEWAY_DATABASE_URL" in raw:
            assert database_host(service, mine)["password"] == mine["POSTGRES_PASSWORD"], name
            # unset: the documented local default, the same on both ends
            assert database_host(service)["password"] == "stats"
    assert env(SERVICES["postgres"])["POSTGRES_PASSWORD"] == "stats"
    assert "local" in (ROOT / "compose.yaml").read_text().split("POSTGRES_PASSWORD")[1]


def test_the_gateway_connects_to_the_compose_database():
    target, db = database_host(SERVICES["gateway"]), env(SERVICES["postgres"])
    assert (target["host"], target["port"]) == ("postgres", "5432")
    assert (target["user"], target["dbname"]) == (db["POSTGRES_USER"], db["POSTGRES_DB"])


def _healthcheck(service: dict) -> list[str]:
    test = service["healthcheck"]["test"]
    assert test[0] == "CMD", test  # exec form: no shell in the image is needed
    return test[1:]


def test_the_gateway_healthchecks_ask_readyz():
    for name in ("gateway", "gateway-citus"):
        check = _healthcheck(SERVICES[name])
        assert check[:2] == ["python", "-c"] and "/readyz" in check[2], name
        assert "127.0.0.1:8000" in check[2]  # the port the gateway serves in the container


def test_the_healthcheck_command_passes_on_a_ready_gateway_and_fails_without_one(database_url,
                                                                               client):
    import socket
    import subprocess
    import sys

    from support import live_server

    code = _healthcheck(SERVICES["gateway"])[2]
    with live_server(database_url) as url:
        port = url.rsplit(":", 1)[1]
        ready = subprocess.run([sys.executable, "-c", code.replace(":8000/", f":{port}/")],
                               capture_output=True, timeout=30)
    assert ready.returncode == 0, ready.stderr
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    down = subprocess.run([sys.executable, "-c", code.replace(":8000/", f":{free}/")],
                          capture_output=True, timeout=30)
    assert down.returncode != 0


def test_the_dockerfile_installs_a_wheel_not_the_tree():
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    installs = [line for line in lines if "pip install" in line]
    assert installs and all(" -e " not in f" {line} " and "--editable" not in line
                            for line in installs)
    assert any(".whl" in line for line in installs)


def test_the_built_wheel_migrates_as_the_checkout_does(tmp_path):
    """sql/ ships in the wheel where stats_gateway/db/migrate.py looks when installed."""
    import shutil
    import subprocess
    import sys
    import zipfile

    source = tmp_path / "src"
    source.mkdir()
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / part, source / part)
    for part in ("stats_gateway", "domains", "sql"):
        shutil.copytree(ROOT / part, source / part,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--no-index", "--disable-pip-version-check", "-q", "-w", str(tmp_path),
                    str(source)], check=True, timeout=300, capture_output=True)
    (wheel,) = tmp_path.glob("stats_gateway-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    script = ("import sys; sys.path.insert(0, sys.argv[1]);"
              "from domains import DOMAINS; from stats_gateway.db import migrate;"
              "assert migrate.__file__.startswith(sys.argv[1]), migrate.__file__;"
              "print([(m.name, m.checksum) for m in migrate.planned_migrations(DOMAINS)])")
    installed = subprocess.run([sys.executable, "-I", "-c", script, str(site)],
                               capture_output=True, text=True, timeout=120)
    assert installed.returncode == 0, installed.stderr
    tree = [(m.name, m.checksum) for m in planned_migrations(DOMAINS)]
    assert installed.stdout.strip() == repr(tree)
    assert len([name for name, _ in tree if name.endswith(".sql")]) >= 6
