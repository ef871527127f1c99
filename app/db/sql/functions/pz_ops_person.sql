-- An operator's read of one person (policy 6.3), found by e-mail or phone: what a
-- data-subject request needs to be answered, never a password hash, code, token or secret.
-- Only for an active operator; the caller (app.domain.operators.read_person) has the reason
-- for the read in hand and writes the audit entry in the same transaction. NULL when nobody
-- holds the address.
CREATE OR REPLACE FUNCTION pz_ops_person(p_email text, p_phone text)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  v_account accounts%ROWTYPE;
BEGIN
  IF NOT pz_is_operator() THEN
    RAISE EXCEPTION 'pz_ops_person: operators only' USING ERRCODE = 'insufficient_privilege';
  END IF;
  SELECT * INTO v_account FROM accounts a
   WHERE (p_email IS NOT NULL AND lower(a.email) = lower(p_email))
      OR (p_phone IS NOT NULL AND a.phone = p_phone)
   ORDER BY a.deleted_at NULLS FIRST, a.id LIMIT 1;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  RETURN jsonb_build_object(
    'id', v_account.id, 'name', v_account.name, 'phone', v_account.phone,
    'phone_verified_at', v_account.phone_verified_at, 'email', v_account.email,
    'email_verified_at', v_account.email_verified_at, 'telegram_id', v_account.telegram_id,
    'locale', v_account.locale, 'has_password', v_account.password_hash IS NOT NULL,
    'created_at', v_account.created_at, 'deleted_at', v_account.deleted_at,
    'consent', (SELECT jsonb_build_object('action', c.action, 'policy_version', c.policy_version,
                                          'purposes', c.purposes, 'at', c.created_at)
                  FROM consents c WHERE c.account_id = v_account.id ORDER BY c.id DESC LIMIT 1),
    'bookings', (SELECT count(*) FROM bookings b WHERE b.account_id = v_account.id),
    'client_cards', (SELECT count(*) FROM clients c WHERE c.account_id = v_account.id),
    'businesses', coalesce((SELECT jsonb_agg(jsonb_build_object('business', z.name, 'role', m.role)
                                             ORDER BY z.name)
                              FROM memberships m JOIN businesses z ON z.id = m.business_id
                             WHERE m.account_id = v_account.id), '[]'::jsonb));
END $$;

REVOKE ALL ON FUNCTION pz_ops_person(text, text) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_ops_person(text, text) TO pozapisi_app;
