-- Every broken link: a row whose stored hash is not what its content gives, a row that does
-- not point at its predecessor, a gap in the sequence, or a chain head that no row matches
-- (the newest rows were deleted).
CREATE OR REPLACE FUNCTION audit_verify() RETURNS TABLE (chain_key bigint, seq bigint, audit_id bigint, problem text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  WITH ordered AS (
    SELECT a.*, lag(a.hash) OVER w AS expected_prev, lag(a.seq) OVER w AS prev_seq
    FROM audit_log a WINDOW w AS (PARTITION BY a.chain_key ORDER BY a.seq)
  )
  SELECT o.chain_key, o.seq, o.id,
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
  SELECT h.chain_key, h.seq, NULL, 'newest rows missing'
  FROM audit_chain_heads h
  WHERE NOT EXISTS (SELECT 1 FROM audit_log a
                    WHERE a.chain_key = h.chain_key AND a.seq = h.seq AND a.hash = h.hash)
  ORDER BY 1, 2
$$;

-- Only the owner runs it (`pozapisi audit verify`): no role is granted it.
REVOKE ALL ON FUNCTION audit_verify() FROM PUBLIC, pozapisi_app, pozapisi_worker;
