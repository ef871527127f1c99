-- The owner (migrations, `pozapisi demo`, audit verification) keeps full access: row-level
-- security is forced on this table, so without this the owner would see nothing either.
DROP POLICY IF EXISTS owner_all ON billing_profiles;
CREATE POLICY owner_all ON billing_profiles TO CURRENT_USER USING (true) WITH CHECK (true);
