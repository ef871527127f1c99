-- Refuses any UPDATE, DELETE or TRUNCATE on the table it guards (audit_log, consents).
-- Executable by every role: a trigger function runs for whoever fires the trigger.
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
