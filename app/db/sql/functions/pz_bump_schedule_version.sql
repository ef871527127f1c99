-- schedule_version counts changes to what availability caches: the business's own rules,
-- masters, services, who does what, weekly hours, single-date overrides and closed days
-- (bookings and time off are read fresh every time). Bumped in the changing transaction.
CREATE OR REPLACE FUNCTION pz_bump_schedule_version() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
  UPDATE businesses SET schedule_version = schedule_version + 1
   WHERE id IN (CASE WHEN TG_OP = 'DELETE' THEN OLD.business_id ELSE NEW.business_id END,
                CASE WHEN TG_OP = 'UPDATE' THEN OLD.business_id END);
  RETURN NULL;
END $$;

-- Nobody calls it: its triggers run it whoever changes the row (EXECUTE is checked only when
-- a trigger is created), so no role is granted it.
REVOKE ALL ON FUNCTION pz_bump_schedule_version() FROM PUBLIC, pozapisi_app, pozapisi_worker;
