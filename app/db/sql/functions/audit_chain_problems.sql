-- The broken links of ONE business's chain (the one the transaction acts for, app.business_id),
-- for the owner's audit view in the dashboard: the same checks as audit_verify() — content
-- altered, rows missing, link broken, newest rows missing — limited to that chain. SECURITY
-- DEFINER because the chain head table and the hashes are the owner's; without a business in
-- the transaction it answers nothing.
CREATE OR REPLACE FUNCTION audit_chain_problems()
RETURNS TABLE (seq bigint, audit_id bigint, problem text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  WITH ordered AS (
    SELECT a.*, lag(a.hash) OVER w AS expected_prev, lag(a.seq) OVER w AS prev_seq
    FROM audit_log a
    WHERE a.chain_key = app_business_id()
    WINDOW w AS (ORDER BY a.seq)
  )
  SELECT o.seq, o.id,
         CASE WHEN o.hash <> audit_entry_hash(o.prev_hash, o.chain_key, o.seq, o.at,
                   o.actor_account_id, o.actor_kind, o.action, o.entity, o.entity_id,
                   o.before_digest, o.after_digest, o.request_id) THEN 'content altered'
              WHEN o.seq <> coalesce(o.prev_seq, 0) + 1 THEN 'rows missing before this one'
              ELSE 'link broken' END
  FROM ordered o
  WHERE o.hash <> audit_entry_hash(o.prev_hash, o.chain_key, o.seq, o.at, o.actor_account_id,
                   o.actor_kind, o.action, o.entity, o.entity_id, o.before_digest,
                   o.after_digest, o.request_id)
     OR o.seq <> coalesce(o.prev_seq, 0) + 1
     OR o.prev_hash <> coalesce(o.expected_prev, decode(repeat('00', 32), 'hex'))
  UNION ALL
  SELECT h.seq, NULL, 'newest rows missing'
  FROM audit_chain_heads h
  WHERE h.chain_key = app_business_id()
    AND NOT EXISTS (SELECT 1 FROM audit_log a
                    WHERE a.chain_key = h.chain_key AND a.seq = h.seq AND a.hash = h.hash)
  ORDER BY 1
$$;

REVOKE ALL ON FUNCTION audit_chain_problems() FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION audit_chain_problems() TO pozapisi_app;
