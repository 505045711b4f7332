-- 1. breakdown page ranked by an estimate
--    2026-02-16T13:27:41+00:00 .. 2026-02-17T00:00:00+00:00: events_private_chat (raw)
--    2026-02-17T00:00:00+00:00 .. 2026-03-15T00:00:00+00:00: ru_private_chat_users_1d_d86402 (1d)
--    2026-03-15T00:00:00+00:00 .. 2026-05-14T00:00:00+00:00: ru_private_chat_users_30d_f5bf75 (30d)
--    2026-05-14T00:00:00+00:00 .. 2026-05-17T00:00:00+00:00: ru_private_chat_users_1d_d86402 (1d)
--    2026-05-17T00:00:00+00:00 .. 2026-05-17T13:27:41+00:00: events_private_chat (raw)
WITH agg AS (WITH s AS MATERIALIZED ((SELECT "user_id" "entity_id",hll_agg(hll_code("conversation_id")) "sketch"
FROM "events_private_chat"
WHERE "org_id"=%(org)s AND "ts">=%(s0)s AND "ts"<%(e0)s AND NOT "user_id" IS NULL
GROUP BY "user_id")
UNION ALL (SELECT "user_id" "entity_id","d__conversation_id" "sketch"
FROM "rd_private_chat_users_1d_d86402"
WHERE "org_id"=%(org)s AND "slot_ts">=%(s1)s AND "slot_ts"<%(e1)s AND NOT "user_id" IS NULL)
UNION ALL (SELECT "user_id" "entity_id","d__conversation_id" "sketch"
FROM "rd_private_chat_users_30d_f5bf75"
WHERE "org_id"=%(org)s AND "slot_ts">=%(s2)s AND "slot_ts"<%(e2)s AND NOT "user_id" IS NULL)
UNION ALL (SELECT "user_id" "entity_id","d__conversation_id" "sketch"
FROM "rd_private_chat_users_1d_d86402"
WHERE "org_id"=%(org)s AND "slot_ts">=%(s3)s AND "slot_ts"<%(e3)s AND NOT "user_id" IS NULL)
UNION ALL (SELECT "user_id" "entity_id",hll_agg(hll_code("conversation_id")) "sketch"
FROM "events_private_chat"
WHERE "org_id"=%(org)s AND "ts">=%(s4)s AND "ts"<%(e4)s AND NOT "user_id" IS NULL
GROUP BY "user_id")), b AS (SELECT "entity_id", coalesce(max(cardinality(sketch)), 0) AS lo, coalesce(sum(cardinality(sketch)), 0) AS hi
FROM s
GROUP BY "entity_id"), ahead AS (SELECT "entity_id"
FROM b
ORDER BY hi DESC, "entity_id"
LIMIT %(offset)s + %(limit)s), ahead_rows AS MATERIALIZED (SELECT s.*
FROM s JOIN ahead USING ("entity_id")), n1 AS (SELECT s."entity_id", count(DISTINCT c >> 6) AS nz
FROM (SELECT *
FROM ahead_rows AS s
ORDER BY s."entity_id") AS s
LEFT JOIN LATERAL unnest(s.sketch) AS c ON TRUE
GROUP BY s."entity_id"), cut AS (SELECT CASE WHEN max(nz) <= 10356 THEN min(nz) END AS v
FROM n1), rest AS (SELECT b."entity_id"
FROM b
CROSS JOIN cut
WHERE NOT EXISTS (SELECT
FROM ahead
WHERE ahead."entity_id" = b."entity_id") AND (cut.v IS NULL OR b.hi > 10356 OR hi >= v)), rest_rows AS MATERIALIZED (SELECT s.*
FROM s JOIN rest USING ("entity_id")), n AS (SELECT *
FROM n1
UNION ALL
SELECT s."entity_id", count(DISTINCT c >> 6) AS nz
FROM (SELECT *
FROM rest_rows AS s
ORDER BY s."entity_id") AS s
LEFT JOIN LATERAL unnest(s.sketch) AS c ON TRUE
GROUP BY s."entity_id"), big AS (SELECT "entity_id", hll_estimate(count(*), sum(power(2::float8, -hll_rank))) AS "past_linear"
FROM (SELECT s."entity_id" AS "entity_id", hll_u.hll_c >> 6 AS hll_reg, max(hll_u.hll_c & 63) AS hll_rank
FROM s JOIN n ON n."entity_id" = s."entity_id" AND n.nz > 10356
CROSS JOIN LATERAL unnest(s.sketch) AS hll_u(hll_c)
GROUP BY 1, 2) AS hll_registers
GROUP BY "entity_id")
SELECT n."entity_id", coalesce(big.past_linear, hll_estimate(n.nz, 0::float8)) AS "conversationsCount", (SELECT count(*)
FROM b) AS total_entities
FROM n
LEFT JOIN big ON big."entity_id" = n."entity_id"), page AS (SELECT agg.*
FROM agg
ORDER BY "conversationsCount" DESC NULLS LAST, "entity_id" COLLATE "C"
LIMIT %(limit)s OFFSET %(offset)s)
SELECT page.*, e.name AS entity_name
FROM page
LEFT JOIN entities e ON e.org_id = %(org)s AND e.kind = %(p0)s AND e.id = page."entity_id"
ORDER BY "conversationsCount" DESC NULLS LAST, "entity_id" COLLATE "C";
-- params: {"e0": "2026-02-17T00:00:00+00:00", "e1": "2026-03-15T00:00:00+00:00", "e2": "2026-05-14T00:00:00+00:00", "e3": "2026-05-17T00:00:00+00:00", "e4": "2026-05-17T13:27:41+00:00", "limit": 50, "offset": 0, "org": "<org>", "p0": "user", "s0": "2026-02-16T13:27:41+00:00", "s1": "2026-02-17T00:00:00+00:00", "s2": "2026-03-15T00:00:00+00:00", "s3": "2026-05-14T00:00:00+00:00", "s4": "2026-05-17T00:00:00+00:00"}

-- 2. breakdown page
--    2026-02-16T13:27:41+00:00 .. 2026-02-17T00:00:00+00:00: events_private_chat (raw)
--    2026-02-17T00:00:00+00:00 .. 2026-03-15T00:00:00+00:00: ru_private_chat_users_1d_d86402 (1d)
--    2026-03-15T00:00:00+00:00 .. 2026-05-14T00:00:00+00:00: ru_private_chat_users_30d_f5bf75 (30d)
--    2026-05-14T00:00:00+00:00 .. 2026-05-17T00:00:00+00:00: ru_private_chat_users_1d_d86402 (1d)
--    2026-05-17T00:00:00+00:00 .. 2026-05-17T13:27:41+00:00: events_private_chat (raw)
WITH agg AS (SELECT "entity_id",sum(("tokensIn")::int8) "tokensIn",sum(("tokensOut")::int8) "tokensOut",SUM("requests") "requests",MAX("lastActiveAt") "lastActiveAt"
FROM ((SELECT "user_id" "entity_id",SUM("tokens_in") "tokensIn",SUM("tokens_out") "tokensOut",COUNT(*) "requests",MAX("ts") "lastActiveAt"
FROM "events_private_chat"
WHERE "org_id"=%(org)s AND "ts">=%(start)s AND "ts"<%(t1)s AND "user_id" = ANY(%(filter0)s) AND NOT "user_id" IS NULL
GROUP BY "user_id")
UNION ALL (SELECT "user_id" "entity_id","tokensIn" "tokensIn","tokensOut" "tokensOut","requests" "requests","lastActiveAt" "lastActiveAt"
FROM "ru_private_chat_users_1d_d86402"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t1)s AND "slot_ts"<%(t2)s AND "user_id" = ANY(%(filter0)s) AND NOT "user_id" IS NULL)
UNION ALL (SELECT "user_id" "entity_id","tokensIn" "tokensIn","tokensOut" "tokensOut","requests" "requests","lastActiveAt" "lastActiveAt"
FROM "ru_private_chat_users_30d_f5bf75"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t2)s AND "slot_ts"<%(t3)s AND "user_id" = ANY(%(filter0)s) AND NOT "user_id" IS NULL)
UNION ALL (SELECT "user_id" "entity_id","tokensIn" "tokensIn","tokensOut" "tokensOut","requests" "requests","lastActiveAt" "lastActiveAt"
FROM "ru_private_chat_users_1d_d86402"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t3)s AND "slot_ts"<%(t4)s AND "user_id" = ANY(%(filter0)s) AND NOT "user_id" IS NULL)
UNION ALL (SELECT "user_id" "entity_id",SUM("tokens_in") "tokensIn",SUM("tokens_out") "tokensOut",COUNT(*) "requests",MAX("ts") "lastActiveAt"
FROM "events_private_chat"
WHERE "org_id"=%(org)s AND "ts">=%(t4)s AND "ts"<%(end)s AND "user_id" = ANY(%(filter0)s) AND NOT "user_id" IS NULL
GROUP BY "user_id")) AS partials
GROUP BY "entity_id"), page AS (SELECT agg.*, count(*) OVER () AS total_entities
FROM agg
ORDER BY "entity_id" COLLATE "C"
LIMIT %(limit)s OFFSET %(offset)s)
SELECT page.*, e.name AS entity_name
FROM page
LEFT JOIN entities e ON e.org_id = %(org)s AND e.kind = %(p0)s AND e.id = page."entity_id"
ORDER BY "entity_id" COLLATE "C";
-- params: {"end": "2026-05-17T13:27:41+00:00", "filter0": ["<page entity ids>"], "limit": 1, "offset": 0, "org": "<org>", "p0": "user", "start": "2026-02-16T13:27:41+00:00", "t1": "2026-02-17T00:00:00+00:00", "t2": "2026-03-15T00:00:00+00:00", "t3": "2026-05-14T00:00:00+00:00", "t4": "2026-05-17T00:00:00+00:00"}

-- note: No data query ran: every statement below is what the engine would send, built by the same planner and SQL builders. The scope id (workspace, repo) was checked.
-- note: Statements that depend on a breakdown's page show '<page entity ids>' for its entity ids.
