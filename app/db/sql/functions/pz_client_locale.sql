-- The language a booking's client reads messages in, for what the business tells them about
-- it (confirmed, cancelled): the business's transaction cannot read the client's account
-- (row-level security), and needs nothing of it but this. Only for a booking of the business
-- or of the account the transaction acts for; NULL for any other, a walk-in, a deleted account.
CREATE OR REPLACE FUNCTION pz_client_locale(p_booking_id bigint) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT a.locale::text FROM bookings b JOIN accounts a ON a.id = b.account_id
   WHERE b.id = p_booking_id AND a.deleted_at IS NULL
     AND (b.business_id = app_business_id() OR b.account_id = app_account_id())
$$;

REVOKE ALL ON FUNCTION pz_client_locale(bigint) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_client_locale(bigint) TO pozapisi_app;
-- the expiry job (app.domain.bookings.expire_pending) tells the client through the same cancel
-- path, in the booking business's context; the worker reads account languages for delivery anyway
GRANT EXECUTE ON FUNCTION pz_client_locale(bigint) TO pozapisi_worker;
