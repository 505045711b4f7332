-- Per-key rate limits shared by every replica (http/ratelimit.py, docs/rate-limits.md).
--
-- One row per key that has made a request: the time its token bucket is full again
-- (GCRA's "theoretical arrival time", in epoch seconds of the database's clock, the one
-- clock every replica shares). UNLOGGED: no WAL per request, and a crash empties the
-- table, which only refills every bucket. Not a tenant table (no org_id, no row-level
-- security): the app role cannot read or write it, only call the function below for the
-- key it has authenticated. TRUNCATE is always safe.
CREATE UNLOGGED TABLE rate_limit_buckets (
    key_id   text PRIMARY KEY,
    full_at  double precision NOT NULL,
    admitted boolean NOT NULL  -- whether the last request that reached this row passed
);

-- Take one request from the key's bucket of `requests` per `period_s` seconds (burst
-- `requests`), atomically: one INSERT .. ON CONFLICT DO UPDATE, which locks the key's row,
-- so concurrent requests from any replica queue on it and each sees the last one's
-- result. A refused request leaves the bucket as it was. The clock is read as the call
-- starts, before any wait for the row: a request that queued behind others is judged as
-- of its arrival (off by at most its wait, milliseconds), which refuses no later. Returns whether the request
-- passed and the seconds until the bucket is full again; `at` (epoch seconds) replaces
-- the clock for tests only.
DO $$
BEGIN
    EXECUTE format($f$
        CREATE FUNCTION stats_gateway_take_request(
            wanted text, requests integer, period_s double precision,
            at double precision DEFAULT NULL)
        RETURNS TABLE (passed boolean, full_in_s double precision)
        LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = %I, pg_temp
        AS $body$
        DECLARE
            now_s constant double precision :=
                coalesce(at, extract(epoch FROM clock_timestamp())::double precision);
            step constant double precision := period_s / requests;
            -- a bucket holds `requests` tokens when full_at <= now; a request passes when
            -- taking its token leaves full_at at most one period ahead (1 us of slack
            -- absorbs float rounding of the sums)
            horizon constant double precision := now_s + period_s + 1e-6;
        BEGIN
            RETURN QUERY
            INSERT INTO rate_limit_buckets AS b (key_id, full_at, admitted)
            VALUES (wanted, now_s + step, true)
            ON CONFLICT (key_id) DO UPDATE SET
                admitted = greatest(b.full_at, now_s) + step <= horizon,
                full_at = CASE WHEN greatest(b.full_at, now_s) + step <= horizon
                               THEN greatest(b.full_at, now_s) + step ELSE b.full_at END
            RETURNING b.admitted, b.full_at - now_s;
        END
        $body$
    $f$, current_schema());
END
$$;
REVOKE ALL ON FUNCTION stats_gateway_take_request(text, integer, double precision,
                                                  double precision) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION stats_gateway_take_request(text, integer, double precision,
                                                     double precision) TO stats_gateway_app;
