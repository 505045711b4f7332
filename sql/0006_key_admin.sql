-- Key administration (`stats-gateway keys`, /v2/keys; README "Keys"): an admin
-- permission, when a key was last used, and what the gateway's role may see and change
-- of its own org's keys (row-level security, db/tenant.py, keeps it to that org).

ALTER TABLE api_keys
    ADD COLUMN can_admin boolean NOT NULL DEFAULT false,
    ADD COLUMN last_used_at timestamptz;

-- What a key may do still never changes (sql/0004): the admin permission joins the list.
CREATE OR REPLACE FUNCTION stats_gateway_api_keys_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.key_id, NEW.org_id, NEW.secret_hash, NEW.can_read, NEW.can_ingest,
        NEW.resource_scopes, NEW.workspace_ids, NEW.repo_ids, NEW.rate_limit, NEW.can_admin)
       IS DISTINCT FROM
       (OLD.key_id, OLD.org_id, OLD.secret_hash, OLD.can_read, OLD.can_ingest,
        OLD.resource_scopes, OLD.workspace_ids, OLD.repo_ids, OLD.rate_limit, OLD.can_admin)
    THEN
        RAISE EXCEPTION 'API key % cannot change what it may do; revoke it and create another',
            OLD.key_id USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

-- The live-key lookup also returns the admin permission (its result type changes, so it
-- is dropped and created again, with the same grants).
DROP FUNCTION stats_gateway_live_key(text);
DO $$
BEGIN
    EXECUTE format($f$
        CREATE FUNCTION stats_gateway_live_key(wanted text)
        RETURNS TABLE (org_id uuid, secret_hash bytea, can_read boolean, can_ingest boolean,
                       resource_scopes text[], workspace_ids text[], repo_ids text[],
                       rate_limit text, can_admin boolean)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = %I, pg_temp
        AS 'SELECT k.org_id, k.secret_hash, k.can_read, k.can_ingest, k.resource_scopes,
                   k.workspace_ids, k.repo_ids, k.rate_limit, k.can_admin
            FROM api_keys k
            WHERE k.key_id = wanted AND k.revoked_at IS NULL
              AND (k.expires_at IS NULL OR k.expires_at > now())'
    $f$, current_schema());
    -- "last used": written when a replica authenticates the key (a key-cache miss, so at
    -- most about once a minute per replica), and at most once a minute per key
    EXECUTE format($f$
        CREATE FUNCTION stats_gateway_touch_key(wanted text) RETURNS void
        LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = %I, pg_temp
        AS 'UPDATE api_keys SET last_used_at = now()
            WHERE key_id = wanted
              AND (last_used_at IS NULL OR last_used_at < now() - interval ''1 minute'')'
    $f$, current_schema());
END
$$;
REVOKE ALL ON FUNCTION stats_gateway_live_key(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION stats_gateway_live_key(text) TO stats_gateway_app;
REVOKE ALL ON FUNCTION stats_gateway_touch_key(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION stats_gateway_touch_key(text) TO stats_gateway_app;

-- The admin API runs as the app role inside its org's transaction: it may read every
-- column but the secret's hash, revoke or set an expiry, and insert a rotated key.
GRANT SELECT (key_id, org_id, name, can_read, can_ingest, can_admin, resource_scopes,
              workspace_ids, repo_ids, rate_limit, created_at, expires_at, revoked_at,
              last_used_at) ON api_keys TO stats_gateway_app;
GRANT UPDATE (expires_at, revoked_at) ON api_keys TO stats_gateway_app;
GRANT INSERT (key_id, org_id, secret_hash, name, can_read, can_ingest, can_admin,
              resource_scopes, workspace_ids, repo_ids, rate_limit) ON api_keys
    TO stats_gateway_app;
