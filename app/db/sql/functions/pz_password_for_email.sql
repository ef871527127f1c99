-- Password sign-in to the dashboard, before anyone is signed in: the live account holding the
-- e-mail, its bcrypt hash (checked by app.domain.passwords, which bcrypt needs in hand) and
-- whether it is a member of a live business (only members get a dashboard session). No row
-- when no live account holds the address; the caller then checks a dummy hash, so the answer
-- and its time are the same for an unknown e-mail and a wrong password.
CREATE OR REPLACE FUNCTION pz_password_for_email(p_email text)
RETURNS TABLE (account_id bigint, password_hash text, is_member boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT a.id, a.password_hash::text,
         EXISTS (SELECT 1 FROM memberships m JOIN businesses b ON b.id = m.business_id
                  WHERE m.account_id = a.id AND b.archived_at IS NULL)
    FROM accounts a
   WHERE lower(a.email) = lower(p_email) AND a.deleted_at IS NULL
$$;

REVOKE ALL ON FUNCTION pz_password_for_email(text) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_password_for_email(text) TO pozapisi_app;
