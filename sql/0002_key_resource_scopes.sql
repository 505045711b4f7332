-- Resource permissions a key holds beyond read/ingest, e.g. 'flows:read', 'models:read',
-- 'comfyui-workflows:read' (the runs-stats endpoint drops rows for what a key cannot read).
-- NULL means every resource: keys made before this migration keep seeing everything.
ALTER TABLE api_keys ADD COLUMN resource_scopes text[];
