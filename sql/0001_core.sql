-- Tenants, API keys and the entity catalogue shared by every domain.
-- Domain event tables are generated from the domain declarations (stats_gateway/db/schema.py).

CREATE TABLE orgs (
    id          uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Keys are "sgk_<key_id>_<secret>"; only sha256(secret) is stored. The secret is 32 random
-- bytes, so a fast hash is enough (no password-stretching needed for full-entropy secrets).
CREATE TABLE api_keys (
    key_id       text PRIMARY KEY,
    org_id       uuid NOT NULL REFERENCES orgs(id),
    secret_hash  bytea NOT NULL,
    name         text NOT NULL DEFAULT '',
    can_read     boolean NOT NULL,
    can_ingest   boolean NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_keys_org ON api_keys (org_id);

-- Every id that events mention (workspace, repo, bucket, node, user, rule, aiConfig), per
-- org: ids are scoped to their org, so two orgs may use the same id without meeting.
-- name is the display name carried by the newest event (name_ts) that had one.
CREATE TABLE entities (
    org_id     uuid NOT NULL REFERENCES orgs(id),
    kind       text NOT NULL,
    id         text NOT NULL,
    parent_id  text,
    name       text,
    name_ts    timestamptz,
    PRIMARY KEY (org_id, kind, id)
);
