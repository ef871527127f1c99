-- Record a booking the slot engine has approved, with its client card, notifications and
-- audit entry, in the caller's transaction (or its own). p is what
-- app.domain.bookings.plan_booking builds. Candidates are tried in order: a candidate
-- whose slot was just taken (exclusion violation) gives way to the next; the last one's
-- violation (23P01) reaches the caller as "slot taken". A client over the business's cap of
-- upcoming bookings raises PZ001. The audit entry comes last, so the chain's lock is held only
-- from there to COMMIT.
-- Every notification's idempotency key is pz_notification_key's: the messages in p need no key
-- of their own (a "key" or "now_key" there is not read).
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
             locale = coalesce(p#>>'{account_update,locale}', locale),
             name = coalesce(name, p#>>'{account_update,name}')  -- kept when they had one
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
       AND b.status = ANY (pz_live_statuses()) AND upper(b.period) > v_now;
    IF v_active >= (p->>'max_active')::int THEN
      RAISE EXCEPTION 'the client has the most upcoming bookings allowed' USING ERRCODE = 'PZ001';
    END IF;
  ELSE
    -- a booking the business makes for someone by phone number: the card the business already
    -- has for that number (a regular, or a client who booked in the Mini App) gathers it, so
    -- the card's visits, spend and no-shows are the person's; a new number makes a new card
    IF p#>>'{client,phone}' IS NOT NULL THEN
      SELECT c.id INTO v_client_id FROM clients c
       WHERE c.business_id = v_business_id AND c.phone = p#>>'{client,phone}'
       ORDER BY c.id LIMIT 1;
    END IF;
    IF v_client_id IS NULL THEN
      INSERT INTO clients (business_id, name, phone)
      VALUES (v_business_id, p#>>'{client,name}', p#>>'{client,phone}')
      RETURNING id INTO v_client_id;
    ELSE
      UPDATE clients SET name = coalesce(name, p#>>'{client,name}') WHERE id = v_client_id;
    END IF;
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
         p->'payload',
         pz_notification_key(m->>'event', v_id, 'auto', (m->>'account_id')::bigint, NULL,
                             (m->>'at')::timestamptz),
         (m->>'at')::timestamptz
    FROM jsonb_array_elements(p->'messages') m
  UNION ALL
  SELECT v_business_id, v_id, r.account_id, 'staff.' || (p->>'event'), 'auto', r.locale,
         p->'payload',
         pz_notification_key('staff.' || (p->>'event'), v_id, 'auto', r.account_id, NULL, v_now),
         v_now
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

REVOKE ALL ON FUNCTION pz_booking_insert(jsonb) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_booking_insert(jsonb) TO pozapisi_app;
