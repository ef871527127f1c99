-- services is part of what availability caches: a change moves the business's
-- schedule_version in the changing transaction (pz_bump_schedule_version).
CREATE OR REPLACE TRIGGER services_schedule_version AFTER INSERT OR UPDATE OR DELETE ON services
  FOR EACH ROW EXECUTE FUNCTION pz_bump_schedule_version();
