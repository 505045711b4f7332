-- Register the compose profile's two Citus workers with the coordinator (run on the
-- coordinator; compose.yaml's citus-setup service runs it before distribute.sql).
-- Idempotent: citus_add_node returns the existing node id for a node already registered,
-- and citus_set_coordinator_host only records the coordinator's own address.
-- Not a migration: stats_gateway/db/migrate.py applies sql/*.sql only, not subfolders.
SELECT citus_set_coordinator_host('citus-coordinator', 5432);
SELECT citus_add_node('citus-worker-1', 5432);
SELECT citus_add_node('citus-worker-2', 5432);
