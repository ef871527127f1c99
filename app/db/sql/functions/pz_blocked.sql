CREATE OR REPLACE FUNCTION pz_blocked(p_business_id bigint, p_staff bigint[], p_from date,
                                      p_to date, p_tz text)
RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE
  w1 timestamptz := (p_from::timestamp - interval '12 hours') AT TIME ZONE p_tz;
  w2 timestamptz := ((p_to + 1)::timestamp + interval '12 hours') AT TIME ZONE p_tz;
BEGIN
  RETURN (SELECT coalesce(json_agg(json_build_array(x.staff_id,
              floor(extract(epoch FROM x.s))::bigint, ceil(extract(epoch FROM x.e))::bigint)),
              '[]')
       FROM (
             SELECT b.staff_id, lower(b.blocked_period) AS s, upper(b.blocked_period) AS e
               FROM bookings b
              WHERE b.business_id = p_business_id AND b.staff_id = ANY(p_staff)
                AND b.status = ANY (pz_live_statuses())
                -- blocked_span keeps a booking within a day of its start: a narrow range of
                -- ix_bookings_staff_starts, however long the business's history
                AND b.starts_at > w1 - interval '1 day'
                AND b.starts_at < w2 + interval '1 day'
                AND b.blocked_period && tstzrange(w1, w2)
             UNION ALL
             SELECT t.staff_id, coalesce(lower(t.period), w1), coalesce(upper(t.period), w2)
               FROM time_off t
              WHERE t.business_id = p_business_id AND t.staff_id = ANY(p_staff)
                AND t.period && tstzrange(w1, w2)) x);
END $$;

REVOKE ALL ON FUNCTION pz_blocked(bigint, bigint[], date, date, text) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_blocked(bigint, bigint[], date, date, text) TO pozapisi_app;
