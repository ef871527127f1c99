"""One function cancels a person's future bookings in every business: ``pz_cancel_account_bookings``.

Erasure (``erase_account_data``, 8.3) and the withdrawal of consent (``pz_consent_withdrawal``,
8.4) each carried the same loop, word for word but the reason: cancel the person's live future
bookings, cancel those bookings' waiting messages, write the cancellation on each business's
audit chain and tell the business's people. The loop is now one function both call, so a
change to what a business is told (or audited) happens once. The new function's file creates
it; the two callers' files call it. Going down puts back the callers' texts as they were and
drops the function.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# as the files defined them before this revision (their privileges are unchanged)
ERASE_0026 = r"""
CREATE OR REPLACE FUNCTION erase_account_data(p_account_id bigint, p_now timestamptz) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  v_prev_business text := current_setting('app.business_id', true);
  v_phone text;
  v_phone_verified boolean;
  v_contacts text[];
  v_cards bigint[];
  v_row record;
  v_cancelled integer := 0;
  v_anonymized integer := 0;
  v_messages integer := 0;
  v_count integer;
BEGIN
  IF p_account_id IS NULL OR p_account_id IS DISTINCT FROM app_account_id() THEN
    RAISE EXCEPTION 'erase_account_data: an account can erase only itself'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  SELECT a.phone, a.phone_verified_at IS NOT NULL,
         array_remove(ARRAY[a.phone, lower(a.email), a.telegram_id::text], NULL)
    INTO v_phone, v_phone_verified, v_contacts
    FROM accounts a WHERE a.id = p_account_id AND a.deleted_at IS NULL FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'erase_account_data: no such account' USING ERRCODE = 'no_data_found';
  END IF;
  IF EXISTS (SELECT 1 FROM memberships WHERE account_id = p_account_id AND role = 'owner') THEN
    RAISE EXCEPTION 'erase_account_data: the account owns a business'
      USING ERRCODE = 'restrict_violation';
  END IF;

  -- the person's cards: linked to the account, or holding the phone the person has proven
  SELECT coalesce(array_agg(c.id), '{}') INTO v_cards FROM clients c
   WHERE c.account_id = p_account_id OR (v_phone_verified AND c.phone = v_phone);

  -- audit values about or by the person go; the digests, and so every chain, stay
  UPDATE audit_details d SET before = NULL, after = NULL
    FROM audit_log a
   WHERE a.id = d.audit_id AND (d.before IS NOT NULL OR d.after IS NOT NULL)
     AND (a.actor_account_id = p_account_id
          OR (a.entity = 'account' AND a.entity_id = p_account_id)
          OR (a.entity = 'client' AND a.entity_id = ANY (v_cards)));

  -- future visits are cancelled; each business sees it on its chain and is told
  FOR v_row IN
    WITH target AS (
      SELECT b.id, b.status AS old_status FROM bookings b
       WHERE b.account_id = p_account_id AND b.status = ANY (pz_live_statuses())
         AND b.starts_at > p_now
       FOR UPDATE
    )
    UPDATE bookings b
       SET status = 'cancelled', cancelled_by = 'client', cancel_reason = 'account deleted',
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
      jsonb_build_object('status', 'cancelled', 'staff_id', v_row.staff_id,
        'service_id', v_row.service_id, 'start', lower(v_row.period),
        'end', upper(v_row.period), 'price_tiyn', v_row.price_tiyn),
      NULL, NULL, NULL);
    -- the people told of every booking change (pz_booking_recipients)
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

  -- every booking of theirs: unlinked, and the free text they wrote is gone
  UPDATE bookings
     SET account_id = NULL, idempotency_key = NULL, comment = NULL,
         cancel_reason = CASE
           WHEN cancelled_by = 'client' AND cancel_reason NOT IN ('rescheduled', 'account deleted')
           THEN NULL ELSE cancel_reason END
   WHERE account_id = p_account_id OR client_id = ANY (v_cards);

  -- the cards: no name, phone, notes or tags, no link; their correspondence deleted
  FOR v_row IN
    UPDATE clients SET name = NULL, phone = NULL, notes = NULL, tags = '{}', account_id = NULL
     WHERE id = ANY (v_cards) RETURNING id, business_id
  LOOP
    v_anonymized := v_anonymized + 1;
    DELETE FROM messages WHERE business_id = v_row.business_id AND client_id = v_row.id;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    v_messages := v_messages + v_count;
    PERFORM set_config('app.business_id', v_row.business_id::text, true);
    PERFORM audit_append(v_row.business_id, p_account_id, 'client', 'client.erase', 'client',
      v_row.id, NULL, NULL, NULL, NULL, NULL);
  END LOOP;
  PERFORM set_config('app.business_id', coalesce(v_prev_business, ''), true);

  -- replies they wrote as a business's staff stay the business's, without the link
  UPDATE messages SET author_account_id = NULL WHERE author_account_id = p_account_id;

  -- nothing more goes out to them; their addresses leave the outbox
  UPDATE notifications
     SET status = CASE WHEN status = 'pending' THEN 'cancelled' ELSE status END,
         last_error = CASE WHEN status = 'pending' THEN 'account deleted' END,
         address = NULL,
         idempotency_key = CASE
           WHEN EXISTS (SELECT 1 FROM unnest(v_contacts) c WHERE strpos(idempotency_key, c) > 0)
           THEN 'erased:' || id ELSE idempotency_key END
   WHERE account_id = p_account_id OR lower(address) = ANY (v_contacts);

  -- business roles end; a master's profile is the business's and stays, unlinked
  DELETE FROM memberships WHERE account_id = p_account_id;
  UPDATE staff SET account_id = NULL WHERE account_id = p_account_id;

  UPDATE sessions SET revoked_at = p_now WHERE account_id = p_account_id AND revoked_at IS NULL;
  UPDATE otp_challenges SET account_id = NULL, consumed_at = coalesce(consumed_at, p_now)
   WHERE account_id = p_account_id;
  -- e-mail links (verification, reset, change of address) die with the account
  DELETE FROM account_tokens WHERE account_id = p_account_id;
  -- invitations to the person (accepted, or still open to their address) go; the memberships
  -- they led to are gone above, the audit chains keep that they happened
  DELETE FROM invitations
   WHERE accepted_by = p_account_id
      OR (accepted_at IS NULL AND (lower(email) = ANY (v_contacts) OR phone = ANY (v_contacts)));
  UPDATE invitations SET invited_by = NULL WHERE invited_by = p_account_id;

  -- the account stays as a tombstone (consents, requests and the audit log refer to it)
  UPDATE accounts
     SET name = NULL, phone = NULL, phone_verified_at = NULL, email = NULL,
         email_verified_at = NULL, telegram_id = NULL, allows_write_to_pm = false,
         password_hash = NULL, avatar = NULL, locale_chosen = false, deleted_at = p_now
   WHERE id = p_account_id;

  RETURN jsonb_build_object('bookings_cancelled', v_cancelled, 'client_cards', v_anonymized,
                            'messages_deleted', v_messages);
END $$;
"""
CONSENT_WITHDRAWAL_0026 = r"""
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
"""


def upgrade() -> None:
    """Nothing structural: the function files are applied after the migrations."""


def downgrade() -> None:
    op.execute(ERASE_0026)
    op.execute(CONSENT_WITHDRAWAL_0026)
    op.execute("DROP FUNCTION IF EXISTS pz_cancel_account_bookings(bigint, timestamptz, text)")
