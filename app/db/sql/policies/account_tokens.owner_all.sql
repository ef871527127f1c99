-- The owner (SECURITY DEFINER functions pz_token_*, erasure, retention) keeps full access:
-- row-level security is forced on this table, so without this the owner would see nothing.
DROP POLICY IF EXISTS owner_all ON account_tokens;
CREATE POLICY owner_all ON account_tokens TO CURRENT_USER USING (true) WITH CHECK (true);
