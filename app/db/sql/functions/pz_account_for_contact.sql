-- Sign-in with a one-time code, before anyone is signed in: the id of the live account that
-- holds the phone (sms) or e-mail just proven, created on first sign-in; the address is marked
-- verified when it was not. Returns the id and whether it was created, nothing else; the
-- caller then acts for the account. Refused unless the sign-in code p_challenge_id went by
-- that channel and was checked (pz_otp_check) within the last quarter of an hour: the
-- database cannot see the address behind a code's keyed digest, but nothing finds or makes an
-- account by a contact without a code having been right a moment ago.
CREATE OR REPLACE FUNCTION pz_account_for_contact(p_challenge_id bigint, p_channel text,
                                                  p_address text, p_locale text)
RETURNS TABLE (account_id bigint, created boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  v_verified_at timestamptz;
  v_id bigint;
BEGIN
  IF p_channel IS NULL OR p_channel NOT IN ('sms', 'email') OR p_address IS NULL THEN
    RAISE EXCEPTION 'pz_account_for_contact: a phone (sms) or an e-mail address'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT c.consumed_at INTO v_verified_at FROM otp_challenges c
   WHERE c.id = p_challenge_id AND c.purpose = 'sign_in' AND c.channel = p_channel
     AND c.consumed_at > now() - interval '15 minutes';
  IF v_verified_at IS NULL THEN
    RAISE EXCEPTION 'pz_account_for_contact: no sign-in code was just checked'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  FOR attempt IN 1..2 LOOP
    IF p_channel = 'sms' THEN
      SELECT a.id INTO v_id FROM accounts a WHERE a.phone = p_address AND a.deleted_at IS NULL;
    ELSE
      SELECT a.id INTO v_id FROM accounts a
       WHERE lower(a.email) = lower(p_address) AND a.deleted_at IS NULL;
    END IF;
    IF v_id IS NOT NULL THEN
      UPDATE accounts a
         SET phone_verified_at = CASE WHEN p_channel = 'sms'
                                      THEN coalesce(a.phone_verified_at, v_verified_at)
                                      ELSE a.phone_verified_at END,
             email_verified_at = CASE WHEN p_channel = 'email'
                                      THEN coalesce(a.email_verified_at, v_verified_at)
                                      ELSE a.email_verified_at END
       WHERE a.id = v_id;
      RETURN QUERY SELECT v_id, false;
      RETURN;
    END IF;
    EXIT WHEN attempt = 2;
    IF p_channel = 'sms' THEN
      INSERT INTO accounts (phone, phone_verified_at, locale)
      VALUES (p_address, v_verified_at, coalesce(p_locale, 'ru'))
      ON CONFLICT DO NOTHING RETURNING id INTO v_id;
    ELSE
      INSERT INTO accounts (email, email_verified_at, locale)
      VALUES (p_address, v_verified_at, coalesce(p_locale, 'ru'))
      ON CONFLICT DO NOTHING RETURNING id INTO v_id;
    END IF;
    IF v_id IS NOT NULL THEN
      RETURN QUERY SELECT v_id, true;
      RETURN;
    END IF;
    -- a concurrent first sign-in with the same address made it a moment ago: find that one
  END LOOP;
  RAISE EXCEPTION 'pz_account_for_contact: the address is held by no live account and cannot be'
    USING ERRCODE = 'unique_violation';
END $$;

REVOKE ALL ON FUNCTION pz_account_for_contact(bigint, text, text, text) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_account_for_contact(bigint, text, text, text) TO pozapisi_app;
