-- The owner (the `pozapisi ops` commands, the SECURITY DEFINER operator functions) keeps full
-- access: row-level security is forced on this table, so without this the owner would see nothing.
DROP POLICY IF EXISTS owner_all ON operators;
CREATE POLICY owner_all ON operators TO CURRENT_USER USING (true) WITH CHECK (true);
