-- The owner (SECURITY DEFINER functions pz_invitation_*, erasure) keeps full access: row-level
-- security is forced on this table, so without this the owner would see nothing either.
DROP POLICY IF EXISTS owner_all ON invitations;
CREATE POLICY owner_all ON invitations TO CURRENT_USER USING (true) WITH CHECK (true);
