-- 1. series metrics
--    2026-04-17T13:27:41+00:00 .. 2026-04-17T14:00:00+00:00: events_runs (raw)
--    2026-04-17T14:00:00+00:00 .. 2026-04-18T00:00:00+00:00: ru_runs_org_1h_0afd95 (1h)
--    2026-04-18T00:00:00+00:00 .. 2026-05-17T00:00:00+00:00: ru_runs_org_1d_7bbddd (1d)
--    2026-05-17T00:00:00+00:00 .. 2026-05-17T13:00:00+00:00: ru_runs_org_1h_0afd95 (1h)
--    2026-05-17T13:00:00+00:00 .. 2026-05-17T13:27:41+00:00: events_runs (raw)
SELECT floor(extract(epoch
FROM "bucket_ts"))::int8 AS "bucket_ts", COALESCE("runs", 0)::int8 AS "runs", "spend"
FROM ((SELECT "slot_ts" "bucket_ts","runs" "runs","spend" "spend"
FROM "ru_runs_org_1d_7bbddd"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t2)s AND "slot_ts"<%(t3)s)
UNION ALL (SELECT "bucket_ts",SUM("runs") "runs",SUM("spend") "spend"
FROM ((SELECT date_bin(%(step)s, "ts", %(origin)s) "bucket_ts",COUNT(*) "runs",SUM("spend") "spend"
FROM "events_runs"
WHERE "org_id"=%(org)s AND "ts">=%(start)s AND "ts"<%(t1)s
GROUP BY date_bin(%(step)s, "ts", %(origin)s))
UNION ALL (SELECT date_bin(%(step)s, "slot_ts", %(origin)s) "bucket_ts","runs" "runs","spend" "spend"
FROM "ru_runs_org_1h_0afd95"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t1)s AND "slot_ts"<%(t2)s)
UNION ALL (SELECT date_bin(%(step)s, "slot_ts", %(origin)s) "bucket_ts","runs" "runs","spend" "spend"
FROM "ru_runs_org_1h_0afd95"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t3)s AND "slot_ts"<%(t4)s)
UNION ALL (SELECT date_bin(%(step)s, "ts", %(origin)s) "bucket_ts",COUNT(*) "runs",SUM("spend") "spend"
FROM "events_runs"
WHERE "org_id"=%(org)s AND "ts">=%(t4)s AND "ts"<%(end)s
GROUP BY date_bin(%(step)s, "ts", %(origin)s))) AS partials
GROUP BY "bucket_ts")) AS parts;
-- params: {"end": "2026-05-17T13:27:41+00:00", "org": "<org>", "origin": "2026-04-17T00:00:00+00:00", "start": "2026-04-17T13:27:41+00:00", "step": 86400.0, "t1": "2026-04-17T14:00:00+00:00", "t2": "2026-04-18T00:00:00+00:00", "t3": "2026-05-17T00:00:00+00:00", "t4": "2026-05-17T13:00:00+00:00"}

-- 2. breakdown page
--    2026-04-17T13:27:41+00:00 .. 2026-04-17T14:00:00+00:00: events_runs (raw)
--    2026-04-17T14:00:00+00:00 .. 2026-04-18T00:00:00+00:00: ru_runs_main_1h_cb7930 (1h)
--    2026-04-18T00:00:00+00:00 .. 2026-04-20T00:00:00+00:00: ru_runs_main_1d_24be33 (1d)
--    2026-04-20T00:00:00+00:00 .. 2026-05-11T00:00:00+00:00: ru_runs_main_7d_7776fa (7d)
--    2026-05-11T00:00:00+00:00 .. 2026-05-17T00:00:00+00:00: ru_runs_main_1d_24be33 (1d)
--    2026-05-17T00:00:00+00:00 .. 2026-05-17T13:00:00+00:00: ru_runs_main_1h_cb7930 (1h)
--    2026-05-17T13:00:00+00:00 .. 2026-05-17T13:27:41+00:00: events_runs (raw)
WITH agg AS (SELECT "entity_id",SUM("runs") "runs"
FROM ((SELECT "source" "entity_id",COUNT(*) "runs"
FROM "events_runs"
WHERE "org_id"=%(org)s AND "ts">=%(start)s AND "ts"<%(t1)s AND NOT "source" IS NULL
GROUP BY "source")
UNION ALL (SELECT "source" "entity_id","runs" "runs"
FROM "ru_runs_main_1h_cb7930"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t1)s AND "slot_ts"<%(t2)s AND NOT "source" IS NULL)
UNION ALL (SELECT "source" "entity_id","runs" "runs"
FROM "ru_runs_main_1d_24be33"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t2)s AND "slot_ts"<%(t3)s AND NOT "source" IS NULL)
UNION ALL (SELECT "source" "entity_id","runs" "runs"
FROM "ru_runs_main_7d_7776fa"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t3)s AND "slot_ts"<%(t4)s AND NOT "source" IS NULL)
UNION ALL (SELECT "source" "entity_id","runs" "runs"
FROM "ru_runs_main_1d_24be33"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t4)s AND "slot_ts"<%(t5)s AND NOT "source" IS NULL)
UNION ALL (SELECT "source" "entity_id","runs" "runs"
FROM "ru_runs_main_1h_cb7930"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t5)s AND "slot_ts"<%(t6)s AND NOT "source" IS NULL)
UNION ALL (SELECT "source" "entity_id",COUNT(*) "runs"
FROM "events_runs"
WHERE "org_id"=%(org)s AND "ts">=%(t6)s AND "ts"<%(end)s AND NOT "source" IS NULL
GROUP BY "source")) AS partials
GROUP BY "entity_id"), page AS (SELECT agg.*, count(*) OVER () AS total_entities, sum("runs") OVER () AS share_total
FROM agg
ORDER BY "runs" DESC NULLS LAST, "entity_id" COLLATE "C"
LIMIT %(limit)s OFFSET %(offset)s)
SELECT page.*, NULL::text AS entity_name
FROM page
ORDER BY "runs" DESC NULLS LAST, "entity_id" COLLATE "C";
-- params: {"end": "2026-05-17T13:27:41+00:00", "limit": 3, "offset": 0, "org": "<org>", "start": "2026-04-17T13:27:41+00:00", "t1": "2026-04-17T14:00:00+00:00", "t2": "2026-04-18T00:00:00+00:00", "t3": "2026-04-20T00:00:00+00:00", "t4": "2026-05-11T00:00:00+00:00", "t5": "2026-05-17T00:00:00+00:00", "t6": "2026-05-17T13:00:00+00:00"}

-- note: No data query ran: every statement below is what the engine would send, built by the same planner and SQL builders. The scope id (workspace, repo) was checked.
-- note: Statements that depend on a breakdown's page show '<page entity ids>' for its entity ids.
