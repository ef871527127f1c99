-- The business the current transaction acts for, from app.business_id (set with set_config(...,
-- true) at the start of every transaction); NULL when none is set. Every tenant policy compares
-- business_id with it. Executable by every role (PostgreSQL's default): policies call it for
-- whoever queries.
CREATE OR REPLACE FUNCTION app_business_id() RETURNS bigint LANGUAGE sql STABLE PARALLEL SAFE AS
  $$ SELECT NULLIF(current_setting('app.business_id', true), '')::bigint $$;
