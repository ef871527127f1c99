-- A person reads the bookings a business made for their client card (by phone, at the desk),
-- as messages.client_own does for the card's correspondence; bookings.client_own only covers
-- bookings the person made while signed in.
DROP POLICY IF EXISTS client_card ON bookings;
CREATE POLICY client_card ON bookings FOR SELECT TO pozapisi_app USING (EXISTS (
  SELECT 1 FROM clients c WHERE c.id = bookings.client_id AND c.account_id = app_account_id()));
