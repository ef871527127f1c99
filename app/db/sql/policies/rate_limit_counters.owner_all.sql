-- The owner (migrations, and pz_rate_limit_hit, which counts as the owner) keeps full access:
-- row-level security is forced on this table, so without this the owner would see nothing
-- either.
DROP POLICY IF EXISTS owner_all ON rate_limit_counters;
CREATE POLICY owner_all ON rate_limit_counters TO CURRENT_USER USING (true) WITH CHECK (true);
