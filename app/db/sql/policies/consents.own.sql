-- Consent records (policy 3.1) of the account the transaction acts for only: granted, withdrawn
-- and read back (the export, pz_consent_ok) by the person themselves.
DROP POLICY IF EXISTS own ON consents;
CREATE POLICY own ON consents TO pozapisi_app
  USING (account_id = app_account_id()) WITH CHECK (account_id = app_account_id());
