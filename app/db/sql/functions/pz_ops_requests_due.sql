-- The daily reminder of data-subject requests (policy 8.6): every open request due on or
-- before p_until, in one e-mail per active operator with an address, queued in the outbox once
-- per operator and day (the key names the day), whoever runs the job. Returns the number of
-- messages queued. Run by the worker, which may read neither requests nor operators itself.
CREATE OR REPLACE FUNCTION pz_ops_requests_due(p_today date, p_until date, p_now timestamptz)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  v_due jsonb;
  v_count integer;
BEGIN
  SELECT jsonb_agg(jsonb_build_object('id', r.id, 'kind', r.kind, 'due_on', r.due_on,
                                      'overdue', r.due_on < p_today) ORDER BY r.due_on, r.id)
    INTO v_due
    FROM data_requests r
   WHERE r.status IN ('received', 'in_progress') AND r.due_on <= p_until;
  IF v_due IS NULL THEN
    RETURN 0;
  END IF;
  INSERT INTO notifications (account_id, address, event, channel, locale, payload,
                             idempotency_key, scheduled_at)
  SELECT o.account_id, a.email, 'ops.requests_due', 'email', a.locale,
         jsonb_build_object('requests', v_due, 'today', p_today),
         'ops.requests_due:' || o.account_id || ':' || p_today, p_now
    FROM operators o JOIN accounts a ON a.id = o.account_id
   WHERE o.disabled_at IS NULL AND a.deleted_at IS NULL AND a.email IS NOT NULL
  ON CONFLICT (idempotency_key) DO NOTHING;
  GET DIAGNOSTICS v_count = ROW_COUNT;
  RETURN v_count;
END $$;

REVOKE ALL ON FUNCTION pz_ops_requests_due(date, date, timestamptz) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_ops_requests_due(date, date, timestamptz) TO pozapisi_worker;
