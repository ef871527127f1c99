-- One request against a rate limit (app.security.limits): 0 when it may proceed (and is counted),
-- else the whole seconds to wait (Retry-After). A sliding window counter: the current window's
-- hits plus the previous window's, weighted by how much of it the sliding window still covers.
-- The counting is one INSERT … ON CONFLICT DO UPDATE … WHERE under the row's lock, so every app
-- process on every server sees one count and concurrent requests cannot overshoot it. A refused
-- request is not counted: whoever waits the time given gets in then, however often they knocked.
-- p_key is already a keyed digest (never an address, contact or id in clear). p_at is the
-- tests' clock; the app passes NULL and the database's clock decides, the same for all servers.
-- Runs as the owner (SECURITY DEFINER): the app role has no right on rate_limit_counters, so it
-- can neither read who was counted nor reset a count; it may only call this.
CREATE OR REPLACE FUNCTION pz_rate_limit_hit(p_bucket text, p_key text, p_limit integer,
                                             p_window_s integer, p_at timestamptz DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  v_now double precision := extract(epoch FROM coalesce(p_at, clock_timestamp()));
  v_start double precision := floor(v_now / p_window_s) * p_window_s;
  v_window timestamptz := to_timestamp(v_start);
  -- the share of the previous window still inside the sliding one: 1 at this window's start
  v_overlap double precision := 1 - (v_now - v_start) / p_window_s;
  v_previous integer;
  v_hits integer;
  v_wait double precision;
BEGIN
  IF p_limit IS NULL OR p_limit < 1 OR p_window_s IS NULL OR p_window_s < 1
     OR p_bucket IS NULL OR length(p_bucket) > 40 OR p_key IS NULL OR length(p_key) > 64 THEN
    RAISE EXCEPTION 'pz_rate_limit_hit: bad arguments' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT hits INTO v_previous FROM rate_limit_counters
   WHERE bucket = p_bucket AND key = p_key
     AND window_start = v_window - make_interval(secs => p_window_s);
  v_previous := coalesce(v_previous, 0);
  INSERT INTO rate_limit_counters AS c (bucket, key, window_start, hits, expires_at)
  SELECT p_bucket, p_key, v_window, 1, v_window + make_interval(secs => 2 * p_window_s)
   WHERE 1 + v_previous * v_overlap <= p_limit
  ON CONFLICT (bucket, key, window_start) DO UPDATE SET hits = c.hits + 1
   WHERE c.hits + 1 + v_previous * v_overlap <= p_limit
  RETURNING c.hits INTO v_hits;
  IF v_hits IS NOT NULL THEN
    RETURN 0;
  END IF;
  SELECT hits INTO v_hits FROM rate_limit_counters
   WHERE bucket = p_bucket AND key = p_key AND window_start = v_window;
  v_hits := coalesce(v_hits, 0);
  IF v_hits < p_limit AND v_previous > 0 THEN
    -- room in this window: wait until the previous window's share has shrunk enough
    v_wait := p_window_s * (v_overlap - (p_limit - 1 - v_hits)::double precision / v_previous);
  ELSE
    -- this window is full: wait for the next one, and into it until this one's share is small
    v_wait := p_window_s * v_overlap
              + p_window_s * (1 - (p_limit - 1)::double precision / v_hits);
  END IF;
  RETURN greatest(1, ceil(v_wait))::integer;
END $$;

REVOKE ALL ON FUNCTION pz_rate_limit_hit(text, text, integer, integer, timestamptz) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_rate_limit_hit(text, text, integer, integer, timestamptz) TO pozapisi_app;
