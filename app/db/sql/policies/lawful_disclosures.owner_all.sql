-- The owner keeps full access (row-level security is forced on this table).
DROP POLICY IF EXISTS owner_all ON lawful_disclosures;
CREATE POLICY owner_all ON lawful_disclosures TO CURRENT_USER USING (true) WITH CHECK (true);
