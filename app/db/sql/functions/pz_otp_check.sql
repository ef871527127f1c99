-- Checks a typed code against its challenge without handing the challenge out: the caller
-- sends the keyed digests of the address and code it was given (app.domain.otp.verify_code)
-- and learns one word. 'ok': right, in time, for this purpose (and for a change of contact,
-- asked by the account the transaction acts for); the code is used up. 'wrong': the address
-- or code differs; the try is counted. 'locked': five wrong tries were made, so even the
-- right code is refused. 'invalid': no such challenge, used, expired (by the database's clock
-- or a later one), for another purpose or account; nothing is counted.
CREATE OR REPLACE FUNCTION pz_otp_check(p_challenge_id bigint, p_destination_hash text,
                                        p_code_hash text, p_purpose text, p_now timestamptz)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  v_row record;
BEGIN
  SELECT c.attempts, c.consumed_at, c.expires_at, c.purpose, c.account_id, c.destination_hash,
         c.code_hash
    INTO v_row FROM otp_challenges c WHERE c.id = p_challenge_id FOR UPDATE;
  IF NOT FOUND THEN
    RETURN 'invalid';
  END IF;
  IF v_row.attempts >= 5 THEN
    RETURN 'locked';
  END IF;
  IF v_row.consumed_at IS NOT NULL OR v_row.expires_at <= greatest(p_now, now())
     OR v_row.purpose IS DISTINCT FROM p_purpose
     OR (p_purpose <> 'sign_in' AND v_row.account_id IS DISTINCT FROM app_account_id()) THEN
    RETURN 'invalid';
  END IF;
  IF v_row.destination_hash IS DISTINCT FROM p_destination_hash
     OR v_row.code_hash IS DISTINCT FROM p_code_hash THEN
    UPDATE otp_challenges SET attempts = attempts + 1 WHERE id = p_challenge_id;
    RETURN 'wrong';
  END IF;
  UPDATE otp_challenges SET consumed_at = greatest(p_now, now()) WHERE id = p_challenge_id;
  RETURN 'ok';
END $$;

REVOKE ALL ON FUNCTION pz_otp_check(bigint, text, text, text, timestamptz) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_otp_check(bigint, text, text, text, timestamptz) TO pozapisi_app;
