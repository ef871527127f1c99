-- The signed-in person the current transaction acts for, from app.account_id (set per
-- transaction like app.business_id); NULL when nobody is signed in. The policies that let a
-- client read their own rows across businesses compare with it. Executable by every role.
CREATE OR REPLACE FUNCTION app_account_id() RETURNS bigint LANGUAGE sql STABLE PARALLEL SAFE AS
  $$ SELECT NULLIF(current_setting('app.account_id', true), '')::bigint $$;
