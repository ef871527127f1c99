-- What the slot engine needs for some masters over local dates [p_from, p_to], as
-- [hours, overrides, blocked, closed]:
--   hours:     [staff, weekday (0 = Monday), start, end] of the weekdays in range, and of
--              Monday to Friday too when the range holds a Saturday or Sunday: a weekend day
--              a government decree made a working day works with the hours of the weekday
--              whose day off moved (app/domain/business_days.py); times are seconds since
--              midnight (an end of 0 is midnight at the end of the day)
--   overrides: [staff or null (whole business), date, kind, start, end]
--   blocked:   [staff, from, to] in epoch seconds: live bookings with their buffers, time off
--   closed:    the business's own closed dates
CREATE OR REPLACE FUNCTION pz_schedule(p_business_id bigint, p_staff bigint[], p_from date, p_to date,
                            p_tz text)
RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE  -- plpgsql, not sql: PostgreSQL < 18 plans a SQL function's body on every call
  v_weekdays int[] := ARRAY(SELECT (extract(isodow FROM p_from)::int - 1 + i) % 7
                              FROM generate_series(0, least(p_to - p_from, 6)) i);
BEGIN
  IF v_weekdays && ARRAY[5, 6] THEN
    v_weekdays := v_weekdays || ARRAY[0, 1, 2, 3, 4];
  END IF;
  RETURN json_build_array(
    (SELECT coalesce(json_agg(json_build_array(h.staff_id, h.weekday,
              extract(epoch FROM h.start_time)::int, extract(epoch FROM h.end_time)::int)
              ORDER BY h.staff_id, h.weekday, h.start_time), '[]')
       FROM working_hours h
      WHERE h.business_id = p_business_id AND h.staff_id = ANY(p_staff)
        AND h.weekday = ANY(v_weekdays)),
    (SELECT coalesce(json_agg(json_build_array(o.staff_id, o.on_date, o.kind,
              extract(epoch FROM o.start_time)::int, extract(epoch FROM o.end_time)::int)
              ORDER BY o.on_date, o.start_time), '[]')
       FROM schedule_overrides o
      WHERE o.business_id = p_business_id AND o.on_date BETWEEN p_from AND p_to
        AND (o.staff_id IS NULL OR o.staff_id = ANY(p_staff))),
    pz_blocked(p_business_id, p_staff, p_from, p_to, p_tz),
    (SELECT coalesce(json_agg(c.on_date), '[]') FROM holidays c
      WHERE c.business_id = p_business_id AND c.on_date BETWEEN p_from AND p_to));
END $$;

REVOKE ALL ON FUNCTION pz_schedule(bigint, bigint[], date, date, text) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_schedule(bigint, bigint[], date, date, text) TO pozapisi_app;
