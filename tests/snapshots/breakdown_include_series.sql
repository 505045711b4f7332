-- 1. breakdown page
--    2026-05-10T13:27:41+00:00 .. 2026-05-11T00:00:00+00:00: events_runs (raw)
--    2026-05-11T00:00:00+00:00 .. 2026-05-17T00:00:00+00:00: ru_runs_targets_1d_1ab8a6 (1d)
--    2026-05-17T00:00:00+00:00 .. 2026-05-17T13:27:41+00:00: events_runs (raw)
WITH agg AS (SELECT "entity_id",SUM("runs") "runs",SUM("spend") "spend",SUM("avgDurationMs__sum") "avgDurationMs__sum",SUM("avgDurationMs__n") "avgDurationMs__n",MAX("attr__targetType") "attr__targetType",MAX("attr__targetSlug") "attr__targetSlug",(array_agg("attr___name"
ORDER BY "attr___name__at" DESC NULLS LAST, "attr___name__eid" DESC NULLS LAST))[1] "attr___name",MAX("attr___name__at") "attr___name__at",(array_agg("attr___name__eid"
ORDER BY "attr___name__at" DESC NULLS LAST, "attr___name__eid" DESC NULLS LAST))[1] "attr___name__eid"
FROM ((SELECT concat_ws(':', "target_type", "target_slug") "entity_id",COUNT(*) "runs",SUM("spend") "spend",sum(("duration_ms")::numeric) "avgDurationMs__sum",COUNT("duration_ms") "avgDurationMs__n",MAX("target_type") "attr__targetType",MAX("target_slug") "attr__targetSlug",(array_agg("target_name"
ORDER BY "ts" DESC, "event_id" DESC) FILTER (WHERE "target_name" IS NOT NULL))[1] "attr___name",max("ts") FILTER (WHERE "target_name" IS NOT NULL) "attr___name__at",(array_agg("event_id"
ORDER BY "ts" DESC, "event_id" DESC) FILTER (WHERE "target_name" IS NOT NULL))[1] "attr___name__eid"
FROM "events_runs"
WHERE "org_id"=%(org)s AND "ts">=%(start)s AND "ts"<%(t1)s AND NOT "target_type" IS NULL AND NOT "target_slug" IS NULL
GROUP BY "target_type","target_slug")
UNION ALL (SELECT concat_ws(':', "target_type", "target_slug") "entity_id","runs" "runs","spend" "spend","avgDurationMs__sum" "avgDurationMs__sum","avgDurationMs__n" "avgDurationMs__n","attr__targetType" "attr__targetType","attr__targetSlug" "attr__targetSlug","attr___name" "attr___name","attr___name__at" "attr___name__at","attr___name__eid" "attr___name__eid"
FROM "ru_runs_targets_1d_1ab8a6"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t1)s AND "slot_ts"<%(t2)s AND NOT "target_type" IS NULL AND NOT "target_slug" IS NULL)
UNION ALL (SELECT concat_ws(':', "target_type", "target_slug") "entity_id",COUNT(*) "runs",SUM("spend") "spend",sum(("duration_ms")::numeric) "avgDurationMs__sum",COUNT("duration_ms") "avgDurationMs__n",MAX("target_type") "attr__targetType",MAX("target_slug") "attr__targetSlug",(array_agg("target_name"
ORDER BY "ts" DESC, "event_id" DESC) FILTER (WHERE "target_name" IS NOT NULL))[1] "attr___name",max("ts") FILTER (WHERE "target_name" IS NOT NULL) "attr___name__at",(array_agg("event_id"
ORDER BY "ts" DESC, "event_id" DESC) FILTER (WHERE "target_name" IS NOT NULL))[1] "attr___name__eid"
FROM "events_runs"
WHERE "org_id"=%(org)s AND "ts">=%(t2)s AND "ts"<%(end)s AND NOT "target_type" IS NULL AND NOT "target_slug" IS NULL
GROUP BY "target_type","target_slug")) AS partials
GROUP BY "entity_id"), page AS (SELECT agg.*, count(*) OVER () AS total_entities
FROM agg
ORDER BY "runs" DESC NULLS LAST, "entity_id" COLLATE "C"
LIMIT %(limit)s OFFSET %(offset)s)
SELECT page.*, "attr___name" AS entity_name
FROM page
ORDER BY "runs" DESC NULLS LAST, "entity_id" COLLATE "C";
-- params: {"end": "2026-05-17T13:27:41+00:00", "limit": 50, "offset": 0, "org": "<org>", "start": "2026-05-10T13:27:41+00:00", "t1": "2026-05-11T00:00:00+00:00", "t2": "2026-05-17T00:00:00+00:00"}

-- 2. page series
--    2026-05-10T13:27:41+00:00 .. 2026-05-11T00:00:00+00:00: events_runs (raw)
--    2026-05-11T00:00:00+00:00 .. 2026-05-17T00:00:00+00:00: ru_runs_targets_1d_1ab8a6 (1d)
--    2026-05-17T00:00:00+00:00 .. 2026-05-17T13:27:41+00:00: events_runs (raw)
WITH grid AS (SELECT generate_series(date_bin(%(step)s, %(start)s::timestamptz, %(origin)s), date_bin(%(step)s, (%(end)s::timestamptz - interval '1 microsecond'), %(origin)s), %(step)s) AS bucket_ts), agg AS (SELECT "bucket_ts","entity_id",SUM("runs") "runs",SUM("spend") "spend",SUM("avgDurationMs__sum") "avgDurationMs__sum",SUM("avgDurationMs__n") "avgDurationMs__n"
FROM ((SELECT date_bin(%(step)s, "ts", %(origin)s) "bucket_ts",concat_ws(':', "target_type", "target_slug") "entity_id",COUNT(*) "runs",SUM("spend") "spend",sum(("duration_ms")::numeric) "avgDurationMs__sum",COUNT("duration_ms") "avgDurationMs__n"
FROM "events_runs"
WHERE "org_id"=%(org)s AND "ts">=%(start)s AND "ts"<%(t1)s AND NOT "target_type" IS NULL AND NOT "target_slug" IS NULL AND concat_ws(':', "target_type", "target_slug") = ANY(%(entities)s)
GROUP BY date_bin(%(step)s, "ts", %(origin)s),"target_type","target_slug")
UNION ALL (SELECT date_bin(%(step)s, "slot_ts", %(origin)s) "bucket_ts",concat_ws(':', "target_type", "target_slug") "entity_id","runs" "runs","spend" "spend","avgDurationMs__sum" "avgDurationMs__sum","avgDurationMs__n" "avgDurationMs__n"
FROM "ru_runs_targets_1d_1ab8a6"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t1)s AND "slot_ts"<%(t2)s AND NOT "target_type" IS NULL AND NOT "target_slug" IS NULL AND concat_ws(':', "target_type", "target_slug") = ANY(%(entities)s))
UNION ALL (SELECT date_bin(%(step)s, "ts", %(origin)s) "bucket_ts",concat_ws(':', "target_type", "target_slug") "entity_id",COUNT(*) "runs",SUM("spend") "spend",sum(("duration_ms")::numeric) "avgDurationMs__sum",COUNT("duration_ms") "avgDurationMs__n"
FROM "events_runs"
WHERE "org_id"=%(org)s AND "ts">=%(t2)s AND "ts"<%(end)s AND NOT "target_type" IS NULL AND NOT "target_slug" IS NULL AND concat_ws(':', "target_type", "target_slug") = ANY(%(entities)s)
GROUP BY date_bin(%(step)s, "ts", %(origin)s),"target_type","target_slug")) AS partials
GROUP BY "bucket_ts","entity_id")
SELECT *
FROM unnest(%(entities)s::text[]) AS k(entity_id)
CROSS JOIN grid
LEFT JOIN agg USING (entity_id, bucket_ts)
ORDER BY entity_id, bucket_ts;
-- params: {"end": "2026-05-17T13:27:41+00:00", "entities": ["<page entity ids>"], "org": "<org>", "origin": "2026-05-10T00:00:00+00:00", "start": "2026-05-10T13:27:41+00:00", "step": 86400.0, "t1": "2026-05-11T00:00:00+00:00", "t2": "2026-05-17T00:00:00+00:00"}

-- note: No data query ran: every statement below is what the engine would send, built by the same planner and SQL builders. The scope id (workspace, repo) was checked.
-- note: Statements that depend on a breakdown's page show '<page entity ids>' for its entity ids.
