-- A session row holds the CSRF secret of a sign-in and where it came from (IP, user agent).
-- The app reaches it only for the account the transaction acts for: a token is checked with
-- its signed `sub` set as that account first (app.security.sessions), and a new session can
-- be written only for the account being signed in. The owner's SECURITY DEFINER functions
-- (erasure, retention) act across accounts through owner_all (migration 0015 forces row-level
-- security here, as on every table of personal data).
DROP POLICY IF EXISTS own ON sessions;
CREATE POLICY own ON sessions TO pozapisi_app
  USING (account_id = app_account_id()) WITH CHECK (account_id = app_account_id());
