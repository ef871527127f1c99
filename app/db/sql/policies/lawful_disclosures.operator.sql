-- Disclosures to authorities (policy 5.4) are recorded and read by operators of the privacy or
-- admin role, signed in to the console.
DROP POLICY IF EXISTS operator ON lawful_disclosures;
CREATE POLICY operator ON lawful_disclosures TO pozapisi_app
  USING (pz_is_operator(ARRAY['privacy', 'admin']))
  WITH CHECK (pz_is_operator(ARRAY['privacy', 'admin']));
