-- Retention deletes links past their expiry; the worker's privileges (SELECT of id and
-- expires_at, DELETE) limit it to that.
DROP POLICY IF EXISTS worker ON account_tokens;
CREATE POLICY worker ON account_tokens TO pozapisi_worker USING (true);
