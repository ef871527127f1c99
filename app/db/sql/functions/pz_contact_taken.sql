-- Whether a live account other than the one the transaction acts for holds a phone (sms) or
-- an e-mail: a phone or e-mail belongs to one account, and a change of contact must say so
-- (to whoever just proved to hold the address). Yes or no only, never whose it is; refused
-- when nobody is signed in, so it cannot serve to probe addresses before a sign-in.
CREATE OR REPLACE FUNCTION pz_contact_taken(p_channel text, p_address text) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
  IF app_account_id() IS NULL THEN
    RAISE EXCEPTION 'pz_contact_taken: only for a signed-in account'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF p_channel = 'sms' THEN
    RETURN EXISTS (SELECT 1 FROM accounts a WHERE a.phone = p_address
                      AND a.deleted_at IS NULL AND a.id <> app_account_id());
  ELSIF p_channel = 'email' THEN
    RETURN EXISTS (SELECT 1 FROM accounts a WHERE lower(a.email) = lower(p_address)
                      AND a.deleted_at IS NULL AND a.id <> app_account_id());
  END IF;
  RAISE EXCEPTION 'pz_contact_taken: a phone (sms) or an e-mail address'
    USING ERRCODE = 'invalid_parameter_value';
END $$;

REVOKE ALL ON FUNCTION pz_contact_taken(text, text) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_contact_taken(text, text) TO pozapisi_app;
