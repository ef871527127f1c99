-- What withdrawing consent (policy 8.4) stops, at once and across businesses, in the
-- transaction that records the withdrawal: the person's future visits booked through PoZapisi
-- are cancelled (each business keeps the booking, cancelled, with the reason 'consent
-- withdrawn', sees it on its audit chain and its people are told), and every message not yet
-- sent to the person is cancelled, whatever it is about. From then on the outbox's gate
-- (pz_consent_gate) keeps new ones from becoming due. A message a worker has already claimed
-- ('sending') is in the provider's hands or about to be: the relay checks
-- pz_notification_blocked after claiming and cancels it unless it is already being sent.
-- SECURITY DEFINER like erase_account_data, and likewise only for the account signed in to
-- the transaction (app.account_id), after its withdrawal is recorded.
CREATE OR REPLACE FUNCTION pz_consent_withdrawal(p_account_id bigint, p_now timestamptz)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  v_prev_business text := current_setting('app.business_id', true);
  v_contacts text[];
  v_cancelled integer;
  v_stopped integer;
BEGIN
  IF p_account_id IS NULL OR p_account_id IS DISTINCT FROM app_account_id() THEN
    RAISE EXCEPTION 'pz_consent_withdrawal: an account can withdraw only its own consent'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NOT pz_notification_blocked(p_account_id, 'booking.reminder') THEN
    RAISE EXCEPTION 'pz_consent_withdrawal: the withdrawal is not recorded'
      USING ERRCODE = 'invalid_transaction_state';
  END IF;
  SELECT array_remove(ARRAY[a.phone, lower(a.email), a.telegram_id::text], NULL)
    INTO v_contacts FROM accounts a WHERE a.id = p_account_id AND a.deleted_at IS NULL;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pz_consent_withdrawal: no such account' USING ERRCODE = 'no_data_found';
  END IF;

  -- nothing more goes out to them: to their account, or to one of their addresses; except the
  -- notice of a policy change, which does not need their consent (pz_notification_blocked)
  UPDATE notifications
     SET status = 'cancelled', last_error = 'consent withdrawn', next_attempt_at = NULL
   WHERE status = 'pending' AND event <> 'policy.notice'
     AND (account_id = p_account_id OR lower(address) = ANY (v_contacts));
  GET DIAGNOSTICS v_stopped = ROW_COUNT;

  -- future visits are cancelled; each business sees it on its chain and is told
  v_cancelled := pz_cancel_account_bookings(p_account_id, p_now, 'consent withdrawn');
  PERFORM set_config('app.business_id', coalesce(v_prev_business, ''), true);

  RETURN jsonb_build_object('bookings_cancelled', v_cancelled,
                            'notifications_stopped', v_stopped);
END $$;

REVOKE ALL ON FUNCTION pz_consent_withdrawal(bigint, timestamptz) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_consent_withdrawal(bigint, timestamptz) TO pozapisi_app;
