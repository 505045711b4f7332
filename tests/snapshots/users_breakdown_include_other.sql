-- 1. breakdown page
--    2026-02-16T13:27:41+00:00 .. 2026-02-17T00:00:00+00:00: events_private_chat (raw)
--    2026-02-17T00:00:00+00:00 .. 2026-03-15T00:00:00+00:00: ru_private_chat_users_1d_d86402 (1d)
--    2026-03-15T00:00:00+00:00 .. 2026-05-14T00:00:00+00:00: ru_private_chat_users_30d_f5bf75 (30d)
--    2026-05-14T00:00:00+00:00 .. 2026-05-17T00:00:00+00:00: ru_private_chat_users_1d_d86402 (1d)
--    2026-05-17T00:00:00+00:00 .. 2026-05-17T13:27:41+00:00: events_private_chat (raw)
WITH agg AS (SELECT "entity_id",SUM("requests") "requests"
FROM ((SELECT "user_id" "entity_id",COUNT(*) "requests"
FROM "events_private_chat"
WHERE "org_id"=%(org)s AND "ts">=%(start)s AND "ts"<%(t1)s AND NOT "user_id" IS NULL
GROUP BY "user_id")
UNION ALL (SELECT "user_id" "entity_id","requests" "requests"
FROM "ru_private_chat_users_1d_d86402"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t1)s AND "slot_ts"<%(t2)s AND NOT "user_id" IS NULL)
UNION ALL (SELECT "user_id" "entity_id","requests" "requests"
FROM "ru_private_chat_users_30d_f5bf75"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t2)s AND "slot_ts"<%(t3)s AND NOT "user_id" IS NULL)
UNION ALL (SELECT "user_id" "entity_id","requests" "requests"
FROM "ru_private_chat_users_1d_d86402"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t3)s AND "slot_ts"<%(t4)s AND NOT "user_id" IS NULL)
UNION ALL (SELECT "user_id" "entity_id",COUNT(*) "requests"
FROM "events_private_chat"
WHERE "org_id"=%(org)s AND "ts">=%(t4)s AND "ts"<%(end)s AND NOT "user_id" IS NULL
GROUP BY "user_id")) AS partials
GROUP BY "entity_id"), page AS (SELECT agg.*, count(*) OVER () AS total_entities
FROM agg
ORDER BY "requests" DESC NULLS LAST, "entity_id" COLLATE "C"
LIMIT %(limit)s OFFSET %(offset)s)
SELECT page.*, e.name AS entity_name
FROM page
LEFT JOIN entities e ON e.org_id = %(org)s AND e.kind = %(p0)s AND e.id = page."entity_id"
ORDER BY "requests" DESC NULLS LAST, "entity_id" COLLATE "C";
-- params: {"end": "2026-05-17T13:27:41+00:00", "limit": 50, "offset": 0, "org": "<org>", "p0": "user", "start": "2026-02-16T13:27:41+00:00", "t1": "2026-02-17T00:00:00+00:00", "t2": "2026-03-15T00:00:00+00:00", "t3": "2026-05-14T00:00:00+00:00", "t4": "2026-05-17T00:00:00+00:00"}

-- 2. distinct counts
--    2026-02-16T13:27:41+00:00 .. 2026-02-17T00:00:00+00:00: events_private_chat (raw)
--    2026-02-17T00:00:00+00:00 .. 2026-03-15T00:00:00+00:00: ru_private_chat_users_1d_d86402 (1d)
--    2026-03-15T00:00:00+00:00 .. 2026-05-14T00:00:00+00:00: ru_private_chat_users_30d_f5bf75 (30d)
--    2026-05-14T00:00:00+00:00 .. 2026-05-17T00:00:00+00:00: ru_private_chat_users_1d_d86402 (1d)
--    2026-05-17T00:00:00+00:00 .. 2026-05-17T13:27:41+00:00: events_private_chat (raw)
(WITH u AS MATERIALIZED (SELECT *, count(*) OVER (PARTITION BY "entity_id") AS n, coalesce(sum(cardinality(sketch)) OVER (PARTITION BY "entity_id"), 0) AS codes
FROM ((SELECT "user_id" "entity_id",hll_agg(hll_code("conversation_id")) "sketch"
FROM "events_private_chat"
WHERE "org_id"=%(org)s AND "ts">=%(s0)s AND "ts"<%(e0)s AND NOT "user_id" IS NULL AND "user_id" = ANY(%(entities)s) AND NOT "conversation_id" IS NULL
GROUP BY "user_id")
UNION ALL (SELECT "user_id" "entity_id","d__conversation_id" "sketch"
FROM "rd_private_chat_users_1d_d86402"
WHERE "org_id"=%(org)s AND "slot_ts">=%(s1)s AND "slot_ts"<%(e1)s AND NOT "user_id" IS NULL AND "user_id" = ANY(%(entities)s))
UNION ALL (SELECT "user_id" "entity_id","d__conversation_id" "sketch"
FROM "rd_private_chat_users_30d_f5bf75"
WHERE "org_id"=%(org)s AND "slot_ts">=%(s2)s AND "slot_ts"<%(e2)s AND NOT "user_id" IS NULL AND "user_id" = ANY(%(entities)s))
UNION ALL (SELECT "user_id" "entity_id","d__conversation_id" "sketch"
FROM "rd_private_chat_users_1d_d86402"
WHERE "org_id"=%(org)s AND "slot_ts">=%(s3)s AND "slot_ts"<%(e3)s AND NOT "user_id" IS NULL AND "user_id" = ANY(%(entities)s))
UNION ALL (SELECT "user_id" "entity_id",hll_agg(hll_code("conversation_id")) "sketch"
FROM "events_private_chat"
WHERE "org_id"=%(org)s AND "ts">=%(s4)s AND "ts"<%(e4)s AND NOT "user_id" IS NULL AND "user_id" = ANY(%(entities)s) AND NOT "conversation_id" IS NULL
GROUP BY "user_id")) AS u0)
SELECT %(p0)s::text AS d_column, "entity_id", cardinality(sketch) AS d_nonzero, CASE WHEN cardinality(sketch) > 10356 THEN (SELECT sum(1::float8 / (1::int8 << (c & 63)))
FROM unnest(sketch) AS c) END AS d_harmonic
FROM (SELECT "entity_id", sketch
FROM u
WHERE n = 1
UNION ALL
SELECT "entity_id", hll_union_agg(sketch)
FROM u
WHERE n > 1 AND codes <= 32768
GROUP BY "entity_id") AS r
UNION ALL
SELECT %(p0)s::text AS d_column, "entity_id", count(*) AS d_nonzero, sum(power(2::float8, -"rank")) AS d_harmonic
FROM (SELECT "entity_id", "reg", max("rank") AS "rank"
FROM (SELECT "entity_id", c >> 6 AS "reg", c & 63 AS "rank"
FROM u
CROSS JOIN LATERAL unnest(sketch) AS c
WHERE n > 1 AND codes > 32768) AS u
GROUP BY "entity_id", "reg") AS r
GROUP BY "entity_id");
-- params: {"e0": "2026-02-17T00:00:00+00:00", "e1": "2026-03-15T00:00:00+00:00", "e2": "2026-05-14T00:00:00+00:00", "e3": "2026-05-17T00:00:00+00:00", "e4": "2026-05-17T13:27:41+00:00", "entities": ["<page entity ids>"], "org": "<org>", "p0": "conversation_id", "s0": "2026-02-16T13:27:41+00:00", "s1": "2026-02-17T00:00:00+00:00", "s2": "2026-03-15T00:00:00+00:00", "s3": "2026-05-14T00:00:00+00:00", "s4": "2026-05-17T00:00:00+00:00"}

-- 3. breakdown page
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
ORDER BY "requests" DESC NULLS LAST, "entity_id" COLLATE "C"
LIMIT %(limit)s OFFSET %(offset)s)
SELECT page.*, e.name AS entity_name
FROM page
LEFT JOIN entities e ON e.org_id = %(org)s AND e.kind = %(p0)s AND e.id = page."entity_id"
ORDER BY "requests" DESC NULLS LAST, "entity_id" COLLATE "C";
-- params: {"end": "2026-05-17T13:27:41+00:00", "filter0": ["<page entity ids>"], "limit": 1, "offset": 0, "org": "<org>", "p0": "user", "start": "2026-02-16T13:27:41+00:00", "t1": "2026-02-17T00:00:00+00:00", "t2": "2026-03-15T00:00:00+00:00", "t3": "2026-05-14T00:00:00+00:00", "t4": "2026-05-17T00:00:00+00:00"}

-- 4. totals
--    2026-02-16T13:27:41+00:00 .. 2026-02-17T00:00:00+00:00: events_private_chat (raw)
--    2026-02-17T00:00:00+00:00 .. 2026-03-15T00:00:00+00:00: ru_private_chat_users_1d_d86402 (1d)
--    2026-03-15T00:00:00+00:00 .. 2026-05-14T00:00:00+00:00: ru_private_chat_users_30d_f5bf75 (30d)
--    2026-05-14T00:00:00+00:00 .. 2026-05-17T00:00:00+00:00: ru_private_chat_users_1d_d86402 (1d)
--    2026-05-17T00:00:00+00:00 .. 2026-05-17T13:27:41+00:00: events_private_chat (raw)
SELECT sum(("tokensIn")::int8) "tokensIn",sum(("tokensOut")::int8) "tokensOut",SUM("requests") "requests",MAX("lastActiveAt") "lastActiveAt"
FROM ((SELECT SUM("tokens_in") "tokensIn",SUM("tokens_out") "tokensOut",COUNT(*) "requests",MAX("ts") "lastActiveAt"
FROM "events_private_chat"
WHERE "org_id"=%(org)s AND "ts">=%(start)s AND "ts"<%(t1)s AND ("user_id" IS NOT NULL) AND ("user_id" IS NULL OR "user_id" <> ALL(%(filter1)s)))
UNION ALL (SELECT "tokensIn" "tokensIn","tokensOut" "tokensOut","requests" "requests","lastActiveAt" "lastActiveAt"
FROM "ru_private_chat_users_1d_d86402"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t1)s AND "slot_ts"<%(t2)s AND ("user_id" IS NOT NULL) AND ("user_id" IS NULL OR "user_id" <> ALL(%(filter1)s)))
UNION ALL (SELECT "tokensIn" "tokensIn","tokensOut" "tokensOut","requests" "requests","lastActiveAt" "lastActiveAt"
FROM "ru_private_chat_users_30d_f5bf75"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t2)s AND "slot_ts"<%(t3)s AND ("user_id" IS NOT NULL) AND ("user_id" IS NULL OR "user_id" <> ALL(%(filter1)s)))
UNION ALL (SELECT "tokensIn" "tokensIn","tokensOut" "tokensOut","requests" "requests","lastActiveAt" "lastActiveAt"
FROM "ru_private_chat_users_1d_d86402"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t3)s AND "slot_ts"<%(t4)s AND ("user_id" IS NOT NULL) AND ("user_id" IS NULL OR "user_id" <> ALL(%(filter1)s)))
UNION ALL (SELECT SUM("tokens_in") "tokensIn",SUM("tokens_out") "tokensOut",COUNT(*) "requests",MAX("ts") "lastActiveAt"
FROM "events_private_chat"
WHERE "org_id"=%(org)s AND "ts">=%(t4)s AND "ts"<%(end)s AND ("user_id" IS NOT NULL) AND ("user_id" IS NULL OR "user_id" <> ALL(%(filter1)s)))) AS partials;
-- params: {"end": "2026-05-17T13:27:41+00:00", "filter1": [], "org": "<org>", "start": "2026-02-16T13:27:41+00:00", "t1": "2026-02-17T00:00:00+00:00", "t2": "2026-03-15T00:00:00+00:00", "t3": "2026-05-14T00:00:00+00:00", "t4": "2026-05-17T00:00:00+00:00"}

-- 5. distinct counts
--    2026-02-16T13:27:41+00:00 .. 2026-02-17T00:00:00+00:00: events_private_chat (raw)
--    2026-02-17T00:00:00+00:00 .. 2026-03-15T00:00:00+00:00: ru_private_chat_users_1d_d86402 (1d)
--    2026-03-15T00:00:00+00:00 .. 2026-05-14T00:00:00+00:00: ru_private_chat_users_30d_f5bf75 (30d)
--    2026-05-14T00:00:00+00:00 .. 2026-05-17T00:00:00+00:00: ru_private_chat_users_1d_d86402 (1d)
--    2026-05-17T00:00:00+00:00 .. 2026-05-17T13:27:41+00:00: events_private_chat (raw)
(SELECT %(p0)s::text AS d_column, count(*) AS d_nonzero, sum(power(2::float8, -"rank")) AS d_harmonic
FROM (SELECT "reg", max("rank") AS "rank"
FROM ((SELECT (hll_code("conversation_id") >> 6) "reg",max(hll_code("conversation_id") & 63) "rank"
FROM "events_private_chat"
WHERE "org_id"=%(org)s AND "ts">=%(s0)s AND "ts"<%(e0)s AND ("user_id" IS NOT NULL) AND ("user_id" IS NULL OR "user_id" <> ALL(%(filter1)s)) AND NOT "conversation_id" IS NULL
GROUP BY "reg")
UNION ALL (SELECT ("c"."code" >> 6) "reg",("c"."code" & 63) "rank"
FROM "rd_private_chat_users_1d_d86402"
CROSS JOIN LATERAL unnest("rd_private_chat_users_1d_d86402"."d__conversation_id") AS "c"("code")
WHERE "org_id"=%(org)s AND "slot_ts">=%(s1)s AND "slot_ts"<%(e1)s AND ("user_id" IS NOT NULL) AND ("user_id" IS NULL OR "user_id" <> ALL(%(filter1)s)))
UNION ALL (SELECT ("c"."code" >> 6) "reg",("c"."code" & 63) "rank"
FROM "rd_private_chat_users_30d_f5bf75"
CROSS JOIN LATERAL unnest("rd_private_chat_users_30d_f5bf75"."d__conversation_id") AS "c"("code")
WHERE "org_id"=%(org)s AND "slot_ts">=%(s2)s AND "slot_ts"<%(e2)s AND ("user_id" IS NOT NULL) AND ("user_id" IS NULL OR "user_id" <> ALL(%(filter1)s)))
UNION ALL (SELECT ("c"."code" >> 6) "reg",("c"."code" & 63) "rank"
FROM "rd_private_chat_users_1d_d86402"
CROSS JOIN LATERAL unnest("rd_private_chat_users_1d_d86402"."d__conversation_id") AS "c"("code")
WHERE "org_id"=%(org)s AND "slot_ts">=%(s3)s AND "slot_ts"<%(e3)s AND ("user_id" IS NOT NULL) AND ("user_id" IS NULL OR "user_id" <> ALL(%(filter1)s)))
UNION ALL (SELECT (hll_code("conversation_id") >> 6) "reg",max(hll_code("conversation_id") & 63) "rank"
FROM "events_private_chat"
WHERE "org_id"=%(org)s AND "ts">=%(s4)s AND "ts"<%(e4)s AND ("user_id" IS NOT NULL) AND ("user_id" IS NULL OR "user_id" <> ALL(%(filter1)s)) AND NOT "conversation_id" IS NULL
GROUP BY "reg")) AS u
GROUP BY "reg") AS r);
-- params: {"e0": "2026-02-17T00:00:00+00:00", "e1": "2026-03-15T00:00:00+00:00", "e2": "2026-05-14T00:00:00+00:00", "e3": "2026-05-17T00:00:00+00:00", "e4": "2026-05-17T13:27:41+00:00", "filter1": [], "org": "<org>", "p0": "conversation_id", "s0": "2026-02-16T13:27:41+00:00", "s1": "2026-02-17T00:00:00+00:00", "s2": "2026-03-15T00:00:00+00:00", "s3": "2026-05-14T00:00:00+00:00", "s4": "2026-05-17T00:00:00+00:00"}

-- 6. totals
--    2026-02-16T13:27:41+00:00 .. 2026-02-17T00:00:00+00:00: events_private_chat (raw)
--    2026-02-17T00:00:00+00:00 .. 2026-03-15T00:00:00+00:00: ru_private_chat_users_1d_d86402 (1d)
--    2026-03-15T00:00:00+00:00 .. 2026-05-14T00:00:00+00:00: ru_private_chat_users_30d_f5bf75 (30d)
--    2026-05-14T00:00:00+00:00 .. 2026-05-17T00:00:00+00:00: ru_private_chat_users_1d_d86402 (1d)
--    2026-05-17T00:00:00+00:00 .. 2026-05-17T13:27:41+00:00: events_private_chat (raw)
SELECT sum(("tokensIn")::int8) "tokensIn",sum(("tokensOut")::int8) "tokensOut",SUM("requests") "requests",MAX("lastActiveAt") "lastActiveAt"
FROM ((SELECT SUM("tokens_in") "tokensIn",SUM("tokens_out") "tokensOut",COUNT(*) "requests",MAX("ts") "lastActiveAt"
FROM "events_private_chat"
WHERE "org_id"=%(org)s AND "ts">=%(start)s AND "ts"<%(t1)s AND ("user_id" IS NULL))
UNION ALL (SELECT "tokensIn" "tokensIn","tokensOut" "tokensOut","requests" "requests","lastActiveAt" "lastActiveAt"
FROM "ru_private_chat_users_1d_d86402"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t1)s AND "slot_ts"<%(t2)s AND ("user_id" IS NULL))
UNION ALL (SELECT "tokensIn" "tokensIn","tokensOut" "tokensOut","requests" "requests","lastActiveAt" "lastActiveAt"
FROM "ru_private_chat_users_30d_f5bf75"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t2)s AND "slot_ts"<%(t3)s AND ("user_id" IS NULL))
UNION ALL (SELECT "tokensIn" "tokensIn","tokensOut" "tokensOut","requests" "requests","lastActiveAt" "lastActiveAt"
FROM "ru_private_chat_users_1d_d86402"
WHERE "org_id"=%(org)s AND "slot_ts">=%(t3)s AND "slot_ts"<%(t4)s AND ("user_id" IS NULL))
UNION ALL (SELECT SUM("tokens_in") "tokensIn",SUM("tokens_out") "tokensOut",COUNT(*) "requests",MAX("ts") "lastActiveAt"
FROM "events_private_chat"
WHERE "org_id"=%(org)s AND "ts">=%(t4)s AND "ts"<%(end)s AND ("user_id" IS NULL))) AS partials;
-- params: {"end": "2026-05-17T13:27:41+00:00", "org": "<org>", "start": "2026-02-16T13:27:41+00:00", "t1": "2026-02-17T00:00:00+00:00", "t2": "2026-03-15T00:00:00+00:00", "t3": "2026-05-14T00:00:00+00:00", "t4": "2026-05-17T00:00:00+00:00"}

-- 7. distinct counts
--    2026-02-16T13:27:41+00:00 .. 2026-02-17T00:00:00+00:00: events_private_chat (raw)
--    2026-02-17T00:00:00+00:00 .. 2026-03-15T00:00:00+00:00: ru_private_chat_users_1d_d86402 (1d)
--    2026-03-15T00:00:00+00:00 .. 2026-05-14T00:00:00+00:00: ru_private_chat_users_30d_f5bf75 (30d)
--    2026-05-14T00:00:00+00:00 .. 2026-05-17T00:00:00+00:00: ru_private_chat_users_1d_d86402 (1d)
--    2026-05-17T00:00:00+00:00 .. 2026-05-17T13:27:41+00:00: events_private_chat (raw)
(SELECT %(p0)s::text AS d_column, count(*) AS d_nonzero, sum(power(2::float8, -"rank")) AS d_harmonic
FROM (SELECT "reg", max("rank") AS "rank"
FROM ((SELECT (hll_code("conversation_id") >> 6) "reg",max(hll_code("conversation_id") & 63) "rank"
FROM "events_private_chat"
WHERE "org_id"=%(org)s AND "ts">=%(s0)s AND "ts"<%(e0)s AND ("user_id" IS NULL) AND NOT "conversation_id" IS NULL
GROUP BY "reg")
UNION ALL (SELECT ("c"."code" >> 6) "reg",("c"."code" & 63) "rank"
FROM "rd_private_chat_users_1d_d86402"
CROSS JOIN LATERAL unnest("rd_private_chat_users_1d_d86402"."d__conversation_id") AS "c"("code")
WHERE "org_id"=%(org)s AND "slot_ts">=%(s1)s AND "slot_ts"<%(e1)s AND ("user_id" IS NULL))
UNION ALL (SELECT ("c"."code" >> 6) "reg",("c"."code" & 63) "rank"
FROM "rd_private_chat_users_30d_f5bf75"
CROSS JOIN LATERAL unnest("rd_private_chat_users_30d_f5bf75"."d__conversation_id") AS "c"("code")
WHERE "org_id"=%(org)s AND "slot_ts">=%(s2)s AND "slot_ts"<%(e2)s AND ("user_id" IS NULL))
UNION ALL (SELECT ("c"."code" >> 6) "reg",("c"."code" & 63) "rank"
FROM "rd_private_chat_users_1d_d86402"
CROSS JOIN LATERAL unnest("rd_private_chat_users_1d_d86402"."d__conversation_id") AS "c"("code")
WHERE "org_id"=%(org)s AND "slot_ts">=%(s3)s AND "slot_ts"<%(e3)s AND ("user_id" IS NULL))
UNION ALL (SELECT (hll_code("conversation_id") >> 6) "reg",max(hll_code("conversation_id") & 63) "rank"
FROM "events_private_chat"
WHERE "org_id"=%(org)s AND "ts">=%(s4)s AND "ts"<%(e4)s AND ("user_id" IS NULL) AND NOT "conversation_id" IS NULL
GROUP BY "reg")) AS u
GROUP BY "reg") AS r);
-- params: {"e0": "2026-02-17T00:00:00+00:00", "e1": "2026-03-15T00:00:00+00:00", "e2": "2026-05-14T00:00:00+00:00", "e3": "2026-05-17T00:00:00+00:00", "e4": "2026-05-17T13:27:41+00:00", "org": "<org>", "p0": "conversation_id", "s0": "2026-02-16T13:27:41+00:00", "s1": "2026-02-17T00:00:00+00:00", "s2": "2026-03-15T00:00:00+00:00", "s3": "2026-05-14T00:00:00+00:00", "s4": "2026-05-17T00:00:00+00:00"}

-- note: No data query ran: every statement below is what the engine would send, built by the same planner and SQL builders. The scope id (workspace, repo) was checked.
-- note: Statements that depend on a breakdown's page show '<page entity ids>' for its entity ids.
