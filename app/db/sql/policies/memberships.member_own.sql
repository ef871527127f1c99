-- A person reads their own memberships in every business: the copy of their data (policy
-- 8.1), and "you own a business" before deleting an account (8.3).
DROP POLICY IF EXISTS member_own ON memberships;
CREATE POLICY member_own ON memberships FOR SELECT TO pozapisi_app
  USING (account_id = app_account_id());
