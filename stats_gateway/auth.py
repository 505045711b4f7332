"""API keys: ``sgk_<keyId>_<secret>``, stored as sha256(secret), each owned by one org.

Unknown, malformed, revoked and expired keys all get the same 401, so a caller learns
nothing about keys it does not hold. A key may be limited to some workspaces and/or repos
(``core/restriction.py``) and may carry its own rate limit (``http/ratelimit.py``).

What a key may do never changes once it exists (``sql/0004``: only its label, expiry and
revocation can), so ``KeyCache`` keeps the caller of each key that authenticated lately
and a request spends no round trip of its own on its key: it re-checks only that the key
is still live, inside its first query's round trip (``db/tenant.py``). So a key revoked or
expired in the database is refused on its next request by every replica; entries also
age out after ``KEY_CACHE_TTL_S``, when the key is looked up again and its "last used"
time written (``stats_gateway_touch_key``, sql/0006).

Permissions: ``read``, ``ingest`` and ``admin`` (manage the org's keys: ``/v2/keys``,
``http/keys.py``); ``create-key --admin`` makes the only keys that hold ``admin``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass

import psycopg

from stats_gateway.core.errors import ApiError
from stats_gateway.core.restriction import UNRESTRICTED, Restriction

_KEY = re.compile(r"^sgk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
KEY_CACHE_TTL_S = 60.0


@dataclass(frozen=True)
class Caller:
    org_id: str
    key_id: str
    can_read: bool
    can_ingest: bool
    resource_scopes: frozenset[str] | None = None  # None: every resource
    restriction: Restriction = UNRESTRICTED  # the workspaces/repos the key is limited to
    rate_limit: str | None = None  # the key's own limit (None: the gateway's default)
    can_admin: bool = False  # manages its org's keys (/v2/keys)

    def may(self, resource_scope: str) -> bool:
        return self.resource_scopes is None or resource_scope in self.resource_scopes


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def unauthorized() -> ApiError:
    return ApiError(401, "unauthorized", "a valid API key is required (Authorization: Bearer …)")


def ensure_org(conn: psycopg.Connection, org: str, *, report: bool = False):
    """The id of org ``org``: an existing org's id, or a name (created when missing).
    With ``report``, (id, whether this call created the org)."""
    try:
        org_id = uuid.UUID(org)
    except ValueError:
        org_id = None
    if org_id is not None:
        row = conn.execute("SELECT id FROM orgs WHERE id = %s", (org_id,)).fetchone()
        if row is None:
            raise LookupError(f"no org has id {org}")
        return (str(row[0]), False) if report else str(row[0])
    new_id = uuid.uuid4()
    row = conn.execute(
        "INSERT INTO orgs (id, name) VALUES (%s, %s) ON CONFLICT (name) DO UPDATE "
        "SET name = EXCLUDED.name RETURNING id", (new_id, org)).fetchone()
    assert row is not None  # RETURNING: a row, inserted or updated
    return (str(row[0]), row[0] == new_id) if report else str(row[0])


def create_key(conn: psycopg.Connection, org_id: str, *, read: bool = True,
               ingest: bool = True, name: str = "",
               resource_scopes: list[str] | None = None,
               workspaces: list[str] | None = None, repos: list[str] | None = None,
               rate_limit: str | None = None, admin: bool = False) -> str:
    """Store a new key for ``org_id`` and return it in clear (shown once).

    ``resource_scopes`` limits which resources the key may read (None: all of them);
    ``workspaces`` / ``repos`` the events it reads and writes (None: all; both: an event
    must be in both); ``rate_limit`` (e.g. ``"600/min"``, ``"off"``) replaces the
    gateway's default rate limit for this key; ``admin`` lets it manage the org's keys."""
    key_id, secret = new_secret()
    conn.execute(
        "INSERT INTO api_keys (key_id, org_id, secret_hash, name, can_read, can_ingest, "
        "resource_scopes, workspace_ids, repo_ids, rate_limit, can_admin) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (key_id, org_id, secret_hash(secret), name, read, ingest, resource_scopes,
         None if workspaces is None else sorted(set(workspaces)),
         None if repos is None else sorted(set(repos)), rate_limit, admin))
    return f"sgk_{key_id}_{secret}"


def new_secret() -> tuple[str, str]:
    """A fresh (key id, secret): the key is ``sgk_<id>_<secret>``."""
    return secrets.token_hex(8), secrets.token_urlsafe(32)


def secret_hash(secret: str) -> bytes:
    """What ``api_keys.secret_hash`` stores for a secret."""
    return _hash(secret)


def key_from_header(authorization: str | None, *, basic: bool = False,
                    bare: bool = False) -> str | None:
    """The API key in an Authorization header: ``Bearer <key>``; with ``basic``, also HTTP
    Basic with the key as password (any user name); with ``bare``, also the key alone."""
    value = (authorization or "").strip()
    scheme, _, credentials = value.partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip()
    if basic and scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]
    if bare and value.startswith("sgk_"):
        return value
    return None


def split_key(key: str | None) -> tuple[str, str]:
    """(key id, secret) of a well-formed key; the 401 otherwise."""
    match = _KEY.match(key) if key else None
    if not match:
        raise unauthorized()
    return match.group(1), match.group(2)


class KeyCache:
    """Callers of keys that authenticated lately, by key id, with their secret's hash.

    A hit never vouches for a key alone: it spares the lookup, and the request re-checks
    that the key is live before it answers (``http/common.authorized``). Only keys that
    authenticated are kept, at most ``size`` (the least recently used go first), so
    made-up key ids cannot grow it; each for at most ``ttl_s`` seconds, so the key is
    looked up (and its "last used" time written) again now and then."""

    def __init__(self, size: int = 10_000, ttl_s: float = KEY_CACHE_TTL_S):
        self.size = size
        self.ttl_s = ttl_s
        self._entries: OrderedDict[str, tuple[bytes, Caller, float]] = OrderedDict()

    def get(self, key_id: str, secret: str) -> Caller | None:
        entry = self._entries.get(key_id)
        if entry is None or not hmac.compare_digest(entry[0], _hash(secret)):
            return None
        if time.monotonic() - entry[2] > self.ttl_s:
            del self._entries[key_id]
            return None
        self._entries.move_to_end(key_id)
        return entry[1]

    def put(self, key_id: str, secret: str, caller: Caller) -> None:
        self._entries[key_id] = (_hash(secret), caller, time.monotonic())
        self._entries.move_to_end(key_id)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def drop(self, key_id: str) -> None:
        self._entries.pop(key_id, None)

    def __len__(self) -> int:
        return len(self._entries)


async def key_is_live(conn: psycopg.AsyncConnection, key_id: str) -> bool:
    """Whether the key is still neither revoked nor expired."""
    cur = await conn.execute("SELECT 1 FROM stats_gateway_live_key(%s)", (key_id,))
    return await cur.fetchone() is not None


async def authenticate(conn: psycopg.AsyncConnection, key_id: str, secret: str) -> Caller:
    """The caller of the key (``split_key``'s parts), looked up in the database; the same
    401 for any key that is not live or whose secret is wrong."""
    # a function running as the table owner: the app role has no other access to api_keys
    # (row-level security, stats_gateway/db/tenant.py), and no org is known yet
    cur = await conn.execute("SELECT * FROM stats_gateway_live_key(%s)", (key_id,))
    row = await cur.fetchone()
    stored = row[1] if row else _hash("")
    if not hmac.compare_digest(stored, _hash(secret)) or row is None:
        raise unauthorized()
    await conn.execute("SELECT stats_gateway_touch_key(%s)", (key_id,))  # "last used"
    workspaces, repos = (None if ids is None else frozenset(ids) for ids in (row[5], row[6]))
    return Caller(org_id=str(row[0]), key_id=key_id, can_read=row[2], can_ingest=row[3],
                  resource_scopes=None if row[4] is None else frozenset(row[4]),
                  restriction=Restriction(workspaces, repos), rate_limit=row[7],
                  can_admin=row[8])


def require(caller: Caller, permission: str) -> None:
    allowed = {"read": caller.can_read, "ingest": caller.can_ingest,
               "admin": caller.can_admin}.get(permission, False)
    if not allowed:
        raise ApiError(403, "forbidden", f"this API key lacks the {permission} permission")
