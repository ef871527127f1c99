-- Spend a link from an e-mail, once: unused, unexpired, of this purpose, its account live.
-- verify_email marks the address verified (while it is still the account's address);
-- change_email puts the new address on the account, verified (unique_violation when another
-- account took it meanwhile: the whole transaction rolls back and the link stays unspent);
-- reset_password only proves the link — the caller, now acting for the account, sets the new
-- password with pz_password_set in the same transaction. Returns the account's id, or NULL
-- when the link does not work (the same answer for unknown, used and expired links).
CREATE OR REPLACE FUNCTION pz_token_spend(p_purpose text, p_token_hash text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  v_account bigint;
  v_target text;
BEGIN
  UPDATE account_tokens t SET used_at = now()
    FROM accounts a
   WHERE t.token_hash = p_token_hash AND t.purpose = p_purpose AND t.used_at IS NULL
     AND t.expires_at > now() AND a.id = t.account_id AND a.deleted_at IS NULL
  RETURNING t.account_id, t.target INTO v_account, v_target;
  IF v_account IS NULL THEN
    RETURN NULL;
  END IF;
  IF p_purpose = 'verify_email' THEN
    UPDATE accounts SET email_verified_at = coalesce(email_verified_at, now())
     WHERE id = v_account AND lower(email) = v_target;
  ELSIF p_purpose = 'change_email' THEN
    UPDATE accounts SET email = v_target, email_verified_at = now() WHERE id = v_account;
  END IF;
  RETURN v_account;
END $$;

REVOKE ALL ON FUNCTION pz_token_spend(text, text) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_token_spend(text, text) TO pozapisi_app;
