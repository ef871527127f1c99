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
  v_row record;
  v_cancelled integer := 0;
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
  FOR v_row IN
    WITH target AS (
      SELECT b.id, b.status AS old_status FROM bookings b
       WHERE b.account_id = p_account_id AND b.status = ANY (pz_live_statuses())
         AND b.starts_at > p_now
       FOR UPDATE
    )
    UPDATE bookings b
       SET status = 'cancelled', cancelled_by = 'client', cancel_reason = 'consent withdrawn',
           pending_expires_at = NULL, updated_at = p_now
      FROM target t WHERE b.id = t.id
    RETURNING b.id, b.business_id, b.staff_id, b.service_id, b.public_code, b.period,
              b.price_tiyn, t.old_status
  LOOP
    v_cancelled := v_cancelled + 1;
    UPDATE notifications SET status = 'cancelled', last_error = 'booking cancelled'
     WHERE booking_id = v_row.id AND status = 'pending';
    PERFORM set_config('app.business_id', v_row.business_id::text, true);
    PERFORM audit_append(v_row.business_id, p_account_id, 'client', 'booking.cancelled',
      'booking', v_row.id,
      jsonb_build_object('status', v_row.old_status, 'staff_id', v_row.staff_id,
        'service_id', v_row.service_id, 'start', lower(v_row.period),
        'end', upper(v_row.period), 'price_tiyn', v_row.price_tiyn),
      jsonb_build_object('status', 'cancelled', 'reason', 'consent withdrawn',
        'staff_id', v_row.staff_id, 'service_id', v_row.service_id,
        'start', lower(v_row.period), 'end', upper(v_row.period),
        'price_tiyn', v_row.price_tiyn),
      NULL, NULL, NULL);
    -- the business's people are told, as of any cancellation (pz_booking_recipients)
    INSERT INTO notifications (business_id, booking_id, account_id, event, channel, locale,
                               payload, idempotency_key, scheduled_at)
    SELECT v_row.business_id, v_row.id, r.account_id, 'staff.booking.cancelled', 'auto',
           r.locale, jsonb_build_object('code', v_row.public_code, 'by', 'client'),
           pz_notification_key('staff.booking.cancelled', v_row.id, 'auto', r.account_id, NULL,
                               p_now),
           p_now
      FROM pz_booking_recipients(v_row.business_id, v_row.staff_id) r
     WHERE r.account_id <> p_account_id
    ON CONFLICT (idempotency_key) DO NOTHING;
  END LOOP;
  PERFORM set_config('app.business_id', coalesce(v_prev_business, ''), true);

  RETURN jsonb_build_object('bookings_cancelled', v_cancelled,
                            'notifications_stopped', v_stopped);
END $$;

REVOKE ALL ON FUNCTION pz_consent_withdrawal(bigint, timestamptz) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_consent_withdrawal(bigint, timestamptz) TO pozapisi_app;
