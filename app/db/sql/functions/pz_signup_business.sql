-- A new business owned by the account the transaction acts for (sign-up, or a signed-in
-- person with no business: the dashboard's "new business" page). The app role may not insert
-- businesses. The slug is app.domain.staff_accounts.slug_from_name's; when taken, -2, -3 …
-- is added (cut to fit 63 characters), so two sign-ups with one name both succeed. The
-- business starts with the platform's defaults; its set-up wizard fills the rest.
CREATE OR REPLACE FUNCTION pz_signup_business(p_business_name text, p_slug text)
RETURNS TABLE (business_id bigint, slug text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
#variable_conflict use_column
DECLARE
  v_account bigint := app_account_id();
  v_name text := btrim(p_business_name);
  v_slug text;
  v_suffix text := '';
  v_id bigint;
  v_locale text;
BEGIN
  IF v_account IS NULL OR NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = v_account
                                        AND a.deleted_at IS NULL) THEN
    RAISE EXCEPTION 'pz_signup_business: for a signed-in account'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF v_name IS NULL OR char_length(v_name) NOT BETWEEN 2 AND 200
     OR p_slug IS NULL OR p_slug !~ '^[a-z0-9][a-z0-9-]{2,62}$' THEN
    RAISE EXCEPTION 'pz_signup_business: a name of 2 to 200 characters and a slug'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT a.locale INTO v_locale FROM accounts a WHERE a.id = v_account;
  FOR attempt IN 1..1000 LOOP
    IF attempt > 1 THEN
      v_suffix := '-' || attempt;
    END IF;
    v_slug := rtrim(left(p_slug, 63 - length(v_suffix)), '-') || v_suffix;
    INSERT INTO businesses (slug, name, default_locale)
    VALUES (v_slug, v_name, coalesce(v_locale, 'ru'))
    ON CONFLICT (slug) DO NOTHING RETURNING id INTO v_id;
    EXIT WHEN v_id IS NOT NULL;
  END LOOP;
  IF v_id IS NULL THEN
    RAISE EXCEPTION 'pz_signup_business: no free slug for %', p_slug
      USING ERRCODE = 'unique_violation';
  END IF;
  INSERT INTO memberships (business_id, account_id, role) VALUES (v_id, v_account, 'owner');
  RETURN QUERY SELECT v_id, v_slug;
END $$;

REVOKE ALL ON FUNCTION pz_signup_business(text, text) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_signup_business(text, text) TO pozapisi_app;
