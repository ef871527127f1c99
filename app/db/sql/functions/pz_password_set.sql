-- A new password for the account the transaction acts for (a change on the security page,
-- after the current password was checked; a reset, after pz_token_spend proved the link):
-- the app role may not write password_hash itself. Ends every other session of the account
-- in the same transaction (p_keep: the session that made the change, NULL after a reset), so
-- whoever held another device's session is out the moment the password changes.
-- Returns how many sessions were ended.
CREATE OR REPLACE FUNCTION pz_password_set(p_password_hash text, p_keep text)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  v_account bigint := app_account_id();
  v_ended integer;
BEGIN
  IF v_account IS NULL THEN
    RAISE EXCEPTION 'pz_password_set: for a signed-in account'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF p_password_hash IS NULL OR p_password_hash !~ '^\$2[aby]\$(1[2-9]|[23][0-9])\$' THEN
    RAISE EXCEPTION 'pz_password_set: a bcrypt hash of cost 12 or more'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  UPDATE accounts SET password_hash = p_password_hash
   WHERE id = v_account AND deleted_at IS NULL;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pz_password_set: no live account' USING ERRCODE = 'no_data_found';
  END IF;
  UPDATE sessions SET revoked_at = now()
   WHERE account_id = v_account AND revoked_at IS NULL AND id IS DISTINCT FROM p_keep;
  GET DIAGNOSTICS v_ended = ROW_COUNT;
  RETURN v_ended;
END $$;

REVOKE ALL ON FUNCTION pz_password_set(text, text) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_password_set(text, text) TO pozapisi_app;
