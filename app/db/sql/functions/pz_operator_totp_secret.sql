-- An operator's TOTP secret, sealed (AES-GCM under a key derived from SECRET_KEY, opened by
-- app.domain.operators): the runtime role has no privilege on the column, and this hands it out
-- only for the active operator the transaction acts for — after their password was checked.
CREATE OR REPLACE FUNCTION pz_operator_totp_secret(p_account bigint)
RETURNS bytea
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT o.totp_secret FROM operators o JOIN accounts a ON a.id = o.account_id
   WHERE o.account_id = p_account AND p_account = app_account_id()
     AND o.disabled_at IS NULL AND a.deleted_at IS NULL
$$;

REVOKE ALL ON FUNCTION pz_operator_totp_secret(bigint) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_operator_totp_secret(bigint) TO pozapisi_app;
