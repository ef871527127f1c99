-- Sign-up to the dashboard, before anyone is signed in: a new account (e-mail not yet
-- verified, the bcrypt hash app.domain.passwords made, the page's language), its first business
-- and the owner's membership, all in the caller's transaction. The app role may insert neither
-- accounts nor businesses: this is the one way in. An e-mail any live account already holds is
-- refused (unique_violation, the domain names the field): signing up never takes over an
-- existing account, even one without a password (a Mini App client) — that person resets the
-- password by a link to the address instead. Returns the ids and the slug the business got.
CREATE OR REPLACE FUNCTION pz_signup(p_email text, p_password_hash text, p_locale text,
                                     p_business_name text, p_slug text)
RETURNS TABLE (account_id bigint, business_id bigint, slug text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
#variable_conflict use_column
DECLARE
  v_account bigint;
BEGIN
  IF p_email IS NULL OR p_email !~ '^[^@\s]+@[^@\s]+$' OR p_password_hash IS NULL
     OR p_password_hash !~ '^\$2[aby]\$(1[2-9]|[23][0-9])\$' THEN
    RAISE EXCEPTION 'pz_signup: an e-mail and a bcrypt hash of cost 12 or more'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF EXISTS (SELECT 1 FROM accounts a WHERE lower(a.email) = lower(p_email)
              AND a.deleted_at IS NULL) THEN
    RAISE EXCEPTION 'pz_signup: the e-mail has an account' USING ERRCODE = 'unique_violation';
  END IF;
  INSERT INTO accounts (email, password_hash, locale)
  VALUES (lower(p_email), p_password_hash,
          CASE WHEN p_locale IN ('ru', 'kk', 'en') THEN p_locale ELSE 'ru' END)
  RETURNING id INTO v_account;
  PERFORM set_config('app.account_id', v_account::text, true);
  RETURN QUERY SELECT v_account, b.business_id, b.slug
                 FROM pz_signup_business(p_business_name, p_slug) b;
END $$;

REVOKE ALL ON FUNCTION pz_signup(text, text, text, text, text) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_signup(text, text, text, text, text) TO pozapisi_app;
