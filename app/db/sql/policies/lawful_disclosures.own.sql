-- The person's copy of their data lists the disclosures about them (8.1, 5.4), except one the
-- law forbids telling them (withheld, with the reason on the record).
DROP POLICY IF EXISTS own ON lawful_disclosures;
CREATE POLICY own ON lawful_disclosures FOR SELECT TO pozapisi_app
  USING (account_id = app_account_id() AND NOT withheld);
