-- An API key's grants never change once it exists: only its label, its expiry and its
-- revocation may. The gateway caches a key's caller (org, permissions, workspace/repo
-- limits, rate limit) between requests and re-checks, in each request's own query round
-- trip, only that the key is still live (stats_gateway/auth.py, db/tenant.py); this
-- trigger is what makes that enough. To change what a key may do, revoke it and create
-- another.
CREATE FUNCTION stats_gateway_api_keys_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.key_id, NEW.org_id, NEW.secret_hash, NEW.can_read, NEW.can_ingest,
        NEW.resource_scopes, NEW.workspace_ids, NEW.repo_ids, NEW.rate_limit)
       IS DISTINCT FROM
       (OLD.key_id, OLD.org_id, OLD.secret_hash, OLD.can_read, OLD.can_ingest,
        OLD.resource_scopes, OLD.workspace_ids, OLD.repo_ids, OLD.rate_limit) THEN
        RAISE EXCEPTION 'API key % cannot change what it may do; revoke it and create another',
            OLD.key_id USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER api_keys_immutable BEFORE UPDATE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION stats_gateway_api_keys_immutable();
