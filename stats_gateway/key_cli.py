"""``stats-gateway keys list|revoke|expire|rotate``: the operator's side of key
administration (``key_admin.py``), as the table owner, so any org's keys.

A key id is the ``<keyId>`` of ``sgk_<keyId>_<secret>`` (and the ``id`` that ``keys list``
and ``GET /v2/keys`` show); ids are unique across orgs, so revoke/expire/rotate need no
org.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime, timedelta

from stats_gateway import key_admin
from stats_gateway.key_admin import KeyInfo, KeyNotFound, KeyNotLive

_DURATION = re.compile(r"^(\d{1,7})(s|m|min|h|d)$")
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def duration(text: str) -> timedelta:
    """``0``, ``90s``, ``30m``, ``24h``, ``7d``."""
    if text.strip() == "0":
        return timedelta(0)
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 30m, 24h, 7d)")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def instant(text: str) -> datetime:
    """An RFC 3339 time with an offset (``2026-12-31T00:00:00Z``)."""
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time with offset: {text!r}")
    return at


def add_keys_parser(sub) -> None:
    keys = sub.add_parser("keys", help="list, revoke, expire or rotate API keys")
    verbs = keys.add_subparsers(dest="verb", required=True)
    listing = verbs.add_parser("list", help="keys (never their secrets), oldest first")
    listing.add_argument("--org", help="org name or id (default: every org)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    revoke = verbs.add_parser("revoke", help="refuse the key from its next request on")
    expire = verbs.add_parser("expire", help="set when the key stops working")
    when = expire.add_mutually_exclusive_group(required=True)
    when.add_argument("--at", type=instant, help="RFC 3339 time (a past time: now)")
    when.add_argument("--in", dest="within", type=duration, help="e.g. 30m, 24h, 7d, 0")
    rotate = verbs.add_parser("rotate", help="a new key with the same grants; the old one "
                              "keeps working for the grace period")
    rotate.add_argument("--grace", type=duration, default=key_admin.ROTATION_GRACE,
                        help="how long the old key keeps working (default 24h, at most 30d)")
    for p in (revoke, expire, rotate):
        p.add_argument("key_id", metavar="KEY_ID", help="the <keyId> of sgk_<keyId>_<secret>")


def cmd_keys(args, settings) -> int:
    from stats_gateway.cli import DOMAINS, connect, database_url, migrate

    with database_url(settings, announce=True) as url, connect(url, autocommit=True) as conn:
        migrate(conn, DOMAINS)
        try:
            return _run(conn, args)
        except (KeyNotFound, KeyNotLive, LookupError, ValueError) as exc:
            print(f"stats-gateway: {_message(exc, args)}", file=sys.stderr)
            return 2


def _message(exc: Exception, args) -> str:
    if isinstance(exc, KeyNotFound):
        return f"no key has id {args.key_id}"
    if isinstance(exc, KeyNotLive):
        return f"key {args.key_id} is revoked or expired: it stays that way"
    return str(exc)


def _org_of_key(conn, key_id: str) -> str:
    row = conn.execute("SELECT org_id::text FROM api_keys WHERE key_id = %(key)s",
                       {"key": key_id}).fetchone()
    if row is None:
        raise KeyNotFound(key_id)
    return row[0]


def _run(conn, args) -> int:
    if args.verb == "list":
        return _list(conn, args)
    org_id = _org_of_key(conn, args.key_id)
    if args.verb == "revoke":
        info = key_admin.revoke_key(conn, org_id, args.key_id)
    elif args.verb == "expire":
        at = args.at or datetime.now(UTC) + args.within
        info = key_admin.expire_key(conn, org_id, args.key_id, at)
    else:
        rotated = key_admin.rotate_key(conn, org_id, args.key_id, args.grace)
        print(f"key:  {rotated.key}\nid:   {rotated.created.id}\n"
              f"old:  {rotated.rotated.id} works until {_ts(rotated.rotated.expires_at)}")
        return 0
    print(_line(info, dict(conn.execute("SELECT id::text, name FROM orgs WHERE id = "
                                        "%(org)s::uuid", {"org": org_id}).fetchall())))
    return 0


def _list(conn, args) -> int:
    names = dict(conn.execute("SELECT id::text, name FROM orgs").fetchall())
    org_ids = [_org_id(conn, args.org)] if args.org else sorted(names, key=lambda org: names[org])
    for org_id in org_ids:
        for info in key_admin.list_keys(conn, org_id):
            if args.json:
                print(key_admin.to_json(info).decode())
            else:
                print(_line(info, names))
    return 0


def _org_id(conn, org: str) -> str:
    row = conn.execute("SELECT id::text FROM orgs WHERE id::text = %(org)s OR name = %(org)s",
                       {"org": org}).fetchone()
    if row is None:
        raise LookupError(f"no org has name or id {org!r}")
    return row[0]


def _ts(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if at else "-"


def _line(info: KeyInfo, names: dict[str, str]) -> str:
    """One key per line: id, status, org, permissions, limits, label, times."""
    limits = [f"{label}={','.join(values)}" for label, values in (
        ("scopes", info.resource_scopes), ("workspaces", info.workspaces),
        ("repos", info.repos)) if values is not None]
    if info.rate_limit:
        limits.append(f"rate={info.rate_limit}")
    org = names.get(info.org_id, info.org_id)
    return "  ".join([
        info.id, f"{info.status:<7}", f"org={org}", f"perm={'+'.join(info.permissions)}",
        *limits, f"label={info.label!r}", f"created={_ts(info.created_at)}",
        f"last_used={_ts(info.last_used_at)}", f"expires={_ts(info.expires_at)}"])
