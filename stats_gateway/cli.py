"""``stats-gateway``: demo | serve | migrate | create-key | keys | load | rebuild | citus-sql |
explain | retention | delete | generate.

Every command uses one database: ``STATS_GATEWAY_DATABASE_URL``, or else the embedded
server's ``postgres`` database in ``STATS_GATEWAY_DATA_DIR``, and says which on stderr.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from domains import DOMAINS
from stats_gateway.config import Settings
from stats_gateway.db.connect import (
    connect, jit_option, parallel_workers_option, work_mem_option,
)
from stats_gateway.db.data_cli import add_data_parsers, cmd_delete, cmd_retention
from stats_gateway.db.embedded import announce_database, database_url
from stats_gateway.db.migrate import migrate
from stats_gateway.key_admin import RESOURCE_SCOPES
from stats_gateway.key_cli import add_keys_parser, cmd_keys


class Terminated(SystemExit):
    """SIGTERM, raised where the process is so that ``finally`` blocks (which stop an
    embedded server) run; Python's default for SIGTERM is to die on the spot."""


def _on_sigterm(signum, _frame) -> None:
    raise Terminated(128 + signum)


def cmd_migrate(args, settings: Settings) -> int:
    with database_url(settings, announce=True) as url, connect(url, autocommit=True) as conn:
        applied = migrate(conn, DOMAINS)
    print("applied: " + ", ".join(applied) if applied else "already up to date")
    return 0


def cmd_create_key(args, settings: Settings) -> int:
    from stats_gateway.auth import create_key, ensure_org

    admin = args.admin
    read, ingest = not (args.ingest_only or admin), not (args.read_only or admin)
    with database_url(settings, announce=True) as url, \
            connect(url, autocommit=True) as conn:
        migrate(conn, DOMAINS)
        with conn.transaction():
            try:
                org_id, created = ensure_org(conn, args.org, report=True)
            except LookupError as exc:
                print(f"stats-gateway: {exc}", file=sys.stderr)
                return 2
            if created:
                print(f"stats-gateway: created a new org {args.org!r} (no org had that "
                      "name)", file=sys.stderr)
            else:
                print(f"stats-gateway: using the existing org {args.org!r}", file=sys.stderr)
            key = create_key(conn, org_id, read=read, ingest=ingest, admin=admin,
                             name=args.name,
                             resource_scopes=args.resource_scope or None,
                             workspaces=args.workspace, repos=args.repo,
                             rate_limit=args.rate_limit)
    perms = " ".join(p for p, on in (("read", read), ("ingest", ingest), ("admin", admin)) if on)
    print(f"org:  {org_id}\nkey:  {key}\nperm: {perms}")
    for label, ids in (("workspaces", args.workspace), ("repos", args.repo)):
        if ids:
            print(f"{label}: {', '.join(sorted(set(ids)))}")
    return 0


def _resource_scope(text: str) -> str:
    if text not in RESOURCE_SCOPES:
        raise argparse.ArgumentTypeError(
            f"unknown resource scope {text!r}; known: {', '.join(sorted(RESOURCE_SCOPES))}")
    return text


def _rate_limit(text: str) -> str:
    from stats_gateway.http.ratelimit import parse_rate

    try:
        parse_rate(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text.strip()


def configured() -> tuple[Settings, list[str]]:
    """The environment's settings and every problem with them, all at once: numbers
    (``Settings.read_env``), the rate limit and cost budget formats, and the connection
    settings (``db/connect.py``). Each command starts only when there is none, so a typo
    is one line on stderr, not a traceback from deep in start-up."""
    from stats_gateway.http.ratelimit import parse_rate

    settings, problems = Settings.read_env()
    for name, text in (("STATS_GATEWAY_RATE_LIMIT", settings.rate_limit),
                       ("STATS_GATEWAY_COST_BUDGET", settings.cost_budget)):
        try:
            parse_rate(text)
        except ValueError as exc:
            problems.append(f"{name}={text!r}: {exc}")
    for option in (work_mem_option, parallel_workers_option, jit_option):
        try:
            option()
        except ValueError as exc:
            problems.append(str(exc))
    return settings, problems


def cmd_serve(args, settings: Settings) -> int:
    """Serve until SIGTERM/SIGINT, then shut down gracefully: stop accepting connections,
    let in-flight requests finish (at most ``shutdown_grace_s``; then they are cancelled),
    close the pool, stop an embedded database, exit 0."""
    import signal

    import uvicorn

    from stats_gateway.http.app import create_app

    announce_database(settings)
    app = create_app(settings)
    # uvicorn re-raises the signal once its graceful shutdown is done, which would end the
    # process "killed by SIGTERM"; a completed shutdown is a success, so swallow it
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="warning",
                timeout_graceful_shutdown=settings.shutdown_grace_s)  # type: ignore[arg-type]  # any seconds
    return 0


def cmd_demo(args, settings: Settings) -> int:
    from stats_gateway.demo import run_demo

    return run_demo(settings, host=args.host, port=args.port, events=args.events,
                    serve=not args.no_serve, fresh=args.fresh)


def cmd_load(args, settings: Settings) -> int:
    from stats_gateway.bulk.commands import load_command

    announce_database(settings)
    return load_command(settings, args.domain, args.file, args.org, fmt=args.format,
                        skip_invalid=args.skip_invalid, max_errors=args.max_errors)


def cmd_rebuild(args, settings: Settings) -> int:
    from stats_gateway.bulk.commands import rebuild_command

    announce_database(settings)
    return rebuild_command(settings, args.domain, args.org, force=args.force)


def cmd_explain(args, settings: Settings) -> int:
    """The statements a /v2 URL would run for an org, planned by the engine and not run
    (``StatsEngine.explain``): readable SQL, or the JSON the ``?explain=true`` API gives."""
    import asyncio
    from urllib.parse import parse_qs, urlsplit

    import msgspec
    from psycopg_pool import AsyncConnectionPool

    from stats_gateway.bulk.load import find_org
    from stats_gateway.core.engine import StatsEngine
    from stats_gateway.core.errors import ApiError
    from stats_gateway.core.explain import explain_text
    from stats_gateway.db.database import PooledDatabase
    from stats_gateway.db.tenant import configure_app_role

    url = urlsplit(args.url)
    params = parse_qs(url.query, keep_blank_values=True)
    params.pop("explain", None)
    body = args.body.encode() if args.body else None
    with database_url(settings, announce=True) as db_url:
        with connect(db_url, autocommit=True) as conn:
            migrate(conn, DOMAINS)
            org_id = find_org(conn, args.org)
        if org_id is None:
            print(f"stats-gateway: no org has the id or name {args.org!r}", file=sys.stderr)
            return 2

        async def explain():
            async with AsyncConnectionPool(db_url, min_size=1, max_size=1, open=False,
                                           configure=configure_app_role,
                                           kwargs={"autocommit": True}) as pool:
                engine = StatsEngine(PooledDatabase(pool), DOMAINS,
                                     use_rollups=settings.use_rollups)
                return await engine.explain_url(org_id, url.path, params, body)

        try:
            found = asyncio.run(explain())
        except ApiError as exc:
            problems = "".join(f"\n  {p.field}: {p.message}" for p in exc.problems)
            print(f"stats-gateway: {exc.status} {exc.message}{problems}", file=sys.stderr)
            return 2
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(found)).decode() + "\n"
                     if args.json else explain_text(found))
    return 0


def cmd_citus_sql(args, settings: Settings) -> int:
    from stats_gateway.db.citus import distribution_sql

    sys.stdout.write(distribution_sql(DOMAINS))
    return 0


CHECKOUT = Path(__file__).resolve().parents[1]


def _with_block(begin: str, end: str, block: str) -> Callable[[str], str]:
    """A text with the part from ``begin`` to ``end`` replaced by ``block`` (which has both)."""
    return lambda text: text[:text.index(begin)] + block + text[text.index(end) + len(end):]


def generated_artefacts() -> dict[str, Callable[[str], str]]:
    """Every checked-in file (path from the checkout root) made from the code, with how to
    make it from its current text: the generated blocks of the domain and seed references,
    the client's catalogue and the Citus distribution script. A new one is one entry here."""
    from stats_gateway import client_catalogue, docs
    from stats_gateway.db.citus import distribution_sql

    return {
        str(docs.DOMAINS_DOC.relative_to(CHECKOUT)):
            _with_block(docs.BEGIN, docs.END, docs.render()),
        str(docs.SEEDS_DOC.relative_to(CHECKOUT)):
            _with_block(docs.SEEDS_BEGIN, docs.SEEDS_END, docs.render_seeds()),
        str(client_catalogue.PATH.relative_to(CHECKOUT)): lambda _old: client_catalogue.render(),
        "sql/citus/distribute.sql": lambda _old: distribution_sql(DOMAINS),
    }


def cmd_generate(args, settings: Settings) -> int:
    """Rewrite every stale generated file; with ``--check``, only name them (exit 1)."""
    root = Path(args.root)
    stale = []
    for name, make in generated_artefacts().items():
        path = root / name
        old = path.read_text()
        new = make(old)
        if new != old:
            stale.append(name)
            if not args.check:
                path.write_text(new)
    if not stale:
        print("generated files are up to date")
        return 0
    if args.check:
        print("stale generated files (run: stats-gateway generate): " + ", ".join(stale),
              file=sys.stderr)
        return 1
    print("rewrote: " + ", ".join(stale))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stats-gateway", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="embedded DB + realistic data + gateway on :8000")
    demo.add_argument("--events", type=int, default=1_200_000, help="events to generate")
    demo.add_argument("--no-serve", action="store_true", help="load the data and exit")
    demo.add_argument("--fresh", action="store_true",
                      help="regenerate the demo orgs' data (default: reuse what an earlier "
                           "demo loaded)")
    serve = sub.add_parser("serve", help="serve the gateway")
    for p in (demo, serve):
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=8000)
    sub.add_parser("migrate", help="apply migrations (a no-op when up to date)")
    key = sub.add_parser("create-key", help="create an API key (and the org if missing)")
    key.add_argument("--org", required=True, help="org name (created if missing) or org id")
    key.add_argument("--name", default="", help="a label for the key")
    key.add_argument("--resource-scope", action="append", metavar="SCOPE",
                     type=_resource_scope,
                     help="limit the resources the key reads (repeatable; default: all): "
                          + ", ".join(sorted(RESOURCE_SCOPES)))
    key.add_argument("--workspace", action="append", metavar="ID",
                     help="limit the key to this workspace's events (repeatable; default: all)")
    key.add_argument("--repo", action="append", metavar="ID",
                     help="limit the key to this repo's events (repeatable; default: all; "
                          "with --workspace an event must match both)")
    key.add_argument("--rate-limit", type=_rate_limit, metavar="RATE",
                     help="this key's rate limit, e.g. 600/min, 5/s, 3/6s or off "
                          "(default: STATS_GATEWAY_RATE_LIMIT)")
    perms = key.add_mutually_exclusive_group()
    perms.add_argument("--read-only", action="store_true")
    perms.add_argument("--ingest-only", action="store_true")
    perms.add_argument("--admin", action="store_true",
                       help="an admin key: manages its org's keys (/v2/keys), reads and "
                            "ingests nothing")
    add_keys_parser(sub)
    names = [d.name for d in DOMAINS]
    load = sub.add_parser("load", help="bulk-load events from NDJSON or CSV (COPY), merging "
                          "them into the org's rollups; all in one transaction")
    load.add_argument("domain", choices=names)
    load.add_argument("file", help="NDJSON or CSV file, or - for stdin")
    load.add_argument("--org", required=True, help="org name or id (must exist)")
    load.add_argument("--format", choices=("ndjson", "csv"),
                      help="default: csv for a .csv file, else ndjson")
    load.add_argument("--skip-invalid", action="store_true",
                      help="load the valid events and skip invalid lines (default: an "
                           "invalid line rejects the whole file)")
    load.add_argument("--max-errors", type=int, default=20, metavar="N",
                      help="invalid lines to list (default 20)")
    rebuild = sub.add_parser("rebuild", help="recompute rollups from raw events")
    rebuild.add_argument("--domain", action="append", choices=names,
                         help="repeatable; default: every domain")
    rebuild.add_argument("--org", help="org name or id; default: every org")
    rebuild.add_argument("--force", action="store_true",
                         help="rebuild even where retention has dropped raw events the "
                              "rollups still count (that history is then lost)")
    sub.add_parser("citus-sql", help="print the Citus distribution SQL for the current "
                   "domains (see sql/citus/)")
    explain = sub.add_parser("explain", help="the SQL a /v2 URL would run for an org, and "
                             "the rollups or raw events it reads (nothing is run)")
    explain.add_argument("url", help="a /v2 path and query string, e.g. "
                         "'/v2/stats/storage?window=30d&timeBucketSize=1h'")
    explain.add_argument("--org", required=True, help="org name or id (must exist)")
    explain.add_argument("--body", help="the JSON body of a /v2/query/<domain> request")
    explain.add_argument("--json", action="store_true",
                         help="the JSON of the ?explain=true API instead of annotated SQL")
    add_data_parsers(sub)
    generate = sub.add_parser("generate", help="rewrite every file generated from the code "
                              "(domain and seed references, client catalogue, Citus SQL)")
    generate.add_argument("--check", action="store_true",
                          help="write nothing; exit 1 naming the stale files")
    generate.add_argument("--root", default=str(CHECKOUT),
                          help="the checkout holding them (default: this one)")
    args = parser.parse_args(argv)
    commands = {"demo": cmd_demo, "serve": cmd_serve, "migrate": cmd_migrate,
                "create-key": cmd_create_key, "keys": cmd_keys, "load": cmd_load,
                "rebuild": cmd_rebuild, "citus-sql": cmd_citus_sql, "explain": cmd_explain,
                "retention": cmd_retention, "delete": cmd_delete, "generate": cmd_generate}
    signal.signal(signal.SIGTERM, _on_sigterm)
    settings, problems = configured()
    if problems:
        for problem in problems:
            print(f"stats-gateway: configuration: {problem}", file=sys.stderr)
        return 2
    try:
        return commands[args.command](args, settings)
    except Terminated as exc:
        print("stats-gateway: terminated", file=sys.stderr)
        return exc.code if isinstance(exc.code, int) else 1


if __name__ == "__main__":
    sys.exit(main())
