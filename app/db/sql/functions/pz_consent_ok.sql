-- Whether a person's latest consent event grants p_required and no material policy change has
-- taken effect since (policy 3.1 and 11.1): the one definition, for every caller.
CREATE OR REPLACE FUNCTION pz_consent_ok(p_account_id bigint, p_today date, p_required text[])
RETURNS boolean LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN coalesce((
    SELECT c.action = 'granted' AND c.purposes::text[] @> p_required
           AND NOT EXISTS (SELECT 1 FROM policy_versions p, policy_versions g
                            WHERE g.version = c.policy_version AND p.material
                              AND p.effective_at <= p_today AND p.effective_at > g.effective_at)
      FROM consents c WHERE c.account_id = p_account_id ORDER BY c.id DESC LIMIT 1), false);
END $$;

REVOKE ALL ON FUNCTION pz_consent_ok(bigint, date, text[]) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_consent_ok(bigint, date, text[]) TO pozapisi_app;
