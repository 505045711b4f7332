-- 1. series metrics
--    2026-04-17T13:27:41+00:00 .. 2026-04-17T13:30:00+00:00: events_ai (raw)
--    2026-04-17T13:30:00+00:00 .. 2026-04-17T14:00:00+00:00: ru_ai_org_5m_a0ef96 (5m)
--    2026-04-17T14:00:00+00:00 .. 2026-04-18T00:00:00+00:00: ru_ai_org_1h_01529a (1h)
--    2026-04-18T00:00:00+00:00 .. 2026-05-17T00:00:00+00:00: ru_ai_org_1d_9fd48b (1d)
--    2026-05-17T00:00:00+00:00 .. 2026-05-17T13:00:00+00:00: ru_ai_org_1h_01529a (1h)
--    2026-05-17T13:00:00+00:00 .. 2026-05-17T13:25:00+00:00: ru_ai_org_5m_a0ef96 (5m)
--    2026-05-17T13:25:00+00:00 .. 2026-05-17T13:27:41+00:00: events_ai (raw)
SELECT floor(extract(epoch
FROM "bucket_ts"))::int8 AS "bucket_ts", COALESCE("tokensIn", 0)::int8 AS "tokensIn", COALESCE("tokensOut", 0)::int8 AS "tokensOut", COALESCE("policyTokensIn", 0)::int8 AS "policyTokensIn", COALESCE("policyTokensOut", 0)::int8 AS "policyTokensOut", COALESCE("requests", 0)::int8 AS "requests", "latencyMs__sum", "latencyMs__n"
FROM ((SELECT "slot_ts" "bucket_ts","tokensIn" "tokensIn","tokensOut" "tokensOut","policyTokensIn" "policyTokensIn","policyTokensOut" "policyTokensOut","requests" "requests","latencyMs__sum" "latencyMs__sum","latencyMs__n" "latencyMs__n"
FROM "ru_ai_org_1d_9fd48b"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t3)s AND "slot_ts"<%(t4)s)
UNION ALL (SELECT "bucket_ts",sum(("tokensIn")::int8) "tokensIn",sum(("tokensOut")::int8) "tokensOut",sum(("policyTokensIn")::int8) "policyTokensIn",sum(("policyTokensOut")::int8) "policyTokensOut",SUM("requests") "requests",SUM("latencyMs__sum") "latencyMs__sum",SUM("latencyMs__n") "latencyMs__n"
FROM ((SELECT date_bin(%(step)s, "ts", %(origin)s) "bucket_ts",SUM("tokens_in") "tokensIn",SUM("tokens_out") "tokensOut",SUM("policy_tokens_in") "policyTokensIn",SUM("policy_tokens_out") "policyTokensOut",COUNT(*) "requests",sum(("latency_ms")::numeric) "latencyMs__sum",COUNT("latency_ms") "latencyMs__n"
FROM "events_ai"
WHERE "org_id"=%(org)s AND "ts">=%(start)s AND "ts"<%(t1)s
GROUP BY date_bin(%(step)s, "ts", %(origin)s))
UNION ALL (SELECT date_bin(%(step)s, "slot_ts", %(origin)s) "bucket_ts","tokensIn" "tokensIn","tokensOut" "tokensOut","policyTokensIn" "policyTokensIn","policyTokensOut" "policyTokensOut","requests" "requests","latencyMs__sum" "latencyMs__sum","latencyMs__n" "latencyMs__n"
FROM "ru_ai_org_5m_a0ef96"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t1)s AND "slot_ts"<%(t2)s)
UNION ALL (SELECT date_bin(%(step)s, "slot_ts", %(origin)s) "bucket_ts","tokensIn" "tokensIn","tokensOut" "tokensOut","policyTokensIn" "policyTokensIn","policyTokensOut" "policyTokensOut","requests" "requests","latencyMs__sum" "latencyMs__sum","latencyMs__n" "latencyMs__n"
FROM "ru_ai_org_1h_01529a"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t2)s AND "slot_ts"<%(t3)s)
UNION ALL (SELECT date_bin(%(step)s, "slot_ts", %(origin)s) "bucket_ts","tokensIn" "tokensIn","tokensOut" "tokensOut","policyTokensIn" "policyTokensIn","policyTokensOut" "policyTokensOut","requests" "requests","latencyMs__sum" "latencyMs__sum","latencyMs__n" "latencyMs__n"
FROM "ru_ai_org_1h_01529a"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t4)s AND "slot_ts"<%(t5)s)
UNION ALL (SELECT date_bin(%(step)s, "slot_ts", %(origin)s) "bucket_ts","tokensIn" "tokensIn","tokensOut" "tokensOut","policyTokensIn" "policyTokensIn","policyTokensOut" "policyTokensOut","requests" "requests","latencyMs__sum" "latencyMs__sum","latencyMs__n" "latencyMs__n"
FROM "ru_ai_org_5m_a0ef96"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t5)s AND "slot_ts"<%(t6)s)
UNION ALL (SELECT date_bin(%(step)s, "ts", %(origin)s) "bucket_ts",SUM("tokens_in") "tokensIn",SUM("tokens_out") "tokensOut",SUM("policy_tokens_in") "policyTokensIn",SUM("policy_tokens_out") "policyTokensOut",COUNT(*) "requests",sum(("latency_ms")::numeric) "latencyMs__sum",COUNT("latency_ms") "latencyMs__n"
FROM "events_ai"
WHERE "org_id"=%(org)s AND "ts">=%(t6)s AND "ts"<%(end)s
GROUP BY date_bin(%(step)s, "ts", %(origin)s))) AS partials
GROUP BY "bucket_ts")) AS parts;
-- params: {"end": "2026-05-17T13:27:41+00:00", "org": "<org>", "origin": "2026-04-17T00:00:00+00:00", "start": "2026-04-17T13:27:41+00:00", "step": 86400.0, "t1": "2026-04-17T13:30:00+00:00", "t2": "2026-04-17T14:00:00+00:00", "t3": "2026-04-18T00:00:00+00:00", "t4": "2026-05-17T00:00:00+00:00", "t5": "2026-05-17T13:00:00+00:00", "t6": "2026-05-17T13:25:00+00:00"}

-- 2. percentiles
--    2026-04-17T13:27:41+00:00 .. 2026-04-17T14:00:00+00:00: events_ai (raw)
--    2026-04-17T14:00:00+00:00 .. 2026-04-18T00:00:00+00:00: ru_ai_org_1h_01529a (1h)
--    2026-04-18T00:00:00+00:00 .. 2026-05-17T00:00:00+00:00: ru_ai_org_1d_9fd48b (1d)
--    2026-05-17T00:00:00+00:00 .. 2026-05-17T13:00:00+00:00: ru_ai_org_1h_01529a (1h)
--    2026-05-17T13:00:00+00:00 .. 2026-05-17T13:27:41+00:00: events_ai (raw)
(SELECT %(p2)s::text AS hist_column, "bucket_ts", array_agg(hist_bin
ORDER BY hist_bin) AS hist_bins, array_agg(hist_n
ORDER BY hist_bin) AS hist_counts
FROM (SELECT date_bin(%(step)s, "ts", %(origin)s) "bucket_ts",CASE WHEN ("latency_ms")::float8 <= 0 THEN %(zero_bin)s::int WHEN ("latency_ms")::float8 < 'Infinity'::float8 THEN ceil(ln(("latency_ms")::float8) / ln(%(gamma)s::float8))::int END "hist_bin",COUNT(*) "hist_n"
FROM "events_ai"
WHERE "org_id"=%(org)s AND "ts">=%(s0)s AND "ts"<%(e0)s AND NOT CASE WHEN ("latency_ms")::float8 <= 0 THEN %(zero_bin)s::int WHEN ("latency_ms")::float8 < 'Infinity'::float8 THEN ceil(ln(("latency_ms")::float8) / ln(%(gamma)s::float8))::int END IS NULL
GROUP BY date_bin(%(step)s, "ts", %(origin)s),"hist_bin") AS b
WHERE hist_n > 0
GROUP BY "bucket_ts")
UNION ALL (SELECT %(p4)s::text AS hist_column, s."bucket_ts", s.hist_bins, s.hist_counts
FROM (SELECT date_bin(%(step)s, "slot_ts", %(origin)s) "bucket_ts","hist_bins","hist_counts"
FROM "rh_ai_org_1h_01529a"
WHERE "org_id"=%(org)s AND "slot_ts">=%(s1)s AND "slot_ts"<%(e1)s AND "hist_column"=%(p3)s) AS s)
UNION ALL (SELECT %(p6)s::text AS hist_column, s."bucket_ts", s.hist_bins, s.hist_counts
FROM (SELECT date_bin(%(step)s, "slot_ts", %(origin)s) "bucket_ts","hist_bins","hist_counts"
FROM "rh_ai_org_1d_9fd48b"
WHERE "org_id"=%(org)s AND "slot_ts">=%(s2)s AND "slot_ts"<%(e2)s AND "hist_column"=%(p5)s) AS s)
UNION ALL (SELECT %(p8)s::text AS hist_column, s."bucket_ts", s.hist_bins, s.hist_counts
FROM (SELECT date_bin(%(step)s, "slot_ts", %(origin)s) "bucket_ts","hist_bins","hist_counts"
FROM "rh_ai_org_1h_01529a"
WHERE "org_id"=%(org)s AND "slot_ts">=%(s3)s AND "slot_ts"<%(e3)s AND "hist_column"=%(p7)s) AS s)
UNION ALL (SELECT %(p9)s::text AS hist_column, "bucket_ts", array_agg(hist_bin
ORDER BY hist_bin) AS hist_bins, array_agg(hist_n
ORDER BY hist_bin) AS hist_counts
FROM (SELECT date_bin(%(step)s, "ts", %(origin)s) "bucket_ts",CASE WHEN ("latency_ms")::float8 <= 0 THEN %(zero_bin)s::int WHEN ("latency_ms")::float8 < 'Infinity'::float8 THEN ceil(ln(("latency_ms")::float8) / ln(%(gamma)s::float8))::int END "hist_bin",COUNT(*) "hist_n"
FROM "events_ai"
WHERE "org_id"=%(org)s AND "ts">=%(s4)s AND "ts"<%(e4)s AND NOT CASE WHEN ("latency_ms")::float8 <= 0 THEN %(zero_bin)s::int WHEN ("latency_ms")::float8 < 'Infinity'::float8 THEN ceil(ln(("latency_ms")::float8) / ln(%(gamma)s::float8))::int END IS NULL
GROUP BY date_bin(%(step)s, "ts", %(origin)s),"hist_bin") AS b
WHERE hist_n > 0
GROUP BY "bucket_ts");
-- params: {"e0": "2026-04-17T14:00:00+00:00", "e1": "2026-04-18T00:00:00+00:00", "e2": "2026-05-17T00:00:00+00:00", "e3": "2026-05-17T13:00:00+00:00", "e4": "2026-05-17T13:27:41+00:00", "gamma": 1.1, "org": "<org>", "origin": "2026-04-17T00:00:00+00:00", "p2": "latency_ms", "p3": "latency_ms", "p4": "latency_ms", "p5": "latency_ms", "p6": "latency_ms", "p7": "latency_ms", "p8": "latency_ms", "p9": "latency_ms", "s0": "2026-04-17T13:27:41+00:00", "s1": "2026-04-17T14:00:00+00:00", "s2": "2026-04-18T00:00:00+00:00", "s3": "2026-05-17T00:00:00+00:00", "s4": "2026-05-17T13:00:00+00:00", "step": 86400.0, "zero_bin": -2147483648}

-- 3. distinct counts
--    2026-04-17T13:27:41+00:00 .. 2026-04-17T14:00:00+00:00: events_ai (raw)
--    2026-04-17T14:00:00+00:00 .. 2026-04-18T00:00:00+00:00: ru_ai_org_1h_01529a (1h)
--    2026-04-18T00:00:00+00:00 .. 2026-05-17T00:00:00+00:00: ru_ai_org_1d_9fd48b (1d)
--    2026-05-17T00:00:00+00:00 .. 2026-05-17T13:00:00+00:00: ru_ai_org_1h_01529a (1h)
--    2026-05-17T13:00:00+00:00 .. 2026-05-17T13:27:41+00:00: events_ai (raw)
(WITH u AS MATERIALIZED (SELECT *, count(*) OVER (PARTITION BY "bucket_ts") AS n, coalesce(sum(cardinality(sketch)) OVER (PARTITION BY "bucket_ts"), 0) AS codes
FROM ((SELECT date_bin(%(step)s, "ts", %(origin)s) "bucket_ts",hll_agg(hll_code("conversation_id")) "sketch"
FROM "events_ai"
WHERE "org_id"=%(org)s AND "ts">=%(s0)s AND "ts"<%(e0)s AND NOT "conversation_id" IS NULL
GROUP BY date_bin(%(step)s, "ts", %(origin)s))
UNION ALL (SELECT date_bin(%(step)s, "slot_ts", %(origin)s) "bucket_ts","d__conversation_id" "sketch"
FROM "rd_ai_org_1h_01529a"
WHERE "org_id"=%(org)s AND "slot_ts">=%(s1)s AND "slot_ts"<%(e1)s)
UNION ALL (SELECT date_bin(%(step)s, "slot_ts", %(origin)s) "bucket_ts","d__conversation_id" "sketch"
FROM "rd_ai_org_1d_9fd48b"
WHERE "org_id"=%(org)s AND "slot_ts">=%(s2)s AND "slot_ts"<%(e2)s)
UNION ALL (SELECT date_bin(%(step)s, "slot_ts", %(origin)s) "bucket_ts","d__conversation_id" "sketch"
FROM "rd_ai_org_1h_01529a"
WHERE "org_id"=%(org)s AND "slot_ts">=%(s3)s AND "slot_ts"<%(e3)s)
UNION ALL (SELECT date_bin(%(step)s, "ts", %(origin)s) "bucket_ts",hll_agg(hll_code("conversation_id")) "sketch"
FROM "events_ai"
WHERE "org_id"=%(org)s AND "ts">=%(s4)s AND "ts"<%(e4)s AND NOT "conversation_id" IS NULL
GROUP BY date_bin(%(step)s, "ts", %(origin)s))) AS u0)
SELECT %(p0)s::text AS d_column, "bucket_ts", cardinality(sketch) AS d_nonzero, CASE WHEN cardinality(sketch) > 10356 THEN (SELECT sum(1::float8 / (1::int8 << (c & 63)))
FROM unnest(sketch) AS c) END AS d_harmonic
FROM (SELECT "bucket_ts", sketch
FROM u
WHERE n = 1
UNION ALL
SELECT "bucket_ts", hll_union_agg(sketch)
FROM u
WHERE n > 1 AND codes <= 32768
GROUP BY "bucket_ts") AS r
UNION ALL
SELECT %(p0)s::text AS d_column, "bucket_ts", count(*) AS d_nonzero, sum(power(2::float8, -"rank")) AS d_harmonic
FROM (SELECT "bucket_ts", "reg", max("rank") AS "rank"
FROM (SELECT "bucket_ts", c >> 6 AS "reg", c & 63 AS "rank"
FROM u
CROSS JOIN LATERAL unnest(sketch) AS c
WHERE n > 1 AND codes > 32768) AS u
GROUP BY "bucket_ts", "reg") AS r
GROUP BY "bucket_ts");
-- params: {"e0": "2026-04-17T14:00:00+00:00", "e1": "2026-04-18T00:00:00+00:00", "e2": "2026-05-17T00:00:00+00:00", "e3": "2026-05-17T13:00:00+00:00", "e4": "2026-05-17T13:27:41+00:00", "org": "<org>", "origin": "2026-04-17T00:00:00+00:00", "p0": "conversation_id", "s0": "2026-04-17T13:27:41+00:00", "s1": "2026-04-17T14:00:00+00:00", "s2": "2026-04-18T00:00:00+00:00", "s3": "2026-05-17T00:00:00+00:00", "s4": "2026-05-17T13:00:00+00:00", "step": 86400.0}

-- 4. distinct counts
--    2026-04-17T13:27:41+00:00 .. 2026-04-17T14:00:00+00:00: events_ai (raw)
--    2026-04-17T14:00:00+00:00 .. 2026-04-18T00:00:00+00:00: ru_ai_org_1h_01529a (1h)
--    2026-04-18T00:00:00+00:00 .. 2026-04-20T00:00:00+00:00: ru_ai_org_1d_9fd48b (1d)
--    2026-04-20T00:00:00+00:00 .. 2026-05-11T00:00:00+00:00: ru_ai_org_7d_16653d (7d)
--    2026-05-11T00:00:00+00:00 .. 2026-05-17T00:00:00+00:00: ru_ai_org_1d_9fd48b (1d)
--    2026-05-17T00:00:00+00:00 .. 2026-05-17T13:00:00+00:00: ru_ai_org_1h_01529a (1h)
--    2026-05-17T13:00:00+00:00 .. 2026-05-17T13:27:41+00:00: events_ai (raw)
(WITH u AS MATERIALIZED (SELECT *, count(*) OVER () AS n, coalesce(sum(cardinality(sketch)) OVER (), 0) AS codes
FROM ((SELECT hll_agg(hll_code("conversation_id")) "sketch"
FROM "events_ai"
WHERE "org_id"=%(org)s AND "ts">=%(s0)s AND "ts"<%(e0)s AND NOT "conversation_id" IS NULL)
UNION ALL (SELECT "d__conversation_id" "sketch"
FROM "rd_ai_org_1h_01529a"
WHERE "org_id"=%(org)s AND "slot_ts">=%(s1)s AND "slot_ts"<%(e1)s)
UNION ALL (SELECT "d__conversation_id" "sketch"
FROM "rd_ai_org_1d_9fd48b"
WHERE "org_id"=%(org)s AND "slot_ts">=%(s2)s AND "slot_ts"<%(e2)s)
UNION ALL (SELECT "d__conversation_id" "sketch"
FROM "rd_ai_org_7d_16653d"
WHERE "org_id"=%(org)s AND "slot_ts">=%(s3)s AND "slot_ts"<%(e3)s)
UNION ALL (SELECT "d__conversation_id" "sketch"
FROM "rd_ai_org_1d_9fd48b"
WHERE "org_id"=%(org)s AND "slot_ts">=%(s4)s AND "slot_ts"<%(e4)s)
UNION ALL (SELECT "d__conversation_id" "sketch"
FROM "rd_ai_org_1h_01529a"
WHERE "org_id"=%(org)s AND "slot_ts">=%(s5)s AND "slot_ts"<%(e5)s)
UNION ALL (SELECT hll_agg(hll_code("conversation_id")) "sketch"
FROM "events_ai"
WHERE "org_id"=%(org)s AND "ts">=%(s6)s AND "ts"<%(e6)s AND NOT "conversation_id" IS NULL)) AS u0)
SELECT %(p0)s::text AS d_column, cardinality(sketch) AS d_nonzero, CASE WHEN cardinality(sketch) > 10356 THEN (SELECT sum(1::float8 / (1::int8 << (c & 63)))
FROM unnest(sketch) AS c) END AS d_harmonic
FROM (SELECT sketch
FROM u
WHERE n = 1
UNION ALL
SELECT hll_union_agg(sketch)
FROM u
WHERE n > 1 AND codes <= 32768 HAVING count(*) > 0) AS r
UNION ALL
SELECT %(p0)s::text AS d_column, count(*) AS d_nonzero, sum(power(2::float8, -"rank")) AS d_harmonic
FROM (SELECT "reg", max("rank") AS "rank"
FROM (SELECT c >> 6 AS "reg", c & 63 AS "rank"
FROM u
CROSS JOIN LATERAL unnest(sketch) AS c
WHERE n > 1 AND codes > 32768) AS u
GROUP BY "reg") AS r HAVING count(*) > 0);
-- params: {"e0": "2026-04-17T14:00:00+00:00", "e1": "2026-04-18T00:00:00+00:00", "e2": "2026-04-20T00:00:00+00:00", "e3": "2026-05-11T00:00:00+00:00", "e4": "2026-05-17T00:00:00+00:00", "e5": "2026-05-17T13:00:00+00:00", "e6": "2026-05-17T13:27:41+00:00", "org": "<org>", "p0": "conversation_id", "s0": "2026-04-17T13:27:41+00:00", "s1": "2026-04-17T14:00:00+00:00", "s2": "2026-04-18T00:00:00+00:00", "s3": "2026-04-20T00:00:00+00:00", "s4": "2026-05-11T00:00:00+00:00", "s5": "2026-05-17T00:00:00+00:00", "s6": "2026-05-17T13:00:00+00:00"}

-- note: No data query ran: every statement below is what the engine would send, built by the same planner and SQL builders. The scope id (workspace, repo) was checked.
-- note: Statements that depend on a breakdown's page show '<page entity ids>' for its entity ids.
