-- A change to the business's own rules moves its schedule_version (pz_business_changed),
-- so a cached availability document is refetched.
CREATE OR REPLACE TRIGGER businesses_schedule_version BEFORE UPDATE ON businesses
  FOR EACH ROW EXECUTE FUNCTION pz_business_changed();
