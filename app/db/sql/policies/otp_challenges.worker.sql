-- Housekeeping deletes spent codes a day after they expired (workers.maintenance); it never
-- needs to see a code that may still be used.
DROP POLICY IF EXISTS worker ON otp_challenges;
CREATE POLICY worker ON otp_challenges TO pozapisi_worker USING (expires_at < now());
