-- The owner (migrations, `pozapisi demo`, audit verification) keeps full access: row-level
-- security is forced on this table, so without this the owner would see nothing either.
DROP POLICY IF EXISTS owner_all ON payment_orders;
CREATE POLICY owner_all ON payment_orders TO CURRENT_USER USING (true) WITH CHECK (true);
