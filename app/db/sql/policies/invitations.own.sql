-- A person reads the invitations they sent or accepted, in every business: the copy of their
-- data (policy 8.1). Writing stays with the tenant policy and pz_invitation_accept.
DROP POLICY IF EXISTS own ON invitations;
CREATE POLICY own ON invitations FOR SELECT TO pozapisi_app
  USING (accepted_by = app_account_id() OR invited_by = app_account_id());
