-- Whether a message must not go to a person because they withdrew their consent (policy 8.4):
-- their latest consent event is a withdrawal. The one definition, for the outbox's gate
-- (trigger notifications_consent_gate) and the relay's check at send time.
-- Not blocked: what the person asks for themselves after withdrawing, to exercise the rights
-- they keep (a sign-in code, an e-mail link to verify an address or reset a password, the
-- confirmation that their account was deleted), and rows addressed to no account.
-- Not blocked either: the notice of a material change of the privacy policy (policy 11.1). It
-- is a legal notice, not marketing and not a service that needs consent: the policy promises
-- it to users, and a person who withdrew consent is still a user whose data PoZapisi holds
-- (withdrawing is not deleting) and still has the rights the policy gives; the new text is
-- also what they would consent to if they came back. Only a deleted account is not told.
-- SECURITY DEFINER: the worker and the app (for another person's booking) must read the
-- consent of an account that is not the transaction's; it gives out one boolean.
CREATE OR REPLACE FUNCTION pz_notification_blocked(p_account_id bigint, p_event text)
RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
  IF p_account_id IS NULL OR p_event = ANY (ARRAY['otp.code', 'account.verify_email',
       'account.change_email', 'account.reset_password', 'account.deleted',
       'policy.notice']) THEN
    RETURN false;
  END IF;
  RETURN coalesce((SELECT c.action = 'withdrawn' FROM consents c
                    WHERE c.account_id = p_account_id ORDER BY c.id DESC LIMIT 1), false);
END $$;

REVOKE ALL ON FUNCTION pz_notification_blocked(bigint, text) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_notification_blocked(bigint, text) TO pozapisi_app, pozapisi_worker;
