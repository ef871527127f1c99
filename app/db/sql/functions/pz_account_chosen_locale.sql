-- The language a Telegram user chose for themselves on PoZapisi (NULL: none chosen, or no
-- account): what public API reads answer in when the request is signed by Telegram. Only the
-- language code leaves the function, never whose account it is.
CREATE OR REPLACE FUNCTION pz_account_chosen_locale(p_telegram_id bigint) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT a.locale::text FROM accounts a
   WHERE a.telegram_id = p_telegram_id AND a.deleted_at IS NULL AND a.locale_chosen
$$;

REVOKE ALL ON FUNCTION pz_account_chosen_locale(bigint) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_account_chosen_locale(bigint) TO pozapisi_app;
