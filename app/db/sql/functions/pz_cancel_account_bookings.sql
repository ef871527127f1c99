-- A person's future visits booked through PoZapisi, cancelled in every business at once, for
-- the reason given: when they erase their account (erase_account_data, 'account deleted') and
-- when they withdraw consent (pz_consent_withdrawal, 'consent withdrawn'). Each business keeps
-- the booking, cancelled, sees it on its own audit chain and its people are told
-- (pz_booking_recipients); the booking's own messages still waiting are cancelled. Returns how
-- many were cancelled. Sets app.business_id per booking: the caller restores its own.
-- Runs with its callers' rights (both SECURITY DEFINER, each for the signed-in account only);
-- no runtime role may call it directly.
CREATE OR REPLACE FUNCTION pz_cancel_account_bookings(p_account_id bigint, p_now timestamptz,
                                                      p_reason text)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  v_row record;
  v_cancelled integer := 0;
BEGIN
  FOR v_row IN
    WITH target AS (
      SELECT b.id, b.status AS old_status FROM bookings b
       WHERE b.account_id = p_account_id AND b.status = ANY (pz_live_statuses())
         AND b.starts_at > p_now
       FOR UPDATE
    )
    UPDATE bookings b
       SET status = 'cancelled', cancelled_by = 'client', cancel_reason = p_reason,
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
      jsonb_build_object('status', 'cancelled', 'reason', p_reason,
        'staff_id', v_row.staff_id, 'service_id', v_row.service_id,
        'start', lower(v_row.period), 'end', upper(v_row.period),
        'price_tiyn', v_row.price_tiyn),
      NULL, NULL, NULL);
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
  RETURN v_cancelled;
END $$;

REVOKE ALL ON FUNCTION pz_cancel_account_bookings(bigint, timestamptz, text) FROM PUBLIC, pozapisi_app, pozapisi_worker;
