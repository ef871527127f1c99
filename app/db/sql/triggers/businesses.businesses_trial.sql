-- A new business starts on the trial plan (pz_business_trial, pz_start_trial).
CREATE OR REPLACE TRIGGER businesses_trial AFTER INSERT ON businesses
  FOR EACH ROW EXECUTE FUNCTION pz_business_trial();
