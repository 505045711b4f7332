"""API keys: ``sgk_<keyId>_<secret>``, stored as sha256(secret), each owned by one org.

Unknown, malformed, revoked and expired keys all get the same 401, so a caller learns
nothing about keys it does not hold.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass

import psycopg

from stats_gateway.core.errors import ApiError

_KEY = re.compile(r"^sgk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class Caller:
    org_id: str
    key_id: str
    can_read: bool
    can_ingest: bool


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def unauthorized() -> ApiError:
    return ApiError(401, "unauthorized", "a valid API key is required (Authorization: Bearer …)")


def ensure_org(conn: psycopg.Connection, org: str) -> str:
    """The id of org ``org``: an existing org's id, or a name (created when missing)."""
    try:
        org_id = uuid.UUID(org)
    except ValueError:
        org_id = None
    if org_id is not None:
        row = conn.execute("SELECT id FROM orgs WHERE id = %s", (org_id,)).fetchone()
        if row is None:
            raise LookupError(f"no org has id {org}")
        return str(row[0])
    row = conn.execute(
        "INSERT INTO orgs (id, name) VALUES (%s, %s) ON CONFLICT (name) DO UPDATE "
        "SET name = EXCLUDED.name RETURNING id", (uuid.uuid4(), org)).fetchone()
    return str(row[0])


def create_key(conn: psycopg.Connection, org_id: str, *, read: bool = True,
               ingest: bool = True, name: str = "") -> str:
    """Store a new key for ``org_id`` and return it in clear (shown once)."""
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO api_keys (key_id, org_id, secret_hash, name, can_read, can_ingest) "
        "VALUES (%s, %s, %s, %s, %s, %s)", (key_id, org_id, _hash(secret), name, read, ingest))
    return f"sgk_{key_id}_{secret}"


async def authenticate(conn: psycopg.AsyncConnection, authorization: str | None) -> Caller:
    scheme, _, token = (authorization or "").partition(" ")
    match = _KEY.match(token.strip()) if scheme.lower() == "bearer" else None
    if not match:
        raise unauthorized()
    key_id, secret = match.groups()
    cur = await conn.execute(
        "SELECT org_id, secret_hash, can_read, can_ingest FROM api_keys WHERE key_id = %s "
        "AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())", (key_id,))
    row = await cur.fetchone()
    stored = row[1] if row else _hash("")
    if not hmac.compare_digest(stored, _hash(secret)) or row is None:
        raise unauthorized()
    return Caller(org_id=str(row[0]), key_id=key_id, can_read=row[2], can_ingest=row[3])


def require(caller: Caller, permission: str) -> None:
    allowed = caller.can_read if permission == "read" else caller.can_ingest
    if not allowed:
        raise ApiError(403, "forbidden", f"this API key lacks the {permission} permission")
