"""Key administration shared by ``stats-gateway keys`` and the admin API (``/v2/keys``):
list, revoke, expire and rotate one org's API keys. No HTTP here.

The CLI runs these as the table owner, the API as the app role inside the admin key's
org transaction (row-level security keeps it to that org; sql/0006 grants it every
column but the secret's hash). Both pass the org, so a key of another org is simply not
found, exactly like a key that does not exist.

Rotation makes a new key with the same grants and label (and no expiry) and lets the old
one live on for a grace period, ``ROTATION_GRACE`` (24 hours) unless told otherwise (0 to
30 days), so deployed clients can switch over; an old key that expires sooner keeps its
earlier expiry. Only a live key can be rotated or given an expiry: a revoked or expired
key stays dead. Revoking is immediate and idempotent.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from stats_gateway.auth import new_secret, secret_hash
from stats_gateway.model import Model

# the resource scopes a key may be limited to (create-key --resource-scope): what the
# runs-stats endpoint checks (seeds/runs.py READ_SCOPE; a test keeps the two equal)
RESOURCE_SCOPES = frozenset({"flows:read", "models:read", "comfyui-workflows:read"})
ROTATION_GRACE = timedelta(hours=24)
MAX_ROTATION_GRACE = timedelta(days=30)


class KeyInfo(Model):
    """One API key as an admin sees it; never its secret."""

    id: str
    label: str
    org_id: str
    permissions: list[str]  # of read, ingest, admin
    resource_scopes: list[str] | None  # None: every resource
    workspaces: list[str] | None  # None: every workspace
    repos: list[str] | None  # None: every repo
    rate_limit: str | None  # None: the gateway's default
    created_at: datetime
    last_used_at: datetime | None  # to within about a minute (auth.KEY_CACHE_TTL_S)
    expires_at: datetime | None
    revoked_at: datetime | None
    status: str  # active | expired | revoked


class KeyList(Model):
    keys: list[KeyInfo]


class RotatedKey(Model):
    """The new key (its secret shown this once) and the old key, now expiring."""

    key: str
    created: KeyInfo
    rotated: KeyInfo


class KeyNotFound(LookupError):
    """No such key in this org (foreign and nonexistent keys alike)."""


class KeyNotLive(ValueError):
    """The key is revoked or expired, so it cannot be rotated or given an expiry."""


_STATUS = ("CASE WHEN revoked_at IS NOT NULL THEN 'revoked' "
           "WHEN expires_at IS NOT NULL AND expires_at <= now() THEN 'expired' "
           "ELSE 'active' END")
_COLUMNS = ("key_id, name, org_id::text, can_read, can_ingest, can_admin, resource_scopes, "
            "workspace_ids, repo_ids, rate_limit, created_at, last_used_at, expires_at, "
            f"revoked_at, {_STATUS}")
LIST_SQL = (f"SELECT {_COLUMNS} FROM api_keys WHERE org_id = %(org)s::uuid "
            "ORDER BY created_at, key_id")
GET_SQL = (f"SELECT {_COLUMNS} FROM api_keys WHERE org_id = %(org)s::uuid "
           "AND key_id = %(key)s")
REVOKE_SQL = ("UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) "
              f"WHERE org_id = %(org)s::uuid AND key_id = %(key)s RETURNING {_COLUMNS}")
_LIVE = "revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())"
EXPIRE_SQL = ("UPDATE api_keys SET expires_at = %(at)s "
              f"WHERE org_id = %(org)s::uuid AND key_id = %(key)s AND {_LIVE} "
              f"RETURNING {_COLUMNS}")
# the old key: its expiry brought forward to the end of the grace period, never pushed back
ROTATE_OLD_SQL = ("UPDATE api_keys SET expires_at = least(coalesce(expires_at, 'infinity'), "
                  "now() + %(grace)s) "
                  f"WHERE org_id = %(org)s::uuid AND key_id = %(key)s AND {_LIVE} "
                  f"RETURNING {_COLUMNS}")
ROTATE_NEW_SQL = (
    "INSERT INTO api_keys (key_id, org_id, secret_hash, name, can_read, can_ingest, "
    "can_admin, resource_scopes, workspace_ids, repo_ids, rate_limit) "
    "VALUES (%(new)s, %(org)s::uuid, %(hash)s, %(name)s, %(read)s, %(ingest)s, %(admin)s, "
    f"%(scopes)s, %(workspaces)s, %(repos)s, %(rate)s) RETURNING {_COLUMNS}")


def key_info(row) -> KeyInfo:
    (key_id, name, org_id, read, ingest, admin, scopes, workspaces, repos, rate, created,
     used, expires, revoked, status) = row
    permissions = [p for p, on in (("read", read), ("ingest", ingest), ("admin", admin)) if on]
    return KeyInfo(id=key_id, label=name, org_id=org_id, permissions=permissions,
                   resource_scopes=scopes, workspaces=workspaces, repos=repos,
                   rate_limit=rate, created_at=created, last_used_at=used,
                   expires_at=expires, revoked_at=revoked, status=status)


def check_grace(grace: timedelta) -> timedelta:
    if not timedelta(0) <= grace <= MAX_ROTATION_GRACE:
        raise ValueError("the grace period must be between 0 seconds and 30 days")
    return grace


def rotation_params(org_id: str, old: KeyInfo) -> tuple[str, dict]:
    """The new key in clear and the INSERT parameters copying ``old``'s grants."""
    key_id, secret = new_secret()
    params = {"new": key_id, "org": org_id, "hash": secret_hash(secret), "name": old.label,
              "read": "read" in old.permissions, "ingest": "ingest" in old.permissions,
              "admin": "admin" in old.permissions, "scopes": old.resource_scopes,
              "workspaces": old.workspaces, "repos": old.repos, "rate": old.rate_limit}
    return f"sgk_{key_id}_{secret}", params


# --- over a synchronous connection (the CLI, as the table owner) -------------------------

def list_keys(conn, org_id: str) -> list[KeyInfo]:
    return [key_info(r) for r in conn.execute(LIST_SQL, {"org": org_id}).fetchall()]


def _one(conn, sql: str, params: dict) -> KeyInfo:
    row = conn.execute(sql, params).fetchone()
    if row is None:
        raise KeyNotFound(params["key"])
    return key_info(row)


def _live_one(conn, sql: str, params: dict) -> KeyInfo:
    """The row ``sql`` changed; KeyNotLive when the key exists but is dead."""
    row = conn.execute(sql, params).fetchone()
    if row is None:
        _one(conn, GET_SQL, params)  # KeyNotFound when it is not there at all
        raise KeyNotLive(params["key"])
    return key_info(row)


def revoke_key(conn, org_id: str, key_id: str) -> KeyInfo:
    return _one(conn, REVOKE_SQL, {"org": org_id, "key": key_id})


def expire_key(conn, org_id: str, key_id: str, at: datetime) -> KeyInfo:
    return _live_one(conn, EXPIRE_SQL, {"org": org_id, "key": key_id, "at": at})


def rotate_key(conn, org_id: str, key_id: str,
               grace: timedelta = ROTATION_GRACE) -> RotatedKey:
    """In one transaction: the old key's expiry, then the new key with its grants."""
    params = {"org": org_id, "key": key_id, "grace": check_grace(grace)}
    with conn.transaction():
        old = _live_one(conn, ROTATE_OLD_SQL, params)
        key, new_params = rotation_params(org_id, old)
        created = key_info(conn.execute(ROTATE_NEW_SQL, new_params).fetchone())
    return RotatedKey(key=key, created=created, rotated=old)


# --- over an async connection (the admin API, as the app role in the org's transaction) --

async def alist_keys(conn, org_id: str) -> list[KeyInfo]:
    cur = await conn.execute(LIST_SQL, {"org": org_id})
    return [key_info(r) for r in await cur.fetchall()]


async def _aone(conn, sql: str, params: dict) -> KeyInfo:
    cur = await conn.execute(sql, params)
    row = await cur.fetchone()
    if row is None:
        raise KeyNotFound(params["key"])
    return key_info(row)


async def _alive_one(conn, sql: str, params: dict) -> KeyInfo:
    cur = await conn.execute(sql, params)
    row = await cur.fetchone()
    if row is None:
        await _aone(conn, GET_SQL, params)
        raise KeyNotLive(params["key"])
    return key_info(row)


async def aget_key(conn, org_id: str, key_id: str) -> KeyInfo:
    return await _aone(conn, GET_SQL, {"org": org_id, "key": key_id})


async def arevoke_key(conn, org_id: str, key_id: str) -> KeyInfo:
    return await _aone(conn, REVOKE_SQL, {"org": org_id, "key": key_id})


async def aexpire_key(conn, org_id: str, key_id: str, at: datetime) -> KeyInfo:
    return await _alive_one(conn, EXPIRE_SQL, {"org": org_id, "key": key_id, "at": at})


async def arotate_key(conn, org_id: str, key_id: str, grace: timedelta) -> RotatedKey:
    """Both statements in the caller's transaction (``tenant_connection``)."""
    params = {"org": org_id, "key": key_id, "grace": check_grace(grace)}
    old = await _alive_one(conn, ROTATE_OLD_SQL, params)
    key, new_params = rotation_params(org_id, old)
    cur = await conn.execute(ROTATE_NEW_SQL, new_params)
    created = key_info(await cur.fetchone())
    return RotatedKey(key=key, created=created, rotated=old)


def to_json(value) -> bytes:
    return msgspec.json.encode(value)
