"""``stats-gateway retention show|set|apply`` and ``stats-gateway delete``: what an operator
runs to keep raw events bounded and to erase an org's data (docs/retention.md)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from domains import DOMAINS
from stats_gateway.bulk.load import find_org
from stats_gateway.config import Settings
from stats_gateway.core.request import parse_instant
from stats_gateway.db.connect import connect
from stats_gateway.db.embedded import database_url
from stats_gateway.db.erase import EraseRefused, erase
from stats_gateway.db.migrate import migrate
from stats_gateway.db.retention import apply_retention, horizon, org_retention, set_override


def _instant(text: str) -> datetime:
    found = parse_instant(text)
    if found is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not RFC 3339 with an offset or unix seconds")
    return found


def _days(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 100_000:
        raise argparse.ArgumentTypeError("days must be a whole number from 1 to 100000")
    return int(text)


def add_data_parsers(sub) -> None:
    names = [d.name for d in DOMAINS]
    retention = sub.add_parser("retention", help="raw-event retention: show, set per org, apply")
    actions = retention.add_subparsers(dest="action", required=True)
    show = actions.add_parser("show", help="every org's retention and horizon per domain")
    show.add_argument("--org", help="org name or id; default: every org")
    put = actions.add_parser("set", help="an org's own retention for a domain")
    put.add_argument("--org", required=True, help="org name or id")
    put.add_argument("--domain", required=True, choices=names)
    days = put.add_mutually_exclusive_group(required=True)
    days.add_argument("--days", type=_days, help="keep raw events at least this many days")
    days.add_argument("--default", action="store_true", help="back to the domain's own")
    run = actions.add_parser("apply", help="drop raw events past retention (run daily)")
    run.add_argument("--now", type=_instant, help=argparse.SUPPRESS)  # tests: a fixed now
    delete = sub.add_parser("delete", help="erase an org's data, rollups included, in one "
                            "transaction, and say what was removed")
    delete.add_argument("--org", required=True, help="org name or id")
    delete.add_argument("--domain", choices=names, help="only this domain; default: all")
    delete.add_argument("--before", type=_instant, metavar="T",
                        help="only events before T (RFC 3339 or unix seconds)")


def _org_or_fail(conn, org: str) -> str | None:
    org_id = find_org(conn, org)
    if org_id is None:
        print(f"stats-gateway: no org has the id or name {org!r}", file=sys.stderr)
    return org_id


def cmd_retention(args, settings: Settings) -> int:
    with database_url(settings, announce=True) as url, connect(url, autocommit=True) as conn:
        migrate(conn, DOMAINS)
        if args.action == "apply":
            now = args.now or datetime.now(UTC)
            removed = apply_retention(conn, DOMAINS, now)
            for item in removed:
                print(f"{item.domain}: {item.table}: {item.how}, {item.rows:,} rows")
            print(f"retention applied at {now.isoformat()}: {len(removed)} change(s)")
            return 0
        org_id = _org_or_fail(conn, args.org) if args.org else None
        if args.org and org_id is None:
            return 2
        if args.action == "set" and org_id is not None:  # --org is required there
            domain = next(d for d in DOMAINS if d.name == args.domain)
            set_override(conn, org_id, domain, None if args.default else args.days)
            print(f"{domain.name}: org {org_id} keeps raw events "
                  f"{args.days or domain.retention} days"
                  + (" (the domain's own)" if args.default else "")
                  + "; `stats-gateway retention apply` removes older ones")
            return 0
        now = datetime.now(UTC)
        horizons = {(str(o), d): t for o, d, t in conn.execute(
            "SELECT org_id, domain, raw_from FROM raw_horizons").fetchall()}
        for domain in DOMAINS:
            for org, days in sorted(org_retention(conn, domain).items()):
                if org_id is None or org == org_id:
                    gone = horizons.get((org, domain.name))
                    print(f"{domain.name}\t{org}\t{days} days\tkeeps from "
                          f"{horizon(now, days).isoformat()}\traw events gone before "
                          f"{gone.isoformat() if gone else '-'}")
    return 0


def cmd_delete(args, settings: Settings) -> int:
    with database_url(settings, announce=True) as url, connect(url, autocommit=True) as conn:
        migrate(conn, DOMAINS)
        org_id = _org_or_fail(conn, args.org)
        if org_id is None:
            return 2
        domains = tuple(d for d in DOMAINS if args.domain in (None, d.name))
        try:
            removed = erase(conn, domains, org_id, args.before)
        except EraseRefused as exc:
            print(f"stats-gateway: nothing deleted: {exc}", file=sys.stderr)
            return 2
    for table, rows in removed.items():
        if rows:
            print(f"{table}\t{rows:,}")
    before = f" before {args.before.isoformat()}" if args.before else ""
    print(f"deleted {sum(removed.values()):,} rows of org {org_id}{before} from "
          f"{sum(1 for r in removed.values() if r)} table(s), in one transaction")
    return 0
