-- A new one-time code (app.domain.otp.request_code has counted and hashed it); its id. A
-- sign-in code belongs to nobody, whoever asks; a code to change the phone (sms) or e-mail
-- belongs to the account the transaction acts for, and is refused with nobody signed in. A
-- code lives at most 10 minutes (policy: 5–10), from the database's clock or a later one.
CREATE OR REPLACE FUNCTION pz_otp_issue(p_channel text, p_destination_hash text,
                                        p_code_hash text, p_purpose text, p_ip inet,
                                        p_now timestamptz, p_expires_at timestamptz)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  v_account bigint;
  v_id bigint;
BEGIN
  IF p_purpose = 'sign_in' AND p_channel IN ('sms', 'email') THEN
    v_account := NULL;
  ELSIF (p_purpose, p_channel) IN (('change_phone', 'sms'), ('change_email', 'email')) THEN
    v_account := app_account_id();
    IF v_account IS NULL THEN
      RAISE EXCEPTION 'pz_otp_issue: a % code is for a signed-in account', p_purpose
        USING ERRCODE = 'insufficient_privilege';
    END IF;
  ELSE
    RAISE EXCEPTION 'pz_otp_issue: no % code goes by %', p_purpose, p_channel
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF p_expires_at IS NULL OR p_now IS NULL OR p_expires_at <= p_now
     OR p_expires_at > greatest(p_now, now()) + interval '10 minutes' THEN
    RAISE EXCEPTION 'pz_otp_issue: a code lives up to 10 minutes'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  INSERT INTO otp_challenges (channel, destination_hash, code_hash, purpose, account_id,
                              expires_at, ip, created_at)
  VALUES (p_channel, p_destination_hash, p_code_hash, p_purpose, v_account, p_expires_at, p_ip,
          p_now)
  RETURNING id INTO v_id;
  RETURN v_id;
END $$;

REVOKE ALL ON FUNCTION pz_otp_issue(text, text, text, text, inet, timestamptz, timestamptz) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_otp_issue(text, text, text, text, inet, timestamptz, timestamptz) TO pozapisi_app;
