-- Workers (outbox relay, reminders, retention) act across tenants; what they may do here is
-- limited by the table privileges their role has, not by this policy.
DROP POLICY IF EXISTS worker ON services;
CREATE POLICY worker ON services TO pozapisi_worker USING (true);
