-- Housekeeping deletes counters whose windows are over (workers.maintenance); the worker role
-- reads nothing of a counter but its expiry (its column grant, migration 0015).
DROP POLICY IF EXISTS worker ON rate_limit_counters;
CREATE POLICY worker ON rate_limit_counters TO pozapisi_worker USING (true);
