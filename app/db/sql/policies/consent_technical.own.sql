-- Where a consent was given from (IP, user agent: policy 2.6): the row of one of the signed-in
-- account's own consent records, and no other.
DROP POLICY IF EXISTS own ON consent_technical;
CREATE POLICY own ON consent_technical TO pozapisi_app
  USING (EXISTS (SELECT 1 FROM consents c
                  WHERE c.id = consent_technical.consent_id AND c.account_id = app_account_id()))
  WITH CHECK (EXISTS (SELECT 1 FROM consents c
                       WHERE c.id = consent_technical.consent_id
                         AND c.account_id = app_account_id()));
