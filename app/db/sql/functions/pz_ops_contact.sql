-- Where an operator's answer to a data-subject request goes: the person's e-mail and language
-- (policy 8.6), for an active operator only; NULL for an erased account or one without e-mail.
CREATE OR REPLACE FUNCTION pz_ops_contact(p_account bigint)
RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT jsonb_build_object('email', a.email, 'locale', a.locale)
    FROM accounts a
   WHERE a.id = p_account AND a.deleted_at IS NULL AND a.email IS NOT NULL AND pz_is_operator()
$$;

REVOKE ALL ON FUNCTION pz_ops_contact(bigint) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_ops_contact(bigint) TO pozapisi_app;
