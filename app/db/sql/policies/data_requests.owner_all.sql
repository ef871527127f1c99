-- The owner (migrations, `pozapisi demo`, the SECURITY DEFINER functions of sign-in, erasure
-- and retention) keeps full access: row-level security is forced on this table, so without
-- this the owner would see nothing either.
DROP POLICY IF EXISTS owner_all ON data_requests;
CREATE POLICY owner_all ON data_requests TO CURRENT_USER USING (true) WITH CHECK (true);
