-- What creating a booking needs to know first, in one statement (app.domain.bookings._book):
-- {account, consent_ok, replay_id, day, availability}. The client is named by their Telegram id
-- (the API) or their account id (a Mini App session); with neither it is a walk-in the business
-- books (no account). account is NULL when the Telegram user has no live account yet (the
-- caller creates it and asks again) or the account is gone; replay_id is
-- the booking an earlier request with this Idempotency-Key made; day is the local date of
-- p_start (NULL: no such live business); availability is pz_availability's answer for that
-- day, given the version and masters of the caller's copy (-1 and NULL: it has none).
CREATE OR REPLACE FUNCTION pz_booking_context(p_slug text, p_telegram_id bigint,
                                   p_account_id bigint, p_service_id bigint,
                                   p_staff_id bigint, p_start timestamptz,
                                   p_idempotency_key text, p_today date, p_required text[],
                                   p_known_version bigint, p_known_staff bigint[])
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
  v_prior_account text := current_setting('app.account_id', true);
  v_account json;
  v_account_id bigint;
  v_replay bigint;
  v_day date;
BEGIN
  IF p_telegram_id IS NOT NULL OR p_account_id IS NOT NULL THEN
    -- the account's row is read acting for it (row-level security): a Telegram id is first
    -- turned into the account's id, which is all pz_account_by_telegram gives out
    v_account_id := coalesce(p_account_id, pz_account_by_telegram(p_telegram_id));
    IF v_account_id IS NOT NULL THEN
      PERFORM set_config('app.account_id', v_account_id::text, true);
      SELECT json_build_object('id', a.id, 'name', a.name, 'phone', a.phone,
                               'locale', a.locale, 'locale_chosen', a.locale_chosen,
                               'allows_write_to_pm', a.allows_write_to_pm)
        INTO v_account
        FROM accounts a WHERE a.id = v_account_id AND a.deleted_at IS NULL;
    END IF;
    IF v_account IS NULL THEN
      PERFORM set_config('app.account_id', coalesce(v_prior_account, ''), true);
      RETURN json_build_object('account', NULL);
    END IF;
  END IF;
  IF v_account_id IS NOT NULL AND p_idempotency_key IS NOT NULL THEN
    SELECT b.id INTO v_replay FROM bookings b
     WHERE b.account_id = v_account_id AND b.idempotency_key = p_idempotency_key;
  END IF;
  SELECT (p_start AT TIME ZONE b.timezone)::date INTO v_day
    FROM businesses b WHERE b.slug = p_slug AND b.archived_at IS NULL;
  RETURN json_build_object(
    'account', v_account,
    'consent_ok', v_account_id IS NOT NULL AND pz_consent_ok(v_account_id, p_today, p_required),
    'replay_id', v_replay,
    'day', v_day,
    'availability', CASE WHEN v_day IS NOT NULL AND v_replay IS NULL THEN
      pz_availability(p_slug, p_service_id, p_staff_id, v_day, v_day, p_known_version,
                      p_known_staff) END);
END $$;

REVOKE ALL ON FUNCTION pz_booking_context(text, bigint, bigint, bigint, bigint, timestamptz, text, date, text[], bigint, bigint[]) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_booking_context(text, bigint, bigint, bigint, bigint, timestamptz, text, date, text[], bigint, bigint[]) TO pozapisi_app;
