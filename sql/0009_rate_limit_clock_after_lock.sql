-- stats_gateway_take_request (0007) read the clock as the call started, before it waited
-- for the key's row: a request that queued behind others was judged as of its arrival and
-- could report one token fewer left than it had (never one more: it refused no later).
-- Now the row is locked first (made if missing, an empty bucket that is full at once),
-- then the clock is read, then the bucket updated: each request, queued or not, sees the
-- bucket exactly as the previous one left it, at the instant it holds the row.
DO $$
BEGIN
    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION stats_gateway_take_request(
            wanted text, requests integer, period_s double precision,
            at double precision DEFAULT NULL)
        RETURNS TABLE (passed boolean, full_in_s double precision)
        LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = %I, pg_temp
        AS $body$
        DECLARE
            step constant double precision := period_s / requests;
            was double precision;
            now_s double precision;
            horizon double precision;
        BEGIN
            INSERT INTO rate_limit_buckets AS b (key_id, full_at, admitted)
            VALUES (wanted, 0, true) ON CONFLICT (key_id) DO NOTHING;
            SELECT b.full_at INTO was FROM rate_limit_buckets b
            WHERE b.key_id = wanted FOR UPDATE;
            now_s := coalesce(at, extract(epoch FROM clock_timestamp())::double precision);
            -- a request passes when taking its token leaves full_at at most one period
            -- ahead (1 us of slack absorbs float rounding of the sums)
            horizon := now_s + period_s + 1e-6;
            RETURN QUERY
            UPDATE rate_limit_buckets AS b SET
                admitted = greatest(was, now_s) + step <= horizon,
                full_at = CASE WHEN greatest(was, now_s) + step <= horizon
                               THEN greatest(was, now_s) + step ELSE was END
            WHERE b.key_id = wanted
            RETURNING b.admitted, b.full_at - now_s;
        END
        $body$
    $f$, current_schema());
END
$$;
