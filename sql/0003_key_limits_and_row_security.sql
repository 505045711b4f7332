-- Per-key limits and the role the gateway's queries run as (README "Security").

-- Workspaces / repos a key is limited to (NULL: all; both: an event must match both) and
-- its own rate limit ("<n>/<period>", e.g. '600/min', '3/6s', or 'off'; NULL: the
-- gateway's default, STATS_GATEWAY_RATE_LIMIT).
ALTER TABLE api_keys
    ADD COLUMN workspace_ids text[],
    ADD COLUMN repo_ids text[],
    ADD COLUMN rate_limit text
        CONSTRAINT api_keys_rate_limit_format
        CHECK (rate_limit ~ '^(off|[1-9][0-9]{0,8}/([1-9][0-9]{0,5})?(s|min|h))$');

-- The gateway's pool connections SET ROLE to this role: not a superuser, owns no table,
-- so row-level security (db/tenant.py) always applies to it. Roles are cluster-wide and
-- several databases may migrate at once: a concurrent creation is fine. An owner that
-- may not create roles needs an administrator to create it (and grant it to the owner).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'stats_gateway_app') THEN
        CREATE ROLE stats_gateway_app NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

DO $$
BEGIN
    IF NOT pg_has_role(current_user, 'stats_gateway_app', 'MEMBER') THEN
        EXECUTE format('GRANT stats_gateway_app TO %I', current_user);
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO stats_gateway_app', current_schema());
END
$$;

-- /readyz reads which migrations are applied; nothing else outside the tenant tables
-- (which db/tenant.py secures and grants) is granted: not orgs, not api_keys.
GRANT SELECT ON schema_migrations TO stats_gateway_app;

-- Authentication looks a key up by its id before the org is known, so it cannot pass
-- the org policy: this function (running as the owner) returns the one live key row,
-- and is all the app role may do with api_keys.
DO $$
BEGIN
    EXECUTE format($f$
        CREATE FUNCTION stats_gateway_live_key(wanted text)
        RETURNS TABLE (org_id uuid, secret_hash bytea, can_read boolean, can_ingest boolean,
                       resource_scopes text[], workspace_ids text[], repo_ids text[],
                       rate_limit text)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = %I, pg_temp
        AS 'SELECT k.org_id, k.secret_hash, k.can_read, k.can_ingest, k.resource_scopes,
                   k.workspace_ids, k.repo_ids, k.rate_limit
            FROM api_keys k
            WHERE k.key_id = wanted AND k.revoked_at IS NULL
              AND (k.expires_at IS NULL OR k.expires_at > now())'
    $f$, current_schema());
END
$$;
REVOKE ALL ON FUNCTION stats_gateway_live_key(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION stats_gateway_live_key(text) TO stats_gateway_app;
