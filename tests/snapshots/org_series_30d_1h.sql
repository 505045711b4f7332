-- 1. series metrics
--    2026-04-17T13:27:41+00:00 .. 2026-04-17T13:30:00+00:00: events_storage (raw)
--    2026-04-17T13:30:00+00:00 .. 2026-04-17T14:00:00+00:00: ru_storage_org_5m_993a91 (5m)
--    2026-04-17T14:00:00+00:00 .. 2026-05-17T13:00:00+00:00: ru_storage_org_1h_aa0a1f (1h)
--    2026-05-17T13:00:00+00:00 .. 2026-05-17T13:25:00+00:00: ru_storage_org_5m_993a91 (5m)
--    2026-05-17T13:25:00+00:00 .. 2026-05-17T13:27:41+00:00: events_storage (raw)
SELECT floor(extract(epoch
FROM "bucket_ts"))::int8 AS "bucket_ts", COALESCE("uplBytes", 0)::int8 AS "uplBytes", COALESCE("dwlBytes", 0)::int8 AS "dwlBytes", COALESCE("sizeChange", 0)::int8 AS "sizeChange", "latencyMs__sum", "latencyMs__n", COALESCE("requests", 0)::int8 AS "requests"
FROM ((SELECT "slot_ts" "bucket_ts","uplBytes" "uplBytes","dwlBytes" "dwlBytes","sizeChange" "sizeChange","latencyMs__sum" "latencyMs__sum","latencyMs__n" "latencyMs__n","requests" "requests"
FROM "ru_storage_org_1h_aa0a1f"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t2)s AND "slot_ts"<%(t3)s)
UNION ALL (SELECT "bucket_ts",sum(("uplBytes")::int8) "uplBytes",sum(("dwlBytes")::int8) "dwlBytes",sum(("sizeChange")::int8) "sizeChange",SUM("latencyMs__sum") "latencyMs__sum",SUM("latencyMs__n") "latencyMs__n",SUM("requests") "requests"
FROM ((SELECT date_bin(%(step)s, "ts", %(origin)s) "bucket_ts",SUM("upl_bytes") "uplBytes",SUM("dwl_bytes") "dwlBytes",SUM("size_change") "sizeChange",sum(("latency_ms")::numeric) "latencyMs__sum",COUNT("latency_ms") "latencyMs__n",COUNT(*) "requests"
FROM "events_storage"
WHERE "org_id"=%(org)s AND "ts">=%(start)s AND "ts"<%(t1)s
GROUP BY date_bin(%(step)s, "ts", %(origin)s))
UNION ALL (SELECT date_bin(%(step)s, "slot_ts", %(origin)s) "bucket_ts","uplBytes" "uplBytes","dwlBytes" "dwlBytes","sizeChange" "sizeChange","latencyMs__sum" "latencyMs__sum","latencyMs__n" "latencyMs__n","requests" "requests"
FROM "ru_storage_org_5m_993a91"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t1)s AND "slot_ts"<%(t2)s)
UNION ALL (SELECT date_bin(%(step)s, "slot_ts", %(origin)s) "bucket_ts","uplBytes" "uplBytes","dwlBytes" "dwlBytes","sizeChange" "sizeChange","latencyMs__sum" "latencyMs__sum","latencyMs__n" "latencyMs__n","requests" "requests"
FROM "ru_storage_org_5m_993a91"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t3)s AND "slot_ts"<%(t4)s)
UNION ALL (SELECT date_bin(%(step)s, "ts", %(origin)s) "bucket_ts",SUM("upl_bytes") "uplBytes",SUM("dwl_bytes") "dwlBytes",SUM("size_change") "sizeChange",sum(("latency_ms")::numeric) "latencyMs__sum",COUNT("latency_ms") "latencyMs__n",COUNT(*) "requests"
FROM "events_storage"
WHERE "org_id"=%(org)s AND "ts">=%(t4)s AND "ts"<%(end)s
GROUP BY date_bin(%(step)s, "ts", %(origin)s))) AS partials
GROUP BY "bucket_ts")) AS parts;
-- params: {"end": "2026-05-17T13:27:41+00:00", "org": "<org>", "origin": "2026-04-17T00:00:00+00:00", "start": "2026-04-17T13:27:41+00:00", "step": 3600.0, "t1": "2026-04-17T13:30:00+00:00", "t2": "2026-04-17T14:00:00+00:00", "t3": "2026-05-17T13:00:00+00:00", "t4": "2026-05-17T13:25:00+00:00"}

-- 2. percentiles
--    2026-04-17T13:27:41+00:00 .. 2026-04-17T14:00:00+00:00: events_storage (raw)
--    2026-04-17T14:00:00+00:00 .. 2026-05-17T13:00:00+00:00: ru_storage_org_1h_aa0a1f (1h)
--    2026-05-17T13:00:00+00:00 .. 2026-05-17T13:27:41+00:00: events_storage (raw)
(SELECT %(p2)s::text AS hist_column, "bucket_ts", array_agg(hist_bin
ORDER BY hist_bin) AS hist_bins, array_agg(hist_n
ORDER BY hist_bin) AS hist_counts
FROM (SELECT date_bin(%(step)s, "ts", %(origin)s) "bucket_ts",CASE WHEN ("latency_ms")::float8 <= 0 THEN %(zero_bin)s::int WHEN ("latency_ms")::float8 < 'Infinity'::float8 THEN ceil(ln(("latency_ms")::float8) / ln(%(gamma)s::float8))::int END "hist_bin",COUNT(*) "hist_n"
FROM "events_storage"
WHERE "org_id"=%(org)s AND "ts">=%(s0)s AND "ts"<%(e0)s AND NOT CASE WHEN ("latency_ms")::float8 <= 0 THEN %(zero_bin)s::int WHEN ("latency_ms")::float8 < 'Infinity'::float8 THEN ceil(ln(("latency_ms")::float8) / ln(%(gamma)s::float8))::int END IS NULL
GROUP BY date_bin(%(step)s, "ts", %(origin)s),"hist_bin") AS b
WHERE hist_n > 0
GROUP BY "bucket_ts")
UNION ALL (SELECT %(p4)s::text AS hist_column, s."bucket_ts", s.hist_bins, s.hist_counts
FROM (SELECT date_bin(%(step)s, "slot_ts", %(origin)s) "bucket_ts","hist_bins","hist_counts"
FROM "rh_storage_org_1h_aa0a1f"
WHERE "org_id"=%(org)s AND "slot_ts">=%(s1)s AND "slot_ts"<%(e1)s AND "hist_column"=%(p3)s) AS s)
UNION ALL (SELECT %(p5)s::text AS hist_column, "bucket_ts", array_agg(hist_bin
ORDER BY hist_bin) AS hist_bins, array_agg(hist_n
ORDER BY hist_bin) AS hist_counts
FROM (SELECT date_bin(%(step)s, "ts", %(origin)s) "bucket_ts",CASE WHEN ("latency_ms")::float8 <= 0 THEN %(zero_bin)s::int WHEN ("latency_ms")::float8 < 'Infinity'::float8 THEN ceil(ln(("latency_ms")::float8) / ln(%(gamma)s::float8))::int END "hist_bin",COUNT(*) "hist_n"
FROM "events_storage"
WHERE "org_id"=%(org)s AND "ts">=%(s2)s AND "ts"<%(e2)s AND NOT CASE WHEN ("latency_ms")::float8 <= 0 THEN %(zero_bin)s::int WHEN ("latency_ms")::float8 < 'Infinity'::float8 THEN ceil(ln(("latency_ms")::float8) / ln(%(gamma)s::float8))::int END IS NULL
GROUP BY date_bin(%(step)s, "ts", %(origin)s),"hist_bin") AS b
WHERE hist_n > 0
GROUP BY "bucket_ts");
-- params: {"e0": "2026-04-17T14:00:00+00:00", "e1": "2026-05-17T13:00:00+00:00", "e2": "2026-05-17T13:27:41+00:00", "gamma": 1.1, "org": "<org>", "origin": "2026-04-17T00:00:00+00:00", "p2": "latency_ms", "p3": "latency_ms", "p4": "latency_ms", "p5": "latency_ms", "s0": "2026-04-17T13:27:41+00:00", "s1": "2026-04-17T14:00:00+00:00", "s2": "2026-05-17T13:00:00+00:00", "step": 3600.0, "zero_bin": -2147483648}

-- note: No data query ran: every statement below is what the engine would send, built by the same planner and SQL builders. The scope id (workspace, repo) was checked.
-- note: Statements that depend on a breakdown's page show '<page entity ids>' for its entity ids.
