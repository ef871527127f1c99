-- The app reads back only the codes a signed-in account asked for to change its phone or e-mail
-- (its data export lists them). A sign-in code belongs to nobody: it is issued and checked
-- only through pz_otp_issue and pz_otp_check, and counted by pz_otp_sent_to/pz_otp_sent_from.
DROP POLICY IF EXISTS own ON otp_challenges;
CREATE POLICY own ON otp_challenges TO pozapisi_app
  USING (account_id = app_account_id()) WITH CHECK (account_id = app_account_id());
