-- A client sees their own rows in every business (app.account_id, set per transaction).
DROP POLICY IF EXISTS client_own ON notifications;
CREATE POLICY client_own ON notifications FOR SELECT USING (account_id = app_account_id());
