-- The one change delivery makes to an account: Telegram said the person blocked the bot, so it
-- may no longer write to them. The worker can switch allows_write_to_pm off, never on (only
-- the person, signing in or through the webhook, allows the bot to write).
DROP POLICY IF EXISTS worker_bot_blocked ON accounts;
CREATE POLICY worker_bot_blocked ON accounts FOR UPDATE TO pozapisi_worker
  USING (true) WITH CHECK (NOT allows_write_to_pm);
