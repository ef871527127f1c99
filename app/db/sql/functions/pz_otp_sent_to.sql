-- How many codes went to one address (its keyed digest) since p_since: the sign-in throttle
-- counts across challenges nobody may read (app.domain.otp.request_code). A count only.
CREATE OR REPLACE FUNCTION pz_otp_sent_to(p_destination_hash text, p_since timestamptz)
RETURNS integer
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT count(*)::integer FROM otp_challenges c
   WHERE c.destination_hash = p_destination_hash AND c.created_at > p_since
$$;

REVOKE ALL ON FUNCTION pz_otp_sent_to(text, timestamptz) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_otp_sent_to(text, timestamptz) TO pozapisi_app;
