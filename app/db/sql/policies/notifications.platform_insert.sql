-- The app may queue platform messages (a sign-in code, the confirmation of an account's
-- deletion) that belong to no business. Only rows without a business and a booking, addressed
-- to nobody or to the signed-in account; every other row still needs the tenant policy.
-- Write-only on purpose: the app cannot read these rows back (they carry sign-in codes), which
-- is also why they are queued with a plain INSERT: `INSERT … ON CONFLICT` would check the new
-- row against the SELECT policies as well.
DROP POLICY IF EXISTS platform_insert ON notifications;
CREATE POLICY platform_insert ON notifications FOR INSERT TO pozapisi_app
  WITH CHECK (business_id IS NULL AND booking_id IS NULL
              AND (account_id IS NULL OR account_id = app_account_id()));
