-- Workers deliver invitation messages and expire old ones across tenants; what they may do here
-- is limited by the table privileges their role has (SELECT), not by this policy.
DROP POLICY IF EXISTS worker ON invitations;
CREATE POLICY worker ON invitations TO pozapisi_worker USING (true);
