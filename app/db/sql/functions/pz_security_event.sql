-- A security event (policy 2.6) from the sign-in pages of the dashboard and of the operator
-- console: a sign-in, a failed one (also for an e-mail no account holds: account_id NULL, which
-- the app role may not insert itself), a password reset or a change of password, e-mail or phone. Only the names below;
-- an event for an account other than the one the transaction acts for is allowed only for
-- the sign-in events, where nobody is signed in yet. Returns nothing.
CREATE OR REPLACE FUNCTION pz_security_event(p_event text, p_account_id bigint, p_ip inet,
                                             p_user_agent text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
  IF p_event IS NULL OR p_event NOT IN (
       'dashboard.sign_in', 'dashboard.sign_in_failed', 'dashboard.sign_in_code',
       'dashboard.sign_up', 'password.reset_requested', 'password.reset', 'password.changed',
       'email.verified', 'email.change_requested', 'email.changed', 'phone.changed',
       'ops.sign_in', 'ops.sign_in_failed') THEN
    RAISE EXCEPTION 'pz_security_event: unknown event %', p_event
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF p_account_id IS DISTINCT FROM app_account_id()
     AND p_event NOT IN ('dashboard.sign_in', 'dashboard.sign_in_failed',
                         'dashboard.sign_in_code', 'password.reset_requested',
                         'password.reset', 'email.verified', 'email.changed',
                         'ops.sign_in_failed') THEN
    RAISE EXCEPTION 'pz_security_event: % is recorded by the signed-in account', p_event
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  INSERT INTO security_events (account_id, event, ip, user_agent)
  VALUES (p_account_id, p_event, p_ip, left(p_user_agent, 400));
END $$;

REVOKE ALL ON FUNCTION pz_security_event(text, bigint, inet, text) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_security_event(text, bigint, inet, text) TO pozapisi_app;
