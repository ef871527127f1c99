"""Functions, triggers and policies become source files; this table records which were applied.

From here on the current definition of every database function, trigger and row-level-security
policy is its own file under ``app/db/sql/`` (see ``app.db.definitions``), applied after the
migrations by ``pozapisi db upgrade`` whenever its text changes. ``schema_definitions`` keeps the
sha256 of each file's text as last applied; only the owner reads or writes it.

The same release defines two rules once, in SQL, through new files: ``pz_live_statuses()`` (the
booking statuses that hold time) and ``pz_notification_key(…)`` (a notification's idempotency
key, which erasure had let drift to epoch seconds); ``pz_blocked``, ``pz_booking_insert`` and
``erase_account_data`` call them. The downgrade therefore puts those three back as revision 0012
had them (frozen below) before dropping the two functions, so a database taken back to 0012
works as 0012 did. Every other definition stays as its file made it (the record is cleared, so
the next upgrade applies every file again).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# as migration 0007 left it
PZ_BLOCKED_AT_0012 = r"""
CREATE OR REPLACE FUNCTION pz_blocked(p_business_id bigint, p_staff bigint[], p_from date,
                                      p_to date, p_tz text)
RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE
  w1 timestamptz := (p_from::timestamp - interval '12 hours') AT TIME ZONE p_tz;
  w2 timestamptz := ((p_to + 1)::timestamp + interval '12 hours') AT TIME ZONE p_tz;
BEGIN
  RETURN (SELECT coalesce(json_agg(json_build_array(x.staff_id,
              floor(extract(epoch FROM x.s))::bigint, ceil(extract(epoch FROM x.e))::bigint)),
              '[]')
       FROM (
             SELECT b.staff_id, lower(b.blocked_period) AS s, upper(b.blocked_period) AS e
               FROM bookings b
              WHERE b.business_id = p_business_id AND b.staff_id = ANY(p_staff)
                AND b.status IN ('pending', 'confirmed')
                -- blocked_span keeps a booking within a day of its start: a narrow range of
                -- ix_bookings_staff_starts, however long the business's history
                AND b.starts_at > w1 - interval '1 day'
                AND b.starts_at < w2 + interval '1 day'
                AND b.blocked_period && tstzrange(w1, w2)
             UNION ALL
             SELECT t.staff_id, coalesce(lower(t.period), w1), coalesce(upper(t.period), w2)
               FROM time_off t
              WHERE t.business_id = p_business_id AND t.staff_id = ANY(p_staff)
                AND t.period && tstzrange(w1, w2)) x);
END $$;
"""

# as migration 0006 left it
PZ_BOOKING_INSERT_AT_0012 = r"""
CREATE OR REPLACE FUNCTION pz_booking_insert(p jsonb) RETURNS json LANGUAGE plpgsql AS $$
DECLARE
  v_business_id bigint := (p->>'business_id')::bigint;
  v_account_id bigint := (p->>'account_id')::bigint;
  v_now timestamptz := (p->>'now')::timestamptz;
  v_client_id bigint;
  v_active int;
  v_id bigint;
  v_candidate jsonb;
  v_left int := jsonb_array_length(p->'candidates');
BEGIN
  PERFORM set_config('app.business_id', v_business_id::text, true);
  IF v_account_id IS NOT NULL THEN
    PERFORM set_config('app.account_id', v_account_id::text, true);
    IF p ? 'account_update' THEN
      UPDATE accounts
         SET allows_write_to_pm = allows_write_to_pm
               OR coalesce((p#>>'{account_update,allows_write_to_pm}')::boolean, false),
             locale = coalesce(p#>>'{account_update,locale}', locale)
       WHERE id = v_account_id;
    END IF;
    INSERT INTO clients (business_id, account_id, name, phone)
    VALUES (v_business_id, v_account_id, p#>>'{client,name}', p#>>'{client,phone}')
    ON CONFLICT (business_id, account_id) WHERE account_id IS NOT NULL DO UPDATE
       SET name = coalesce(clients.name, EXCLUDED.name),
           phone = coalesce(EXCLUDED.phone, clients.phone)
    RETURNING id INTO v_client_id;
    SELECT count(*) INTO v_active FROM bookings b
     WHERE b.business_id = v_business_id AND b.client_id = v_client_id
       AND b.status IN ('pending', 'confirmed') AND upper(b.period) > v_now;
    IF v_active >= (p->>'max_active')::int THEN
      RAISE EXCEPTION 'the client has the most upcoming bookings allowed' USING ERRCODE = 'PZ001';
    END IF;
  ELSE
    INSERT INTO clients (business_id, name, phone)
    VALUES (v_business_id, p#>>'{client,name}', p#>>'{client,phone}')
    RETURNING id INTO v_client_id;
  END IF;

  FOR v_candidate IN SELECT value FROM jsonb_array_elements(p->'candidates') LOOP
    v_left := v_left - 1;
    IF v_left = 0 THEN  -- the last (often the only) one: its conflict is the caller's 409
      v_id := pz_booking_row(p, v_candidate, v_client_id);
    ELSE
      BEGIN
        v_id := pz_booking_row(p, v_candidate, v_client_id);
      EXCEPTION WHEN exclusion_violation THEN
        CONTINUE;
      END;
    END IF;
    EXIT;
  END LOOP;
  IF v_id IS NULL THEN
    RAISE EXCEPTION 'no candidate to book' USING ERRCODE = 'exclusion_violation';
  END IF;

  INSERT INTO notifications (business_id, booking_id, account_id, event, channel, locale,
                             payload, idempotency_key, scheduled_at)
  SELECT v_business_id, v_id, (m->>'account_id')::bigint, m->>'event', 'auto', m->>'locale',
         p->'payload', replace(m->>'key', '{booking}', v_id::text), (m->>'at')::timestamptz
    FROM jsonb_array_elements(p->'messages') m
  UNION ALL
  SELECT v_business_id, v_id, r.account_id, 'staff.' || (p->>'event'), 'auto', r.locale,
         p->'payload',
         format('staff.%s:%s:auto:a%s:%s', p->>'event', v_id, r.account_id, p->>'now_key'), v_now
    FROM pz_booking_recipients(v_business_id, (v_candidate->>'staff_id')::bigint) r
   WHERE r.account_id IS DISTINCT FROM v_account_id
  ON CONFLICT (idempotency_key) DO NOTHING;

  PERFORM audit_append(v_business_id, (p#>>'{actor,account_id}')::bigint, p#>>'{actor,kind}',
                       'booking.create', 'booking', v_id, NULL, v_candidate->'snapshot',
                       p#>>'{actor,request_id}', (p#>>'{actor,ip}')::inet,
                       p#>>'{actor,user_agent}');
  RETURN json_build_object('id', v_id, 'staff_id', (v_candidate->>'staff_id')::bigint,
                           'client_id', v_client_id);
END $$;
"""

# as migration 0011 left it
ERASE_ACCOUNT_DATA_AT_0012 = r"""
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
       WHERE b.account_id = p_account_id AND b.status IN ('pending', 'confirmed')
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
           format('staff.booking.cancelled:%s:auto:a%s:%s', v_row.id, r.account_id,
                  extract(epoch FROM p_now)::bigint),
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


def upgrade() -> None:
    op.execute(
        "CREATE TABLE schema_definitions ("
        "name text PRIMARY KEY, "
        "checksum text NOT NULL, "
        "applied_at timestamptz NOT NULL DEFAULT now())"
    )


def downgrade() -> None:
    for sql in (PZ_BLOCKED_AT_0012, PZ_BOOKING_INSERT_AT_0012, ERASE_ACCOUNT_DATA_AT_0012):
        op.execute(sql)
    op.execute("DROP FUNCTION IF EXISTS pz_live_statuses()")
    op.execute(
        "DROP FUNCTION IF EXISTS pz_notification_key(text, bigint, text, bigint, text, timestamptz)"
    )
    op.execute("DROP TABLE schema_definitions")
