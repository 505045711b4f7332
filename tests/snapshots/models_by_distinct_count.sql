-- 1. breakdown page ranked by an estimate
--    2026-02-16T13:27:41+00:00 .. 2026-02-17T00:00:00+00:00: events_ai (raw)
--    2026-02-17T00:00:00+00:00 .. 2026-05-17T00:00:00+00:00: ru_ai_main_1d_fd4224 (1d)
--    2026-05-17T00:00:00+00:00 .. 2026-05-17T13:27:41+00:00: events_ai (raw)
WITH agg AS (WITH s AS ((SELECT "model" "entity_id",hll_agg(hll_code("conversation_id")) "sketch"
FROM "events_ai"
WHERE "org_id"=%(org)s AND "ts">=%(s0)s AND "ts"<%(e0)s AND NOT "model" IS NULL
GROUP BY "model")
UNION ALL (SELECT "model" "entity_id","d__conversation_id" "sketch"
FROM "rd_ai_main_1d_fd4224"
WHERE "org_id"=%(org)s AND "slot_ts">=%(s1)s AND "slot_ts"<%(e1)s AND NOT "model" IS NULL)
UNION ALL (SELECT "model" "entity_id",hll_agg(hll_code("conversation_id")) "sketch"
FROM "events_ai"
WHERE "org_id"=%(org)s AND "ts">=%(s2)s AND "ts"<%(e2)s AND NOT "model" IS NULL
GROUP BY "model"))
SELECT "entity_id", "estimate" AS "activeConversations"
FROM (SELECT "entity_id", hll_estimate(count(hll_reg), sum(power(2::float8, -hll_rank))) AS "estimate"
FROM (SELECT s."entity_id" AS "entity_id", hll_u.hll_c >> 6 AS hll_reg, max(hll_u.hll_c & 63) AS hll_rank
FROM s
LEFT JOIN LATERAL unnest(s.sketch) AS hll_u(hll_c) ON TRUE
GROUP BY 1, 2) AS hll_registers
GROUP BY "entity_id") AS e), page AS (SELECT agg.*, count(*) OVER () AS total_entities
FROM agg
ORDER BY "activeConversations" DESC NULLS LAST, "entity_id" COLLATE "C"
LIMIT %(limit)s OFFSET %(offset)s)
SELECT page.*, NULL::text AS entity_name
FROM page
ORDER BY "activeConversations" DESC NULLS LAST, "entity_id" COLLATE "C";
-- params: {"e0": "2026-02-17T00:00:00+00:00", "e1": "2026-05-17T00:00:00+00:00", "e2": "2026-05-17T13:27:41+00:00", "limit": 50, "offset": 0, "org": "<org>", "s0": "2026-02-16T13:27:41+00:00", "s1": "2026-02-17T00:00:00+00:00", "s2": "2026-05-17T00:00:00+00:00"}

-- 2. percentiles
--    2026-02-16T13:27:41+00:00 .. 2026-02-17T00:00:00+00:00: events_ai (raw)
--    2026-02-17T00:00:00+00:00 .. 2026-05-17T00:00:00+00:00: ru_ai_main_1d_fd4224 (1d)
--    2026-05-17T00:00:00+00:00 .. 2026-05-17T13:27:41+00:00: events_ai (raw)
(SELECT %(p3)s::text AS hist_column, "entity_id", array_agg(hist_bin
ORDER BY hist_bin) AS hist_bins, array_agg(hist_n
ORDER BY hist_bin) AS hist_counts
FROM (SELECT "entity_id","hist_bin",sum("hist_n")::int8 "hist_n"
FROM ((SELECT "model" "entity_id",CASE WHEN ("latency_ms")::float8 <= 0 THEN %(zero_bin)s::int WHEN ("latency_ms")::float8 < 'Infinity'::float8 THEN ceil(ln(("latency_ms")::float8) / ln(%(gamma)s::float8))::int END "hist_bin",COUNT(*) "hist_n"
FROM "events_ai"
WHERE "org_id"=%(org)s AND "ts">=%(s0)s AND "ts"<%(e0)s AND NOT "model" IS NULL AND NOT CASE WHEN ("latency_ms")::float8 <= 0 THEN %(zero_bin)s::int WHEN ("latency_ms")::float8 < 'Infinity'::float8 THEN ceil(ln(("latency_ms")::float8) / ln(%(gamma)s::float8))::int END IS NULL
GROUP BY "model","hist_bin")
UNION ALL (SELECT s."entity_id", u.hist_bin, u.hist_n
FROM (SELECT "model" "entity_id","hist_bins","hist_counts"
FROM "rh_ai_main_1d_fd4224"
WHERE "org_id"=%(org)s AND "slot_ts">=%(s1)s AND "slot_ts"<%(e1)s AND NOT "model" IS NULL AND "hist_column"=%(p2)s) AS s
CROSS JOIN LATERAL unnest(s.hist_bins, s.hist_counts) AS u(hist_bin, hist_n))
UNION ALL (SELECT "model" "entity_id",CASE WHEN ("latency_ms")::float8 <= 0 THEN %(zero_bin)s::int WHEN ("latency_ms")::float8 < 'Infinity'::float8 THEN ceil(ln(("latency_ms")::float8) / ln(%(gamma)s::float8))::int END "hist_bin",COUNT(*) "hist_n"
FROM "events_ai"
WHERE "org_id"=%(org)s AND "ts">=%(s2)s AND "ts"<%(e2)s AND NOT "model" IS NULL AND NOT CASE WHEN ("latency_ms")::float8 <= 0 THEN %(zero_bin)s::int WHEN ("latency_ms")::float8 < 'Infinity'::float8 THEN ceil(ln(("latency_ms")::float8) / ln(%(gamma)s::float8))::int END IS NULL
GROUP BY "model","hist_bin")) AS partials
GROUP BY "entity_id","hist_bin") AS b
WHERE hist_n > 0
GROUP BY "entity_id");
-- params: {"e0": "2026-02-17T00:00:00+00:00", "e1": "2026-05-17T00:00:00+00:00", "e2": "2026-05-17T13:27:41+00:00", "gamma": 1.1, "org": "<org>", "p2": "latency_ms", "p3": "latency_ms", "s0": "2026-02-16T13:27:41+00:00", "s1": "2026-02-17T00:00:00+00:00", "s2": "2026-05-17T00:00:00+00:00", "zero_bin": -2147483648}

-- 3. breakdown page
--    2026-02-16T13:27:41+00:00 .. 2026-02-16T14:00:00+00:00: events_ai (raw)
--    2026-02-16T14:00:00+00:00 .. 2026-02-17T00:00:00+00:00: ru_ai_main_1h_ad51a8 (1h)
--    2026-02-17T00:00:00+00:00 .. 2026-02-23T00:00:00+00:00: ru_ai_main_1d_fd4224 (1d)
--    2026-02-23T00:00:00+00:00 .. 2026-05-11T00:00:00+00:00: ru_ai_main_7d_2a1406 (7d)
--    2026-05-11T00:00:00+00:00 .. 2026-05-17T00:00:00+00:00: ru_ai_main_1d_fd4224 (1d)
--    2026-05-17T00:00:00+00:00 .. 2026-05-17T13:00:00+00:00: ru_ai_main_1h_ad51a8 (1h)
--    2026-05-17T13:00:00+00:00 .. 2026-05-17T13:27:41+00:00: events_ai (raw)
WITH agg AS (SELECT "entity_id",sum(("tokensIn")::int8) "tokensIn",sum(("tokensOut")::int8) "tokensOut",sum(("policyTokensIn")::int8) "policyTokensIn",sum(("policyTokensOut")::int8) "policyTokensOut",SUM("requests") "requests",SUM("latencyMs__sum") "latencyMs__sum",SUM("latencyMs__n") "latencyMs__n"
FROM ((SELECT "model" "entity_id",SUM("tokens_in") "tokensIn",SUM("tokens_out") "tokensOut",SUM("policy_tokens_in") "policyTokensIn",SUM("policy_tokens_out") "policyTokensOut",COUNT(*) "requests",sum(("latency_ms")::numeric) "latencyMs__sum",COUNT("latency_ms") "latencyMs__n"
FROM "events_ai"
WHERE "org_id"=%(org)s AND "ts">=%(start)s AND "ts"<%(t1)s AND "model" = ANY(%(filter0)s) AND NOT "model" IS NULL
GROUP BY "model")
UNION ALL (SELECT "model" "entity_id","tokensIn" "tokensIn","tokensOut" "tokensOut","policyTokensIn" "policyTokensIn","policyTokensOut" "policyTokensOut","requests" "requests","latencyMs__sum" "latencyMs__sum","latencyMs__n" "latencyMs__n"
FROM "ru_ai_main_1h_ad51a8"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t1)s AND "slot_ts"<%(t2)s AND "model" = ANY(%(filter0)s) AND NOT "model" IS NULL)
UNION ALL (SELECT "model" "entity_id","tokensIn" "tokensIn","tokensOut" "tokensOut","policyTokensIn" "policyTokensIn","policyTokensOut" "policyTokensOut","requests" "requests","latencyMs__sum" "latencyMs__sum","latencyMs__n" "latencyMs__n"
FROM "ru_ai_main_1d_fd4224"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t2)s AND "slot_ts"<%(t3)s AND "model" = ANY(%(filter0)s) AND NOT "model" IS NULL)
UNION ALL (SELECT "model" "entity_id","tokensIn" "tokensIn","tokensOut" "tokensOut","policyTokensIn" "policyTokensIn","policyTokensOut" "policyTokensOut","requests" "requests","latencyMs__sum" "latencyMs__sum","latencyMs__n" "latencyMs__n"
FROM "ru_ai_main_7d_2a1406"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t3)s AND "slot_ts"<%(t4)s AND "model" = ANY(%(filter0)s) AND NOT "model" IS NULL)
UNION ALL (SELECT "model" "entity_id","tokensIn" "tokensIn","tokensOut" "tokensOut","policyTokensIn" "policyTokensIn","policyTokensOut" "policyTokensOut","requests" "requests","latencyMs__sum" "latencyMs__sum","latencyMs__n" "latencyMs__n"
FROM "ru_ai_main_1d_fd4224"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t4)s AND "slot_ts"<%(t5)s AND "model" = ANY(%(filter0)s) AND NOT "model" IS NULL)
UNION ALL (SELECT "model" "entity_id","tokensIn" "tokensIn","tokensOut" "tokensOut","policyTokensIn" "policyTokensIn","policyTokensOut" "policyTokensOut","requests" "requests","latencyMs__sum" "latencyMs__sum","latencyMs__n" "latencyMs__n"
FROM "ru_ai_main_1h_ad51a8"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t5)s AND "slot_ts"<%(t6)s AND "model" = ANY(%(filter0)s) AND NOT "model" IS NULL)
UNION ALL (SELECT "model" "entity_id",SUM("tokens_in") "tokensIn",SUM("tokens_out") "tokensOut",SUM("policy_tokens_in") "policyTokensIn",SUM("policy_tokens_out") "policyTokensOut",COUNT(*) "requests",sum(("latency_ms")::numeric) "latencyMs__sum",COUNT("latency_ms") "latencyMs__n"
FROM "events_ai"
WHERE "org_id"=%(org)s AND "ts">=%(t6)s AND "ts"<%(end)s AND "model" = ANY(%(filter0)s) AND NOT "model" IS NULL
GROUP BY "model")) AS partials
GROUP BY "entity_id"), page AS (SELECT agg.*, count(*) OVER () AS total_entities
FROM agg
ORDER BY "entity_id" COLLATE "C"
LIMIT %(limit)s OFFSET %(offset)s)
SELECT page.*, NULL::text AS entity_name
FROM page
ORDER BY "entity_id" COLLATE "C";
-- params: {"end": "2026-05-17T13:27:41+00:00", "filter0": ["<page entity ids>"], "limit": 1, "offset": 0, "org": "<org>", "start": "2026-02-16T13:27:41+00:00", "t1": "2026-02-16T14:00:00+00:00", "t2": "2026-02-17T00:00:00+00:00", "t3": "2026-02-23T00:00:00+00:00", "t4": "2026-05-11T00:00:00+00:00", "t5": "2026-05-17T00:00:00+00:00", "t6": "2026-05-17T13:00:00+00:00"}

-- note: No data query ran: every statement below is what the engine would send, built by the same planner and SQL builders. The scope id (workspace, repo) was checked.
-- note: Statements that depend on a breakdown's page show '<page entity ids>' for its entity ids.
