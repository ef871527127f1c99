-- The e-mail links sent to the signed-in account (verification, password reset, change of
-- address), for the copy of their data (policy 8.1): what each was for, the address it went to
-- for a change, and when it was made, expires and was used — never the link's digest. The
-- table has no privileges for the app role (migration 0017); this is its only read, and only
-- of the account the transaction acts for.
CREATE OR REPLACE FUNCTION pz_account_links(p_account_id bigint)
RETURNS TABLE (purpose text, target text, created_at timestamptz, expires_at timestamptz,
               used_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
  IF p_account_id IS NULL OR p_account_id IS DISTINCT FROM app_account_id() THEN
    RAISE EXCEPTION 'pz_account_links: an account reads only its own links'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN QUERY
    SELECT t.purpose::text, t.target::text, t.created_at, t.expires_at, t.used_at
      FROM account_tokens t WHERE t.account_id = p_account_id ORDER BY t.id;
END $$;

REVOKE ALL ON FUNCTION pz_account_links(bigint) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_account_links(bigint) TO pozapisi_app;
