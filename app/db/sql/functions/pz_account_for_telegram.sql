-- Sign-in with Telegram, before anyone is signed in: the id of the live account of a Telegram
-- user, created on first sight with what the validated initData says (name, whether the bot
-- may write, Telegram's language); `created` tells which. Returns the id and that yes/no only:
-- the caller then acts for the account (app.account_id) and reads or updates the row under
-- row-level security. Two first sign-ins at once make one account (the unique Telegram id).
CREATE OR REPLACE FUNCTION pz_account_for_telegram(p_telegram_id bigint, p_name text,
                                                   p_allows_write_to_pm boolean, p_locale text)
RETURNS TABLE (account_id bigint, created boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  v_id bigint;
BEGIN
  IF p_telegram_id IS NULL OR p_telegram_id <= 0 THEN
    RAISE EXCEPTION 'pz_account_for_telegram: a Telegram user id is a positive number'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT a.id INTO v_id FROM accounts a
   WHERE a.telegram_id = p_telegram_id AND a.deleted_at IS NULL;
  IF v_id IS NOT NULL THEN
    RETURN QUERY SELECT v_id, false;
    RETURN;
  END IF;
  INSERT INTO accounts (telegram_id, name, allows_write_to_pm, locale)
  VALUES (p_telegram_id, left(nullif(btrim(p_name), ''), 120),
          coalesce(p_allows_write_to_pm, false), coalesce(p_locale, 'ru'))
  ON CONFLICT (telegram_id) DO NOTHING
  RETURNING id INTO v_id;
  IF v_id IS NOT NULL THEN
    RETURN QUERY SELECT v_id, true;
    RETURN;
  END IF;
  -- a concurrent first sign-in of the same person made it a moment ago: that one
  SELECT a.id INTO v_id FROM accounts a
   WHERE a.telegram_id = p_telegram_id AND a.deleted_at IS NULL;
  RETURN QUERY SELECT v_id, false;
END $$;

REVOKE ALL ON FUNCTION pz_account_for_telegram(bigint, text, boolean, text) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_account_for_telegram(bigint, text, boolean, text) TO pozapisi_app;
