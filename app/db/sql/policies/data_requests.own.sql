-- A person's requests to support (policy 8.6: access, correction, deletion…) are theirs: the
-- app reads and records those of the account its transaction acts for only.
DROP POLICY IF EXISTS own ON data_requests;
CREATE POLICY own ON data_requests TO pozapisi_app
  USING (account_id = app_account_id()) WITH CHECK (account_id = app_account_id());
