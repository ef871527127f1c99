-- Workers purge expired sessions (and retention those of deleted accounts).
DROP POLICY IF EXISTS worker ON sessions;
CREATE POLICY worker ON sessions TO pozapisi_worker USING (true);
