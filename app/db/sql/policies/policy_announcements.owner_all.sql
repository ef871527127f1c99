-- The owner (pz_policy_notice_batch, SECURITY DEFINER) keeps full access: row-level security
-- is forced on this table, so without this the owner would see nothing either.
DROP POLICY IF EXISTS owner_all ON policy_announcements;
CREATE POLICY owner_all ON policy_announcements TO CURRENT_USER USING (true) WITH CHECK (true);
