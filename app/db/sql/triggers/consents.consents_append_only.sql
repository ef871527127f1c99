-- Consent records are append-only too: withdrawing consent is a new row, never an edit, so
-- the history of what a person agreed to, and when, cannot be rewritten.
CREATE OR REPLACE TRIGGER consents_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON consents
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
