-- The accounts told about a booking on the business side: its master, owners and admins, with
-- the language each reads. Their accounts are theirs (row-level security shows the app only
-- the signed-in person's), so this runs as the owner and gives out ids and language codes
-- only, of the business the transaction acts for (app.business_id) and no other.
-- PL/pgSQL for the plan it keeps per session (pz_booking_insert calls it on every booking).
CREATE OR REPLACE FUNCTION pz_booking_recipients(p_business_id bigint, p_staff_id bigint)
RETURNS TABLE (account_id bigint, locale text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
  IF p_business_id IS DISTINCT FROM app_business_id() THEN
    RETURN;
  END IF;
  RETURN QUERY
    SELECT m.account_id, a.locale::text FROM memberships m JOIN accounts a ON a.id = m.account_id
     WHERE m.business_id = p_business_id AND a.deleted_at IS NULL AND m.notify_bookings
       AND (m.role IN ('owner', 'admin') OR m.staff_id = p_staff_id)
    UNION
    SELECT s.account_id, a.locale::text FROM staff s JOIN accounts a ON a.id = s.account_id
     WHERE s.business_id = p_business_id AND s.id = p_staff_id AND a.deleted_at IS NULL;
END
$$;

REVOKE ALL ON FUNCTION pz_booking_recipients(bigint, bigint) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_booking_recipients(bigint, bigint) TO pozapisi_app;
-- the expiry job tells the business's people through the same cancel path (tenant set per
-- booking); the worker may read memberships and delivery columns of accounts anyway
GRANT EXECUTE ON FUNCTION pz_booking_recipients(bigint, bigint) TO pozapisi_worker;
