-- How many codes were asked for from one client network (an IPv4 address, an IPv6 /64) since
-- p_since: the per-network throttle of app.domain.otp.request_code. A count only.
CREATE OR REPLACE FUNCTION pz_otp_sent_from(p_network cidr, p_since timestamptz)
RETURNS integer
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT count(*)::integer FROM otp_challenges c
   WHERE c.ip <<= p_network AND c.created_at > p_since
$$;

REVOKE ALL ON FUNCTION pz_otp_sent_from(cidr, timestamptz) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_otp_sent_from(cidr, timestamptz) TO pozapisi_app;
