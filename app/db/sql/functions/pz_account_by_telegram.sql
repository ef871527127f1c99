-- The live account a Telegram id belongs to, as its id alone (NULL: none yet). Row-level
-- security shows the app an account only once its transaction acts for it, so whatever must
-- find the account first goes through here: pz_booking_context naming the client of an API
-- booking, the bot's webhook finding whom Telegram's news is about. The caller has checked
-- Telegram's signature; the row itself is read afterwards, acting for the account.
-- PL/pgSQL rather than SQL: a SECURITY DEFINER function is never inlined, and PL/pgSQL keeps
-- its plan for the session where a SQL function is planned again on every call (it is on the
-- booking's path, inside pz_booking_context).
CREATE OR REPLACE FUNCTION pz_account_by_telegram(p_telegram_id bigint) RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
  RETURN (SELECT a.id FROM accounts a
           WHERE a.telegram_id = p_telegram_id AND a.deleted_at IS NULL);
END $$;

REVOKE ALL ON FUNCTION pz_account_by_telegram(bigint) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_account_by_telegram(bigint) TO pozapisi_app;
