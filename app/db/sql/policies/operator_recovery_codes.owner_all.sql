-- Recovery codes are reached only through pz_operator_recovery_spend (SECURITY DEFINER) and the
-- `pozapisi ops` commands, both as the owner; the runtime roles have no privilege on the table.
DROP POLICY IF EXISTS owner_all ON operator_recovery_codes;
CREATE POLICY owner_all ON operator_recovery_codes TO CURRENT_USER USING (true) WITH CHECK (true);
