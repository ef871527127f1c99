-- The console reads the role of the operator its transaction acts for, and no other row; the
-- runtime role's column privileges leave out the sealed TOTP secret and the last step.
DROP POLICY IF EXISTS own ON operators;
CREATE POLICY own ON operators FOR SELECT TO pozapisi_app USING (account_id = app_account_id());
