-- One booking row of pz_booking_insert.
CREATE OR REPLACE FUNCTION pz_booking_row(p jsonb, c jsonb, p_client_id bigint)
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

REVOKE ALL ON FUNCTION pz_booking_row(jsonb, jsonb, bigint) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_booking_row(jsonb, jsonb, bigint) TO pozapisi_app;
