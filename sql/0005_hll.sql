-- HyperLogLog distinct counts in plain SQL (no extension). stats_gateway/core/hll.py has
-- the design, the measured errors and timings; its Python twins (estimate, code) must stay
-- in step with these functions.
--
-- A sketch is an int[] of codes register << 6 | rank, one per non-empty register (its
-- largest rank), sorted; NULL and '{}' are the empty sketch. Precision 14: 16384 registers.
-- Every function returning a sketch returns '{}' rather than NULL for the empty set.

-- The code of a 64-bit hash: register = its low 14 bits; rank = 1 + the number of trailing
-- zeros of the other 50 bits (bit 50 set first caps it at 51). `>>` is arithmetic, but
-- the sign bits it copies land on bits 50 and up, where they cannot change the count.
-- v & -v keeps v's lowest set bit, 2^k (k <= 50, exact in float8), and ln(2^k) / ln(2)
-- rounds to k exactly.
CREATE FUNCTION hll_code_of_hash(h bigint) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ((h & 16383)::int << 6)
     | (1 + round(ln((((h >> 14) | 1125899906842624)
                      & -((h >> 14) | 1125899906842624))::float8) / ln(2::float8))::int);

-- The code of one value; NULL for NULL. COLLATE "C": the bytes are hashed, whatever the
-- column's collation (a nondeterministic one would hash a sort key instead).
-- hashtextextended is what hash partitioning uses, so it is stable across versions.
-- Not STRICT, so that it inlines (the hash is then computed in the caller's expression).
CREATE FUNCTION hll_code(value text) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN hll_code_of_hash(hashtextextended(value COLLATE "C", 0));

-- Any array of codes -> a sketch: the largest code of each register (same register, so
-- the largest rank), sorted; NULL codes are ignored. Sorting all the codes measured faster
-- for 10,000 of them, hashing them into registers first for 100,000; the switch is at
-- 16384, and PL/pgSQL plans only the branch it takes. The function's own plan_cache_mode
-- keeps these fixed queries from being planned again on every call where a connection
-- forces custom plans (stats_gateway/db/connect.py): PL/pgSQL's queries go through the
-- plan cache, and on PostgreSQL 18 so do SQL functions'.
CREATE FUNCTION hll_normalize(codes int[]) RETURNS int[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    IF codes IS NULL OR cardinality(codes) <= 16384 THEN
        RETURN ARRAY(SELECT DISTINCT ON (c >> 6) c FROM unnest(codes) AS c
                     WHERE c IS NOT NULL ORDER BY c >> 6, c DESC);
    END IF;
    RETURN ARRAY(SELECT max(c) FROM unnest(codes) AS c
                 WHERE c IS NOT NULL GROUP BY c >> 6 ORDER BY 1);
END
$$;

-- The sketch of the codes of a group: array_append extends its state in place (an
-- expanded array in the aggregate's memory), so building is linear; one hll_normalize at
-- the end.
CREATE AGGREGATE hll_agg(int) (
    SFUNC = array_append, STYPE = int[], FINALFUNC = hll_normalize,
    COMBINEFUNC = array_cat, PARALLEL = SAFE);

-- Two sketches merged; NULL counts as empty.
CREATE FUNCTION hll_union(a int[], b int[]) RETURNS int[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN hll_normalize(a || b);

-- hll_union_agg's state: the sketches so far, concatenated, compacted to one code per
-- register (unsorted) whenever it would pass 32768 codes. A state that only grew by
-- array_cat would be copied whole on every row, quadratic in the codes; this one stays
-- under 128 kB, so a row costs a few copies of at most that.
CREATE FUNCTION hll_compact(codes int[]) RETURNS int[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT SET plan_cache_mode = force_generic_plan
RETURN (SELECT coalesce(array_agg(c), '{}')
        FROM (SELECT max(c) AS c FROM unnest(codes) AS c
              WHERE c IS NOT NULL GROUP BY c >> 6) AS registers);

CREATE FUNCTION hll_union_step(state int[], sketch int[]) RETURNS int[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE STRICT AS $$
BEGIN
    IF cardinality(state) + cardinality(sketch) <= 32768 THEN
        RETURN state || sketch;
    END IF;
    RETURN hll_compact(state || sketch);
END
$$;

CREATE AGGREGATE hll_union_agg(int[]) (
    SFUNC = hll_union_step, STYPE = int[], FINALFUNC = hll_normalize,
    COMBINEFUNC = hll_union_step, PARALLEL = SAFE);

-- Ertl's sigma(x) = x + sum_k x^(2^k) 2^(k-1), for x = empty registers / m < 1/e (where
-- hll_estimate uses it): the terms past x^64 add less than 1e-53. x >= 1/16384 keeps x^64
-- above 2^-896, so PostgreSQL's underflow check never fires (x = 0 gives 0).
CREATE FUNCTION hll_sigma(x float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN x + power(x, 2) + 2 * power(x, 4) + 4 * power(x, 8) + 8 * power(x, 16)
         + 16 * power(x, 32) + 32 * power(x, 64);

-- The cardinality from the number of non-empty registers and the sum of 2^-rank over
-- them. Linear counting, m ln(m / empty), while it answers at most m (nonzero <= 10356);
-- above, Ertl's improved raw estimator alpha_inf m^2 / (harmonic + m sigma(empty / m)),
-- which has no bias to correct where the classic estimator switches from linear counting
-- (see hll.py); 193635250.58498377 = m^2 / (2 ln 2). Rounded half to even (rint), like
-- Python's round.
CREATE FUNCTION hll_estimate(nonzero bigint, harmonic float8) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN coalesce(nonzero, 0) <= 0 THEN 0
    WHEN nonzero <= 10356 THEN round(16384 * ln(16384 / (16384 - nonzero)::float8))::bigint
    ELSE round(193635250.58498377::float8
               / (harmonic
                  + 16384 * hll_sigma(greatest(16384 - nonzero, 0) / 16384::float8)))::bigint
END;

-- The estimate of one sketch (NULL: 0). Tolerates an unnormalised array of codes.
CREATE FUNCTION hll_cardinality(sketch int[]) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET plan_cache_mode = force_generic_plan
RETURN (SELECT hll_estimate(count(*), sum(power(2::float8, -rank)))
        FROM (SELECT max(c & 63) AS rank FROM unnest(sketch) AS c
              WHERE c IS NOT NULL GROUP BY c >> 6) AS registers);
