-- 1. query page
--    2026-04-17T13:27:41+00:00 .. 2026-04-17T14:00:00+00:00: events_ai (raw)
--    2026-04-17T14:00:00+00:00 .. 2026-04-18T00:00:00+00:00: ru_ai_main_1h_ad51a8 (1h)
--    2026-04-18T00:00:00+00:00 .. 2026-05-17T00:00:00+00:00: ru_ai_main_1d_fd4224 (1d)
--    2026-05-17T00:00:00+00:00 .. 2026-05-17T13:00:00+00:00: ru_ai_main_1h_ad51a8 (1h)
--    2026-05-17T13:00:00+00:00 .. 2026-05-17T13:27:41+00:00: events_ai (raw)
SELECT agg.*, count(*) OVER () AS query_total_rows
FROM (SELECT "bucket_ts","g0","g1",sum(("tokensIn")::int8) "tokensIn",SUM("requests") "requests"
FROM ((SELECT date_bin(%(step)s, "ts", %(origin)s) "bucket_ts","model" "g0","workspace_id" "g1",SUM("tokens_in") "tokensIn",COUNT(*) "requests"
FROM "events_ai"
WHERE "org_id"=%(org)s AND "ts">=%(start)s AND "ts"<%(t1)s AND "model" = ANY(%(filter0)s) AND ("api_key_id" IS NULL OR "api_key_id" <> ALL(%(filter1)s))
GROUP BY date_bin(%(step)s, "ts", %(origin)s),"model","workspace_id")
UNION ALL (SELECT date_bin(%(step)s, "slot_ts", %(origin)s) "bucket_ts","model" "g0","workspace_id" "g1","tokensIn" "tokensIn","requests" "requests"
FROM "ru_ai_main_1h_ad51a8"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t1)s AND "slot_ts"<%(t2)s AND "model" = ANY(%(filter0)s) AND ("api_key_id" IS NULL OR "api_key_id" <> ALL(%(filter1)s)))
UNION ALL (SELECT date_bin(%(step)s, "slot_ts", %(origin)s) "bucket_ts","model" "g0","workspace_id" "g1","tokensIn" "tokensIn","requests" "requests"
FROM "ru_ai_main_1d_fd4224"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t2)s AND "slot_ts"<%(t3)s AND "model" = ANY(%(filter0)s) AND ("api_key_id" IS NULL OR "api_key_id" <> ALL(%(filter1)s)))
UNION ALL (SELECT date_bin(%(step)s, "slot_ts", %(origin)s) "bucket_ts","model" "g0","workspace_id" "g1","tokensIn" "tokensIn","requests" "requests"
FROM "ru_ai_main_1h_ad51a8"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t3)s AND "slot_ts"<%(t4)s AND "model" = ANY(%(filter0)s) AND ("api_key_id" IS NULL OR "api_key_id" <> ALL(%(filter1)s)))
UNION ALL (SELECT date_bin(%(step)s, "ts", %(origin)s) "bucket_ts","model" "g0","workspace_id" "g1",SUM("tokens_in") "tokensIn",COUNT(*) "requests"
FROM "events_ai"
WHERE "org_id"=%(org)s AND "ts">=%(t4)s AND "ts"<%(end)s AND "model" = ANY(%(filter0)s) AND ("api_key_id" IS NULL OR "api_key_id" <> ALL(%(filter1)s))
GROUP BY date_bin(%(step)s, "ts", %(origin)s),"model","workspace_id")) AS partials
GROUP BY "bucket_ts","g0","g1") AS agg
ORDER BY COALESCE("tokensIn", 0) DESC NULLS LAST, "g0" COLLATE "C" ASC NULLS LAST, "g1" COLLATE "C" ASC NULLS LAST, "bucket_ts" ASC
LIMIT %(query_limit)s OFFSET %(query_offset)s;
-- params: {"end": "2026-05-17T13:27:41+00:00", "filter0": ["gpt-4o", "o3"], "filter1": ["k1"], "org": "<org>", "origin": "2026-04-17T00:00:00+00:00", "query_limit": 50, "query_offset": 0, "start": "2026-04-17T13:27:41+00:00", "step": 86400.0, "t1": "2026-04-17T14:00:00+00:00", "t2": "2026-04-18T00:00:00+00:00", "t3": "2026-05-17T00:00:00+00:00", "t4": "2026-05-17T13:00:00+00:00"}

-- note: No data query ran: every statement below is what the engine would send, built by the same planner and SQL builders. The scope id (workspace, repo) was checked.
-- note: Statements that depend on a breakdown's page show '<page entity ids>' for its entity ids.
