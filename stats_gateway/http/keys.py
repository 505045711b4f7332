"""The admin API: ``/v2/keys``, an org's API keys (list, revoke, expire, rotate).

Guarded by the ``admin`` permission, which only ``create-key --admin`` keys hold. An admin
key sees and changes its own org's keys only: every statement runs as the app role in
the org's transaction (row-level security) and names the org, so another org's key id
answers the same 404 as an id that does not exist. Secrets never leave the database,
except a rotated key's new secret, once, in the rotate answer. What rotation and expiry
do: ``key_admin.py``.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.params import PathParameter

from stats_gateway import key_admin
from stats_gateway.core.errors import ApiError, Problem, not_found
from stats_gateway.http.common import authorized, json_response
from stats_gateway.http.openapi import (
    BEARER_ONLY, error_responses, inline_json_schema, operation_class,
)
from stats_gateway.key_admin import KeyInfo, KeyList, KeyNotFound, KeyNotLive, RotatedKey
from stats_gateway.model import Model

_KEY_ID = re.compile(r"^[0-9a-f]{16}$")
KeyId = Annotated[str, PathParameter(description="The key's id: the <keyId> of "
                                                 "sgk_<keyId>_<secret>")]
_ERRORS = {409: "The key is revoked or expired: it cannot be rotated or given an expiry",
           404: "No such key in this org (another org's keys and unknown ids answer alike)",
           403: "The key lacks the admin permission (only `create-key --admin` keys hold it)",
           422: "The body is JSON but not a valid request (each problem listed)"}


class ExpireRequest(Model):
    """When the key stops working (RFC 3339 with an offset; a past time: now)."""

    expires_at: datetime


class RotateRequest(Model):
    """How long the old key keeps working, in seconds (default 86400, at most 30 days)."""

    grace_seconds: int = int(key_admin.ROTATION_GRACE.total_seconds())


def _docs(statuses, body: type | None = None) -> dict:
    request_body = inline_json_schema(body) if body else None
    return {"operation_class": operation_class(request_body=request_body),
            "responses": error_responses(statuses, descriptions=_ERRORS),
            "security": BEARER_ONLY, "tags": ["keys"]}


def _checked_id(key_id: str) -> str:
    if not _KEY_ID.match(key_id):
        raise not_found("API key")
    return key_id


async def _body(request: Request, tp: type):
    """The JSON body as ``tp``; an empty body is ``tp()`` when every field has a default."""
    raw = await request.body()
    try:
        if not raw.strip() and tp is RotateRequest:
            return tp()
        return msgspec.json.decode(raw, type=tp)
    except msgspec.ValidationError as exc:
        raise ApiError(422, "invalid_body", "the body is not a valid request",
                       [Problem("body", str(exc))]) from None
    except msgspec.DecodeError as exc:
        raise ApiError(400, "invalid_json", f"request body is not valid JSON: {exc}") from None


async def _run(request: Request, operation, body_type: type | None = None) -> Any:
    """``operation(conn, org_id, body)`` as the admin key's org, with its errors answered:
    the key is checked first, so a caller without one learns nothing from the body."""
    async with authorized(request, "admin") as access:
        body = await _body(request, body_type) if body_type else None
        try:
            async with access.database(request).transaction(access.org_id) as conn:
                return await operation(conn, access.org_id, body)
        except KeyNotFound:
            raise not_found("API key") from None
        except KeyNotLive:
            raise ApiError(409, "key_not_active", "this API key is revoked or expired; it "
                           "cannot be rotated or given an expiry") from None


@get("/v2/keys", name="keys-list", operation_id="ListKeys",
     summary="The org's API keys (never their secrets)", **_docs((401, 403, 429, 503)))
async def list_keys(request: Request) -> Response[KeyList]:
    keys = await _run(request, lambda conn, org, _: key_admin.alist_keys(conn, org))
    return json_response(KeyList(keys=keys))


@get("/v2/keys/{keyId:str}", name="keys-get", operation_id="GetKey",
     summary="One API key of the org", **_docs((401, 403, 404, 429, 503)))
async def get_key(request: Request, keyId: KeyId) -> Response[KeyInfo]:
    async def operation(conn, org_id, _):
        return await key_admin.aget_key(conn, org_id, _checked_id(keyId))

    return json_response(await _run(request, operation))


@delete("/v2/keys/{keyId:str}", name="keys-revoke", operation_id="RevokeKey",
        status_code=200, summary="Revoke an API key: refused from its next request on, by "
        "every replica", **_docs((401, 403, 404, 429, 503)))
async def revoke_key(request: Request, keyId: KeyId) -> Response[KeyInfo]:
    async def operation(conn, org_id, _):
        return await key_admin.arevoke_key(conn, org_id, _checked_id(keyId))

    return json_response(await _run(request, operation))


@post("/v2/keys/{keyId:str}/expire", name="keys-expire", operation_id="ExpireKey",
      status_code=200, summary="Set when a live API key stops working",
      **_docs((400, 401, 403, 404, 409, 422, 429, 503), ExpireRequest))
async def expire_key(request: Request, keyId: KeyId) -> Response[KeyInfo]:
    async def operation(conn, org_id, body: ExpireRequest):
        if body.expires_at.tzinfo is None:
            raise ApiError(422, "invalid_body", "the body is not a valid request",
                           [Problem("expiresAt", "must carry a UTC offset, e.g. Z")])
        return await key_admin.aexpire_key(conn, org_id, _checked_id(keyId),
                                           body.expires_at)

    return json_response(await _run(request, operation, ExpireRequest))


@post("/v2/keys/{keyId:str}/rotate", name="keys-rotate", operation_id="RotateKey",
      status_code=200, summary="A new key with the same grants; the old one keeps working "
      "for the grace period", **_docs((400, 401, 403, 404, 409, 422, 429, 503), RotateRequest))
async def rotate_key(request: Request, keyId: KeyId) -> Response[RotatedKey]:
    async def operation(conn, org_id, body: RotateRequest):
        grace = body.grace_seconds
        if not 0 <= grace <= key_admin.MAX_ROTATION_GRACE.total_seconds():
            raise ApiError(422, "invalid_body", "the body is not a valid request",
                           [Problem("graceSeconds", "must be between 0 and 2592000 (30 days)")])
        return await key_admin.arotate_key(conn, org_id, _checked_id(keyId),
                                           timedelta(seconds=grace))

    return json_response(await _run(request, operation, RotateRequest))


KEY_ROUTES = [list_keys, get_key, revoke_key, expire_key, rotate_key]
