-- Rows that name the signed-in person outside what their own account reaches, for the copy of
-- their data (policy 8.1): messages sent to one of their addresses without their account (a
-- sign-in code, an invitation: what, when, how, never the content), open invitations to their
-- e-mail or phone, and the absences recorded for their master profiles, with the reason the
-- business wrote (the reason is about them). These tables are read per business or per
-- account by the app, so this runs as the owner, for the account the transaction acts for only.
CREATE OR REPLACE FUNCTION pz_account_mentions(p_account_id bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  v_phone text;
  v_email text;
  v_contacts text[];
BEGIN
  IF p_account_id IS NULL OR p_account_id IS DISTINCT FROM app_account_id() THEN
    RAISE EXCEPTION 'pz_account_mentions: an account reads only what names it'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  SELECT a.phone, lower(a.email), array_remove(ARRAY[a.phone, lower(a.email)], NULL)
    INTO v_phone, v_email, v_contacts
    FROM accounts a WHERE a.id = p_account_id AND a.deleted_at IS NULL;
  RETURN jsonb_build_object(
    'notifications', (
      SELECT coalesce(jsonb_agg(jsonb_build_object(
               'id', n.id, 'business_id', n.business_id, 'business', biz.name,
               'booking_id', n.booking_id, 'event', n.event, 'channel', n.channel,
               'address', n.address, 'status', n.status, 'scheduled_at', n.scheduled_at,
               'sent_at', n.sent_at, 'delivered_channel', n.delivered_channel,
               'created_at', n.created_at) ORDER BY n.id), '[]')
        FROM notifications n LEFT JOIN businesses biz ON biz.id = n.business_id
       WHERE n.account_id IS NULL AND lower(n.address) = ANY (v_contacts)),
    'invitations', (
      SELECT coalesce(jsonb_agg(jsonb_build_object(
               'business_id', i.business_id, 'business', biz.name, 'role', i.role,
               'email', i.email, 'phone', i.phone, 'yours', 'to you',
               'created_at', i.created_at, 'expires_at', i.expires_at,
               'accepted_at', i.accepted_at, 'revoked_at', i.revoked_at) ORDER BY i.id), '[]')
        FROM invitations i JOIN businesses biz ON biz.id = i.business_id
       WHERE i.accepted_by IS NULL AND i.invited_by IS DISTINCT FROM p_account_id
         AND (lower(i.email) = v_email OR i.phone = v_phone)),
    'time_off', (
      SELECT coalesce(jsonb_agg(jsonb_build_object(
               'business_id', t.business_id, 'business', biz.name, 'master', s.name,
               'start', lower(t.period), 'end', upper(t.period), 'reason', t.reason,
               'created_at', t.created_at) ORDER BY lower(t.period), t.id), '[]')
        FROM time_off t
        JOIN staff s ON s.business_id = t.business_id AND s.id = t.staff_id
        JOIN businesses biz ON biz.id = t.business_id
       WHERE s.account_id = p_account_id));
END $$;

REVOKE ALL ON FUNCTION pz_account_mentions(bigint) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_account_mentions(bigint) TO pozapisi_app;
