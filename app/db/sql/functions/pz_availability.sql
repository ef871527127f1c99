-- Availability for a caller that may hold the slow-changing part already: when p_known_version
-- is the business's schedule_version, only {version, blocked} (pz_blocked for p_known_staff);
-- else {version, context} with pz_slot_context's whole document. NULL: no such live business.
-- The version is read first, so a document can only be newer than its version, never older:
-- a cache keyed by it refetches at worst once too often.
CREATE OR REPLACE FUNCTION pz_availability(p_slug text, p_service_id bigint, p_staff_id bigint,
                                p_from date, p_to date, p_known_version bigint,
                                p_known_staff bigint[])
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
  v_id bigint;
  v_version bigint;
  v_tz text;
BEGIN
  SELECT b.id, b.schedule_version, b.timezone INTO v_id, v_version, v_tz
    FROM businesses b WHERE b.slug = p_slug AND b.archived_at IS NULL;
  IF v_id IS NULL THEN
    RETURN NULL;
  END IF;
  IF v_version = p_known_version THEN
    PERFORM set_config('app.business_id', v_id::text, true);
    RETURN json_build_object('version', v_version, 'blocked',
      CASE WHEN cardinality(p_known_staff) > 0 THEN
        pz_blocked(v_id, p_known_staff, p_from, p_to, v_tz) END);
  END IF;
  RETURN json_build_object('version', v_version, 'context',
    pz_slot_context(p_slug, p_service_id, p_staff_id, p_from, p_to));
END $$;

REVOKE ALL ON FUNCTION pz_availability(text, bigint, bigint, date, date, bigint, bigint[]) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_availability(text, bigint, bigint, date, date, bigint, bigint[]) TO pozapisi_app;
