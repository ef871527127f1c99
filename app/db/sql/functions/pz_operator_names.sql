-- The operators' e-mail addresses, for the console's "handled by" column: for operators only.
CREATE OR REPLACE FUNCTION pz_operator_names()
RETURNS TABLE (account_id bigint, email text, role text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT o.account_id, a.email::text, o.role::text
    FROM operators o JOIN accounts a ON a.id = o.account_id
   WHERE pz_is_operator()
   ORDER BY a.email
$$;

REVOKE ALL ON FUNCTION pz_operator_names() FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_operator_names() TO pozapisi_app;
