-- Security events (policy 2.6: what happened, from which IP and browser) of the signed-in
-- account only: recorded for it, and shown back to it in its data export.
DROP POLICY IF EXISTS own ON security_events;
CREATE POLICY own ON security_events TO pozapisi_app
  USING (account_id = app_account_id()) WITH CHECK (account_id = app_account_id());
