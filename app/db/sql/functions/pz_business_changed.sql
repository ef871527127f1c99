-- A change to a business's own row moves its schedule_version, unless the statement already
-- did (pz_bump_schedule_version's own UPDATE sets it).
-- Executable by every role: a trigger function runs for whoever fires the trigger.
CREATE OR REPLACE FUNCTION pz_business_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.schedule_version = OLD.schedule_version THEN
    NEW.schedule_version := OLD.schedule_version + 1;
  END IF;
  RETURN NEW;
END $$;
