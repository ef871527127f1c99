-- The hash of one audit entry: sha256 of the previous entry's hash and this entry's fields, so
-- changing or removing any entry breaks every link after it. Times are hashed as whole
-- microseconds since the epoch, so the text form of a timestamp cannot change a hash.
-- Executable by every role (PostgreSQL's default): a pure function of its arguments.
CREATE OR REPLACE FUNCTION audit_entry_hash(
  p_prev bytea, p_chain bigint, p_seq bigint, p_at timestamptz, p_actor bigint, p_actor_kind text,
  p_action text, p_entity text, p_entity_id bigint, p_before bytea, p_after bytea, p_request_id text
) RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT sha256(p_prev || convert_to(concat_ws('|',
    p_chain, p_seq, (extract(epoch FROM p_at) * 1000000)::bigint, coalesce(p_actor::text, ''),
    p_actor_kind, p_action, p_entity, coalesce(p_entity_id::text, ''),
    coalesce(encode(p_before, 'hex'), ''), coalesce(encode(p_after, 'hex'), ''),
    coalesce(p_request_id, '')), 'UTF8'))
$$;
