-- Delivery reads the addressee's contacts and language (the relay), reminders skip deleted
-- accounts: every account may receive a message, so every row, but only the columns the
-- worker role is granted (migration 0015: id, phone, e-mail, Telegram id, allows_write_to_pm,
-- locale, deleted_at; never the name, avatar or password hash).
DROP POLICY IF EXISTS worker_read ON accounts;
CREATE POLICY worker_read ON accounts FOR SELECT TO pozapisi_worker USING (true);
