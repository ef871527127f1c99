-- The only way into the audit log: appends one entry to its business's chain (0 = the platform
-- chain) under pg_advisory_xact_lock on that chain, so concurrent writers never fork it. Runs as
-- the owner (SECURITY DEFINER): the runtime roles may call it but not write the log. Personal
-- details (ip, user agent, changed values) go to audit_details, which erasure and retention can
-- clear without breaking the chain: the log keeps only digests of them.
CREATE OR REPLACE FUNCTION audit_append(
  p_business_id bigint, p_actor_account_id bigint, p_actor_kind text, p_action text,
  p_entity text, p_entity_id bigint, p_before jsonb, p_after jsonb, p_request_id text,
  p_ip inet, p_user_agent text
) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  v_chain bigint := coalesce(p_business_id, 0);
  v_seq bigint;
  v_prev bytea;
  v_at timestamptz := clock_timestamp();
  v_before bytea := CASE WHEN p_before IS NULL THEN NULL
                         ELSE sha256(convert_to(p_before::text, 'UTF8')) END;
  v_after bytea := CASE WHEN p_after IS NULL THEN NULL
                        ELSE sha256(convert_to(p_after::text, 'UTF8')) END;
  v_hash bytea;
  v_id bigint;
BEGIN
  -- a business may append only to its own chain; the platform chain is for platform events
  IF session_user <> current_user AND p_business_id IS DISTINCT FROM app_business_id()
     AND p_business_id IS NOT NULL THEN
    RAISE EXCEPTION 'audit_append: tenant mismatch' USING ERRCODE = 'insufficient_privilege';
  END IF;
  PERFORM pg_advisory_xact_lock(hashtextextended('pozapisi.audit:' || v_chain, 0));
  SELECT seq, hash INTO v_seq, v_prev FROM audit_chain_heads WHERE chain_key = v_chain;
  IF NOT FOUND THEN
    v_seq := 0;
    v_prev := decode(repeat('00', 32), 'hex');
  END IF;
  v_seq := v_seq + 1;
  v_hash := audit_entry_hash(v_prev, v_chain, v_seq, v_at, p_actor_account_id, p_actor_kind,
                             p_action, p_entity, p_entity_id, v_before, v_after, p_request_id);
  INSERT INTO audit_log (chain_key, seq, business_id, at, actor_account_id, actor_kind, action,
                         entity, entity_id, before_digest, after_digest, request_id, prev_hash, hash)
  VALUES (v_chain, v_seq, p_business_id, v_at, p_actor_account_id, p_actor_kind, p_action,
          p_entity, p_entity_id, v_before, v_after, p_request_id, v_prev, v_hash)
  RETURNING id INTO v_id;
  IF p_ip IS NOT NULL OR p_user_agent IS NOT NULL OR p_before IS NOT NULL OR p_after IS NOT NULL THEN
    INSERT INTO audit_details (audit_id, business_id, ip, user_agent, before, after)
    VALUES (v_id, p_business_id, p_ip, left(p_user_agent, 400), p_before, p_after);
  END IF;
  INSERT INTO audit_chain_heads (chain_key, seq, hash) VALUES (v_chain, v_seq, v_hash)
  ON CONFLICT (chain_key) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash;
  RETURN v_id;
END $$;

REVOKE ALL ON FUNCTION audit_append(bigint, bigint, text, text, text, bigint, jsonb, jsonb, text, inet, text) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION audit_append(bigint, bigint, text, text, text, bigint, jsonb, jsonb, text, inet, text) TO pozapisi_app;
GRANT EXECUTE ON FUNCTION audit_append(bigint, bigint, text, text, text, bigint, jsonb, jsonb, text, inet, text) TO pozapisi_worker;
