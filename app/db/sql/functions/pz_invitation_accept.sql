-- Accepting a team invitation: the one way a person joins a business other than creating it.
-- The invitation is found by the SHA-256 of the link's secret and locked (FOR UPDATE), so two
-- clicks racing on one link make one membership: the second finds it used. Refused, with
-- nothing written, when the link is unknown (PZ101), expired, revoked or used (PZ102), when a
-- new account is asked for an address that already has one (PZ103: sign in first), or when
-- the person is already a member (PZ104).
--
-- Who joins: the signed-in person (p_account_id, which must be the account this transaction
-- acts for: app.account_id), or a new account made here — the app may not insert accounts nor
-- set password hashes. The link went to the invited address, so following it proves that
-- address: an e-mail invitation makes an account with that e-mail verified and the password
-- hash the app computed (bcrypt, app.domain.passwords); a phone invitation one with that phone
-- verified and no password (its holder signs in by a code sent to the phone).
--
-- A master's invitation names their staff record: the membership and the record are linked
-- both ways (memberships.staff_id, staff.account_id), which is how pz_booking_recipients finds
-- the master of a booking — unless the record is archived or already another member's.
CREATE OR REPLACE FUNCTION pz_invitation_accept(p_token_hash text, p_account_id bigint,
                                                p_name text, p_password_hash text,
                                                p_locale text)
RETURNS TABLE (account_id bigint, business_id bigint, invitation_id bigint, role text,
               staff_id bigint, created boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
#variable_conflict use_column
DECLARE
  v_inv invitations%ROWTYPE;
  v_account bigint;
  v_created boolean := false;
  v_staff bigint;
BEGIN
  SELECT i.* INTO v_inv FROM invitations i
    JOIN businesses b ON b.id = i.business_id AND b.archived_at IS NULL
   WHERE i.token_hash = p_token_hash
     FOR UPDATE OF i;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pz_invitation_accept: no such invitation' USING ERRCODE = 'PZ101';
  END IF;
  IF v_inv.accepted_at IS NOT NULL OR v_inv.revoked_at IS NOT NULL
     OR v_inv.expires_at <= now() THEN
    RAISE EXCEPTION 'pz_invitation_accept: the invitation was used, revoked or has expired'
      USING ERRCODE = 'PZ102';
  END IF;

  IF p_account_id IS NOT NULL THEN
    IF p_account_id IS DISTINCT FROM app_account_id() THEN
      RAISE EXCEPTION 'pz_invitation_accept: only the signed-in person joins as themselves'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT a.id INTO v_account FROM accounts a WHERE a.id = p_account_id AND a.deleted_at IS NULL;
    IF v_account IS NULL THEN
      RAISE EXCEPTION 'pz_invitation_accept: no such live account'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
  ELSIF v_inv.email IS NOT NULL THEN
    IF p_password_hash IS NULL OR p_password_hash !~ '^\$2[aby]\$' THEN
      RAISE EXCEPTION 'pz_invitation_accept: a new account needs a bcrypt password hash'
        USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO accounts (name, email, email_verified_at, password_hash, locale)
    SELECT nullif(btrim(p_name), ''), v_inv.email, now(), p_password_hash, coalesce(p_locale, 'ru')
     WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE lower(a.email) = lower(v_inv.email))
    ON CONFLICT DO NOTHING RETURNING id INTO v_account;
    v_created := v_account IS NOT NULL;
  ELSE
    INSERT INTO accounts (name, phone, phone_verified_at, locale)
    SELECT nullif(btrim(p_name), ''), v_inv.phone, now(), coalesce(p_locale, 'ru')
     WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.phone = v_inv.phone)
    ON CONFLICT DO NOTHING RETURNING id INTO v_account;
    v_created := v_account IS NOT NULL;
  END IF;
  IF v_account IS NULL THEN
    RAISE EXCEPTION 'pz_invitation_accept: the address already has an account'
      USING ERRCODE = 'PZ103';
  END IF;

  IF EXISTS (SELECT 1 FROM memberships m
              WHERE m.business_id = v_inv.business_id AND m.account_id = v_account) THEN
    RAISE EXCEPTION 'pz_invitation_accept: already a member' USING ERRCODE = 'PZ104';
  END IF;

  IF v_inv.role = 'master' AND v_inv.staff_id IS NOT NULL THEN
    SELECT s.id INTO v_staff FROM staff s
     WHERE s.business_id = v_inv.business_id AND s.id = v_inv.staff_id AND s.archived_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM memberships m
                        WHERE m.business_id = v_inv.business_id AND m.staff_id = s.id)
       FOR UPDATE OF s;
    IF v_staff IS NOT NULL THEN
      UPDATE staff s SET account_id = v_account WHERE s.id = v_staff;
    END IF;
  END IF;

  INSERT INTO memberships (business_id, account_id, role, staff_id)
  VALUES (v_inv.business_id, v_account, v_inv.role, v_staff);
  UPDATE invitations i SET accepted_at = now(), accepted_by = v_account WHERE i.id = v_inv.id;

  RETURN QUERY SELECT v_account, v_inv.business_id, v_inv.id, v_inv.role::text, v_staff,
                      v_created;
END $$;

REVOKE ALL ON FUNCTION pz_invitation_accept(text, bigint, text, text, text) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_invitation_accept(text, bigint, text, text, text) TO pozapisi_app;
