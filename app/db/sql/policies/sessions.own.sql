-- A session row holds the CSRF secret of a sign-in and where it came from (IP, user agent).
-- The app reaches it only for the account the transaction acts for: a token is checked with
-- its signed `sub` set as that account first (app.security.sessions), and a new session can
-- be written only for the account being signed in. Row-level security on sessions is enabled
-- but not forced: the owner's SECURITY DEFINER functions (erasure, retention) act across
-- accounts by design.
DROP POLICY IF EXISTS own ON sessions;
CREATE POLICY own ON sessions TO pozapisi_app
  USING (account_id = app_account_id()) WITH CHECK (account_id = app_account_id());
