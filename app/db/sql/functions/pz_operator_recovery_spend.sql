-- Spend one of an operator's recovery codes (kept as sha256 digests): true once, for an unused
-- code of the active operator the transaction acts for; false for a used, unknown or other
-- operator's code.
CREATE OR REPLACE FUNCTION pz_operator_recovery_spend(p_account bigint, p_code_hash text)
RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  WITH spent AS (
    UPDATE operator_recovery_codes c SET used_at = now()
      FROM operators o
     WHERE c.account_id = p_account AND p_account = app_account_id()
       AND c.code_hash = p_code_hash AND c.used_at IS NULL
       AND o.account_id = c.account_id AND o.disabled_at IS NULL
    RETURNING 1)
  SELECT EXISTS (SELECT 1 FROM spent)
$$;

REVOKE ALL ON FUNCTION pz_operator_recovery_spend(bigint, text) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_operator_recovery_spend(bigint, text) TO pozapisi_app;
