-- 1. series metrics
--    2026-05-10T13:27:41+00:00 .. 2026-05-10T13:30:00+00:00: events_ai (raw)
--    2026-05-10T13:30:00+00:00 .. 2026-05-17T13:25:00+00:00: ru_ai_org_5m_a0ef96 (5m)
--    2026-05-17T13:25:00+00:00 .. 2026-05-17T13:27:41+00:00: events_ai (raw)
SELECT floor(extract(epoch
FROM "bucket_ts"))::int8 AS "bucket_ts", COALESCE("tokensIn", 0)::int8 AS "tokensIn", COALESCE("tokensOut", 0)::int8 AS "tokensOut", COALESCE("policyTokensIn", 0)::int8 AS "policyTokensIn", COALESCE("policyTokensOut", 0)::int8 AS "policyTokensOut", COALESCE("requests", 0)::int8 AS "requests", "latencyMs__sum", "latencyMs__n"
FROM ((SELECT date_bin(%(step)s, "ts", %(origin)s) "bucket_ts",SUM("tokens_in") "tokensIn",SUM("tokens_out") "tokensOut",SUM("policy_tokens_in") "policyTokensIn",SUM("policy_tokens_out") "policyTokensOut",COUNT(*) "requests",sum(("latency_ms")::numeric) "latencyMs__sum",COUNT("latency_ms") "latencyMs__n"
FROM "events_ai"
WHERE "org_id"=%(org)s AND "ts">=%(start)s AND "ts"<%(t1)s
GROUP BY date_bin(%(step)s, "ts", %(origin)s))
UNION ALL (SELECT "slot_ts" "bucket_ts","tokensIn" "tokensIn","tokensOut" "tokensOut","policyTokensIn" "policyTokensIn","policyTokensOut" "policyTokensOut","requests" "requests","latencyMs__sum" "latencyMs__sum","latencyMs__n" "latencyMs__n"
FROM "ru_ai_org_5m_a0ef96"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t1)s AND "slot_ts"<%(t2)s)
UNION ALL (SELECT date_bin(%(step)s, "ts", %(origin)s) "bucket_ts",SUM("tokens_in") "tokensIn",SUM("tokens_out") "tokensOut",SUM("policy_tokens_in") "policyTokensIn",SUM("policy_tokens_out") "policyTokensOut",COUNT(*) "requests",sum(("latency_ms")::numeric) "latencyMs__sum",COUNT("latency_ms") "latencyMs__n"
FROM "events_ai"
WHERE "org_id"=%(org)s AND "ts">=%(t2)s AND "ts"<%(end)s
GROUP BY date_bin(%(step)s, "ts", %(origin)s))) AS parts;
-- params: {"end": "2026-05-17T13:27:41+00:00", "org": "<org>", "origin": "2026-05-10T00:00:00+00:00", "start": "2026-05-10T13:27:41+00:00", "step": 300.0, "t1": "2026-05-10T13:30:00+00:00", "t2": "2026-05-17T13:25:00+00:00"}

-- 2. percentiles
--    2026-05-10T13:27:41+00:00 .. 2026-05-17T13:27:41+00:00: events_ai (raw)
(SELECT %(p2)s::text AS hist_column, "bucket_ts", array_agg(hist_bin
ORDER BY hist_bin) AS hist_bins, array_agg(hist_n
ORDER BY hist_bin) AS hist_counts
FROM (SELECT date_bin(%(step)s, "ts", %(origin)s) "bucket_ts",CASE WHEN ("latency_ms")::float8 <= 0 THEN %(zero_bin)s::int WHEN ("latency_ms")::float8 < 'Infinity'::float8 THEN ceil(ln(("latency_ms")::float8) / ln(%(gamma)s::float8))::int END "hist_bin",COUNT(*) "hist_n"
FROM "events_ai"
WHERE "org_id"=%(org)s AND "ts">=%(s0)s AND "ts"<%(e0)s AND NOT CASE WHEN ("latency_ms")::float8 <= 0 THEN %(zero_bin)s::int WHEN ("latency_ms")::float8 < 'Infinity'::float8 THEN ceil(ln(("latency_ms")::float8) / ln(%(gamma)s::float8))::int END IS NULL
GROUP BY date_bin(%(step)s, "ts", %(origin)s),"hist_bin") AS b
WHERE hist_n > 0
GROUP BY "bucket_ts");
-- params: {"e0": "2026-05-17T13:27:41+00:00", "gamma": 1.1, "org": "<org>", "origin": "2026-05-10T00:00:00+00:00", "p2": "latency_ms", "s0": "2026-05-10T13:27:41+00:00", "step": 300.0, "zero_bin": -2147483648}

-- 3. distinct counts
--    2026-05-10T13:27:41+00:00 .. 2026-05-17T13:27:41+00:00: events_ai (raw)
(SELECT %(p0)s::text AS d_column, "bucket_ts", d_exact
FROM (SELECT "bucket_ts", count(*) AS d_exact
FROM (SELECT date_bin(%(step)s, "ts", %(origin)s) "bucket_ts","conversation_id" "d_value"
FROM "events_ai"
WHERE "org_id"=%(org)s AND "ts">=%(s0)s AND "ts"<%(e0)s AND NOT "conversation_id" IS NULL
GROUP BY date_bin(%(step)s, "ts", %(origin)s),"d_value") AS v
GROUP BY "bucket_ts") AS e);
-- params: {"e0": "2026-05-17T13:27:41+00:00", "org": "<org>", "origin": "2026-05-10T00:00:00+00:00", "p0": "conversation_id", "s0": "2026-05-10T13:27:41+00:00", "step": 300.0}

-- note: No data query ran: every statement below is what the engine would send, built by the same planner and SQL builders. The scope id (workspace, repo) was checked.
-- note: Statements that depend on a breakdown's page show '<page entity ids>' for its entity ids.
