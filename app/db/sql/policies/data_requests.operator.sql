-- Operators answer every person's requests (policy 8.6): the console's queue reads and updates
-- them all, and logs requests that came by e-mail, call or letter.
DROP POLICY IF EXISTS operator ON data_requests;
CREATE POLICY operator ON data_requests TO pozapisi_app
  USING (pz_is_operator()) WITH CHECK (pz_is_operator());
