-- The people of a business as its owner's team page lists them: each member's name, e-mail
-- and phone. Accounts are their holders' alone (row-level security shows the app only the
-- signed-in person's), so this runs as the owner, for the business the transaction acts for
-- (app.business_id) and only when the signed-in person (app.account_id) is that business's
-- owner — the one role that manages the team. Nothing for anyone else.
CREATE OR REPLACE FUNCTION pz_team_members(p_business_id bigint)
RETURNS TABLE (account_id bigint, name text, email text, phone text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
  IF p_business_id IS DISTINCT FROM app_business_id() OR NOT EXISTS (
       SELECT 1 FROM memberships o
        WHERE o.business_id = p_business_id AND o.account_id = app_account_id()
          AND o.role = 'owner') THEN
    RETURN;
  END IF;
  RETURN QUERY
    SELECT a.id, a.name::text, a.email::text, a.phone::text
      FROM memberships m JOIN accounts a ON a.id = m.account_id
     WHERE m.business_id = p_business_id;
END $$;

REVOKE ALL ON FUNCTION pz_team_members(bigint) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_team_members(bigint) TO pozapisi_app;
