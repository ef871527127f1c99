-- What an invitation link shows before anyone acts for the business: which business, which
-- role, to which e-mail or phone, the master's name it links to, and whether it can still be
-- used ('open', 'expired', 'revoked', 'used'). The visitor holds the link's secret; the app
-- passes its SHA-256 (the table keeps only that) and, with no tenant set yet, could not read
-- the row itself (invitations is tenant-scoped, row-level security forced). No row: no such
-- link, or its business is archived. Writes nothing (GET never writes).
CREATE OR REPLACE FUNCTION pz_invitation_preview(p_token_hash text)
RETURNS TABLE (invitation_id bigint, business_id bigint, business_name text, role text,
               email text, phone text, staff_name text, state text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
  IF p_token_hash IS NULL OR p_token_hash !~ '^[0-9a-f]{64}$' THEN
    RETURN;
  END IF;
  RETURN QUERY
    SELECT i.id, i.business_id, b.name::text, i.role::text, i.email::text, i.phone::text,
           s.name::text,
           CASE WHEN i.accepted_at IS NOT NULL THEN 'used'
                WHEN i.revoked_at IS NOT NULL THEN 'revoked'
                WHEN i.expires_at <= now() THEN 'expired'
                ELSE 'open' END
      FROM invitations i
      JOIN businesses b ON b.id = i.business_id AND b.archived_at IS NULL
      LEFT JOIN staff s ON s.business_id = i.business_id AND s.id = i.staff_id
                       AND s.archived_at IS NULL
     WHERE i.token_hash = p_token_hash;
END $$;

REVOKE ALL ON FUNCTION pz_invitation_preview(text) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_invitation_preview(text) TO pozapisi_app;
