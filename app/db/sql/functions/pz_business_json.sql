-- A live business by its public slug, with the rules booking needs; sets the tenant.
CREATE OR REPLACE FUNCTION pz_business_json(p_slug text) RETURNS json LANGUAGE plpgsql AS $$
DECLARE
  v_business json;
  v_id bigint;
BEGIN
  SELECT b.id, json_build_object(
           'id', b.id, 'timezone', b.timezone, 'currency', b.currency,
           'default_locale', b.default_locale, 'auto_confirm', b.auto_confirm,
           'pending_ttl_min', b.pending_ttl_min,
           'max_active_bookings_per_client', b.max_active_bookings_per_client,
           'slot_step_min', b.slot_step_min, 'min_notice_min', b.min_notice_min,
           'horizon_days', b.horizon_days, 'observe_public_holidays', b.observe_public_holidays,
           'reminder_offsets_min', b.reminder_offsets_min)
    INTO v_id, v_business
    FROM businesses b WHERE b.slug = p_slug AND b.archived_at IS NULL;
  IF v_id IS NOT NULL THEN
    PERFORM set_config('app.business_id', v_id::text, true);
  END IF;
  RETURN v_business;
END $$;

REVOKE ALL ON FUNCTION pz_business_json(text) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_business_json(text) TO pozapisi_app;
