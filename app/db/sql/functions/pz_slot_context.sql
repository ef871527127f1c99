-- Everything availability needs in one statement: {business, service, offers, schedule}, or
-- NULL when no live business has this slug. service is NULL when the business has no such
-- live service; offers are the live masters who perform it ([staff, duration, price], in the
-- business's order); schedule is pz_schedule's document for p_staff (else every offer), NULL
-- when nobody is left to ask about.
CREATE OR REPLACE FUNCTION pz_slot_context(p_slug text, p_service_id bigint, p_staff_id bigint,
                                p_from date, p_to date)
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
  v_business json := pz_business_json(p_slug);
  v_business_id bigint;
  v_service json;
  v_offers json;
  v_staff bigint[];
BEGIN
  IF v_business IS NULL THEN
    RETURN NULL;
  END IF;
  v_business_id := (v_business->>'id')::bigint;
  SELECT json_build_object('id', s.id, 'name', s.name, 'duration_min', s.duration_min,
                           'price_tiyn', s.price_tiyn, 'buffer_before_min', s.buffer_before_min,
                           'buffer_after_min', s.buffer_after_min)
    INTO v_service
    FROM services s
   WHERE s.id = p_service_id AND s.business_id = v_business_id AND s.archived_at IS NULL;
  IF v_service IS NULL THEN
    RETURN json_build_object('business', v_business, 'service', NULL, 'offers', '[]'::json,
                             'schedule', NULL);
  END IF;
  SELECT coalesce(json_agg(json_build_array(o.staff_id,
                    coalesce(nullif(o.duration_min, 0), (v_service->>'duration_min')::int),
                    coalesce(nullif(o.price_tiyn, 0), (v_service->>'price_tiyn')::bigint))
                  ORDER BY st.sort_order, st.id), '[]'),
         array_agg(o.staff_id ORDER BY st.sort_order, st.id)
    INTO v_offers, v_staff
    FROM staff_services o
    JOIN staff st ON st.id = o.staff_id AND st.business_id = o.business_id
   WHERE o.business_id = v_business_id AND o.service_id = p_service_id
     AND st.archived_at IS NULL;
  IF p_staff_id IS NOT NULL THEN
    v_staff := CASE WHEN p_staff_id = ANY(v_staff) THEN ARRAY[p_staff_id] END;
  END IF;
  RETURN json_build_object(
    'business', v_business, 'service', v_service, 'offers', v_offers,
    'schedule', CASE WHEN cardinality(v_staff) > 0 THEN
      pz_schedule(v_business_id, v_staff, p_from, p_to, v_business->>'timezone') END);
END $$;

REVOKE ALL ON FUNCTION pz_slot_context(text, bigint, bigint, date, date) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_slot_context(text, bigint, bigint, date, date) TO pozapisi_app;
