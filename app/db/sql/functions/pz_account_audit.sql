-- The audit entries about the signed-in person, for the copy of their data (policy 8.1): every
-- entry of their own actions, with the IP and user agent they came from, and every entry about
-- them (their account, consents, client cards, bookings, master profiles and absences,
-- memberships, accepted invitations) by anyone. The values an entry recorded (before/after)
-- are given when the entry is about them or about the business itself (its settings, services,
-- holidays, schedule), never when their own action as a business's staff changed another
-- person's data (``values_withheld``); another person's identity, IP and user agent are never
-- given. audit_log and audit_details are read per business chain by the app, so this runs as
-- the owner, for the account the transaction acts for only.
CREATE OR REPLACE FUNCTION pz_account_audit(p_account_id bigint)
RETURNS TABLE (at timestamptz, business_id bigint, business text, action text, entity text,
               entity_id bigint, by_you boolean, actor_kind text, ip inet, user_agent text,
               before jsonb, after jsonb, values_withheld boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
#variable_conflict use_column
DECLARE
  v_cards bigint[];
  v_bookings bigint[];
  v_staff bigint[];
  v_consents bigint[];
  v_time_off bigint[];
  v_memberships bigint[];
  v_invitations bigint[];
BEGIN
  IF p_account_id IS NULL OR p_account_id IS DISTINCT FROM app_account_id() THEN
    RAISE EXCEPTION 'pz_account_audit: an account reads only its own entries'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  SELECT coalesce(array_agg(c.id), '{}') INTO v_cards FROM clients c
   WHERE c.account_id = p_account_id;
  SELECT coalesce(array_agg(b.id), '{}') INTO v_bookings FROM bookings b
   WHERE b.account_id = p_account_id OR b.client_id = ANY (v_cards);
  SELECT coalesce(array_agg(s.id), '{}') INTO v_staff FROM staff s
   WHERE s.account_id = p_account_id;
  SELECT coalesce(array_agg(c.id), '{}') INTO v_consents FROM consents c
   WHERE c.account_id = p_account_id;
  SELECT coalesce(array_agg(t.id), '{}') INTO v_time_off FROM time_off t
   WHERE t.staff_id = ANY (v_staff);
  SELECT coalesce(array_agg(m.id), '{}') INTO v_memberships FROM memberships m
   WHERE m.account_id = p_account_id;
  SELECT coalesce(array_agg(i.id), '{}') INTO v_invitations FROM invitations i
   WHERE i.accepted_by = p_account_id;
  RETURN QUERY
    WITH entries AS (
      -- each condition is one index's (ix_audit_log_actor_account_id, ix_audit_log_entity)
      SELECT l.*, l.actor_account_id IS NOT DISTINCT FROM p_account_id AS mine,
             (l.entity = 'account' AND l.entity_id = p_account_id)
             OR (l.entity = 'client' AND l.entity_id = ANY (v_cards))
             OR (l.entity = 'booking' AND l.entity_id = ANY (v_bookings))
             OR (l.entity = 'staff' AND l.entity_id = ANY (v_staff))
             OR (l.entity = 'consent' AND l.entity_id = ANY (v_consents))
             OR (l.entity = 'time_off' AND l.entity_id = ANY (v_time_off))
             OR (l.entity = 'membership' AND l.entity_id = ANY (v_memberships))
             OR (l.entity = 'invitation' AND l.entity_id = ANY (v_invitations)) AS about,
             l.entity IN ('business', 'service', 'holiday', 'schedule_override') AS impersonal
        FROM audit_log l
       WHERE l.actor_account_id = p_account_id
          OR (l.entity = 'account' AND l.entity_id = p_account_id)
          OR (l.entity = 'client' AND l.entity_id = ANY (v_cards))
          OR (l.entity = 'booking' AND l.entity_id = ANY (v_bookings))
          OR (l.entity = 'staff' AND l.entity_id = ANY (v_staff))
          OR (l.entity = 'consent' AND l.entity_id = ANY (v_consents))
          OR (l.entity = 'time_off' AND l.entity_id = ANY (v_time_off))
          OR (l.entity = 'membership' AND l.entity_id = ANY (v_memberships))
          OR (l.entity = 'invitation' AND l.entity_id = ANY (v_invitations))
    )
    SELECT e.at, e.business_id, biz.name::text, e.action::text, e.entity::text, e.entity_id,
           e.mine, e.actor_kind::text,
           CASE WHEN e.mine THEN d.ip END, CASE WHEN e.mine THEN d.user_agent::text END,
           CASE WHEN e.about OR e.impersonal THEN d.before END,
           CASE WHEN e.about OR e.impersonal THEN d.after END,
           NOT (e.about OR e.impersonal) AND (d.before IS NOT NULL OR d.after IS NOT NULL)
      FROM entries e
      LEFT JOIN audit_details d ON d.audit_id = e.id
      LEFT JOIN businesses biz ON biz.id = e.business_id
     ORDER BY e.at, e.id;
END $$;

REVOKE ALL ON FUNCTION pz_account_audit(bigint) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_account_audit(bigint) TO pozapisi_app;
