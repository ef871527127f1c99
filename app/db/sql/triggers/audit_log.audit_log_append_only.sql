-- The audit log is append-only: no role, the owner included, may change or remove an entry
-- (entries are added only by audit_append). Personal details live in audit_details, which
-- erasure and retention may clear without breaking the chain.
CREATE OR REPLACE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
