-- Spend a TOTP time-step: true when p_step is later than the last step a code was accepted
-- for (then it becomes the last), false otherwise. A code is good once: the same code again,
-- or an older one still inside the clock-drift window, is refused (RFC 6238 section 5.2).
CREATE OR REPLACE FUNCTION pz_operator_totp_use(p_account bigint, p_step bigint)
RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  WITH spent AS (
    UPDATE operators SET totp_last_step = p_step
     WHERE account_id = p_account AND p_account = app_account_id() AND disabled_at IS NULL
       AND (totp_last_step IS NULL OR totp_last_step < p_step)
    RETURNING 1)
  SELECT EXISTS (SELECT 1 FROM spent)
$$;

REVOKE ALL ON FUNCTION pz_operator_totp_use(bigint, bigint) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_operator_totp_use(bigint, bigint) TO pozapisi_app;
