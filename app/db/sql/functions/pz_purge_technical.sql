CREATE OR REPLACE FUNCTION pz_purge_technical(p_cutoff timestamptz) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  v_gone bigint[];
  v_audit integer;
  v_consents integer;
  v_events integer;
  v_sessions integer;
BEGIN
  SELECT coalesce(array_agg(id), '{}') INTO v_gone FROM accounts
   WHERE deleted_at IS NOT NULL AND deleted_at <= p_cutoff;
  UPDATE audit_details d SET ip = NULL, user_agent = NULL FROM audit_log a
   WHERE a.id = d.audit_id AND a.actor_account_id = ANY (v_gone)
     AND (d.ip IS NOT NULL OR d.user_agent IS NOT NULL);
  GET DIAGNOSTICS v_audit = ROW_COUNT;
  DELETE FROM consent_technical t USING consents c
   WHERE c.id = t.consent_id AND c.account_id = ANY (v_gone);
  GET DIAGNOSTICS v_consents = ROW_COUNT;
  DELETE FROM security_events WHERE account_id = ANY (v_gone);
  GET DIAGNOSTICS v_events = ROW_COUNT;
  DELETE FROM sessions WHERE account_id = ANY (v_gone);
  GET DIAGNOSTICS v_sessions = ROW_COUNT;
  RETURN jsonb_build_object('audit_details', v_audit, 'consent_records', v_consents,
                            'security_events', v_events, 'sessions', v_sessions);
END $$;

REVOKE ALL ON FUNCTION pz_purge_technical(timestamptz) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_purge_technical(timestamptz) TO pozapisi_worker;
