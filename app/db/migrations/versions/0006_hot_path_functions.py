"""One SQL function per hot path: availability and booking creation in one round trip each.

The app used to read a business, its offers and a master's schedule in seven statements and
write a booking in eleven, each a round trip through the ORM. These functions do the same work
inside the server and answer with one JSON document, so a request costs one statement
(availability) or two (booking: read the context, then write), each in its own implicit
transaction when called outside one. They run with the caller's rights (SECURITY INVOKER), so
row-level security applies exactly as before: each sets ``app.business_id`` (and
``app.account_id``) for the rest of the transaction, as ``Database.transaction`` does.

The slot engine stays in Python (``app/domain/availability.py``); these functions only gather
its input and record its verdict.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTIONS_SQL = r"""
-- What blocks time for some masters around local dates [p_from, p_to], as
-- [[staff, from, to], …] in epoch seconds: live bookings with their buffers, and time off.
-- The part of a schedule that changes with every booking (pz_availability reads only this
-- when the rest is unchanged).
CREATE FUNCTION pz_blocked(p_business_id bigint, p_staff bigint[], p_from date, p_to date,
                           p_tz text)
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
                AND b.blocked_period && tstzrange(w1, w2)
                -- blocked_span keeps a booking within a day of its start: a narrow range of
                -- ix_bookings_business_period, however long the business's history
                AND lower(b.period) > w1 - interval '1 day'
                AND lower(b.period) < w2 + interval '1 day'
             UNION ALL
             SELECT t.staff_id, coalesce(lower(t.period), w1), coalesce(upper(t.period), w2)
               FROM time_off t
              WHERE t.business_id = p_business_id AND t.staff_id = ANY(p_staff)
                AND t.period && tstzrange(w1, w2)) x);
END $$;

-- What the slot engine needs for some masters over local dates [p_from, p_to], as
-- [hours, overrides, blocked, closed]:
--   hours:     [staff, weekday (0 = Monday), start, end] of the weekdays in range; times are
--              seconds since midnight (an end of 0 is midnight at the end of the day)
--   overrides: [staff or null (whole business), date, kind, start, end]
--   blocked:   [staff, from, to] in epoch seconds: live bookings with their buffers, time off
--   closed:    the business's own closed dates
CREATE FUNCTION pz_schedule(p_business_id bigint, p_staff bigint[], p_from date, p_to date,
                            p_tz text)
RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE  -- plpgsql, not sql: PostgreSQL < 18 plans a SQL function's body on every call
  v_weekdays int[] := ARRAY(SELECT (extract(isodow FROM p_from)::int - 1 + i) % 7
                              FROM generate_series(0, least(p_to - p_from, 6)) i);
BEGIN
  RETURN json_build_array(
    (SELECT coalesce(json_agg(json_build_array(h.staff_id, h.weekday,
              extract(epoch FROM h.start_time)::int, extract(epoch FROM h.end_time)::int)
              ORDER BY h.staff_id, h.weekday, h.start_time), '[]')
       FROM working_hours h
      WHERE h.business_id = p_business_id AND h.staff_id = ANY(p_staff)
        AND h.weekday = ANY(v_weekdays)),
    (SELECT coalesce(json_agg(json_build_array(o.staff_id, o.on_date, o.kind,
              extract(epoch FROM o.start_time)::int, extract(epoch FROM o.end_time)::int)
              ORDER BY o.on_date, o.start_time), '[]')
       FROM schedule_overrides o
      WHERE o.business_id = p_business_id AND o.on_date BETWEEN p_from AND p_to
        AND (o.staff_id IS NULL OR o.staff_id = ANY(p_staff))),
    pz_blocked(p_business_id, p_staff, p_from, p_to, p_tz),
    (SELECT coalesce(json_agg(c.on_date), '[]') FROM holidays c
      WHERE c.business_id = p_business_id AND c.on_date BETWEEN p_from AND p_to));
END $$;

-- A live business by its public slug, with the rules booking needs; sets the tenant.
CREATE FUNCTION pz_business_json(p_slug text) RETURNS json LANGUAGE plpgsql AS $$
DECLARE
  v_business json;
  v_id bigint;
BEGIN
  SELECT b.id, json_build_object(
           'id', b.id, 'timezone', b.timezone, 'currency', b.currency,
           'default_locale', b.default_locale, 'auto_confirm', b.auto_confirm,
           'pending_ttl_min', b.pending_ttl_min,
           'max_active_bookings_per_client', b.max_active_bookings_per_client,
           'slot_step_min', b.slot_step_min, 'min_notice_min', b.min_notice_min,
           'horizon_days', b.horizon_days, 'observe_public_holidays', b.observe_public_holidays,
           'reminder_offsets_min', b.reminder_offsets_min)
    INTO v_id, v_business
    FROM businesses b WHERE b.slug = p_slug AND b.archived_at IS NULL;
  IF v_id IS NOT NULL THEN
    PERFORM set_config('app.business_id', v_id::text, true);
  END IF;
  RETURN v_business;
END $$;

-- Everything availability needs in one statement: {business, service, offers, schedule}, or
-- NULL when no live business has this slug. service is NULL when the business has no such
-- live service; offers are the live masters who perform it ([staff, duration, price], in the
-- business's order); schedule is pz_schedule's document for p_staff (else every offer), NULL
-- when nobody is left to ask about.
CREATE FUNCTION pz_slot_context(p_slug text, p_service_id bigint, p_staff_id bigint,
                                p_from date, p_to date)
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
  v_business json := pz_business_json(p_slug);
  v_business_id bigint;
  v_service json;
  v_offers json;
  v_staff bigint[];
BEGIN
  IF v_business IS NULL THEN
    RETURN NULL;
  END IF;
  v_business_id := (v_business->>'id')::bigint;
  SELECT json_build_object('id', s.id, 'name', s.name, 'duration_min', s.duration_min,
                           'price_tiyn', s.price_tiyn, 'buffer_before_min', s.buffer_before_min,
                           'buffer_after_min', s.buffer_after_min)
    INTO v_service
    FROM services s
   WHERE s.id = p_service_id AND s.business_id = v_business_id AND s.archived_at IS NULL;
  IF v_service IS NULL THEN
    RETURN json_build_object('business', v_business, 'service', NULL, 'offers', '[]'::json,
                             'schedule', NULL);
  END IF;
  SELECT coalesce(json_agg(json_build_array(o.staff_id,
                    coalesce(nullif(o.duration_min, 0), (v_service->>'duration_min')::int),
                    coalesce(nullif(o.price_tiyn, 0), (v_service->>'price_tiyn')::bigint))
                  ORDER BY st.sort_order, st.id), '[]'),
         array_agg(o.staff_id ORDER BY st.sort_order, st.id)
    INTO v_offers, v_staff
    FROM staff_services o
    JOIN staff st ON st.id = o.staff_id AND st.business_id = o.business_id
   WHERE o.business_id = v_business_id AND o.service_id = p_service_id
     AND st.archived_at IS NULL;
  IF p_staff_id IS NOT NULL THEN
    v_staff := CASE WHEN p_staff_id = ANY(v_staff) THEN ARRAY[p_staff_id] END;
  END IF;
  RETURN json_build_object(
    'business', v_business, 'service', v_service, 'offers', v_offers,
    'schedule', CASE WHEN cardinality(v_staff) > 0 THEN
      pz_schedule(v_business_id, v_staff, p_from, p_to, v_business->>'timezone') END);
END $$;

-- Availability for a caller that may hold the slow-changing part already: when p_known_version
-- is the business's schedule_version, only {version, blocked} (pz_blocked for p_known_staff);
-- else {version, context} with pz_slot_context's whole document. NULL: no such live business.
-- The version is read first, so a document can only be newer than its version, never older:
-- a cache keyed by it refetches at worst once too often.
CREATE FUNCTION pz_availability(p_slug text, p_service_id bigint, p_staff_id bigint,
                                p_from date, p_to date, p_known_version bigint,
                                p_known_staff bigint[])
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
  v_id bigint;
  v_version bigint;
  v_tz text;
BEGIN
  SELECT b.id, b.schedule_version, b.timezone INTO v_id, v_version, v_tz
    FROM businesses b WHERE b.slug = p_slug AND b.archived_at IS NULL;
  IF v_id IS NULL THEN
    RETURN NULL;
  END IF;
  IF v_version = p_known_version THEN
    PERFORM set_config('app.business_id', v_id::text, true);
    RETURN json_build_object('version', v_version, 'blocked',
      CASE WHEN cardinality(p_known_staff) > 0 THEN
        pz_blocked(v_id, p_known_staff, p_from, p_to, v_tz) END);
  END IF;
  RETURN json_build_object('version', v_version, 'context',
    pz_slot_context(p_slug, p_service_id, p_staff_id, p_from, p_to));
END $$;

-- schedule_version counts changes to what availability caches: the business's own rules,
-- masters, services, who does what, weekly hours, single-date overrides and closed days
-- (bookings and time off are read fresh every time). Bumped in the changing transaction.
CREATE FUNCTION pz_bump_schedule_version() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
  UPDATE businesses SET schedule_version = schedule_version + 1
   WHERE id IN (CASE WHEN TG_OP = 'DELETE' THEN OLD.business_id ELSE NEW.business_id END,
                CASE WHEN TG_OP = 'UPDATE' THEN OLD.business_id END);
  RETURN NULL;
END $$;

CREATE FUNCTION pz_business_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.schedule_version = OLD.schedule_version THEN
    NEW.schedule_version := OLD.schedule_version + 1;
  END IF;
  RETURN NEW;
END $$;

-- Whether a person's latest consent event grants p_required and no material policy change has
-- taken effect since (policy 3.1 and 11.1): the one definition, for every caller.
CREATE FUNCTION pz_consent_ok(p_account_id bigint, p_today date, p_required text[])
RETURNS boolean LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN coalesce((
    SELECT c.action = 'granted' AND c.purposes::text[] @> p_required
           AND NOT EXISTS (SELECT 1 FROM policy_versions p, policy_versions g
                            WHERE g.version = c.policy_version AND p.material
                              AND p.effective_at <= p_today AND p.effective_at > g.effective_at)
      FROM consents c WHERE c.account_id = p_account_id ORDER BY c.id DESC LIMIT 1), false);
END $$;

-- The accounts told about a booking on the business side: its master, owners and admins.
CREATE FUNCTION pz_booking_recipients(p_business_id bigint, p_staff_id bigint)
RETURNS TABLE (account_id bigint, locale text) LANGUAGE sql STABLE AS $$
  SELECT m.account_id, a.locale FROM memberships m JOIN accounts a ON a.id = m.account_id
   WHERE m.business_id = p_business_id AND a.deleted_at IS NULL AND m.notify_bookings
     AND (m.role IN ('owner', 'admin') OR m.staff_id = p_staff_id)
  UNION
  SELECT s.account_id, a.locale FROM staff s JOIN accounts a ON a.id = s.account_id
   WHERE s.business_id = p_business_id AND s.id = p_staff_id AND a.deleted_at IS NULL
$$;

-- What creating a booking through the API needs to know first, in one statement:
-- {account, consent_ok, replay_id, context}. account is NULL when the Telegram user has no
-- live account yet (the caller takes the ordinary path, which creates it); replay_id is the
-- booking an earlier request with this Idempotency-Key made; context is pz_slot_context for
-- the local date of p_start.
CREATE FUNCTION pz_booking_context(p_slug text, p_telegram_id bigint, p_service_id bigint,
                                   p_staff_id bigint, p_start timestamptz,
                                   p_idempotency_key text, p_today date, p_required text[])
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
  v_account json;
  v_account_id bigint;
  v_replay bigint;
  v_day date;
BEGIN
  SELECT a.id, json_build_object('id', a.id, 'name', a.name, 'phone', a.phone,
                                 'locale', a.locale, 'locale_chosen', a.locale_chosen,
                                 'allows_write_to_pm', a.allows_write_to_pm)
    INTO v_account_id, v_account
    FROM accounts a WHERE a.telegram_id = p_telegram_id AND a.deleted_at IS NULL;
  IF v_account_id IS NULL THEN
    RETURN json_build_object('account', NULL);
  END IF;
  PERFORM set_config('app.account_id', v_account_id::text, true);
  IF p_idempotency_key IS NOT NULL THEN
    SELECT b.id INTO v_replay FROM bookings b
     WHERE b.account_id = v_account_id AND b.idempotency_key = p_idempotency_key;
  END IF;
  SELECT (p_start AT TIME ZONE b.timezone)::date INTO v_day
    FROM businesses b WHERE b.slug = p_slug AND b.archived_at IS NULL;
  RETURN json_build_object(
    'account', v_account,
    'consent_ok', pz_consent_ok(v_account_id, p_today, p_required),
    'replay_id', v_replay,
    'context', CASE WHEN v_day IS NOT NULL AND v_replay IS NULL THEN
      pz_slot_context(p_slug, p_service_id, p_staff_id, v_day, v_day) END);
END $$;

-- Record a booking the slot engine has approved, with its client card, notifications and
-- audit entry, in the caller's transaction (or its own). p is what
-- app.domain.bookings.plan_booking builds. Candidates are tried in order: a candidate
-- whose slot was just taken (exclusion violation) gives way to the next; the last one's
-- violation (23P01) reaches the caller as "slot taken". A client over the business's cap of
-- upcoming bookings raises PZ001. The audit entry comes last, so the chain's lock is held only
-- from there to COMMIT.
CREATE FUNCTION pz_booking_insert(p jsonb) RETURNS json LANGUAGE plpgsql AS $$
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

-- One booking row of pz_booking_insert.
CREATE FUNCTION pz_booking_row(p jsonb, c jsonb, p_client_id bigint)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  v_id bigint;
BEGIN
  INSERT INTO bookings (business_id, public_code, client_id, account_id, staff_id, service_id,
                        period, blocked_period, status, source, pending_expires_at,
                        service_name, duration_min, price_tiyn, comment, idempotency_key,
                        created_at, updated_at)
  VALUES ((p->>'business_id')::bigint, p->>'public_code', p_client_id,
          (p->>'account_id')::bigint, (c->>'staff_id')::bigint, (p->>'service_id')::bigint,
          tstzrange((c->>'start')::timestamptz, (c->>'end')::timestamptz, '[)'),
          tstzrange((c->>'blocked_start')::timestamptz, (c->>'blocked_end')::timestamptz, '[)'),
          p->>'status', p->>'source', (p->>'pending_expires_at')::timestamptz,
          p->'service_name', (c->>'duration_min')::int, (c->>'price_tiyn')::bigint,
          p->>'comment', p->>'idempotency_key', (p->>'now')::timestamptz,
          (p->>'now')::timestamptz)
  RETURNING id INTO v_id;
  RETURN v_id;
END $$;
"""

VERSIONED_TABLES = (
    "staff", "services", "staff_services", "working_hours", "schedule_overrides", "holidays",
)  # fmt: skip

SIGNATURES = [
    "pz_blocked(bigint, bigint[], date, date, text)",
    "pz_availability(text, bigint, bigint, date, date, bigint, bigint[])",
    "pz_schedule(bigint, bigint[], date, date, text)",
    "pz_business_json(text)",
    "pz_slot_context(text, bigint, bigint, date, date)",
    "pz_consent_ok(bigint, date, text[])",
    "pz_booking_recipients(bigint, bigint)",
    "pz_booking_context(text, bigint, bigint, bigint, timestamptz, text, date, text[])",
    "pz_booking_insert(jsonb)",
    "pz_booking_row(jsonb, jsonb, bigint)",
]


def upgrade() -> None:
    # what pz_schedule's index range relies on (services allow at most 12 h + 2 x 4 h buffers)
    op.execute(
        "ALTER TABLE bookings ADD CONSTRAINT ck_bookings_blocked_span "
        "CHECK (upper(blocked_period) - lower(blocked_period) <= interval '1 day')"
    )
    op.execute("ALTER TABLE businesses ADD COLUMN schedule_version bigint NOT NULL DEFAULT 0")
    for body in FUNCTIONS_SQL.split("$$;\n")[:-1]:  # one statement per function
        op.execute(body + "$$;")
    op.execute("REVOKE ALL ON FUNCTION pz_bump_schedule_version() FROM PUBLIC")
    for table in VERSIONED_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_schedule_version AFTER INSERT OR UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION pz_bump_schedule_version()"
        )
    op.execute(
        "CREATE TRIGGER businesses_schedule_version BEFORE UPDATE ON businesses "
        "FOR EACH ROW EXECUTE FUNCTION pz_business_changed()"
    )
    for signature in SIGNATURES:
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO pozapisi_app")


def downgrade() -> None:
    op.execute("DROP TRIGGER businesses_schedule_version ON businesses")
    for table in VERSIONED_TABLES:
        op.execute(f"DROP TRIGGER {table}_schedule_version ON {table}")
    for signature in reversed(SIGNATURES):
        op.execute(f"DROP FUNCTION {signature}")
    op.execute("DROP FUNCTION pz_business_changed()")
    op.execute("DROP FUNCTION pz_bump_schedule_version()")
    op.execute("ALTER TABLE businesses DROP COLUMN schedule_version")
    op.execute("ALTER TABLE bookings DROP CONSTRAINT ck_bookings_blocked_span")
