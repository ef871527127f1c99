-- The accounts told about a booking on the business side: its master, owners and admins, with
-- the language each reads. Their accounts are theirs (row-level security shows the app only
-- the signed-in person's), so this runs as the owner and gives out ids and language codes
-- only, of the business the transaction acts for (app.business_id) and no other.
CREATE OR REPLACE FUNCTION pz_booking_recipients(p_business_id bigint, p_staff_id bigint)
RETURNS TABLE (account_id bigint, locale text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT m.account_id, a.locale FROM memberships m JOIN accounts a ON a.id = m.account_id
   WHERE m.business_id = p_business_id AND a.deleted_at IS NULL AND m.notify_bookings
     AND (m.role IN ('owner', 'admin') OR m.staff_id = p_staff_id)
     AND p_business_id = app_business_id()
  UNION
  SELECT s.account_id, a.locale FROM staff s JOIN accounts a ON a.id = s.account_id
   WHERE s.business_id = p_business_id AND s.id = p_staff_id AND a.deleted_at IS NULL
     AND p_business_id = app_business_id()
$$;

REVOKE ALL ON FUNCTION pz_booking_recipients(bigint, bigint) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_booking_recipients(bigint, bigint) TO pozapisi_app;
