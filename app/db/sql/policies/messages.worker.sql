-- The notification relay reads correspondence to quote it; it never writes it.
DROP POLICY IF EXISTS worker ON messages;
CREATE POLICY worker ON messages FOR SELECT TO pozapisi_worker USING (true);
