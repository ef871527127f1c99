-- A single-use link sent by e-mail (account_tokens: only the SHA-256 of its secret is kept;
-- the table has no privilege for the app). verify_email and change_email belong to the account
-- the transaction acts for (just signed up, or signed in): p_email is the address the link goes
-- to (the new one for change_email). reset_password is asked before sign-in: the live account
-- holding p_email, if any. Lifetimes are fixed here: 48 hours for an address, 30 minutes for
-- a reset. Returns the language to write the e-mail in, or NULL when no account holds the
-- address (a reset then sends nothing, and the page says the same either way).
CREATE OR REPLACE FUNCTION pz_token_issue(p_purpose text, p_token_hash text, p_email text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  v_account bigint;
  v_locale text;
  v_ttl interval;
BEGIN
  IF p_token_hash IS NULL OR p_token_hash !~ '^[0-9a-f]{64}$' OR p_email IS NULL THEN
    RAISE EXCEPTION 'pz_token_issue: a sha256 digest and an address'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF p_purpose = 'reset_password' THEN
    SELECT a.id, a.locale INTO v_account, v_locale FROM accounts a
     WHERE lower(a.email) = lower(p_email) AND a.deleted_at IS NULL;
    IF v_account IS NULL THEN
      RETURN NULL;
    END IF;
    v_ttl := interval '30 minutes';
  ELSIF p_purpose IN ('verify_email', 'change_email') THEN
    v_account := app_account_id();
    SELECT a.locale INTO v_locale FROM accounts a
     WHERE a.id = v_account AND a.deleted_at IS NULL;
    IF v_locale IS NULL THEN
      RAISE EXCEPTION 'pz_token_issue: a % link is for a signed-in account', p_purpose
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    v_ttl := interval '48 hours';
  ELSE
    RAISE EXCEPTION 'pz_token_issue: no link for %', p_purpose
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  INSERT INTO account_tokens (account_id, purpose, token_hash, target, expires_at)
  VALUES (v_account, p_purpose, p_token_hash, lower(p_email), now() + v_ttl);
  RETURN v_locale;
END $$;

REVOKE ALL ON FUNCTION pz_token_issue(text, text, text) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_token_issue(text, text, text) TO pozapisi_app;
